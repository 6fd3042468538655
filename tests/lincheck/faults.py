"""Fault windows of a recorded history: when an injected fault was in force, and which operations
it touched. Pure data and arithmetic; touches nothing.

A fault-injection test notes the window of each fault it injects (on the recorder's clock,
time.monotonic_ns: from just before the fault to when it was over, e.g. the killed member serving
again or the paused one sent SIGCONT) and asserts with `assert_each_fault_felt` that every window
holds operations that failed or whose outcome is unknown. A fault that no operation felt tested
nothing: the linearizability check of such a history says nothing about the fault.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tests.lincheck.operation import Failure, Operation


@dataclass(frozen=True)
class FaultWindow:
    """One injected fault, from `start` to `end` (monotonic nanoseconds)."""

    name: str  # what was done to whom, e.g. "SIGKILL of leader m2"
    start: int
    end: int

    @property
    def seconds(self) -> float:
        return (self.end - self.start) / 1e9


class FaultClock:
    """Opens and closes fault windows on the recorder's clock."""

    def __init__(self) -> None:
        self.windows: list[FaultWindow] = []
        self._open: dict[str, int] = {}

    def begin(self, name: str) -> None:
        self._open[name] = time.monotonic_ns()

    def end(self, name: str) -> FaultWindow:
        window = FaultWindow(name, self._open.pop(name), time.monotonic_ns())
        self.windows.append(window)
        return window


@dataclass(frozen=True)
class Felt:
    """What one fault window holds: operations with an unknown outcome called during it, and failures
    whose request was in flight at some moment of it."""

    window: FaultWindow
    unknown: tuple[Operation, ...]
    failed: tuple[Failure, ...]

    @property
    def any(self) -> bool:
        return bool(self.unknown or self.failed)

    def describe(self) -> str:
        return (
            f"{self.window.name} ({self.window.seconds:.2f} s): "
            f"{len(self.unknown)} operations with an unknown outcome, {len(self.failed)} failed requests"
        )


def felt(window: FaultWindow, history: Iterable[Operation], failures: Iterable[Failure] = ()) -> Felt:
    """The operations of `history` and the `failures` that the fault in `window` touched."""
    unknown = tuple(op for op in history if not op.completed and window.start <= op.call_time <= window.end)
    failed = tuple(f for f in failures if f.call_time <= window.end and f.fail_time >= window.start)
    return Felt(window, unknown, failed)


def assert_each_fault_felt(
    windows: Sequence[FaultWindow], history: Sequence[Operation], failures: Sequence[Failure] = ()
) -> list[Felt]:
    """Fail naming every window that holds no failed operation and none with an unknown outcome."""
    assert windows, "no fault window was recorded"
    found = [felt(window, history, failures) for window in windows]
    missed = [f for f in found if not f.any]
    if missed:
        span = ""
        if history:
            span = f"; the history runs from {history[0].call_time} to {history[-1].call_time} ns"
        raise AssertionError(
            "no operation failed or had an unknown outcome during "
            + ", ".join(f"{f.window.name} [{f.window.start}, {f.window.end}] ns" for f in missed)
            + f"{span}; every window: "
            + "; ".join(f.describe() for f in found)
        )
    return found
