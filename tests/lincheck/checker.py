"""Is a concurrent history linearizable? A Wing & Gong search with Lowe's memoization, per partition.

The history is split by the model (per key for the key-value model) and each part is searched on
its own. Calls and returns form one list ordered by time; the search walks it, linearizing any
operation whose call comes before the first return still in the list and whose answer the model
accepts in the current state, and backtracks when it reaches a return whose operation it could not
linearize. A (linearized set, model state) pair already explored is not explored again.

Operations with an unknown outcome have their return at the end of time and need not be linearized
at all (never taking effect is always allowed). Linearizing one only removes options, so a state
reached with a superset of them already linearized is pruned as well, and so is one linearized right
after another when the first made no difference (say, two blind writes whose answers were lost).

Before searching a part, the model may name anomalies it sees at a glance (for the key-value model,
stale or impossible reads given the revisions in the answers); those are reported without a search.

The search is bounded (steps and seconds across the whole history); running out gives the outcome
UNKNOWN instead of hanging. When a part is not linearizable the result names the key, the operation
the deepest attempt could not place, the state there, the operations linearized just before it and
the operations concurrent with it. Pure logic; reads only the clock it is given.
"""

from __future__ import annotations

import enum
import itertools
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tests.lincheck.model import KVModel
from tests.lincheck.operation import Anomaly, Operation

TAIL = 6  # linearized operations shown before the one that could not be placed
SHOWN = 12  # concurrent operations shown
_CLOCK_EVERY = 2048  # steps between looks at the clock


class Outcome(enum.Enum):
    LINEARIZABLE = "linearizable"
    NOT_LINEARIZABLE = "not linearizable"
    UNKNOWN = "unknown"  # the budget ran out first


class Model(Protocol):
    """A sequential specification: how to split a history, where to start, how one operation steps."""

    def partition(self, history: Iterable[Operation]) -> dict[str, list[Operation]]: ...

    def init(self) -> Hashable: ...

    def step(self, state: Any, op: Any, out: Any) -> Hashable | None: ...

    def describe_state(self, state: Any) -> str: ...

    def describe_output(self, op: Any, out: Any) -> str: ...

    def anomalies(self, ops: list[Operation]) -> list[Anomaly]: ...


@dataclass(frozen=True)
class Budget:
    """How much search the whole check may spend before it answers UNKNOWN."""

    max_steps: int = 20_000_000
    max_seconds: float = 30.0


@dataclass
class Violation:
    """Why one partition is not linearizable: from the attempt that linearized the most, or, when the
    model saw it without searching, the anomaly and the operations it conflicts with (in `before`)."""

    key: str
    blocked: Operation  # completed, yet no order placed it before its return
    state: str  # the model state where it could not be placed ("" for an anomaly)
    linearized: int  # completed operations linearized at that point
    completed: int  # completed operations in the partition
    before: list[Operation]  # the last operations linearized before the stuck point, oldest first
    concurrent: list[Operation]  # operations that could have gone next instead
    reason: str = ""  # the anomaly, when found without searching


@dataclass
class PartitionResult:
    key: str
    outcome: Outcome
    operations: int
    steps: int
    violation: Violation | None = None


@dataclass
class CheckResult:
    outcome: Outcome
    partitions: list[PartitionResult] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    explanation: str = ""

    @property
    def ok(self) -> bool:
        """True only when the history is known to be linearizable (UNKNOWN is not ok)."""
        return self.outcome is Outcome.LINEARIZABLE

    @property
    def violations(self) -> list[Violation]:
        return [p.violation for p in self.partitions if p.violation is not None]

    def describe(self) -> str:
        return self.explanation


def check(
    history: Sequence[Operation],
    model: Model | None = None,
    budget: Budget = Budget(),
    clock: Callable[[], float] = time.monotonic,
) -> CheckResult:
    """Check every partition of `history` against `model` (the etcd key-value model by default).

    Raises ValueError on a malformed history (a return before its call, an answer without a return).
    """
    model = model or KVModel()
    _validate(history)
    start = clock()
    deadline = start + budget.max_seconds
    steps_left = budget.max_steps
    results: list[PartitionResult] = []
    for key, ops in sorted(model.partition(history).items()):
        if steps_left <= 0 or clock() > deadline:
            results.append(PartitionResult(key, Outcome.UNKNOWN, len(ops), 0))
            continue
        anomalies = model.anomalies(ops)
        if anomalies:
            results.append(_anomaly_result(key, ops, anomalies[0]))
            continue
        result = _Search(key, ops, model, steps_left, deadline, clock).run()
        steps_left -= result.steps
        results.append(result)
    outcomes = {r.outcome for r in results}
    if Outcome.NOT_LINEARIZABLE in outcomes:
        outcome = Outcome.NOT_LINEARIZABLE
    elif Outcome.UNKNOWN in outcomes:
        outcome = Outcome.UNKNOWN
    else:
        outcome = Outcome.LINEARIZABLE
    steps = sum(r.steps for r in results)
    seconds = clock() - start
    origin = min((op.call_time for op in history), default=0)
    explanation = _explain(outcome, results, model, origin, len(history), steps, seconds)
    return CheckResult(outcome, results, steps, seconds, explanation)


