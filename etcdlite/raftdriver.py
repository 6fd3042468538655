"""The Raft driver of a member: the one task that owns the Raft core, its durable log and its peers.

It turns client writes into proposals, peer batches into steps, wall-clock into ticks, and
committed entries into calls on the member's state machine. Driver contract, on every Ready,
in this order (etcd's raft library; see STYLE.md):
  1. persist `hard_state`, `entries` and `snapshot` durably (write + fdatasync, in a worker
     thread) and only then mirror them into the in-memory log the core reads;
  2. send `messages` to the peers (never before step 1: a vote or an append ack must not
     precede its fsync);
  3. apply the `snapshot`, then `committed_entries` to the state machine, on every member
     (CONF_CHANGE entries through `apply_conf_change`); answer proposals made here, and
     `read_states` once the applied index reaches them;
  4. `advance`.
Inputs (peer messages, ticks, proposals, read-index requests) are queued by other tasks and fed
to the core only between two Readies, so the core is touched by this task alone.

Entries carry an envelope: u8 kind | u64 proposing member | u64 request id | payload, so the
member that proposed a write answers its client when it applies that entry (a write sent to a
follower is forwarded to the leader by Raft and answered by the follower). Snapshots carry the
member list and the MVCC store. Touches the member's `raft/` directory (through durable) and
the peer sockets (through transport).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import itertools
import logging
import random
import struct
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from etcdlite import errors, identity
from etcdlite import request as requests
from etcdlite import snapshot as store_snapshots
from etcdlite.config import EtcdConfig, peer_member_id
from etcdlite.errors import Code, EtcdError, Failure
from etcdlite.mvcc import Applied, StoreSnapshot
from etcdlite.raft import codec
from etcdlite.raft.durable import DurableStorage, SnapshotFileCorruptError
from etcdlite.raft.errors import RaftError
from etcdlite.raft.node import Config, RawNode
from etcdlite.raft.transport import PeerListenError, PeerTransport, SnapshotSend
from etcdlite.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Ready,
    Snapshot,
    SnapshotMetadata,
    SoftState,
    StateType,
)
from kubelite.pb.etcdserverpb import rpc_pb2
from kubelite.pb.raftpb import raft_pb2

log = logging.getLogger(__name__)

TIMEOUT = Failure(Code.UNAVAILABLE, "etcdserver: request timed out")
TIMEOUT_LEADER_FAIL = Failure(
    Code.UNAVAILABLE, "etcdserver: request timed out, possibly due to previous leader failure"
)
MEMBER_EXISTS = Failure(Code.FAILED_PRECONDITION, "etcdserver: member ID already exist")
PEER_URL_EXISTS = Failure(Code.FAILED_PRECONDITION, "etcdserver: Peer URLs already exists")
UNHEALTHY = Failure(Code.UNAVAILABLE, "etcdserver: unhealthy cluster")
NOT_LEADER = Failure(Code.FAILED_PRECONDITION, "etcdserver: not leader")
NOT_ENOUGH_STARTED = Failure(
    Code.FAILED_PRECONDITION, "etcdserver: re-configuration failed due to not enough started members"
)
NOT_LEARNER = Failure(Code.FAILED_PRECONDITION, "etcdserver: can only promote a learner member")
LEARNER_NOT_READY = Failure(
    Code.FAILED_PRECONDITION, "etcdserver: can only promote a learner member which is in sync with leader"
)
LEARNER_READY_FRACTION = 0.9  # etcd's readyPercent: a learner holding 90% of the leader's log
READ_INDEX_RETRY = 0.5  # etcd's readIndexRetryTime
# Batching under load (RaftDriver._gather_inputs): an idle loop iteration takes about 6 us here;
# one that took over 20 us ran other tasks. Under `check perf --load=m` on 3 members this made
# Readies 3 to 4 times larger and cut the CPU per write by a fifth.
BATCH_BUSY_SECONDS = 20e-6
BATCH_MAX_YIELDS = 50
BATCH_MAX_SECONDS = 0.005  # ticks, peer messages and fsyncs wait behind it: a twentieth of a heartbeat
_ENVELOPE = struct.Struct("<BQQ")
_LENGTH = struct.Struct("<I")


class EntryKind(enum.IntEnum):
    REQUEST = 1
    MEMBER_ATTRIBUTES = 2  # a member's name and client URLs (etcd's publish)
    MEMBER_PEER_URLS = 3  # a member's new peer URLs (etcd's MemberUpdate)
    ALARM = 4  # an etcd AlarmRequest that raises or clears an alarm


class StateMachine(Protocol):
    """What the driver applies committed entries to (the member's MVCC store and friends)."""

    def apply_request(self, index: int, request: requests.WriteRequest) -> Applied: ...

    def apply_nothing(self, index: int) -> None: ...

    def capture(self) -> StoreSnapshot: ...

    def restore(self, snap: StoreSnapshot) -> None: ...

    def leadership_changed(self, is_leader: bool) -> None: ...


def timeout_failure(started: float, elected: float, election_timeout: float) -> Failure:
    """etcd's parseProposeCtxErr: a proposal made while the previous leader was failing (within two
    election timeouts before this member saw the current leader elected) was most likely lost with it."""
    if elected - 2 * election_timeout < started < elected:
        return TIMEOUT_LEADER_FAIL
    return TIMEOUT


def snapshot_data_parts(members: raft_pb2.MemberSet, store: StoreSnapshot) -> list[bytes]:
    """A Raft snapshot's data, as parts to write one after the other (etcdlite.snapshot.encode_parts)."""
    member_bytes = members.SerializeToString()
    parts = [_LENGTH.pack(len(member_bytes)), member_bytes]
    parts.extend(store_snapshots.encode_parts(store))
    return parts


def encode_snapshot_data(members: raft_pb2.MemberSet, store: StoreSnapshot) -> bytes:
    return b"".join(snapshot_data_parts(members, store))


def decode_snapshot_data(data: bytes) -> tuple[raft_pb2.MemberSet, StoreSnapshot]:
    view = memoryview(data)
    (length,) = _LENGTH.unpack_from(view)
    members = raft_pb2.MemberSet.FromString(bytes(view[_LENGTH.size : _LENGTH.size + length]))
    return members, store_snapshots.decode(view[_LENGTH.size + length :])


@dataclass
class _ReadRound:
    waiters: list[asyncio.Future[int]]
    issued: float


@dataclass
class _Inputs:
    """Everything queued for the core since the last Ready."""

    messages: list[Message] = field(default_factory=list)
    ticks: int = 0
    proposals: list[tuple[bytes, int]] = field(default_factory=list)
    conf_changes: list[tuple[ConfChange, asyncio.Future[ConfState]]] = field(default_factory=list)
    unreachable: set[int] = field(default_factory=set)
    snapshot_reports: list[tuple[int, bool]] = field(default_factory=list)
    reads: list[asyncio.Future[int]] = field(default_factory=list)
    local_snapshots: list[SnapshotMetadata] = field(default_factory=list)
    transfers: list[int] = field(default_factory=list)


class RaftDriver:
    """One member's Raft: `start()` recovers and joins, `stop()` ends every task it owns."""

    def __init__(self, config: EtcdConfig, machine: StateMachine, rng: random.Random | None = None) -> None:
        self.config = config
        self.id = config.member_id
        self._machine = machine
        self._rng = rng or random.Random()
        known = config.initial_cluster_state == "new" or config.recorded_cluster_id
        self.cluster_id = config.cluster_id if known else 0
        self._recorded = (config.recorded_member_id, config.recorded_cluster_id)  # what member/identity holds
        self.durable: DurableStorage | None = None
        self.node: RawNode | None = None
        self.transport = PeerTransport(
            self.id, self.cluster_id, self._deliver, self._unreachable, self._snapshot_status, self._removed
        )
        self.members: dict[int, rpc_pb2.Member] = {}
        self.alarms: set[tuple[int, int]] = set()  # (member id, etcdserverpb.AlarmType) raised
        self.removed: set[int] = set()
        self.conf_state = ConfState()
        self.lead = 0
        self.state = StateType.FOLLOWER
        self.term = 0
        self.applied = 0
        self.snapshot_index = 0
        self.storage_error: str | None = None
        self.failed = asyncio.Event()
        self.peer_addresses: list[str] = []
        self.client_urls: tuple[str, ...] = config.advertise_client_urls
        self._inputs = _Inputs()
        self._wake = asyncio.Event()
        self._leader_known = asyncio.Event()
        self._leader_elected_at = 0.0  # monotonic time this member last saw a new leader
        self._request_ids = itertools.count(self._rng.getrandbits(40) << 20)
        self._pending: dict[int, asyncio.Future[Applied | None]] = {}
        self._deadlines: deque[tuple[float, int]] = deque()  # (when, request id) of proposals, in order
        self._pending_conf: dict[tuple[ConfChangeType, int], list[asyncio.Future[ConfState]]] = {}
        self._read_ctx = itertools.count(1)
        self._reads: dict[bytes, _ReadRound] = {}
        self._applied_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._snapshot_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._campaigned = False
        self._peer_listen_failed = False
        hb = config.heartbeat_interval_ms
        self.request_timeout = 5.0 + 2 * config.election_timeout_ms / 1000
        self._tick_seconds = hb / 1000

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Recover the log, restore the state machine from its snapshot, open the peer port."""
        raft_dir = self.raft_dir
        durable = await asyncio.to_thread(DurableStorage, raft_dir, self.config.snapshot_catchup_entries)
        self.durable = durable
        recovered = durable.recovered
        fresh = recovered.snapshot is None and not recovered.entries and recovered.hard_state.term == 0
        if fresh:  # later starts ignore --initial-cluster, as etcd does: the log knows the members
            for member_id, (name, urls) in self.config.initial_members.items():
                self.members[member_id] = rpc_pb2.Member(ID=member_id, name=name, peerURLs=list(urls))
        await self._record_identity()
        if recovered.snapshot is not None:
            members, store = decode_snapshot_data(recovered.snapshot.data)
            self._set_members(members)
            self._machine.restore(store)
            self.applied = self.snapshot_index = recovered.snapshot.metadata.index
            self.conf_state = recovered.snapshot.metadata.conf_state
            recovered.snapshot = Snapshot(recovered.snapshot.metadata)  # the store holds it now
        self.term = recovered.hard_state.term
        election_ticks = max(2, self.config.election_timeout_ms // self.config.heartbeat_interval_ms)
        self.node = RawNode(
            Config(
                id=self.id,
                storage=durable,
                election_tick=election_ticks,
                heartbeat_tick=1,
                applied=self.applied,
                rand=self._rng,
            )
        )
        if fresh and self.config.initial_cluster_state == "new":
            peers = sorted(self.config.initial_members)
            log.info("bootstrapping a new cluster %016x of %d members", self.cluster_id, len(peers))
            self.node.bootstrap(peers)
        elif fresh:
            log.info("joining an existing cluster; waiting for the leader to contact this member")
        else:
            # apply what is known to be committed before serving, as the single-member log did
            while self.applied < recovered.hard_state.commit and self.node.has_ready():
                await self._handle_ready(self.node.ready())
            log.info(
                "recovered the Raft log: term %d, entries %d..%d, snapshot at %d, applied %d",
                recovered.hard_state.term,
                durable.first_index(),
                durable.last_index(),
                self.snapshot_index,
                self.applied,
            )
        if self._needs_peers():
            await self._listen_for_peers(at_start=True)
        self._sync_peers()
        self._tasks = [
            asyncio.create_task(self._run(), name="raft-driver"),
            asyncio.create_task(self._tick(), name="raft-ticker"),
        ]
        self._wake.set()

    def seed(self, raft_dir: Path, store: StoreSnapshot) -> None:
        """Blocking: a Raft log whose first snapshot is the state of a pre-Raft single-member data dir."""
        durable = DurableStorage(raft_dir)
        try:
            member = rpc_pb2.Member(
                ID=self.id, name=self.config.name, peerURLs=list(self.config.initial_advertise_peer_urls)
            )
            data = encode_snapshot_data(raft_pb2.MemberSet(members=[member]), store)
            index = store.applied_index
            metadata = SnapshotMetadata(index=index, term=1, conf_state=ConfState(voters=(self.id,)))
            durable.persist(HardState(term=1, vote=self.id, commit=index), [], Snapshot(metadata, data))
        finally:
            durable.close()

    def _needs_peers(self) -> bool:
        """A lone member talks to nobody; it opens the peer port once the cluster grows (MemberAdd)."""
        if self._peer_listen_failed:
            return False
        return len(self.members) > 1 or self.config.initial_cluster_state == "existing"

    async def _listen_for_peers(self, at_start: bool = False) -> None:
        listen = [(u.url, u.address) for u in self.config.listen_peer_urls]
        try:
            self.peer_addresses = await self.transport.start(listen)
        except PeerListenError:
            if at_start:
                raise  # at start: refuse to run a cluster member nobody can reach
            self._peer_listen_failed = True
            log.error("cannot open the peer port after the cluster grew", exc_info=True)
            return
        for address in self.peer_addresses:
            log.info("serving peer traffic on %s", address)

    def start_publishing(self, client_urls: Sequence[str]) -> None:
        """Once the client port is bound: announce this member's name and client URLs to the cluster."""
        self.client_urls = tuple(client_urls)
        self._tasks.append(asyncio.create_task(self._publish_attributes(), name="raft-publish"))

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._snapshot_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._snapshot_task
        await self.transport.stop()
        for future in list(self._pending.values()):
            if not future.done():
                future.set_exception(errors.STOPPED())
        if self.durable is not None:
            self.durable.close()

    # ------------------------------------------------------------------ inputs from other tasks

    async def _record_identity(self) -> None:
        """Keep this member's ID and its cluster's in the data dir once known (etcdlite.identity)."""
        known = (self.id, self.cluster_id)
        if self._recorded != known:
            await asyncio.to_thread(identity.record, self.config.data_dir, *known)
            self._recorded = known

    async def _record_joined_cluster(self) -> None:
        try:
            await self._record_identity()
        except OSError:
            log.exception(
                "cannot record the cluster this member joined; it will learn it again after a restart"
            )

    def _deliver(
        self, sender: int, messages: Sequence[raft_pb2.Message], snapshot_data: bytes | None
    ) -> None:
        """Peer messages to step; `snapshot_data` is the data of the MsgSnap among them (it travels
        beside the message, see etcdlite.raft.transport)."""
        if self.cluster_id == 0 and self.transport.cluster_id:
            self.cluster_id = self.transport.cluster_id
            self._tasks.append(
                asyncio.create_task(self._record_joined_cluster(), name="raft-record-identity")
            )
        for pb in messages:
            try:
                message = codec.message_from_pb(pb)
            except codec.CodecError as exc:
                log.warning("dropping a message from %016x: %s", sender, exc)
                continue
            if message.snapshot is not None:
                if snapshot_data is None:  # a sender that does not stream the data beside it
                    log.warning("dropping a snapshot from %016x that came without its data", sender)
                    continue
                snapshot = Snapshot(message.snapshot.metadata, snapshot_data)
                message = dataclasses.replace(message, snapshot=snapshot)
            self._inputs.messages.append(message)
        self._wake.set()

    def _removed(self) -> None:
        if not self.failed.is_set():
            log.error("a peer says this member was removed from the cluster; stopping")
            self.failed.set()

    def _unreachable(self, peer_id: int) -> None:
        self._inputs.unreachable.add(peer_id)
        self._wake.set()

    def _snapshot_status(self, peer_id: int, ok: bool) -> None:
        self._inputs.snapshot_reports.append((peer_id, ok))
        self._wake.set()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._tick_seconds)
            self._inputs.ticks += 1
            self._expire_proposals()
            self._wake.set()

    # ------------------------------------------------------------------ the API for the member

    @property
    def raft_dir(self) -> Path:
        return self.config.data_dir / "member" / "raft"

    @property
    def is_learner(self) -> bool:
        return self.id in self.conf_state.learners

    @property
    def is_leader(self) -> bool:
        return self.state is StateType.LEADER

    def last_index(self) -> int:
        return self.durable.last_index() if self.durable is not None else 0

    async def wait_for_leader(self) -> None:
        """Give an election in progress a moment; then etcd's `no leader`."""
        if self.lead:
            return
        try:
            async with asyncio.timeout(2 * self.config.election_timeout_ms / 1000):
                await self._leader_known.wait()
        except TimeoutError:
            raise errors.NO_LEADER() from None

    async def propose(self, payload: bytes) -> Applied:
        """Propose an encoded request (etcdlite.request.encode); answered when this member applies
        the entry, i.e. once it is committed on a majority."""
        applied = await self._propose(EntryKind.REQUEST, payload)
        assert applied is not None
        return applied

    async def _propose(self, kind: EntryKind, payload: bytes) -> Applied | None:
        if self._stopping or self.failed.is_set():
            raise errors.STOPPED()
        if self.storage_error is not None:
            raise errors.storage_failed(self.storage_error)
        await self.wait_for_leader()
        request_id = next(self._request_ids)
        future: asyncio.Future[Applied | None] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._deadlines.append((time.monotonic() + self.request_timeout, request_id))
        self._inputs.proposals.append((_ENVELOPE.pack(kind, self.id, request_id) + payload, request_id))
        self._wake.set()
        try:
            return await future
        finally:
            self._pending.pop(request_id, None)

    def _expire_proposals(self) -> None:
        """etcd's "request timed out" for proposals not applied within the request timeout; one
        sweep per tick instead of a timer per request (all share one timeout, so oldest first)."""
        now = time.monotonic()
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            deadline, request_id = deadlines.popleft()
            future = self._pending.pop(request_id, None)
            if future is not None and not future.done():
                started = deadline - self.request_timeout
                election = self.config.election_timeout_ms / 1000
                future.set_exception(timeout_failure(started, self._leader_elected_at, election)())

    async def read_barrier(self) -> None:
        """Linearizable reads: wait until this member applied everything committed before the call."""
        if self._stopping or self.failed.is_set():
            raise errors.STOPPED()
        await self.wait_for_leader()
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._inputs.reads.append(future)
        self._wake.set()
        try:
            async with asyncio.timeout(self.request_timeout):
                await self.wait_applied(await future)
        except TimeoutError:
            raise TIMEOUT() from None

    async def wait_applied(self, index: int) -> None:
        if self.applied >= index:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._applied_waiters.append((index, future))
        await future

    def member_list(self) -> list[rpc_pb2.Member]:
        return [self.members[i] for i in sorted(self.members)]

    async def add_member(self, peer_urls: Sequence[str], is_learner: bool) -> rpc_pb2.Member:
        member_id = peer_member_id(peer_urls, self.config.initial_cluster_token)
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
        await self._change_membership(ConfChange(kind, member_id, member.SerializeToString()))
        return self.members.get(member_id, member)

    async def promote_member(self, member_id: int) -> None:
        """etcd's PromoteMember, on the leader: a learner becomes a voter once it holds 90% of the
        leader's log."""
        if not self.is_leader or self.node is None:
            raise NOT_LEADER()
        member = self.members.get(member_id)
        if member is None:
            raise errors.MEMBER_NOT_FOUND()
        if not member.isLearner:
            raise NOT_LEARNER()
        progress = self.node.raft.prs
        learner = progress.get(member_id)
        if learner is None or learner.match < LEARNER_READY_FRACTION * progress[self.id].match:
            raise LEARNER_NOT_READY()
        voter = rpc_pb2.Member(ID=member_id, name=member.name, peerURLs=member.peerURLs)
        await self._change_membership(
            ConfChange(ConfChangeType.ADD_NODE, member_id, voter.SerializeToString())
        )

    async def update_member(self, member_id: int, peer_urls: Sequence[str]) -> None:
        """etcd's UpdateMember: new peer URLs for a member, replicated like any write."""
        if member_id not in self.members:
            raise errors.MEMBER_NOT_FOUND()
        if any(set(m.peerURLs) & set(peer_urls) for i, m in self.members.items() if i != member_id):
            raise PEER_URL_EXISTS()
        update = rpc_pb2.Member(ID=member_id, peerURLs=list(peer_urls))
        await self._propose(EntryKind.MEMBER_PEER_URLS, update.SerializeToString())

    async def change_alarm(self, request: rpc_pb2.AlarmRequest) -> None:
        """Raise or clear an alarm on every member, as etcd does through Raft; answered once applied."""
        await self._propose(EntryKind.ALARM, request.SerializeToString())

    def alarm_members(self, alarm: int = rpc_pb2.NONE) -> list[rpc_pb2.AlarmMember]:
        """The raised alarms, of one type unless `alarm` is NONE."""
        return [
            rpc_pb2.AlarmMember(memberID=member_id, alarm=kind)
            for member_id, kind in sorted(self.alarms)
            if alarm == rpc_pb2.NONE or kind == alarm
        ]

    async def remove_member(self, member_id: int) -> None:
        if member_id not in self.members:
            raise errors.MEMBER_NOT_FOUND()
        await self._change_membership(ConfChange(ConfChangeType.REMOVE_NODE, member_id))

    async def transfer_leadership(self, target: int) -> None:
        """etcd's MoveLeader: only the leader can hand over; answered once the target leads."""
        if target == self.lead:
            return
        if not self.is_leader:
            raise NOT_LEADER()
        self._inputs.transfers.append(target)
        self._wake.set()
        deadline = time.monotonic() + self.request_timeout
        while self.lead != target:
            if time.monotonic() > deadline:
                raise TIMEOUT()
            await asyncio.sleep(self._tick_seconds)

    async def _change_membership(self, cc: ConfChange) -> None:
        await self.wait_for_leader()
        future: asyncio.Future[ConfState] = asyncio.get_running_loop().create_future()
        self._inputs.conf_changes.append((cc, future))
        self._wake.set()
        try:
            async with asyncio.timeout(self.request_timeout):
                await future
        except TimeoutError:
            raise TIMEOUT() from None

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                await self._gather_inputs()
                self._wake.clear()
                if self._stopping:
                    return
                self._feed()
                assert self.node is not None
                while self.node.has_ready():
                    await self._handle_ready(self.node.ready())
                    self._maybe_snapshot()
                if not self.peer_addresses and self._needs_peers():
                    await self._listen_for_peers()
                if self.lead == 0 and self.conf_state.voters == (self.id,) and not self._campaigned:
                    self._campaigned = True  # a lone voter need not wait an election timeout
                    self.node.campaign()
                    self._wake.set()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.critical("the Raft driver failed; this member cannot serve any more", exc_info=True)
            self.failed.set()

    async def _gather_inputs(self) -> None:
        """Under load, let the request handlers run a little before taking a Ready, so that one
        Ready carries many proposals: a Ready's costs (a fsync, a batch to each peer, a wake-up
        of every follower) are mostly per Ready, not per entry. Yield to the loop while it has
        other work (an iteration that took longer than an idle one), at most BATCH_MAX_YIELDS
        times and for at most BATCH_MAX_SECONDS; an idle member yields once, which costs its
        clients a few microseconds."""
        clock = time.perf_counter
        deadline = clock() + BATCH_MAX_SECONDS
        for _ in range(BATCH_MAX_YIELDS):
            started = clock()
            await asyncio.sleep(0)
            finished = clock()
            if finished - started < BATCH_BUSY_SECONDS or finished >= deadline:
                return

    def _feed(self) -> None:
        """Hand every queued input to the core (only here, between two Readies)."""
        node = self.node
        assert node is not None and self.durable is not None
        inputs, self._inputs = self._inputs, _Inputs()
        for snap in inputs.local_snapshots:
            self._cache_local_snapshot(snap)
        for message in inputs.messages:
            try:
                node.step(message)
            except (RaftError, ValueError) as exc:
                log.warning("step of %s from %016x failed: %s", message.type.name, message.frm, exc)
        for peer_id in inputs.unreachable:
            node.report_unreachable(peer_id)
        for peer_id, ok in inputs.snapshot_reports:
            node.report_snapshot(peer_id, ok)
        for _ in range(inputs.ticks):
            node.tick()
        for target in inputs.transfers:
            node.transfer_leader(target)
        if inputs.proposals:
            try:
                node.propose(*(data for data, _ in inputs.proposals))
            except RaftError:
                for _, request_id in inputs.proposals:
                    future = self._pending.pop(request_id, None)
                    if future is not None and not future.done():
                        future.set_exception(errors.NO_LEADER())
        for cc, cc_future in inputs.conf_changes:
            try:
                node.propose_conf_change(cc)
            except (RaftError, ValueError) as exc:
                if not cc_future.done():
                    cc_future.set_exception(errors.NO_LEADER() if isinstance(exc, RaftError) else UNHEALTHY())
                continue
            self._pending_conf.setdefault((cc.type, cc.node_id), []).append(cc_future)
        now = time.monotonic()
        waiting = [f for f in inputs.reads if not f.done()]
        if waiting:
            ctx = next(self._read_ctx).to_bytes(8, "big")
            self._reads[ctx] = _ReadRound(waiting, now)
            self._issue_read(ctx)
        for ctx, round_ in list(self._reads.items()):
            if all(f.done() for f in round_.waiters):
                del self._reads[ctx]
            elif now - round_.issued > READ_INDEX_RETRY:
                round_.issued = now
                self._issue_read(ctx)

    def _issue_read(self, ctx: bytes) -> None:
        assert self.node is not None
        try:
            self.node.read_index(ctx)
        except RaftError as exc:
            log.debug("read index not taken yet: %s", exc)

    async def _handle_ready(self, rd: Ready) -> None:
        node, durable = self.node, self.durable
        assert node is not None and durable is not None
        if rd.hard_state is not None:
            self.term = rd.hard_state.term
        if rd.soft_state is not None:
            self._set_soft_state(rd.soft_state)
        # 1. persist, fsync
        if rd.hard_state is not None or rd.entries or rd.snapshot is not None:
            await self._persist(rd)
            durable.cache(rd.hard_state, rd.entries, rd.snapshot)
        # 2. send
        for message in rd.messages:
            if message.type is MessageType.SNAP:
                self._send_snapshot(message)
            else:
                self.transport.send(codec.message_to_pb(message))
        # 3. apply
        if rd.snapshot is not None:
            self._install_snapshot(rd.snapshot)
        for entry in rd.committed_entries:
            self._apply_entry(entry)
        for read_state in rd.read_states:
            round_ = self._reads.pop(read_state.request_ctx, None)
            if round_ is not None:
                for future in round_.waiters:
                    if not future.done():
                        future.set_result(read_state.index)
        self._release_applied_waiters()
        # 4. advance
        node.advance(rd)

    async def _persist(self, rd: Ready) -> None:
        """Nothing below may happen before this succeeds: on a full disk, retry until there is room
        (new proposals are refused meanwhile); a log that cannot be rolled back stops the member."""
        assert self.durable is not None
        pause = 0.05
        while True:
            try:
                await asyncio.to_thread(self.durable.persist, rd.hard_state, rd.entries, rd.snapshot)
            except OSError as exc:
                if self.durable.broken:
                    raise
                if self.storage_error is None:
                    log.error("persisting the Raft log failed (%s); retrying until it succeeds", exc)
                self.storage_error = str(exc)
                await asyncio.sleep(pause)
                pause = min(1.0, pause * 2)
                continue
            if self.storage_error is not None:
                log.info("the Raft log is writable again")
                self.storage_error = None
            return

    def _set_soft_state(self, soft: SoftState) -> None:
        was_leader = self.is_leader
        if soft.lead != self.lead:
            if soft.lead:
                self._leader_elected_at = time.monotonic()
                log.info("member %016x sees leader %016x at term %d", self.id, soft.lead, self.term)
            else:
                log.info("member %016x lost its leader", self.id)
        self.lead = soft.lead
        self.state = soft.state
        if soft.lead:
            self._leader_known.set()
        else:
            self._leader_known.clear()
        if self.is_leader != was_leader:
            self._machine.leadership_changed(self.is_leader)

    def _release_applied_waiters(self) -> None:
        if not self._applied_waiters:
            return
        still = []
        for index, future in self._applied_waiters:
            if index <= self.applied:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((index, future))
        self._applied_waiters = still

    # ------------------------------------------------------------------ applying

    def _apply_entry(self, entry: Entry) -> None:
        if entry.index <= self.applied:
            return
        if entry.type is EntryType.CONF_CHANGE:
            cc = ConfChange.decode(entry.data)
            assert self.node is not None
            self.conf_state = self.node.apply_conf_change(cc)
            self._apply_member_change(cc)
            self._machine.apply_nothing(entry.index)
            for future in self._pending_conf.pop((cc.type, cc.node_id), []):
                if not future.done():
                    future.set_result(self.conf_state)
        elif len(entry.data) < _ENVELOPE.size:
            self._machine.apply_nothing(entry.index)  # a new leader's empty entry
        else:
            kind, proposer, request_id = _ENVELOPE.unpack_from(entry.data)
            payload = entry.data[_ENVELOPE.size :]
            result: Applied | None = None
            if kind == EntryKind.REQUEST:
                try:
                    request = requests.decode(payload)
                except requests.EntryDecodeError as exc:
                    raise requests.EntryDecodeError(f"Raft log entry {entry.index}: {exc}") from None
                result = self._machine.apply_request(entry.index, request)
            else:
                if kind == EntryKind.MEMBER_ATTRIBUTES:
                    self._apply_attributes(rpc_pb2.Member.FromString(payload))
                elif kind == EntryKind.MEMBER_PEER_URLS:
                    self._apply_peer_urls(rpc_pb2.Member.FromString(payload))
                elif kind == EntryKind.ALARM:
                    self._apply_alarm(rpc_pb2.AlarmRequest.FromString(payload))
                else:
                    log.warning("entry %d has unknown kind %d; applying nothing", entry.index, kind)
                self._machine.apply_nothing(entry.index)
            if proposer == self.id:
                future = self._pending.pop(request_id, None)
                if future is not None and not future.done():
                    future.set_result(result)
        self.applied = entry.index

    def _apply_member_change(self, cc: ConfChange) -> None:
        if cc.type is ConfChangeType.REMOVE_NODE:
            member = self.members.pop(cc.node_id, None)
            self.removed.add(cc.node_id)
            self.transport.remove_peer(cc.node_id)
            log.info("member %016x (%s) removed from the cluster", cc.node_id, member.name if member else "?")
            if cc.node_id == self.id:
                log.error("this member was removed from the cluster; stopping")
                self.failed.set()
            return
        if cc.node_id in self.members and not cc.context:
            return  # a bootstrap entry for a member --initial-cluster already named
        member = rpc_pb2.Member(ID=cc.node_id)
        if cc.context:
            member = rpc_pb2.Member.FromString(cc.context)
        elif cc.node_id in self.config.initial_members:
            name, urls = self.config.initial_members[cc.node_id]
            member = rpc_pb2.Member(ID=cc.node_id, name=name, peerURLs=list(urls))
        old = self.members.get(cc.node_id)
        if old is not None:
            member.name = member.name or old.name
            if not member.clientURLs:
                member.clientURLs.extend(old.clientURLs)
        member.isLearner = cc.type is ConfChangeType.ADD_LEARNER_NODE
        self.members[cc.node_id] = member
        self.transport.set_peer(cc.node_id, member.peerURLs)
        if old is None:
            log.info(
                "member %016x added to the cluster (peer URLs %s)", cc.node_id, ",".join(member.peerURLs)
            )

    def _apply_attributes(self, attributes: rpc_pb2.Member) -> None:
        member = self.members.get(attributes.ID)
        if member is None:
            return  # removed meanwhile
        member.name = attributes.name
        del member.clientURLs[:]
        member.clientURLs.extend(attributes.clientURLs)

    def _apply_peer_urls(self, update: rpc_pb2.Member) -> None:
        member = self.members.get(update.ID)
        if member is None:
            return  # removed meanwhile
        del member.peerURLs[:]
        member.peerURLs.extend(update.peerURLs)
        self.transport.set_peer(update.ID, member.peerURLs)
        log.info("member %016x now has peer URLs %s", update.ID, ",".join(member.peerURLs))

    def _apply_alarm(self, request: rpc_pb2.AlarmRequest) -> None:
        alarm = (request.memberID, request.alarm)
        name = rpc_pb2.AlarmType.Name(request.alarm)
        if request.action == rpc_pb2.AlarmRequest.ACTIVATE and request.alarm != rpc_pb2.NONE:
            if alarm not in self.alarms:
                log.warning("alarm %s raised by member %016x", name, request.memberID)
            self.alarms.add(alarm)
        elif request.action == rpc_pb2.AlarmRequest.DEACTIVATE and alarm in self.alarms:
            log.info("alarm %s of member %016x cleared", name, request.memberID)
            self.alarms.discard(alarm)

    def _install_snapshot(self, snap: Snapshot) -> None:
        members, store = decode_snapshot_data(snap.data)
        self._machine.restore(store)
        self._set_members(members)
        self.conf_state = snap.metadata.conf_state
        self.applied = self.snapshot_index = snap.metadata.index
        log.info(
            "installed the leader's snapshot at entry %d (revision %d)", snap.metadata.index, store.revision
        )

    def _set_members(self, members: raft_pb2.MemberSet) -> None:
        self.members = {m.ID: m for m in members.members}
        self.removed = set(members.removed)
        self.alarms = {(a.memberID, a.alarm) for a in members.alarms}
        self._sync_peers()

    def _sync_peers(self) -> None:
        for member in self.members.values():
            self.transport.set_peer(member.ID, member.peerURLs)
        for member_id in self.removed:
            self.transport.remove_peer(member_id)

    # ------------------------------------------------------------------ snapshots

    def _maybe_snapshot(self) -> None:
        if self.applied - self.snapshot_index < self.config.snapshot_count:
            return
        if self._snapshot_task is not None and not self._snapshot_task.done():
            return
        assert self.durable is not None
        index = self.applied
        metadata = SnapshotMetadata(index=index, term=self.durable.term(index), conf_state=self.conf_state)
        members = raft_pb2.MemberSet(
            members=self.member_list(), removed=sorted(self.removed), alarms=self.alarm_members()
        )
        self.snapshot_index = index
        self._snapshot_task = asyncio.create_task(
            self._write_snapshot(metadata, members, self._machine.capture())
        )

    async def _write_snapshot(
        self, metadata: SnapshotMetadata, members: raft_pb2.MemberSet, store: StoreSnapshot
    ) -> None:
        assert self.durable is not None
        started = time.monotonic()
        try:
            parts = await asyncio.to_thread(snapshot_data_parts, members, store)
            path = await asyncio.to_thread(self.durable.save_local_snapshot, metadata, parts)
            del parts
        except Exception:
            log.exception("writing the snapshot at entry %d failed; keeping the log", metadata.index)
            return
        log.info(
            "saved snapshot %s (entry %d, revision %d) in %.2fs",
            path,
            metadata.index,
            store.revision,
            time.monotonic() - started,
        )
        self._inputs.local_snapshots.append(metadata)
        self._wake.set()

    def _cache_local_snapshot(self, meta: SnapshotMetadata) -> None:
        assert self.durable is not None
        try:
            self.durable.create_snapshot(meta.index, meta.conf_state)
        except RaftError as exc:
            log.info("not caching snapshot %d: %s", meta.index, exc)
            return
        self.durable.compact_cache(meta.index)

    def _send_snapshot(self, message: Message) -> None:
        """The core's MsgSnap names the newest snapshot; the transport streams its data (the whole
        store) from the snapshot file, so that no member keeps a copy of it in memory."""
        assert self.durable is not None
        try:
            source = self.durable.snapshot_file()
        except (OSError, SnapshotFileCorruptError) as exc:
            log.error("cannot send a snapshot to member %016x: %s", message.to, exc)
            self._snapshot_status(message.to, False)
            return
        pb = codec.message_to_pb(dataclasses.replace(message, snapshot=Snapshot(source.metadata)))
        self.transport.send_snapshot(SnapshotSend(pb, source.data))

    # ------------------------------------------------------------------ member attributes

    async def _publish_attributes(self) -> None:
        """etcd's publish: make this member's name and client URLs part of the replicated member list."""
        attributes = rpc_pb2.Member(ID=self.id, name=self.config.name, clientURLs=list(self.client_urls))
        while True:
            try:
                await self._propose(EntryKind.MEMBER_ATTRIBUTES, attributes.SerializeToString())
            except EtcdError as exc:
                log.debug("publishing member attributes failed (%s); retrying", exc.message)
                await asyncio.sleep(0.5)
                continue
            log.info("published name %s and client URLs %s", self.config.name, ",".join(self.client_urls))
            return
