"""Read index: linearizable reads confirmed by a heartbeat round, never through the log."""

from __future__ import annotations

from etcdlite.raft.types import EntryType, MessageType, ReadState
from tests.raftsim import Network


def test_leader_read_index_after_heartbeat_quorum() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.propose(1, b"x")
    last_before = net.raft(1).log.last_index()
    net.sent.clear()
    net.nodes[1].read_index(b"ctx")
    net.stabilize()
    assert net.read_states[1] == [ReadState(index=net.raft(1).log.committed, request_ctx=b"ctx")]
    assert any(m.type is MessageType.HEARTBEAT and m.context == b"ctx" for m in net.sent)
    assert net.raft(1).log.last_index() == last_before  # nothing went through the log


def test_leader_without_quorum_never_answers() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.isolate(1)
    net.nodes[1].read_index(b"ctx")
    net.tick(1, 5)
    assert net.read_states[1] == []


def test_read_waits_for_a_commit_in_the_leaders_term() -> None:
    net = Network([1, 2, 3])
    net.drop_types = {MessageType.APP_RESP}
    net.campaign(1)
    r = net.raft(1)
    assert r.log.term_or_zero(r.log.committed) != r.term  # its empty entry is not committed yet
    net.nodes[1].read_index(b"early")
    net.stabilize()
    assert net.read_states[1] == []
    net.drop_types = set()
    net.tick(1)
    assert [rs.request_ctx for rs in net.read_states[1]] == [b"early"]
    assert net.read_states[1][0].index == r.log.committed == 4  # the leader's empty entry


def test_follower_read_index_is_forwarded_to_the_leader() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.propose(1, b"x")
    net.nodes[3].read_index(b"f")
    net.stabilize()
    assert net.read_states[3] == [ReadState(index=net.raft(1).log.committed, request_ctx=b"f")]
    assert net.read_states[1] == []
    assert any(m.type is MessageType.READ_INDEX_RESP and m.to == 3 for m in net.sent)


def test_single_voter_answers_at_once() -> None:
    net = Network([1])
    net.campaign(1)
    net.nodes[1].read_index(b"solo")
    net.stabilize()
    assert [rs.request_ctx for rs in net.read_states[1]] == [b"solo"]


def test_read_index_is_at_least_every_previously_applied_write() -> None:
    net = Network([1, 2, 3, 4, 5])
    net.campaign(1)
    for i in range(5):
        net.propose(1 + i % 5, f"w{i}".encode())
        applied = max(e.index for e in net.applied[1] if e.type is EntryType.NORMAL)
        net.nodes[2].read_index(f"r{i}".encode())
        net.stabilize()
        assert net.read_states[2][-1].index >= applied