def _anomaly_result(key: str, ops: list[Operation], anomaly: Anomaly) -> PartitionResult:
    completed = sum(op.completed for op in ops)
    violation = Violation(key, anomaly.op, "", 0, completed, list(anomaly.others), [], anomaly.reason)
    return PartitionResult(key, Outcome.NOT_LINEARIZABLE, len(ops), 0, violation)


def _validate(history: Sequence[Operation]) -> None:
    for index, op in enumerate(history):
        if op.return_time is None:
            if op.output is not None:
                raise ValueError(f"operation {index} has an output but no return time: {op}")
        elif op.return_time < op.call_time:
            raise ValueError(f"operation {index} returns before it is called: {op}")
        elif op.output is None:
            raise ValueError(f"operation {index} returned without an output: {op}")


class _Search:
    """The search over one partition: a doubly linked list of call and return entries, and a stack.

    Calls of operations with an unknown outcome stay in the list (their returns are at the end of
    time) and are tried in time order with the others: trying them early lets a blind write whose
    answer was lost be used up right before the next write overwrites it, which keeps the number of
    pending optional operations, and so the search, small.
    """

    def __init__(
        self,
        key: str,
        ops: list[Operation],
        model: Model,
        max_steps: int,
        deadline: float,
        clock: Callable[[], float],
    ) -> None:
        self.key, self.ops, self.model = key, ops, model
        self.max_steps, self.deadline, self.clock = max_steps, deadline, clock
        n = len(ops)
        events = []
        for i, op in enumerate(ops):
            # At equal times a call sorts before a return: touching intervals count as concurrent.
            events.append((op.call_time, 0, i))
            events.append((op.return_time if op.completed else float("inf"), 1, i))
        events.sort()
        self.head = 2 * n  # sentinel; entry e < n is the call of op e, e >= n the return of op e - n
        order = [self.head] + [i if kind == 0 else n + i for _, kind, i in events]
        self.next = [-1] * (2 * n + 1)
        self.prev = [-1] * (2 * n + 1)
        for a, b in itertools.pairwise(order):
            self.next[a], self.prev[b] = b, a

    def _lift(self, i: int) -> None:
        nxt, prv = self.next, self.prev
        for e in (i, i + len(self.ops)):
            nxt[prv[e]] = nxt[e]
            if nxt[e] != -1:
                prv[nxt[e]] = prv[e]

    def _unlift(self, i: int) -> None:
        nxt, prv = self.next, self.prev
        for e in (i + len(self.ops), i):
            nxt[prv[e]] = e
            if nxt[e] != -1:
                prv[nxt[e]] = e

    def run(self) -> PartitionResult:
        ops, model, n = self.ops, self.model, len(self.ops)
        inputs = [op.input for op in ops]
        outputs = [op.output for op in ops]
        known = [op.completed for op in ops]
        nxt, head = self.next, self.head
        remaining = sum(known)
        completed = remaining
        state = model.init()
        known_set = 0  # completed operations linearized
        unknown_set = 0  # unknown-outcome operations linearized
        # (completed set, state) -> the unknown-outcome sets it was explored with
        seen: dict[tuple[int, Hashable], list[int]] = {}
        stack: list[tuple[int, Hashable]] = []  # (operation, state before it)
        best_remaining = remaining + 1
        violation: Violation | None = None
        steps = 0
        entry = nxt[head]
        # While a completed operation is not linearized its return is in the list, before every
        # return at the end of time, so the walk meets it and never runs off the end.
        while remaining:
            steps += 1
            if steps >= self.max_steps or (steps % _CLOCK_EVERY == 0 and self.clock() > self.deadline):
                return PartitionResult(self.key, Outcome.UNKNOWN, n, steps)
            if entry >= n:
                # A return whose operation is not linearized: undo the last choice, try the next one.
                if remaining < best_remaining:
                    best_remaining = remaining
                    violation = self._violation(entry - n, state, completed - remaining, completed, stack)
                if not stack:
                    return PartitionResult(self.key, Outcome.NOT_LINEARIZABLE, n, steps, violation)
                i, state = stack.pop()
                if known[i]:
                    known_set &= ~(1 << i)
                    remaining += 1
                else:
                    unknown_set &= ~(1 << i)
                self._unlift(i)
                entry = nxt[i]
                continue
            # A call: try to linearize it here.
            new_state = model.step(state, inputs[entry], outputs[entry])
            if (
                new_state is not None
                and not known[entry]
                and stack
                and not known[stack[-1][0]]
                and model.step(stack[-1][1], inputs[entry], None) == new_state
            ):
                # Two optional operations in a row where the first makes no difference: the order
                # without the first one is explored anyway (both were candidates before it).
                new_state = None
            if new_state is not None:
                bit = 1 << entry
                if known[entry]:
                    new_known, new_unknown = known_set | bit, unknown_set
                else:
                    new_known, new_unknown = known_set, unknown_set | bit
                explored = seen.setdefault((new_known, new_state), [])
                # Explored before with no more of the optional operations used: nothing new here.
                if not any(old & ~new_unknown == 0 for old in explored):
                    explored.append(new_unknown)
                    stack.append((entry, state))
                    state, known_set, unknown_set = new_state, new_known, new_unknown
                    if known[entry]:
                        remaining -= 1
                    self._lift(entry)
                    entry = nxt[head]
                    continue
            entry = nxt[entry]
        return PartitionResult(self.key, Outcome.LINEARIZABLE, n, steps)

    def _violation(
        self,
        blocked: int,
        state: Hashable,
        linearized: int,
        completed: int,
        stack: list[tuple[int, Hashable]],
    ) -> Violation:
        concurrent = []
        entry = self.next[self.head]
        while entry != -1 and entry != blocked + len(self.ops):
            if entry < len(self.ops) and entry != blocked:
                concurrent.append(self.ops[entry])
            entry = self.next[entry]
        return Violation(
            key=self.key,
            blocked=self.ops[blocked],
            state=self.model.describe_state(state),
            linearized=linearized,
            completed=completed,
            before=[self.ops[i] for i, _ in stack[-TAIL:]],
            concurrent=concurrent,
        )


