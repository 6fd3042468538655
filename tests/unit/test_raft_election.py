"""Leader election: roles, randomized timeouts, vote rules, pre-vote and check-quorum."""

from __future__ import annotations

import random

import pytest

from etcdlite.raft.core import Config, Raft
from etcdlite.raft.errors import IllegalTransitionError, ProposalDroppedError
from etcdlite.raft.node import RawNode
from etcdlite.raft.storage import MemoryStorage
from etcdlite.raft.types import (
    ConfState,
    Entry,
    HardState,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
    StateType,
)
from tests.raftsim import Network

F, PC, C, L = StateType.FOLLOWER, StateType.PRE_CANDIDATE, StateType.CANDIDATE, StateType.LEADER


def states(net: Network) -> dict[int, StateType]:
    return {i: n.raft.state for i, n in net.nodes.items()}


def member_storage(
    voters: tuple[int, ...], entries: list[Entry] | None = None, term: int = 0
) -> MemoryStorage:
    st = MemoryStorage()
    st.apply_snapshot(Snapshot(SnapshotMetadata(index=1, term=1, conf_state=ConfState(voters=voters))))
    if entries:
        st.append(entries)
    st.set_hard_state(HardState(term=term, commit=1))
    return st


def test_single_node_campaign_wins_at_once() -> None:
    net = Network([1])
    net.campaign(1)
    assert net.raft(1).state is L
    assert net.raft(1).term == 1 or net.raft(1).term == 2


def test_three_nodes_elect_exactly_the_campaigner() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    assert states(net) == {1: L, 2: F, 3: F}
    assert {n.raft.lead for n in net.nodes.values()} == {1}
    assert len({n.raft.term for n in net.nodes.values()}) == 1


def test_ticks_alone_elect_one_leader() -> None:
    net = Network([1, 2, 3, 4, 5], seed=7)
    net.tick_all(40)
    assert list(states(net).values()).count(L) == 1


def test_randomized_election_timeout_spans_one_to_two_timeouts() -> None:
    r = Raft(Config(id=1, storage=member_storage((1, 2, 3)), election_tick=10, rand=random.Random(3)))
    seen = set()
    for _ in range(500):
        r.reset_randomized_election_timeout()
        seen.add(r.randomized_election_timeout)
    assert seen == set(range(10, 20))


def test_illegal_role_transitions_raise() -> None:
    r = Raft(Config(id=1, storage=member_storage((1, 2, 3))))
    with pytest.raises(IllegalTransitionError):
        r.become_leader()  # follower -> leader
    r.become_candidate()
    r.become_leader()
    with pytest.raises(IllegalTransitionError):
        r.become_candidate()
    with pytest.raises(IllegalTransitionError):
        r.become_pre_candidate()


def test_role_change_swaps_step_and_tick_functions() -> None:
    r = Raft(Config(id=1, storage=member_storage((1, 2, 3))))
    assert r._step == r._step_follower and r._tick == r._tick_election
    r.become_candidate()
    assert r._step == r._step_candidate
    r.become_leader()
    assert r._step == r._step_leader and r._tick == r._tick_heartbeat


def test_vote_is_in_the_same_ready_as_the_vote_response() -> None:
    """The driver persists hard_state before sending: a granted vote must travel with its vote."""
    node = RawNode(Config(id=2, storage=member_storage((1, 2, 3))))
    node.step(Message(type=MessageType.VOTE, to=2, frm=1, term=5, index=1, log_term=1))
    rd = node.ready()
    assert [m.type for m in rd.messages] == [MessageType.VOTE_RESP]
    assert not rd.messages[0].reject
    assert rd.hard_state == HardState(term=5, vote=1, commit=1)
    assert rd.must_sync


def test_one_vote_per_term_even_across_restart() -> None:
    st = member_storage((1, 2, 3))
    node = RawNode(Config(id=3, storage=st))
    node.step(Message(type=MessageType.VOTE, to=3, frm=1, term=2, index=1, log_term=1))
    rd = node.ready()
    st.set_hard_state(rd.hard_state)
    node.advance(rd)
    again = RawNode(Config(id=3, storage=st))  # restart from what was persisted
    again.step(Message(type=MessageType.VOTE, to=3, frm=2, term=2, index=1, log_term=1))
    resp = again.ready().messages
    assert resp[0].type is MessageType.VOTE_RESP and resp[0].reject


