"""The Raft log as the core sees it: the persisted part (Storage) plus the unstable tail.

`Unstable` holds entries (and possibly a snapshot) the core has accepted but the driver has not
yet persisted; `RaftLog` stitches it to Storage and owns the commit and applied indexes and the
log-matching rules (`maybe_append`, `find_conflict`, matching by term). Touches nothing.
"""

from __future__ import annotations

from etcdlite.raft.errors import CompactedError, RaftInvariantError, UnavailableError
from etcdlite.raft.storage import Storage, limit_size
from etcdlite.raft.types import Entry, Snapshot


class Unstable:
    """Entries not yet persisted; entries[i] has index offset + i."""

    def __init__(self, offset: int) -> None:
        self.snapshot: Snapshot | None = None
        self.entries: list[Entry] = []
        self.offset = offset

    def maybe_first_index(self) -> int | None:
        if self.snapshot is not None:
            return self.snapshot.metadata.index + 1
        return None

    def maybe_last_index(self) -> int | None:
        if self.entries:
            return self.offset + len(self.entries) - 1
        if self.snapshot is not None:
            return self.snapshot.metadata.index
        return None

    def maybe_term(self, i: int) -> int | None:
        if i < self.offset:
            if self.snapshot is not None and self.snapshot.metadata.index == i:
                return self.snapshot.metadata.term
            return None
        last = self.maybe_last_index()
        if last is None or i > last:
            return None
        return self.entries[i - self.offset].term

    def stable_to(self, i: int, term: int) -> None:
        """The driver persisted up to (i, term); forget those unless they were replaced meanwhile."""
        if self.maybe_term(i) == term and i >= self.offset:
            del self.entries[: i + 1 - self.offset]
            self.offset = i + 1

    def stable_snap_to(self, i: int) -> None:
        if self.snapshot is not None and self.snapshot.metadata.index == i:
            self.snapshot = None

    def restore(self, snap: Snapshot) -> None:
        self.offset = snap.metadata.index + 1
        self.entries = []
        self.snapshot = snap

    def truncate_and_append(self, ents: list[Entry]) -> None:
        after = ents[0].index
        if after == self.offset + len(self.entries):
            self.entries.extend(ents)
        elif after <= self.offset:
            # Replaces everything unstable; storage's conflicting suffix is overwritten on persist.
            self.offset = after
            self.entries = list(ents)
        else:
            self.entries = self.entries[: after - self.offset] + list(ents)