def _explain(
    outcome: Outcome,
    results: list[PartitionResult],
    model: Model,
    origin: int,
    total: int,
    steps: int,
    seconds: float,
) -> str:
    lines = [f"{outcome.value}: {total} operations on {len(results)} keys, {steps} steps, {seconds:.3f}s"]
    for r in results:
        if r.outcome is Outcome.UNKNOWN:
            lines.append(f"key {r.key}: unknown, the search budget ran out ({r.operations} operations)")
        v = r.violation
        if r.outcome is not Outcome.NOT_LINEARIZABLE or v is None:
            continue
        if v.reason:
            lines.append(
                f"key {v.key}: not linearizable; {v.reason}:\n    {_describe(v.blocked, model, origin)}"
            )
            if v.before:
                lines.append("  conflicting with:")
                lines.extend(f"    {_describe(op, model, origin)}" for op in v.before)
            continue
        lines.append(
            f"key {v.key}: not linearizable; the deepest attempt placed {v.linearized} of {v.completed}"
            f" completed operations, then could not place\n    {_describe(v.blocked, model, origin)}"
            f"\n  in state: {v.state}"
        )
        if v.before:
            lines.append("  linearized just before it:")
            lines.extend(f"    {_describe(op, model, origin)}" for op in v.before)
        if v.concurrent:
            lines.append("  concurrent with it, not placed:")
            lines.extend(f"    {_describe(op, model, origin)}" for op in v.concurrent[:SHOWN])
            if len(v.concurrent) > SHOWN:
                lines.append(f"    ... and {len(v.concurrent) - SHOWN} more")
    return "\n".join(lines)


def _describe(op: Operation, model: Model, origin: int) -> str:
    call = (op.call_time - origin) / 1e6
    ret = "?" if op.return_time is None else f"{(op.return_time - origin) / 1e6:.3f}"
    out = model.describe_output(op.input, op.output)
    return f"client {op.client} {op.input} -> {out} [{call:.3f} .. {ret} ms]"
