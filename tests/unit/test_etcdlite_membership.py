"""The member list: the checks before a membership change, and what applying one does to the list
and to the peer table."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from etcdlite import errors
from etcdlite.config import peer_member_id
from etcdlite.errors import EtcdError, Failure
from etcdlite.membership import (
    LEARNER_NOT_READY,
    MEMBER_EXISTS,
    NOT_ENOUGH_STARTED,
    NOT_LEARNER,
    PEER_URL_EXISTS,
    Membership,
)
from etcdlite.raft.progress import Progress
from etcdlite.raft.types import ConfChange, ConfChangeType
from kubelite.pb.etcdserverpb import rpc_pb2
from kubelite.pb.raftpb import raft_pb2

TOKEN = "etcd-cluster"
A, B, C = 0xA, 0xB, 0xC
INITIAL = {A: ("a", ("http://a:2380",)), B: ("b", ("http://b:2380",)), C: ("c", ("http://c:2380",))}


class RecordingPeers:
    """A fake peer table: the addresses a transport would dial."""

    def __init__(self) -> None:
        self.urls: dict[int, tuple[str, ...]] = {}
        self.removed: set[int] = set()

    def set_peer(self, peer_id: int, urls: Sequence[str]) -> None:
        self.urls[peer_id] = tuple(urls)

    def remove_peer(self, peer_id: int) -> None:
        self.urls.pop(peer_id, None)
        self.removed.add(peer_id)


def started_cluster() -> tuple[Membership, RecordingPeers]:
    """Three voters from --initial-cluster, each with its client URL published."""
    peers = RecordingPeers()
    membership = Membership(INITIAL, TOKEN, peers)
    membership.bootstrap()
    for member_id, (name, _) in INITIAL.items():
        membership.apply_attributes(
            rpc_pb2.Member(ID=member_id, name=name, clientURLs=[f"http://{name}:2379"])
        )
    return membership, peers


def refused(failure: Failure) -> pytest.RaisesExc[EtcdError]:
    return pytest.raises(EtcdError, match=f"^{failure.message}$")


def test_adding_a_member_proposes_it_with_its_peer_urls() -> None:
    membership, _ = started_cluster()
    cc = membership.adding(["http://d:2380"], is_learner=False)
    assert cc.type is ConfChangeType.ADD_NODE
    assert cc.node_id == peer_member_id(["http://d:2380"], TOKEN)
    assert rpc_pb2.Member.FromString(cc.context) == rpc_pb2.Member(ID=cc.node_id, peerURLs=["http://d:2380"])
    assert membership.adding(["http://d:2380"], is_learner=True).type is ConfChangeType.ADD_LEARNER_NODE
    assert cc.node_id not in membership.members  # nothing changes before the entry is applied


def test_adding_refuses_a_known_member_or_peer_url() -> None:
    membership, _ = started_cluster()
    taken = peer_member_id(["http://d:2380"], TOKEN)
    membership.apply_conf_change(ConfChange(ConfChangeType.ADD_NODE, taken, b""))
    with refused(MEMBER_EXISTS):
        membership.adding(["http://d:2380"], is_learner=False)
    with refused(PEER_URL_EXISTS):
        membership.adding(["http://a:2380", "http://e:2380"], is_learner=False)


def test_adding_a_voter_refuses_to_leave_the_cluster_without_a_quorum_of_started_members() -> None:
    peers = RecordingPeers()
    membership = Membership(INITIAL, TOKEN, peers)
    membership.bootstrap()
    membership.apply_attributes(rpc_pb2.Member(ID=A, name="a", clientURLs=["http://a:2379"]))
    membership.apply_attributes(rpc_pb2.Member(ID=B, name="b", clientURLs=["http://b:2379"]))
    # 2 of 3 voters started: a fourth voter needs 3 started
    with refused(NOT_ENOUGH_STARTED):
        membership.adding(["http://d:2380"], is_learner=False)
    membership.adding(["http://d:2380"], is_learner=True)  # a learner does not count


def test_promoting_needs_a_learner_that_holds_most_of_the_leaders_log() -> None:
    membership, _ = started_cluster()
    learner = peer_member_id(["http://d:2380"], TOKEN)
    membership.apply_conf_change(membership.adding(["http://d:2380"], is_learner=True))
    progress = {A: Progress(1, 256), learner: Progress(1, 256)}
    progress[A].match = 1000
    progress[learner].match = 899
    with refused(LEARNER_NOT_READY):
        membership.promoting(learner, progress, leader_id=A)
    progress[learner].match = 900
    cc = membership.promoting(learner, progress, leader_id=A)
    assert (cc.type, cc.node_id) == (ConfChangeType.ADD_NODE, learner)
    with refused(NOT_LEARNER):
        membership.promoting(B, progress, leader_id=A)
    with refused(errors.MEMBER_NOT_FOUND):
        membership.promoting(0xD, progress, leader_id=A)


def test_updating_and_removing_need_a_member_and_peer_urls_of_its_own() -> None:
    membership, _ = started_cluster()
    assert membership.updating(A, ["http://a2:2380"]) == rpc_pb2.Member(ID=A, peerURLs=["http://a2:2380"])
    assert membership.updating(A, ["http://a:2380"]).peerURLs == ["http://a:2380"]  # its own URLs
    with refused(PEER_URL_EXISTS):
        membership.updating(A, ["http://b:2380"])
    with refused(errors.MEMBER_NOT_FOUND):
        membership.updating(0xD, ["http://d:2380"])
    assert membership.removing(C) == ConfChange(ConfChangeType.REMOVE_NODE, C)
    with refused(errors.MEMBER_NOT_FOUND):
        membership.removing(0xD)


def test_applying_an_addition_and_a_removal_keeps_the_peer_table_in_step() -> None:
    membership, peers = started_cluster()
    new = rpc_pb2.Member(ID=0xD, peerURLs=["http://d:2380"])
    membership.apply_conf_change(ConfChange(ConfChangeType.ADD_LEARNER_NODE, 0xD, new.SerializeToString()))
    assert membership.members[0xD].isLearner
    assert peers.urls[0xD] == ("http://d:2380",)
    membership.apply_conf_change(ConfChange(ConfChangeType.REMOVE_NODE, 0xD))
    assert 0xD not in membership.members and 0xD in membership.removed
    assert 0xD not in peers.urls and 0xD in peers.removed
    assert [m.ID for m in membership.member_list()] == [A, B, C]


def test_a_bootstrap_entry_for_a_member_already_named_changes_nothing() -> None:
    membership, peers = started_cluster()
    before = rpc_pb2.Member()
    before.CopyFrom(membership.members[A])
    membership.apply_conf_change(ConfChange(ConfChangeType.ADD_NODE, A, b""))
    assert membership.members[A] == before
    assert A not in peers.urls


def test_a_bootstrap_entry_names_a_member_from_the_initial_cluster() -> None:
    peers = RecordingPeers()
    membership = Membership(INITIAL, TOKEN, peers)  # a member joining: it knows nobody yet
    membership.apply_conf_change(ConfChange(ConfChangeType.ADD_NODE, B, b""))
    assert membership.members[B] == rpc_pb2.Member(ID=B, name="b", peerURLs=["http://b:2380"])
    assert peers.urls[B] == ("http://b:2380",)


def test_a_promoted_learner_keeps_its_name_and_client_urls() -> None:
    membership, _ = started_cluster()
    learner = rpc_pb2.Member(ID=0xD, peerURLs=["http://d:2380"], isLearner=True)
    membership.apply_conf_change(
        ConfChange(ConfChangeType.ADD_LEARNER_NODE, 0xD, learner.SerializeToString())
    )
    membership.apply_attributes(rpc_pb2.Member(ID=0xD, name="d", clientURLs=["http://d:2379"]))
    voter = rpc_pb2.Member(ID=0xD, peerURLs=["http://d:2380"])
    membership.apply_conf_change(ConfChange(ConfChangeType.ADD_NODE, 0xD, voter.SerializeToString()))
    member = membership.members[0xD]
    assert (member.name, list(member.clientURLs), member.isLearner) == ("d", ["http://d:2379"], False)


def test_new_peer_urls_reach_the_peer_table_and_a_removed_member_is_left_alone() -> None:
    membership, peers = started_cluster()
    membership.apply_peer_urls(rpc_pb2.Member(ID=B, peerURLs=["http://b2:2380"]))
    assert list(membership.members[B].peerURLs) == ["http://b2:2380"]
    assert peers.urls[B] == ("http://b2:2380",)
    membership.apply_peer_urls(rpc_pb2.Member(ID=0xD, peerURLs=["http://d:2380"]))
    membership.apply_attributes(rpc_pb2.Member(ID=0xD, name="d"))
    assert 0xD not in membership.members and 0xD not in peers.urls


def test_a_snapshots_member_list_replaces_the_list_and_the_peer_table() -> None:
    membership, peers = started_cluster()
    membership.load(
        raft_pb2.MemberSet(members=[rpc_pb2.Member(ID=A, peerURLs=["http://a:2380"])], removed=[B])
    )
    assert list(membership.members) == [A] and membership.removed == {B}
    assert peers.urls[A] == ("http://a:2380",) and B in peers.removed
