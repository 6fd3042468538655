"""The Raft log: MemoryStorage, the unstable tail, conflict detection and log matching by term."""

from __future__ import annotations

import pytest

from etcdlite.raft.errors import CompactedError, RaftInvariantError, SnapOutOfDateError, UnavailableError
from etcdlite.raft.log import RaftLog
from etcdlite.raft.storage import MemoryStorage
from etcdlite.raft.types import ConfState, Entry, MessageType, entry_size
from tests.raftsim import Network


def ents(*terms: int, start: int = 1) -> list[Entry]:
    return [Entry(term=t, index=start + i, data=f"{start + i}".encode()) for i, t in enumerate(terms)]


def storage_with(*terms: int) -> MemoryStorage:
    st = MemoryStorage()
    st.append(ents(*terms))
    return st


# -- MemoryStorage ------------------------------------------------------------------------
def test_memory_storage_indexes_terms_and_ranges() -> None:
    st = storage_with(1, 1, 2, 3)
    assert (st.first_index(), st.last_index()) == (1, 4)
    assert [st.term(i) for i in range(5)] == [0, 1, 1, 2, 3]
    assert [e.index for e in st.entries(2, 5)] == [2, 3, 4]
    with pytest.raises(UnavailableError):
        st.entries(2, 6)
    with pytest.raises(UnavailableError):
        st.term(5)


def test_memory_storage_append_truncates_conflicting_suffix() -> None:
    st = storage_with(1, 1, 2, 2)
    st.append(ents(3, 3, start=3))
    assert [st.term(i) for i in range(1, 5)] == [1, 1, 3, 3]
    with pytest.raises(UnavailableError):
        st.append(ents(3, start=7))  # would leave a gap


def test_memory_storage_snapshot_and_compact() -> None:
    st = storage_with(1, 1, 2, 2, 3)
    snap = st.create_snapshot(3, ConfState(voters=(1,)), b"sm")
    assert (snap.metadata.index, snap.metadata.term) == (3, 2)
    st.compact(3)
    assert (st.first_index(), st.last_index(), st.term(3)) == (4, 5, 2)
    with pytest.raises(CompactedError):
        st.entries(3, 5)
    with pytest.raises(CompactedError):
        st.term(2)
    with pytest.raises(CompactedError):
        st.compact(2)
    with pytest.raises(SnapOutOfDateError):
        st.create_snapshot(2, None, b"")
    with pytest.raises(SnapOutOfDateError):
        st.apply_snapshot(snap)
    assert st.initial_state()[1] == ConfState(voters=(1,))


def test_memory_storage_size_limit_keeps_at_least_one_entry() -> None:
    st = MemoryStorage()
    st.append([Entry(term=1, index=i, data=b"x" * 100) for i in range(1, 6)])
    one = entry_size(Entry(term=1, index=1, data=b"x" * 100))
    assert len(st.entries(1, 6, max_size=1)) == 1
    assert len(st.entries(1, 6, max_size=2 * one)) == 2
    assert len(st.entries(1, 6)) == 5


# -- RaftLog ------------------------------------------------------------------------------
def test_find_conflict() -> None:
    log = RaftLog(storage_with(1, 2, 3))
    assert log.find_conflict([]) == 0
    assert log.find_conflict(ents(1, 2, 3)) == 0
    assert log.find_conflict(ents(2, 3, start=2)) == 0
    assert log.find_conflict(ents(2, 3, 4, 4, start=2)) == 4  # new entries only
    assert log.find_conflict(ents(4, 4, start=1)) == 1
    assert log.find_conflict(ents(1, 4, 4, start=1)) == 2
    assert log.find_conflict(ents(2, 4, start=2)) == 3


def test_maybe_append_matches_by_term_and_truncates_conflicts() -> None:
    log = RaftLog(storage_with(1, 2, 3))
    assert log.maybe_append(3, 2, 0, tuple(ents(4, start=4))) is None  # wrong term at index 3
    assert log.maybe_append(4, 3, 0, ()) is None  # index 4 missing
    assert log.maybe_append(3, 3, 3, tuple(ents(4, start=4))) == 4
    assert log.committed == 3
    # A conflicting entry after the commit point replaces the tail.
    assert log.maybe_append(3, 3, 3, tuple(ents(5, start=4))) == 4
    assert [log.term(i) for i in range(1, 5)] == [1, 2, 3, 5]
    # A stale shorter append does not truncate matching entries.
    assert log.maybe_append(1, 1, 3, tuple(ents(2, start=2))) == 2
    assert log.last_index() == 4
    # The commit index never runs past what the append proved.
    assert log.maybe_append(1, 1, 100, ()) == 1 and log.committed == 3


