"""The cluster's member list as Raft replicates it (etcd's RaftCluster), and the checks a
membership change must pass before it is proposed.

Adding, promoting and removing a member are Raft conf changes whose context is the member
(rpc Member); a member's attributes (name, client URLs) and new peer URLs travel as ordinary
entries (etcdlite.envelope). Every member applies them in log order here and keeps the peer
transport's table of addresses in step. The checks read the list only and raise etcd's failure.
Touches no disk and no socket: the peer table comes in as `Peers`, and `publish_attributes`
proposes through the function it is given; the Raft driver proposes, etcdlite.apply applies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from etcdlite import errors
from etcdlite.config import peer_member_id
from etcdlite.errors import Code, EtcdError, Failure
from etcdlite.raft.progress import Progress
from etcdlite.raft.types import ConfChange, ConfChangeType
from kubelite.pb.etcdserverpb import rpc_pb2
from kubelite.pb.raftpb import raft_pb2

log = logging.getLogger(__name__)

MEMBER_EXISTS = Failure(Code.FAILED_PRECONDITION, "etcdserver: member ID already exist")
PEER_URL_EXISTS = Failure(Code.FAILED_PRECONDITION, "etcdserver: Peer URLs already exists")
NOT_ENOUGH_STARTED = Failure(
    Code.FAILED_PRECONDITION, "etcdserver: re-configuration failed due to not enough started members"
)
NOT_LEARNER = Failure(Code.FAILED_PRECONDITION, "etcdserver: can only promote a learner member")
LEARNER_NOT_READY = Failure(
    Code.FAILED_PRECONDITION, "etcdserver: can only promote a learner member which is in sync with leader"
)
LEARNER_READY_FRACTION = 0.9  # etcd's readyPercent: a learner holding 90% of the leader's log


class Peers(Protocol):
    """Where a member's peer URLs take effect (etcdlite.raft.transport.PeerTransport)."""

    def set_peer(self, peer_id: int, urls: Sequence[str]) -> None: ...

    def remove_peer(self, peer_id: int) -> None: ...