def test_candidate_with_stale_log_is_refused() -> None:
    ents = [Entry(term=2, index=2)]
    node = RawNode(Config(id=2, storage=member_storage((1, 2, 3), ents, term=2)))
    node.step(Message(type=MessageType.VOTE, to=2, frm=1, term=3, index=5, log_term=1))
    assert node.ready().messages[0].reject
    node.step(Message(type=MessageType.VOTE, to=2, frm=3, term=3, index=2, log_term=2))
    assert not node.ready().messages[0].reject


def test_isolated_leader_steps_down_with_check_quorum() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.isolate(1)
    net.tick(1, 2 * net.raft(1).election_timeout)  # the first check still counts pre-partition acks
    assert net.raft(1).state is F


def test_leader_without_check_quorum_stays_leader_when_isolated() -> None:
    net = Network([1, 2, 3], check_quorum=False)
    net.campaign(1)
    net.isolate(1)
    net.tick(1, 50)
    assert net.raft(1).state is L


def disrupt(pre_vote: bool) -> tuple[int, int, int | None]:
    """Partition node 3 away long enough to time out many times, then let it back in."""
    net = Network([1, 2, 3], pre_vote=pre_vote, check_quorum=pre_vote)
    net.campaign(1)
    term_before = net.raft(1).term
    net.isolate(3)
    for _ in range(100):
        net.tick(3)
    net.heal()
    net.tick_all(3 * net.raft(1).election_timeout)
    return term_before, net.raft(1).term, net.leader()


def test_pre_vote_rejoining_member_does_not_depose_healthy_leader() -> None:
    before, after, leader = disrupt(pre_vote=True)
    assert (after, leader) == (before, 1)


def test_without_pre_vote_rejoining_member_disrupts() -> None:
    """The counterfactual: the same scenario without pre-vote bumps the term (so the test above can fail)."""
    before, after, _ = disrupt(pre_vote=False)
    assert after > before


def test_pre_candidate_does_not_bump_term_when_it_loses() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    term = net.raft(3).term
    net.isolate(3)
    net.tick(3, 30)
    assert net.raft(3).term == term
    assert net.raft(3).state is PC


def test_follower_in_lease_ignores_vote_requests() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    term = net.raft(2).term
    net.nodes[2].step(Message(type=MessageType.VOTE, to=2, frm=3, term=term + 5, index=100, log_term=100))
    assert net.raft(2).term == term and net.raft(2).lead == 1


def test_proposal_without_leader_is_dropped() -> None:
    net = Network([1, 2, 3])
    with pytest.raises(ProposalDroppedError):
        net.nodes[1].propose(b"x")


def test_stepping_local_messages_from_the_network_is_refused() -> None:
    net = Network([1, 2, 3])
    with pytest.raises(ValueError):
        net.nodes[1].step(Message(type=MessageType.HUP, to=1, frm=2))


def test_stale_leader_learns_new_term_and_steps_down() -> None:
    net = Network([1, 2, 3], check_quorum=False, pre_vote=True)
    net.campaign(1)
    net.isolate(1)
    net.campaign(2)
    assert net.raft(2).state is L
    net.heal()
    net.tick(1)  # its heartbeat is answered with the higher term (pre-vote makes peers answer)
    assert net.raft(1).state is F and net.raft(1).lead in (0, 2)
    assert C not in states(net).values()


@pytest.mark.parametrize(
    "bad",
    [{"id": 0}, {"heartbeat_tick": 0}, {"election_tick": 1, "heartbeat_tick": 1}, {"max_inflight_msgs": 0}],
)
def test_bad_config_is_refused(bad: dict) -> None:
    kw = {"id": 1, "storage": MemoryStorage(), **bad}
    with pytest.raises(ValueError):
        Raft(Config(**kw))
