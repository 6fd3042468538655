"""Membership changes through CONF_CHANGE entries (one at a time) and leader transfer (TIMEOUT_NOW)."""

from __future__ import annotations

import pytest

from etcdlite.raft.errors import ProposalDroppedError
from etcdlite.raft.storage import MemoryStorage
from etcdlite.raft.types import ConfChange, ConfChangeType, ConfState, EntryType, MessageType, StateType
from tests.raftsim import Network

ADD, REMOVE, LEARNER = ConfChangeType.ADD_NODE, ConfChangeType.REMOVE_NODE, ConfChangeType.ADD_LEARNER_NODE


def test_conf_change_encoding_round_trips_and_rejects_garbage() -> None:
    cc = ConfChange(ADD, 0xDEADBEEF12345678, b"peer-urls")
    assert ConfChange.decode(cc.encode()) == cc
    with pytest.raises(ValueError):
        ConfChange.decode(b"\x00")


def test_add_voter_replicates_to_it_and_grows_the_quorum() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.propose(1, b"before")
    net.nodes[1].propose_conf_change(ConfChange(ADD, 4))
    net.stabilize()
    assert net.conf_states[1] == ConfState(voters=(1, 2, 3, 4))
    net.add(4, MemoryStorage())  # a new member starts empty, without bootstrap
    net.tick(1)
    assert net.data_applied(4) == [b"before"]
    assert net.conf_states[4] == ConfState(voters=(1, 2, 3, 4))
    # Quorum is now 3 of 4: the leader plus one follower cannot commit.
    net.cut = {frozenset((1, 3)), frozenset((1, 4))}
    net.propose(1, b"needs-three")
    assert b"needs-three" not in net.data_applied(1)
    net.heal()
    net.tick(1)
    assert b"needs-three" in net.data_applied(4)


def test_learner_receives_entries_but_neither_votes_nor_counts() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.nodes[1].propose_conf_change(ConfChange(LEARNER, 4))
    net.stabilize()
    net.add(4, MemoryStorage())
    net.propose(1, b"x")
    net.tick(1)
    assert net.data_applied(4) == [b"x"]
    assert net.raft(1).prs[4].is_learner
    net.tick(4, 50)
    assert net.raft(4).state is StateType.FOLLOWER  # never campaigns
    net.cut = {frozenset((1, 2)), frozenset((1, 3))}
    net.propose(1, b"learner-is-not-quorum")
    assert b"learner-is-not-quorum" not in net.data_applied(1)
    net.heal()
    # Promote it.
    net.tick(1)
    net.nodes[1].propose_conf_change(ConfChange(ADD, 4))
    net.stabilize()
    assert net.conf_states[4] == ConfState(voters=(1, 2, 3, 4))
    assert not net.raft(1).prs[4].is_learner


def test_demoting_a_voter_to_learner_is_refused_before_proposing() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    with pytest.raises(ValueError):
        net.nodes[1].propose_conf_change(ConfChange(LEARNER, 2))


def test_remove_follower_shrinks_the_quorum() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.nodes[1].propose_conf_change(ConfChange(REMOVE, 3))
    net.stabilize()
    assert net.conf_states[1] == ConfState(voters=(1, 2))
    assert 3 not in net.raft(1).prs
    net.crash(3)
    net.propose(1, b"two-of-two")
    assert b"two-of-two" in net.data_applied(2)


def test_removed_leader_steps_down_and_the_rest_elect_a_new_one() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.nodes[1].propose_conf_change(ConfChange(REMOVE, 1))
    net.stabilize()
    assert net.raft(1).state is StateType.FOLLOWER
    assert net.conf_states[2] == ConfState(voters=(2, 3))
    net.crash(1)
    net.tick_all(3 * net.raft(2).election_timeout)
    lead = net.leader()
    assert lead in (2, 3)
    net.propose(lead, b"after-removal")
    assert b"after-removal" in net.data_applied(2) and b"after-removal" in net.data_applied(3)


def test_only_one_conf_change_is_in_flight() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.drop_types = {MessageType.APP}  # nothing commits: the first change stays pending
    net.nodes[1].propose_conf_change(ConfChange(ADD, 4))
    net.nodes[1].propose_conf_change(ConfChange(ADD, 5))
    net.stabilize()
    r = net.raft(1)
    tail = r.log.entries(r.log.last_index() - 1)
    assert [e.type for e in tail] == [EntryType.CONF_CHANGE, EntryType.NORMAL]
    assert tail[1].data == b""  # the second became an empty entry


# -- leader transfer ----------------------------------------------------------------------
def test_transfer_to_up_to_date_follower() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    term = net.raft(1).term
    net.nodes[1].transfer_leader(2)
    net.stabilize()
    assert net.leader() == 2 and net.raft(2).term == term + 1
    assert net.raft(1).state is StateType.FOLLOWER and net.raft(1).lead == 2


def test_transfer_to_lagging_follower_catches_it_up_first() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.isolate(3)
    for i in range(5):
        net.propose(1, f"v{i}".encode())
    net.heal()
    net.nodes[1].transfer_leader(3)
    net.stabilize()
    assert net.leader() == 3
    sent = [m.type for m in net.sent if m.to == 3 and m.type in (MessageType.APP, MessageType.TIMEOUT_NOW)]
    assert sent.index(MessageType.APP) < sent.index(MessageType.TIMEOUT_NOW)


def test_follower_forwards_transfer_request_to_the_leader() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.nodes[3].transfer_leader(2)
    net.stabilize()
    assert net.leader() == 2


def test_proposals_are_dropped_during_transfer_and_resume_after_abort() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.drop_types = {MessageType.TIMEOUT_NOW}
    net.nodes[1].transfer_leader(2)
    net.stabilize()
    with pytest.raises(ProposalDroppedError):
        net.nodes[1].propose(b"x")
    net.tick(1, net.raft(1).election_timeout)  # the transfer times out
    assert net.raft(1).state is StateType.LEADER
    net.propose(1, b"y")
    assert net.data_applied(2) == [b"y"]