class RaftLog:
    def __init__(self, storage: Storage, max_next_ents_size: int | None = None) -> None:
        self.storage = storage
        self.unstable = Unstable(storage.last_index() + 1)
        first = storage.first_index()
        self.committed = first - 1
        self.applied = first - 1
        self.max_next_ents_size = max_next_ents_size

    def __repr__(self) -> str:
        return (
            f"RaftLog(committed={self.committed}, applied={self.applied}, "
            f"unstable.offset={self.unstable.offset}, len(unstable)={len(self.unstable.entries)})"
        )

    # -- indexes and terms -------------------------------------------------------------
    def first_index(self) -> int:
        i = self.unstable.maybe_first_index()
        return i if i is not None else self.storage.first_index()

    def last_index(self) -> int:
        i = self.unstable.maybe_last_index()
        return i if i is not None else self.storage.last_index()

    def term(self, i: int) -> int:
        """Term of entry i; 0 past the end; CompactedError before the snapshot."""
        dummy = self.first_index() - 1
        if i < dummy:
            raise CompactedError(f"index {i} compacted")
        if i > self.last_index():
            return 0
        t = self.unstable.maybe_term(i)
        if t is not None:
            return t
        try:
            return self.storage.term(i)
        except UnavailableError:
            return 0

    def term_or_zero(self, i: int) -> int:
        try:
            return self.term(i)
        except CompactedError:
            return 0

    def last_term(self) -> int:
        return self.term(self.last_index())

    def match_term(self, i: int, term: int) -> bool:
        try:
            return self.term(i) == term
        except CompactedError:
            return False

    def is_up_to_date(self, lasti: int, term: int) -> bool:
        """Raft §5.4.1: a voter only grants to a candidate whose log is at least as up to date."""
        last_term = self.last_term()
        return term > last_term or (term == last_term and lasti >= self.last_index())

    # -- appending ---------------------------------------------------------------------
    def find_conflict(self, ents: tuple[Entry, ...] | list[Entry]) -> int:
        """Index of the first entry whose term differs from ours (or that we lack); 0 if none."""
        for e in ents:
            if not self.match_term(e.index, e.term):
                return e.index
        return 0

    def find_conflict_by_term(self, index: int, term: int) -> tuple[int, int]:
        """The last entry at or below index whose term is <= term, as (index, term); (0, 0) if none.

        A rejected append names this entry so the leader can skip a whole term of mismatches."""
        while index > 0:
            try:
                t = self.term(index)
            except CompactedError:
                return index, 0
            if t <= term:
                return index, t
            index -= 1
        return 0, 0

    def maybe_append(self, index: int, log_term: int, committed: int, ents: tuple[Entry, ...]) -> int | None:
        """Append a leader's entries after (index, log_term) if we hold that entry; new last index or None."""
        if not self.match_term(index, log_term):
            return None
        last_new = index + len(ents)
        ci = self.find_conflict(ents)
        if ci:
            if ci <= self.committed:
                raise RaftInvariantError(
                    f"entry {ci} conflicts with committed entry (committed {self.committed})"
                )
            self.append(list(ents[ci - index - 1 :]))
        self.commit_to(min(committed, last_new))
        return last_new

    def append(self, ents: list[Entry]) -> int:
        if not ents:
            return self.last_index()
        if ents[0].index - 1 < self.committed:
            raise RaftInvariantError(f"append after {ents[0].index - 1} is below committed {self.committed}")
        self.unstable.truncate_and_append(ents)
        return self.last_index()

    # -- reading -----------------------------------------------------------------------
    def unstable_entries(self) -> list[Entry]:
        return list(self.unstable.entries)

    def slice(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]:
        """Entries [lo, hi); CompactedError if lo was compacted."""
        if lo > hi:
            raise RaftInvariantError(f"invalid slice {lo} > {hi}")
        first = self.first_index()
        if lo < first:
            raise CompactedError(f"index {lo} compacted (first is {first})")
        if hi > self.last_index() + 1:
            raise RaftInvariantError(f"slice [{lo}, {hi}) out of bound [{first}, {self.last_index()}]")
        if lo == hi:
            return []
        ents: list[Entry] = []
        off = self.unstable.offset
        if lo < off:
            ents = self.storage.entries(lo, min(hi, off), max_size)
            if len(ents) < min(hi, off) - lo:
                return ents  # cut by size
        if hi > off:
            ents = ents + self.unstable.entries[max(lo, off) - off : hi - off]
        return limit_size(ents, max_size)

    def entries(self, i: int, max_size: int | None = None) -> list[Entry]:
        if i > self.last_index():
            return []
        return self.slice(i, self.last_index() + 1, max_size)

    def all_entries(self) -> list[Entry]:
        return self.entries(self.first_index())

    def next_committed_entries(self) -> list[Entry]:
        off = max(self.applied + 1, self.first_index())
        if self.committed + 1 > off:
            return self.slice(off, self.committed + 1, self.max_next_ents_size)
        return []

    def has_next_committed_entries(self) -> bool:
        return self.committed + 1 > max(self.applied + 1, self.first_index())

    def snapshot(self) -> Snapshot:
        if self.unstable.snapshot is not None:
            return self.unstable.snapshot
        return self.storage.snapshot()

    # -- commit, apply, persist --------------------------------------------------------
    def commit_to(self, to: int) -> None:
        if to > self.committed:
            if to > self.last_index():
                raise RaftInvariantError(f"commit {to} out of range (last index {self.last_index()})")
            self.committed = to

    def maybe_commit(self, max_index: int, term: int) -> bool:
        """Commit by counting only for an entry of the current term (Raft §5.4.2, Figure 8)."""
        if max_index > self.committed and self.term_or_zero(max_index) == term:
            self.commit_to(max_index)
            return True
        return False

    def applied_to(self, i: int) -> None:
        if i == 0:
            return
        if i > self.committed or i < self.applied:
            raise RaftInvariantError(f"applied {i} out of range [{self.applied}, {self.committed}]")
        self.applied = i

    def stable_to(self, i: int, term: int) -> None:
        self.unstable.stable_to(i, term)

    def stable_snap_to(self, i: int) -> None:
        self.unstable.stable_snap_to(i)

    def restore(self, snap: Snapshot) -> None:
        self.committed = snap.metadata.index
        self.unstable.restore(snap)
