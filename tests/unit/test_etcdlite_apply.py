"""Step 3 of the driver contract: what applying committed entries and snapshots does, on a recording
state machine instead of the store."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from etcdlite import request as requests
from etcdlite.alarms import Alarms
from etcdlite.apply import Applier
from etcdlite.envelope import EntryKind, encode_entry, encode_snapshot_data
from etcdlite.membership import Membership
from etcdlite.mvcc import Applied, MvccStore, StoreSnapshot
from etcdlite.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    Snapshot,
    SnapshotMetadata,
)
from etcdlite.waits import ConfChanges, Proposals
from kubelite.pb.etcdserverpb import rpc_pb2
from kubelite.pb.raftpb import raft_pb2

ME, OTHER = 1, 2


class RecordingMachine:
    """A fake state machine: what was applied at which index."""

    def __init__(self) -> None:
        self.requests: list[tuple[int, requests.WriteRequest]] = []
        self.nothing: list[int] = []
        self.restored: list[StoreSnapshot] = []

    def apply_request(self, index: int, request: requests.WriteRequest) -> Applied:
        self.requests.append((index, request))
        return Applied(response=rpc_pb2.PutResponse())

    def apply_nothing(self, index: int) -> None:
        self.nothing.append(index)

    def capture(self) -> StoreSnapshot:
        return MvccStore().snapshot()

    def restore(self, snap: StoreSnapshot) -> None:
        self.restored.append(snap)

    def leadership_changed(self, is_leader: bool) -> None:
        pass


class NoPeers:
    def set_peer(self, peer_id: int, urls: Sequence[str]) -> None:
        pass

    def remove_peer(self, peer_id: int) -> None:
        pass


class FakeCore:
    """The core's side of a membership change: it records the configuration."""

    def __init__(self) -> None:
        self.voters = [ME, OTHER]

    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        if cc.type is ConfChangeType.REMOVE_NODE:
            self.voters.remove(cc.node_id)
        else:
            self.voters.append(cc.node_id)
        return ConfState(voters=tuple(self.voters))


class Member:
    """One member's applying side, with what it answers its callers."""

    def __init__(self) -> None:
        self.machine = RecordingMachine()
        self.membership = Membership({}, "token", NoPeers())
        self.alarms = Alarms()
        self.proposals = Proposals(first_id=1, timeout=5.0)
        self.conf_changes = ConfChanges()
        self.failed = asyncio.Event()
        self.core = FakeCore()
        self.applier = Applier(
            ME, self.machine, self.membership, self.alarms, self.proposals, self.conf_changes, self.failed
        )

    def apply(self, *entries: Entry) -> None:
        for entry in entries:
            self.applier.apply(entry, self.core)


def entry(index: int, kind: EntryKind, payload: bytes, proposer: int = OTHER, request_id: int = 0) -> Entry:
    return Entry(term=1, index=index, data=encode_entry(kind, proposer, request_id, payload))


def put(key: bytes) -> bytes:
    return requests.encode(rpc_pb2.PutRequest(key=key, value=b"v"))


def test_a_request_reaches_the_store_and_its_proposer_hears_the_result() -> None:
    async def scenario() -> None:
        member = Member()
        request_id, future = member.proposals.add(now=0.0)
        member.apply(
            entry(1, EntryKind.REQUEST, put(b"a"), proposer=ME, request_id=request_id),
            entry(2, EntryKind.REQUEST, put(b"b"), proposer=OTHER, request_id=request_id),
        )
        assert [(i, r.key) for i, r in member.machine.requests] == [(1, b"a"), (2, b"b")]
        assert future.result() == Applied(response=rpc_pb2.PutResponse())
        assert member.applier.applied == 2

    asyncio.run(scenario())


def test_entries_already_applied_are_skipped() -> None:
    async def scenario() -> None:
        member = Member()
        member.apply(entry(1, EntryKind.REQUEST, put(b"a")), entry(1, EntryKind.REQUEST, put(b"a")))
        assert len(member.machine.requests) == 1

    asyncio.run(scenario())


def test_entries_for_the_cluster_advance_the_store_with_nothing() -> None:
    async def scenario() -> None:
        member = Member()
        member.membership.apply_conf_change(ConfChange(ConfChangeType.ADD_NODE, OTHER))
        raise_alarm = rpc_pb2.AlarmRequest(
            action=rpc_pb2.AlarmRequest.ACTIVATE, memberID=OTHER, alarm=rpc_pb2.NOSPACE
        )
        member.apply(
            Entry(term=2, index=1),  # a new leader's empty entry
            entry(2, EntryKind.MEMBER_ATTRIBUTES, rpc_pb2.Member(ID=OTHER, name="b").SerializeToString()),
            entry(3, EntryKind.ALARM, raise_alarm.SerializeToString()),
            Entry(term=2, index=4, data=bytes([99]) + bytes(16) + b"a kind from a newer version"),
        )
        assert member.machine.nothing == [1, 2, 3, 4] and member.machine.requests == []
        assert member.membership.members[OTHER].name == "b"
        assert member.alarms.raised == {(OTHER, rpc_pb2.NOSPACE)}

    asyncio.run(scenario())


def test_a_membership_change_is_applied_by_the_core_and_the_member_list() -> None:
    async def scenario() -> None:
        member = Member()
        future = asyncio.get_running_loop().create_future()
        cc = ConfChange(ConfChangeType.ADD_NODE, 3, rpc_pb2.Member(ID=3, name="c").SerializeToString())
        member.conf_changes.add(cc, future)
        member.apply(Entry(term=1, index=1, type=EntryType.CONF_CHANGE, data=cc.encode()))
        assert member.applier.conf_state == ConfState(voters=(ME, OTHER, 3)) == future.result()
        assert member.membership.members[3].name == "c"
        assert member.machine.nothing == [1]
        assert not member.failed.is_set()

    asyncio.run(scenario())


def test_a_member_that_applies_its_own_removal_stops() -> None:
    async def scenario() -> None:
        member = Member()
        removal = ConfChange(ConfChangeType.REMOVE_NODE, ME)
        member.apply(Entry(term=1, index=1, type=EntryType.CONF_CHANGE, data=removal.encode()))
        assert member.failed.is_set()
        assert ME in member.membership.removed

    asyncio.run(scenario())


def test_a_snapshot_replaces_the_store_the_member_list_and_the_alarms() -> None:
    async def scenario() -> None:
        member = Member()
        member.alarms.raised.add((OTHER, rpc_pb2.NOSPACE))
        store = MvccStore()
        store.apply(1, rpc_pb2.PutRequest(key=b"k", value=b"v"))
        members = raft_pb2.MemberSet(members=[rpc_pb2.Member(ID=ME, name="a")], removed=[OTHER])
        metadata = SnapshotMetadata(index=40, term=3, conf_state=ConfState(voters=(ME,)))
        member.applier.install(Snapshot(metadata, encode_snapshot_data(members, store.snapshot())))
        assert member.machine.restored == [store.snapshot()]
        assert list(member.membership.members) == [ME] and member.membership.removed == {OTHER}
        assert member.alarms.raised == set()
        assert (member.applier.applied, member.applier.conf_state) == (40, ConfState(voters=(ME,)))
        member.apply(entry(40, EntryKind.REQUEST, put(b"old")))  # covered by the snapshot
        assert member.machine.requests == []

    asyncio.run(scenario())