class Membership:
    """The members and the ids removed for good; `initial` is --initial-cluster (id -> name, peer URLs)."""

    def __init__(
        self, initial: Mapping[int, tuple[str, tuple[str, ...]]], cluster_token: str, peers: Peers
    ) -> None:
        self.members: dict[int, rpc_pb2.Member] = {}
        self.removed: set[int] = set()
        self._initial = initial
        self._token = cluster_token
        self._peers = peers

    def bootstrap(self) -> None:
        """A fresh log starts from --initial-cluster; later starts ignore it, as etcd does: the log
        knows the members."""
        for member_id, (name, urls) in self._initial.items():
            self.members[member_id] = rpc_pb2.Member(ID=member_id, name=name, peerURLs=list(urls))

    def load(self, members: raft_pb2.MemberSet) -> None:
        """A snapshot's member list replaces this one."""
        self.members = {m.ID: m for m in members.members}
        self.removed = set(members.removed)
        self.sync_peers()

    def sync_peers(self) -> None:
        for member in self.members.values():
            self._peers.set_peer(member.ID, member.peerURLs)
        for member_id in self.removed:
            self._peers.remove_peer(member_id)

    def member_list(self) -> list[rpc_pb2.Member]:
        return [self.members[i] for i in sorted(self.members)]

    # ------------------------------------------------------------------ checks before proposing

    def adding(self, peer_urls: Sequence[str], is_learner: bool) -> ConfChange:
        """etcd's MemberAdd checks; the conf change carries the new member as its context."""
        member_id = peer_member_id(peer_urls, self._token)
        if member_id in self.members:
            raise MEMBER_EXISTS()
        if any(set(m.peerURLs) & set(peer_urls) for m in self.members.values()):
            raise PEER_URL_EXISTS()
        started = sum(1 for m in self.members.values() if m.clientURLs and not m.isLearner)
        voters = sum(1 for m in self.members.values() if not m.isLearner) + (0 if is_learner else 1)
        if started < voters // 2 + 1:
            raise NOT_ENOUGH_STARTED()  # etcd's strict reconfig check: the cluster would lose its quorum
        member = rpc_pb2.Member(ID=member_id, peerURLs=list(peer_urls), isLearner=is_learner)
        kind = ConfChangeType.ADD_LEARNER_NODE if is_learner else ConfChangeType.ADD_NODE
        return ConfChange(kind, member_id, member.SerializeToString())

    def promoting(self, member_id: int, progress: Mapping[int, Progress], leader_id: int) -> ConfChange:
        """etcd's PromoteMember checks, on the leader (`progress` is its view of every log): a
        learner becomes a voter once it holds 90% of the leader's log."""
        member = self.members.get(member_id)
        if member is None:
            raise errors.MEMBER_NOT_FOUND()
        if not member.isLearner:
            raise NOT_LEARNER()
        learner = progress.get(member_id)
        if learner is None or learner.match < LEARNER_READY_FRACTION * progress[leader_id].match:
            raise LEARNER_NOT_READY()
        voter = rpc_pb2.Member(ID=member_id, name=member.name, peerURLs=member.peerURLs)
        return ConfChange(ConfChangeType.ADD_NODE, member_id, voter.SerializeToString())

    def updating(self, member_id: int, peer_urls: Sequence[str]) -> rpc_pb2.Member:
        """etcd's UpdateMember checks; the update is replicated like any write (MEMBER_PEER_URLS)."""
        if member_id not in self.members:
            raise errors.MEMBER_NOT_FOUND()
        if any(set(m.peerURLs) & set(peer_urls) for i, m in self.members.items() if i != member_id):
            raise PEER_URL_EXISTS()
        return rpc_pb2.Member(ID=member_id, peerURLs=list(peer_urls))

    def removing(self, member_id: int) -> ConfChange:
        if member_id not in self.members:
            raise errors.MEMBER_NOT_FOUND()
        return ConfChange(ConfChangeType.REMOVE_NODE, member_id)

    # ------------------------------------------------------------------ applying committed entries

    def apply_conf_change(self, cc: ConfChange) -> None:
        if cc.type is ConfChangeType.REMOVE_NODE:
            member = self.members.pop(cc.node_id, None)
            self.removed.add(cc.node_id)
            self._peers.remove_peer(cc.node_id)
            log.info("member %016x (%s) removed from the cluster", cc.node_id, member.name if member else "?")
            return
        if cc.node_id in self.members and not cc.context:
            return  # a bootstrap entry for a member --initial-cluster already named
        member = rpc_pb2.Member(ID=cc.node_id)
        if cc.context:
            member = rpc_pb2.Member.FromString(cc.context)
        elif cc.node_id in self._initial:
            name, urls = self._initial[cc.node_id]
            member = rpc_pb2.Member(ID=cc.node_id, name=name, peerURLs=list(urls))
        old = self.members.get(cc.node_id)
        if old is not None:  # a promoted learner, say: it keeps the name and client URLs it published
            member.name = member.name or old.name
            if not member.clientURLs:
                member.clientURLs.extend(old.clientURLs)
        member.isLearner = cc.type is ConfChangeType.ADD_LEARNER_NODE
        self.members[cc.node_id] = member
        self._peers.set_peer(cc.node_id, member.peerURLs)
        if old is None:
            log.info(
                "member %016x added to the cluster (peer URLs %s)", cc.node_id, ",".join(member.peerURLs)
            )

    def apply_attributes(self, attributes: rpc_pb2.Member) -> None:
        """etcd's publish: a member's name and client URLs."""
        member = self.members.get(attributes.ID)
        if member is None:
            return  # removed meanwhile
        member.name = attributes.name
        del member.clientURLs[:]
        member.clientURLs.extend(attributes.clientURLs)

    def apply_peer_urls(self, update: rpc_pb2.Member) -> None:
        member = self.members.get(update.ID)
        if member is None:
            return  # removed meanwhile
        del member.peerURLs[:]
        member.peerURLs.extend(update.peerURLs)
        self._peers.set_peer(update.ID, member.peerURLs)
        log.info("member %016x now has peer URLs %s", update.ID, ",".join(member.peerURLs))


async def publish_attributes(
    propose: Callable[[bytes], Awaitable[object]], attributes: rpc_pb2.Member
) -> None:
    """etcd's publish: make this member's name and client URLs part of the replicated member list
    (a MEMBER_ATTRIBUTES entry, which `propose` makes), retrying until the cluster takes it."""
    while True:
        try:
            await propose(attributes.SerializeToString())
        except EtcdError as exc:
            log.debug("publishing member attributes failed (%s); retrying", exc.message)
            await asyncio.sleep(0.5)
            continue
        log.info("published name %s and client URLs %s", attributes.name, ",".join(attributes.clientURLs))
        return
