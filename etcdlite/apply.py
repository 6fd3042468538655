"""Step 3 of the Raft driver's contract: committed entries and snapshots, applied on every member
in log order (etcd's apply).

A request goes to the state machine (the member's MVCC store); membership changes, member
attributes and peer URLs to etcdlite.membership; alarms to etcdlite.alarms. The member that
proposed an entry answers its caller here (etcdlite.waits), with what applying it returned.
Memory only; touches no disk and no socket itself (the member list keeps the peer table in step).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from etcdlite import request as requests
from etcdlite.alarms import Alarms
from etcdlite.envelope import EntryKind, decode_entry, decode_snapshot_data
from etcdlite.membership import Membership
from etcdlite.mvcc import Applied, StoreSnapshot
from etcdlite.raft.types import ConfChange, ConfChangeType, ConfState, Entry, EntryType, Snapshot
from etcdlite.waits import ConfChanges, Proposals
from kubelite.pb.etcdserverpb import rpc_pb2

log = logging.getLogger(__name__)


class StateMachine(Protocol):
    """What the driver applies committed entries to (the member's MVCC store and friends)."""

    def apply_request(self, index: int, request: requests.WriteRequest) -> Applied: ...

    def apply_nothing(self, index: int) -> None: ...

    def capture(self) -> StoreSnapshot: ...

    def restore(self, snap: StoreSnapshot) -> None: ...

    def leadership_changed(self, is_leader: bool) -> None: ...


class Configuration(Protocol):
    """The Raft core's side of a membership change (etcdlite.raft.node.RawNode)."""

    def apply_conf_change(self, cc: ConfChange) -> ConfState: ...


class Applier:
    """`applied` is the index of the last entry applied; `conf_state` the configuration it left.
    `failed` is set when this member applies its own removal."""

    def __init__(
        self,
        member_id: int,
        machine: StateMachine,
        membership: Membership,
        alarms: Alarms,
        proposals: Proposals,
        conf_changes: ConfChanges,
        failed: asyncio.Event,
    ) -> None:
        self._id = member_id
        self.applied = 0
        self.conf_state = ConfState()
        self._machine = machine
        self._membership = membership
        self._alarms = alarms
        self._proposals = proposals
        self._conf_changes = conf_changes
        self._failed = failed

    def restore(self, snap: Snapshot) -> StoreSnapshot:
        """Everything the snapshot holds replaces what was applied: the store, the member list and
        the alarms (etcdlite.envelope)."""
        members, store = decode_snapshot_data(snap.data)
        self._machine.restore(store)
        self._membership.load(members)
        self._alarms.load(members.alarms)
        self.conf_state = snap.metadata.conf_state
        self.applied = snap.metadata.index
        return store

    def install(self, snap: Snapshot) -> None:
        """The leader's snapshot, for a member too far behind to catch up from its log."""
        store = self.restore(snap)
        log.info(
            "installed the leader's snapshot at entry %d (revision %d)", snap.metadata.index, store.revision
        )

    def apply(self, entry: Entry, configuration: Configuration) -> None:
        if entry.index <= self.applied:
            return
        if entry.type is EntryType.CONF_CHANGE:
            self._apply_conf_change(entry, configuration)
        else:
            self._apply_normal(entry)
        self.applied = entry.index

    def _apply_conf_change(self, entry: Entry, configuration: Configuration) -> None:
        cc = ConfChange.decode(entry.data)
        self.conf_state = configuration.apply_conf_change(cc)
        self._membership.apply_conf_change(cc)
        if cc.type is ConfChangeType.REMOVE_NODE and cc.node_id == self._id:
            log.error("this member was removed from the cluster; stopping")
            self._failed.set()
        self._machine.apply_nothing(entry.index)
        self._conf_changes.answer(cc, self.conf_state)

    def _apply_normal(self, entry: Entry) -> None:
        envelope = decode_entry(entry.data)
        if envelope is None:
            self._machine.apply_nothing(entry.index)  # a new leader's empty entry
            return
        kind, payload = envelope.kind, envelope.payload
        result: Applied | None = None
        if kind == EntryKind.REQUEST:
            try:
                request = requests.decode(payload)
            except requests.EntryDecodeError as exc:
                raise requests.EntryDecodeError(f"Raft log entry {entry.index}: {exc}") from None
            result = self._machine.apply_request(entry.index, request)
        else:
            if kind == EntryKind.MEMBER_ATTRIBUTES:
                self._membership.apply_attributes(rpc_pb2.Member.FromString(payload))
            elif kind == EntryKind.MEMBER_PEER_URLS:
                self._membership.apply_peer_urls(rpc_pb2.Member.FromString(payload))
            elif kind == EntryKind.ALARM:
                self._alarms.apply(rpc_pb2.AlarmRequest.FromString(payload))
            else:
                log.warning("entry %d has unknown kind %d; applying nothing", entry.index, kind)
            self._machine.apply_nothing(entry.index)
        if envelope.proposer == self._id:
            self._proposals.answer(envelope.request_id, result)