def test_maybe_append_refuses_to_truncate_committed_entries() -> None:
    log = RaftLog(storage_with(1, 2, 3))
    log.commit_to(3)
    with pytest.raises(RaftInvariantError):
        log.maybe_append(1, 1, 3, tuple(ents(9, start=2)))


def test_unstable_stable_to_and_slices_across_storage() -> None:
    st = storage_with(1, 1)
    log = RaftLog(st)
    log.append(ents(2, 2, start=3))
    assert log.unstable_entries() == ents(2, 2, start=3)
    assert [e.index for e in log.slice(2, 5)] == [2, 3, 4]
    st.append(log.unstable_entries())
    log.stable_to(4, 2)
    assert log.unstable_entries() == []
    # A stale stable_to (entry replaced meanwhile) does nothing.
    log.append(ents(3, start=5))
    log.stable_to(5, 2)
    assert log.unstable_entries() == ents(3, start=5)


def test_is_up_to_date_compares_last_term_then_length() -> None:
    log = RaftLog(storage_with(1, 2, 2))
    assert log.is_up_to_date(1, 3)
    assert log.is_up_to_date(3, 2)
    assert not log.is_up_to_date(2, 2)
    assert not log.is_up_to_date(9, 1)


def test_next_committed_entries_respects_applied_and_commit() -> None:
    log = RaftLog(storage_with(1, 1, 1, 1))
    log.commit_to(3)
    assert [e.index for e in log.next_committed_entries()] == [1, 2, 3]
    log.applied_to(2)
    assert [e.index for e in log.next_committed_entries()] == [3]
    with pytest.raises(RaftInvariantError):
        log.commit_to(9)
    with pytest.raises(RaftInvariantError):
        log.applied_to(4)


def test_term_of_compacted_index_raises_and_past_end_is_zero() -> None:
    st = storage_with(1, 2, 3, 4)
    st.create_snapshot(2, None, b"")
    st.compact(2)
    log = RaftLog(st)
    assert log.term(2) == 2 and log.term(9) == 0
    with pytest.raises(CompactedError):
        log.term(1)
    assert not log.match_term(1, 1)


# -- conflict resolution in a cluster -----------------------------------------------------
def test_new_leader_overwrites_a_followers_uncommitted_divergent_tail() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.propose(1, b"committed")
    # Leader 1 appends entries that only it holds, then loses leadership.
    net.isolate(1)
    for i in range(3):
        net.nodes[1].propose(f"lost-{i}".encode())
    net.stabilize()
    # 2 and 3 elect a new leader once their lease on 1 runs out.
    net.tick(2, 3 * net.raft(2).election_timeout)
    net.tick(3, 3 * net.raft(3).election_timeout)
    assert net.leader() in (2, 3)
    new_leader = net.leader()
    assert new_leader is not None
    net.propose(new_leader, b"after")
    net.heal()
    net.tick_all(3 * net.raft(1).election_timeout)
    for i in (1, 2, 3):
        assert net.data_applied(i) == [b"committed", b"after"], i
    assert all(b"lost" not in e.data for e in net.raft(1).log.all_entries())


def test_find_conflict_by_term_skips_whole_terms() -> None:
    log = RaftLog(storage_with(1, 1, 2, 2, 2, 4, 4))
    assert log.find_conflict_by_term(7, 3) == (5, 2)
    assert log.find_conflict_by_term(7, 4) == (7, 4)
    assert log.find_conflict_by_term(5, 1) == (2, 1)
    assert log.find_conflict_by_term(7, 0) == (0, 0)


def test_long_divergent_tail_is_repaired_in_a_few_round_trips() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.isolate(1)
    for i in range(50):  # 50 entries only the old leader holds
        net.nodes[1].propose(f"lost-{i}".encode())
    net.stabilize()
    net.tick_all(3 * net.raft(2).election_timeout)
    lead = net.leader()
    assert lead in (2, 3)
    net.propose(lead, b"new")
    net.heal()
    net.sent.clear()
    net.tick_all(2 * net.raft(1).election_timeout)
    rejects = [m for m in net.sent if m.type is MessageType.APP_RESP and m.frm == 1 and m.reject]
    assert len(rejects) <= 2, rejects
    assert net.data_applied(1)[-1] == b"new"
