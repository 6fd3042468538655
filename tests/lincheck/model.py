"""The sequential specification of an etcd-like key-value store, one key at a time, for the checker.

Operations are get, put, delete and compare-and-swap (a Txn whose single compare is on the value or on
the mod revision, whose success branch is a put and whose failure branch is empty). Every operation
touches one key, so the history is partitioned per key and each key is checked on its own (a history
is linearizable when every per-key projection is).

Besides values, the model checks revisions when the history carries them: a key's mod revision only
grows, and the store's revision (every response header carries it) never goes backwards along the
linearization, so a write lands above every revision seen before it and a read sees at least every
revision linearized before it. A write whose revision is not known (an unknown outcome) leaves the
key's mod revision known only from below. Pure logic; touches nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from tests.lincheck.operation import Anomaly, Operation


class OpKind(enum.Enum):
    GET = "get"
    PUT = "put"
    DELETE = "delete"
    CAS = "cas"


class CompareTarget(enum.Enum):
    """What a compare-and-swap compares (etcd's Compare.target)."""

    VALUE = "value"
    MOD = "mod"


@dataclass(frozen=True)
class KVInput:
    """What a client asked. Build it with the class methods so every kind has the fields it needs."""

    kind: OpKind
    key: str
    value: str | None = None
    compare: CompareTarget | None = None
    expected_value: str | None = None
    expected_mod_revision: int | None = None

    @classmethod
    def get(cls, key: str) -> KVInput:
        return cls(OpKind.GET, key)

    @classmethod
    def put(cls, key: str, value: str) -> KVInput:
        return cls(OpKind.PUT, key, value)

    @classmethod
    def delete(cls, key: str) -> KVInput:
        return cls(OpKind.DELETE, key)

    @classmethod
    def cas_value(cls, key: str, expected: str, value: str) -> KVInput:
        """Put `value` if the key exists and holds `expected` (a value compare on a missing key fails)."""
        return cls(OpKind.CAS, key, value, CompareTarget.VALUE, expected_value=expected)

    @classmethod
    def cas_mod(cls, key: str, expected_mod_revision: int, value: str) -> KVInput:
        """Put `value` if the key's mod revision is `expected_mod_revision` (0: the key does not exist)."""
        return cls(OpKind.CAS, key, value, CompareTarget.MOD, expected_mod_revision=expected_mod_revision)

    def __str__(self) -> str:
        if self.kind is OpKind.GET:
            return f"get({self.key})"
        if self.kind is OpKind.PUT:
            return f"put({self.key}, {self.value!r})"
        if self.kind is OpKind.DELETE:
            return f"delete({self.key})"
        if self.compare is CompareTarget.VALUE:
            return f"cas({self.key}, value=={self.expected_value!r} -> {self.value!r})"
        return f"cas({self.key}, mod=={self.expected_mod_revision} -> {self.value!r})"


@dataclass(frozen=True)
class KVOutput:
    """What the store answered. `revision` is the response header's revision; None means not recorded."""

    revision: int | None = None
    value: str | None = None  # GET: the value read, None when the key does not exist
    mod_revision: int | None = None  # GET: the key's mod revision (0 when it does not exist)
    succeeded: bool = True  # CAS: did the compare hold
    deleted: int | None = None  # DELETE: how many keys went away (0 or 1)

    @classmethod
    def read(
        cls, value: str | None, mod_revision: int | None = None, revision: int | None = None
    ) -> KVOutput:
        return cls(revision=revision, value=value, mod_revision=mod_revision)

    @classmethod
    def written(cls, revision: int | None = None) -> KVOutput:
        return cls(revision=revision)

    @classmethod
    def swapped(cls, succeeded: bool, revision: int | None = None) -> KVOutput:
        return cls(revision=revision, succeeded=succeeded)

    @classmethod
    def removed(cls, deleted: int, revision: int | None = None) -> KVOutput:
        return cls(revision=revision, deleted=deleted)


KVOperation = Operation[KVInput, KVOutput]


class KeyState(NamedTuple):
    """One key as the model sees it after a prefix of the linearization (hashable: the checker memoizes it).

    `mod_revision` is exact when `mod_exact`, otherwise a lower bound (inclusive); `floor` is a lower
    bound of the store's revision at this point.
    """

    value: str | None
    mod_revision: int
    mod_exact: bool
    floor: int


ABSENT = KeyState(None, 0, True, 0)


class KVModel:
    """The etcd key-value model the checker steps: partition per key, initial state, transitions."""

    def partition(self, history: Iterable[KVOperation]) -> dict[str, list[KVOperation]]:
        """Operations per key; reads whose outcome is unknown change nothing and are left out."""
        keys: dict[str, list[KVOperation]] = {}
        for op in history:
            if op.output is None and op.input.kind is OpKind.GET:
                continue
            keys.setdefault(op.input.key, []).append(op)
        return keys

    def anomalies(self, ops: list[KVOperation]) -> list[Anomaly]:
        """What one look at a key's operations shows the search could never explain."""
        from tests.lincheck.anomalies import find_anomalies  # it builds on this module

        return find_anomalies(ops)

    def init(self) -> KeyState:
        return ABSENT

    def step(self, state: KeyState, op: KVInput, out: KVOutput | None) -> KeyState | None:
        """The state after `op` answered `out` at this point, or None if that answer is impossible here.

        For an unknown outcome (`out` None) this is the state if the operation took effect here, or
        None if it cannot have an effect here (then it is as if it never happened, which the checker
        always allows).
        """
        if op.kind is OpKind.GET:
            return None if out is None else _read(state, out)
        if op.kind is OpKind.PUT:
            return _write(state, op.value, out)
        if op.kind is OpKind.DELETE:
            return _delete(state, out)
        return _compare_and_swap(state, op, out)

    def describe_state(self, state: KeyState) -> str:
        if state.value is None:
            return f"absent (store revision >= {state.floor})"
        mod = (
            f"mod revision {state.mod_revision}"
            if state.mod_exact
            else f"mod revision >= {state.mod_revision}"
        )
        return f"value {state.value!r}, {mod} (store revision >= {state.floor})"

    def describe_output(self, op: KVInput, out: KVOutput | None) -> str:
        if out is None:
            return "unknown outcome"
        rev = "" if out.revision is None else f" @rev {out.revision}"
        if op.kind is OpKind.GET:
            mod = "" if out.mod_revision is None else f" mod {out.mod_revision}"
            return f"{out.value!r}{mod}{rev}"
        if op.kind is OpKind.DELETE:
            return f"deleted {out.deleted}{rev}"
        if op.kind is OpKind.CAS:
            return f"{'succeeded' if out.succeeded else 'failed'}{rev}"
        return f"ok{rev}"


def _read(state: KeyState, out: KVOutput) -> KeyState | None:
    if out.value != state.value:
        return None
    floor = state.floor
    if out.revision is not None:
        if out.revision < floor:
            return None
        floor = out.revision
    if out.mod_revision is None:
        return state._replace(floor=floor)
    if out.revision is not None and out.mod_revision > out.revision:
        return None
    if state.mod_exact or state.value is None:
        return state._replace(floor=floor) if out.mod_revision == state.mod_revision else None
    if out.mod_revision < state.mod_revision:
        return None
    return KeyState(state.value, out.mod_revision, True, floor)


def _write(state: KeyState, value: str | None, out: KVOutput | None) -> KeyState | None:
    """A put of `value`: its revision is the response's, above everything before it."""
    revision = None if out is None else out.revision
    if revision is None:
        return KeyState(value, state.floor + 1, False, state.floor)
    if revision <= state.floor or revision < state.mod_revision:
        return None
    return KeyState(value, revision, True, revision)


def _unchanged(state: KeyState, out: KVOutput) -> KeyState | None:
    """A request that changed nothing still saw the store at or above every revision before it."""
    if out.revision is None:
        return state
    if out.revision < state.floor:
        return None
    return state._replace(floor=out.revision)


def _delete(state: KeyState, out: KVOutput | None) -> KeyState | None:
    if out is None:
        return None if state.value is None else _removed(state, None)
    if out.deleted == 0:
        return _unchanged(state, out) if state.value is None else None
    if state.value is None:
        return None
    return _removed(state, out.revision)


def _removed(state: KeyState, revision: int | None) -> KeyState | None:
    if revision is None:
        return KeyState(None, 0, True, state.floor)
    if revision <= state.floor:
        return None
    return KeyState(None, 0, True, revision)


def _compare_and_swap(state: KeyState, op: KVInput, out: KVOutput | None) -> KeyState | None:
    holds = _compare(state, op)
    if out is None:
        return None if holds is False else _write(state, op.value, None)
    if out.succeeded:
        return None if holds is False else _write(state, op.value, out)
    return None if holds is True else _unchanged(state, out)


def _compare(state: KeyState, op: KVInput) -> bool | None:
    """Does the compare hold here? None: it may or may not (the mod revision is known only from below)."""
    if op.compare is CompareTarget.VALUE:
        return state.value is not None and state.value == op.expected_value
    expected = op.expected_mod_revision
    if state.mod_exact or state.value is None:
        return state.mod_revision == expected
    return None if expected is not None and expected >= state.mod_revision else False
