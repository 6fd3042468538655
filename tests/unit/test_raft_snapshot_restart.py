"""Snapshots, InstallSnapshot for a follower whose next entry was compacted, and restart from storage."""

from __future__ import annotations

import pytest

from etcdlite.raft.core import Config
from etcdlite.raft.errors import RaftInvariantError
from etcdlite.raft.node import RawNode
from etcdlite.raft.progress import ProgressState
from etcdlite.raft.storage import MemoryStorage
from etcdlite.raft.types import ConfState, Message, MessageType, StateType
from tests.raftsim import Network


def compact_all(net: Network, ids: tuple[int, ...]) -> int:
    """What the driver does every snapshot-count entries: snapshot the applied state, drop the log."""
    for i in ids:
        st = net.storage[i]
        applied = net.raft(i).log.applied
        st.create_snapshot(applied, ConfState(voters=(1, 2, 3)), f"state@{applied}".encode())
        st.compact(applied)
    return net.raft(ids[0]).log.applied


def test_follower_behind_compaction_gets_a_snapshot_and_catches_up() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.isolate(3)
    for i in range(10):
        net.propose(1, f"v{i}".encode())
    snap_index = compact_all(net, (1, 2))
    net.propose(1, b"after-snapshot")
    net.heal()
    net.tick(1)
    assert any(m.type is MessageType.SNAP and m.to == 3 for m in net.sent)
    st3 = net.storage[3]
    assert st3.snapshot().metadata.index == snap_index
    assert st3.snapshot().data == f"state@{snap_index}".encode()
    assert net.conf_states[3] == ConfState(voters=(1, 2, 3))
    assert net.data_applied(3)[-1] == b"after-snapshot"
    assert net.raft(3).log.committed == net.raft(1).log.committed
    assert net.raft(1).prs[3].state is ProgressState.REPLICATE


def test_failed_snapshot_report_returns_follower_to_probe() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.isolate(3)
    for i in range(5):
        net.propose(1, f"v{i}".encode())
    snap_index = compact_all(net, (1, 2))
    net.drop_types = {MessageType.SNAP}
    net.heal()
    net.tick(1)
    pr = net.raft(1).prs[3]
    assert pr.state is ProgressState.SNAPSHOT
    net.nodes[1].report_snapshot(3, ok=False)
    assert pr.state is ProgressState.PROBE and pr.probe_sent
    net.drop_types = set()
    net.tick(1)
    assert net.storage[3].snapshot().metadata.index == snap_index
    assert pr.state is ProgressState.REPLICATE


def test_stale_snapshot_is_ignored() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    for i in range(3):
        net.propose(1, f"v{i}".encode())
    st = net.storage[1]
    snap = st.create_snapshot(2, ConfState(voters=(1, 2, 3)), b"old")
    committed = net.raft(2).log.committed
    net.nodes[2].step(Message(type=MessageType.SNAP, to=2, frm=1, term=net.raft(1).term, snapshot=snap))
    assert net.raft(2).log.committed == committed
    assert net.raft(2).log.unstable.snapshot is None


def test_restart_recovers_term_vote_commit_and_entries() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    for i in range(4):
        net.propose(1, f"v{i}".encode())
    before = net.raft(2)
    term, vote, commit, last = before.term, before.vote, before.log.committed, before.log.last_index()
    net.crash(2)
    node = net.restart(2)
    r = node.raft
    assert (r.term, r.vote, r.log.committed, r.log.last_index()) == (term, vote, commit, last)
    assert r.state is StateType.FOLLOWER and r.lead == 0
    net.tick_all(2)
    assert net.data_applied(2) == [f"v{i}".encode() for i in range(4)]  # re-applied from the log


def test_restart_from_snapshot_plus_entries() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    for i in range(6):
        net.propose(1, f"v{i}".encode())
    snap_index = compact_all(net, (2,))
    net.propose(1, b"tail")
    net.crash(2)
    node = net.restart(2)
    r = node.raft
    assert r.log.first_index() == snap_index + 1
    assert r.log.applied == snap_index
    rd = node.ready()
    assert [e.data for e in rd.committed_entries] == [b"tail"]
    node.advance(rd)
    assert r.log.applied == r.log.committed


def test_unpersisted_state_is_lost_on_crash_and_nothing_was_sent() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    term = net.raft(1).term
    # Node 2 accepts entries in memory, but crashes before its driver handled the Ready.
    net.nodes[2].step(
        Message(
            type=MessageType.APP,
            to=2,
            frm=1,
            term=term,
            index=net.raft(2).log.last_index(),
            log_term=net.raft(2).log.last_term(),
            entries=(),
        )
    )
    assert net.nodes[2].has_ready()
    last_persisted = net.storage[2].last_index()
    net.crash(2)
    node = net.restart(2)
    assert node.raft.log.last_index() == last_persisted


def test_bootstrap_refuses_non_empty_storage() -> None:
    st = MemoryStorage()
    node = RawNode(Config(id=1, storage=st))
    node.bootstrap([1, 2, 3])
    rd = node.ready()
    st.append(rd.entries)
    st.set_hard_state(rd.hard_state)
    assert len(rd.committed_entries) == 3 and rd.hard_state is not None and rd.hard_state.commit == 3
    with pytest.raises(RaftInvariantError):
        RawNode(Config(id=1, storage=st)).bootstrap([1, 2, 3])
