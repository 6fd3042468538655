"""The narrow interface through which the Raft core reads the durable log, and its in-memory twin.

`Storage` is what the core reads; the driver's durable log implements it too. `MemoryStorage`
holds everything in memory: the tests use it as the persisted state of a simulated node and the
driver uses it as the cache in front of the WAL. Like etcd's MemoryStorage it keeps a dummy entry
at position 0 whose index and term are those of the latest snapshot. Touches nothing.
"""

from __future__ import annotations

from typing import Protocol

from etcdlite.raft.errors import CompactedError, SnapOutOfDateError, UnavailableError
from etcdlite.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata, entry_size


class Storage(Protocol):
    def initial_state(self) -> tuple[HardState, ConfState]: ...

    def entries(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]: ...

    def term(self, i: int) -> int: ...

    def first_index(self) -> int: ...

    def last_index(self) -> int: ...

    def snapshot(self) -> Snapshot: ...


def limit_size(entries: list[Entry], max_size: int | None) -> list[Entry]:
    """Cut a batch to max_size bytes, but always keep the first entry so replication progresses."""
    if max_size is None or not entries:
        return entries
    total = entry_size(entries[0])
    for n in range(1, len(entries)):
        total += entry_size(entries[n])
        if total > max_size:
            return entries[:n]
    return entries


class MemoryStorage:
    """Storage in memory; the last snapshot's index/term live in the dummy entry at position 0."""

    def __init__(self) -> None:
        self.hard_state = HardState()
        self._snapshot = Snapshot()
        self._ents: list[Entry] = [Entry(term=0, index=0)]

    # -- Storage protocol --------------------------------------------------------------
    def initial_state(self) -> tuple[HardState, ConfState]:
        return self.hard_state, self._snapshot.metadata.conf_state

    def first_index(self) -> int:
        return self._ents[0].index + 1

    def last_index(self) -> int:
        return self._ents[0].index + len(self._ents) - 1

    def term(self, i: int) -> int:
        offset = self._ents[0].index
        if i < offset:
            raise CompactedError(f"index {i} compacted (first is {offset + 1})")
        if i - offset >= len(self._ents):
            raise UnavailableError(f"index {i} past last index {self.last_index()}")
        return self._ents[i - offset].term

    def entries(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]:
        offset = self._ents[0].index
        if lo <= offset:
            raise CompactedError(f"entries from {lo} compacted (first is {offset + 1})")
        if hi > self.last_index() + 1:
            raise UnavailableError(f"entries up to {hi - 1} past last index {self.last_index()}")
        return limit_size(self._ents[lo - offset : hi - offset], max_size)

    def snapshot(self) -> Snapshot:
        return self._snapshot

    # -- writers (the driver, after fsync) ---------------------------------------------
    def set_hard_state(self, hs: HardState) -> None:
        self.hard_state = hs

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Replace the whole log with a snapshot received from the leader."""
        if snap.metadata.index <= self._snapshot.metadata.index:
            raise SnapOutOfDateError(
                f"snapshot at {snap.metadata.index} not newer than {self._snapshot.metadata.index}"
            )
        self._snapshot = snap
        self._ents = [Entry(term=snap.metadata.term, index=snap.metadata.index)]

    def create_snapshot(self, index: int, conf_state: ConfState | None, data: bytes) -> Snapshot:
        """Record the state machine's snapshot at `index`; call compact() afterwards to drop entries."""
        if index <= self._snapshot.metadata.index:
            raise SnapOutOfDateError(f"snapshot at {index} not newer than {self._snapshot.metadata.index}")
        if index > self.last_index():
            raise UnavailableError(f"snapshot index {index} past last index {self.last_index()}")
        cs = conf_state if conf_state is not None else self._snapshot.metadata.conf_state
        self._snapshot = Snapshot(SnapshotMetadata(index=index, term=self.term(index), conf_state=cs), data)
        return self._snapshot

    def compact(self, index: int) -> None:
        """Drop the entries up to `index` (which a snapshot must already cover)."""
        offset = self._ents[0].index
        if index <= offset:
            raise CompactedError(f"index {index} already compacted (first is {offset + 1})")
        if index > self.last_index():
            raise UnavailableError(f"compact index {index} past last index {self.last_index()}")
        i = index - offset
        self._ents = [Entry(term=self._ents[i].term, index=index), *self._ents[i + 1 :]]

    def append(self, entries: list[Entry]) -> None:
        """Append entries, replacing any conflicting suffix (the core already decided it conflicts)."""
        if not entries:
            return
        first = self.first_index()
        if entries[-1].index < first:
            return
        if first > entries[0].index:
            entries = entries[first - entries[0].index :]
        offset = entries[0].index - self._ents[0].index
        if offset > len(self._ents):
            raise UnavailableError(
                f"missing log entry: last {self.last_index()}, append at {entries[0].index}"
            )
        del self._ents[offset:]
        self._ents.extend(entries)
