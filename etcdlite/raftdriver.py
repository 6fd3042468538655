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

The parts the loop calls on live beside it: the queue of inputs (etcdlite.raftinputs), step 3
(etcdlite.apply) with the member list and its checks (etcdlite.membership) and the alarms
(etcdlite.alarms), what callers wait on (etcdlite.waits), writing and sending snapshots
(etcdlite.raftsnapshots), and the bytes of entries and snapshots (etcdlite.envelope). The member
(etcdlite.server) calls the driver alone, which hands membership and alarm requests on to them.
Touches the member's `raft/` directory (through durable) and the peer sockets (through transport).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path

from etcdlite import errors, identity, waits
from etcdlite.alarms import Alarms
from etcdlite.apply import Applier, StateMachine
from etcdlite.config import EtcdConfig
from etcdlite.envelope import EntryKind, encode_entry
from etcdlite.errors import Code, Failure
from etcdlite.membership import Membership, publish_attributes
from etcdlite.mvcc import Applied, StoreSnapshot
from etcdlite.raft import codec
from etcdlite.raft.durable import DurableStorage
from etcdlite.raft.errors import RaftError
from etcdlite.raft.node import Config, RawNode
from etcdlite.raft.transport import PeerListenError, PeerTransport
from etcdlite.raft.types import (
    ConfChange,
    ConfState,
    MessageType,
    Ready,
    Snapshot,
    SnapshotMetadata,
    SoftState,
    StateType,
)
from etcdlite.raftinputs import Inbox, Inputs
from etcdlite.raftsnapshots import RaftSnapshots, seed_log
from etcdlite.waits import TIMEOUT, TIMEOUT_LEADER_FAIL, timeout_failure
from kubelite.pb.etcdserverpb import rpc_pb2
from kubelite.pb.raftpb import raft_pb2

# the timeouts are etcdlite.waits'; callers and tests meet them here too
__all__ = ["TIMEOUT", "TIMEOUT_LEADER_FAIL", "RaftDriver", "StateMachine", "timeout_failure"]

log = logging.getLogger(__name__)

UNHEALTHY = Failure(Code.UNAVAILABLE, "etcdserver: unhealthy cluster")
NOT_LEADER = Failure(Code.FAILED_PRECONDITION, "etcdserver: not leader")


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
        self._inbox = inbox = Inbox()
        self.transport = PeerTransport(
            self.id, self.cluster_id, self._deliver, inbox.unreachable, inbox.snapshot_status, self._removed
        )
        self.membership = Membership(config.initial_members, config.initial_cluster_token, self.transport)
        self._alarms = Alarms()
        self.lead = 0
        self.state = StateType.FOLLOWER
        self.term = 0
        self.snapshot_index = 0
        self.storage_error: str | None = None
        self.failed = asyncio.Event()
        self.peer_addresses: list[str] = []
        self.client_urls: tuple[str, ...] = config.advertise_client_urls
        self._leader_known = asyncio.Event()
        self._leader_elected_at = 0.0  # monotonic time this member last saw a new leader
        self.request_timeout = 5.0 + 2 * config.election_timeout_ms / 1000
        self._proposals = waits.Proposals(self._rng.getrandbits(40) << 20, self.request_timeout)
        self._conf_changes = waits.ConfChanges()
        self._reads = waits.ReadRounds()
        self._applied_waits = waits.AppliedWaits()
        self._applier = Applier(
            self.id, machine, self.membership, self._alarms, self._proposals, self._conf_changes, self.failed
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._snapshots: RaftSnapshots | None = None
        self._stopping = False
        self._campaigned = False
        self._peer_listen_failed = False
        self._tick_seconds = config.heartbeat_interval_ms / 1000

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Recover the log, restore the state machine from its snapshot, open the peer port."""
        raft_dir = self.raft_dir
        durable = await asyncio.to_thread(DurableStorage, raft_dir, self.config.snapshot_catchup_entries)
        self.durable = durable
        self._snapshots = RaftSnapshots(durable, self.transport, self._inbox.snapshot_saved)
        recovered = durable.recovered
        fresh = recovered.snapshot is None and not recovered.entries and recovered.hard_state.term == 0
        if fresh:
            self.membership.bootstrap()
        await self._record_identity()
        if recovered.snapshot is not None:
            self._applier.restore(recovered.snapshot)
            self.snapshot_index = recovered.snapshot.metadata.index
            recovered.snapshot = Snapshot(recovered.snapshot.metadata)  # the store holds it now
        self.term = recovered.hard_state.term
        election_ticks = max(2, self.config.election_timeout_ms // self.config.heartbeat_interval_ms)
        self.node = RawNode(
            Config(
                id=self.id,
                storage=durable,
                election_tick=election_ticks,
                heartbeat_tick=1,
                applied=self._applier.applied,
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
            while self._applier.applied < recovered.hard_state.commit and self.node.has_ready():
                await self._handle_ready(self.node.ready())
            log.info(
                "recovered the Raft log: term %d, entries %d..%d, snapshot at %d, applied %d",
                recovered.hard_state.term,
                durable.first_index(),
                durable.last_index(),
                self.snapshot_index,
                self._applier.applied,
            )
        if self._needs_peers():
            await self._listen_for_peers(at_start=True)
        self.membership.sync_peers()
        self._tasks = [
            asyncio.create_task(self._run(), name="raft-driver"),
            asyncio.create_task(self._tick(), name="raft-ticker"),
        ]
        self._inbox.wake()

    def seed(self, raft_dir: Path, store: StoreSnapshot) -> None:
        """Blocking: a Raft log whose first snapshot is the state of a pre-Raft single-member data dir."""
        peer_urls = list(self.config.initial_advertise_peer_urls)
        seed_log(raft_dir, rpc_pb2.Member(ID=self.id, name=self.config.name, peerURLs=peer_urls), store)

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
        attributes = rpc_pb2.Member(ID=self.id, name=self.config.name, clientURLs=list(self.client_urls))
        propose = functools.partial(self._propose, EntryKind.MEMBER_ATTRIBUTES)
        self._tasks.append(asyncio.create_task(publish_attributes(propose, attributes), name="raft-publish"))

    async def stop(self) -> None:
        self._stopping = True
        self._inbox.wake()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._snapshots is not None:
            await self._snapshots.stop()
        await self.transport.stop()
        self._proposals.fail_all(errors.STOPPED)
        if self.durable is not None:
            self.durable.close()

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> None:
        try:
            while True:
                await self._inbox.wait()
                if self._stopping:
                    return
                self._feed(self._inbox.take())
                assert self.node is not None
                while self.node.has_ready():
                    await self._handle_ready(self.node.ready())
                    self._maybe_snapshot()
                if not self.peer_addresses and self._needs_peers():
                    await self._listen_for_peers()
                if self.lead == 0 and self._applier.conf_state.voters == (self.id,) and not self._campaigned:
                    self._campaigned = True  # a lone voter need not wait an election timeout
                    self.node.campaign()
                    self._inbox.wake()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.critical("the Raft driver failed; this member cannot serve any more", exc_info=True)
            self.failed.set()

    def _feed(self, inputs: Inputs) -> None:
        """Hand every queued input to the core (only here, between two Readies)."""
        node, snapshots = self.node, self._snapshots
        assert node is not None and snapshots is not None
        for snap in inputs.local_snapshots:
            snapshots.compact(snap)
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
                    self._proposals.fail(request_id, errors.NO_LEADER)
        for cc, cc_future in inputs.conf_changes:
            try:
                node.propose_conf_change(cc)
            except (RaftError, ValueError) as exc:
                if not cc_future.done():
                    cc_future.set_exception(errors.NO_LEADER() if isinstance(exc, RaftError) else UNHEALTHY())
                continue
            self._conf_changes.add(cc, cc_future)
        for ctx in self._reads.due(inputs.reads, time.monotonic()):
            try:
                node.read_index(ctx)
            except RaftError as exc:
                log.debug("read index not taken yet: %s", exc)

    async def _handle_ready(self, rd: Ready) -> None:
        node, durable, snapshots = self.node, self.durable, self._snapshots
        assert node is not None and durable is not None and snapshots is not None
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
                if not snapshots.send(message):
                    self._inbox.snapshot_status(message.to, False)
            else:
                self.transport.send(codec.message_to_pb(message))
        # 3. apply
        if rd.snapshot is not None:
            self._applier.install(rd.snapshot)
            self.snapshot_index = rd.snapshot.metadata.index
        for entry in rd.committed_entries:
            self._applier.apply(entry, node)
        for read_state in rd.read_states:
            self._reads.answer(read_state.request_ctx, read_state.index)
        self._applied_waits.release(self._applier.applied)
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

    # ------------------------------------------------------------------ snapshots

    def _maybe_snapshot(self) -> None:
        snapshots, durable = self._snapshots, self.durable
        assert snapshots is not None and durable is not None
        if self._applier.applied - self.snapshot_index < self.config.snapshot_count or snapshots.writing:
            return
        index = self._applier.applied
        metadata = SnapshotMetadata(
            index=index, term=durable.term(index), conf_state=self._applier.conf_state
        )
        members = raft_pb2.MemberSet(
            members=self.member_list(), removed=sorted(self.membership.removed), alarms=self.alarm_members()
        )
        self.snapshot_index = index
        snapshots.write(metadata, members, self._machine.capture())

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
        """The first message from the cluster's leader tells a joining member its cluster id."""
        if self.cluster_id == 0 and self.transport.cluster_id:
            self.cluster_id = self.transport.cluster_id
            self._tasks.append(
                asyncio.create_task(self._record_joined_cluster(), name="raft-record-identity")
            )
        self._inbox.deliver(sender, messages, snapshot_data)

    def _removed(self) -> None:
        if not self.failed.is_set():
            log.error("a peer says this member was removed from the cluster; stopping")
            self.failed.set()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._tick_seconds)
            self._inbox.tick()
            election = self.config.election_timeout_ms / 1000
            self._proposals.expire(time.monotonic(), self._leader_elected_at, election)

    # ------------------------------------------------------------------ the API for the member

    @property
    def raft_dir(self) -> Path:
        return self.config.data_dir / "member" / "raft"

    @property
    def is_learner(self) -> bool:
        return self.id in self._applier.conf_state.learners

    @property
    def is_leader(self) -> bool:
        return self.state is StateType.LEADER

    @property
    def members(self) -> dict[int, rpc_pb2.Member]:
        return self.membership.members

    @property
    def alarms(self) -> set[tuple[int, int]]:
        """(member id, etcdserverpb.AlarmType) of every alarm raised."""
        return self._alarms.raised

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
        request_id, future = self._proposals.add(time.monotonic())
        self._inbox.propose(encode_entry(kind, self.id, request_id, payload), request_id)
        try:
            return await future
        finally:
            self._proposals.forget(request_id)

    async def read_barrier(self) -> None:
        """Linearizable reads: wait until this member applied everything committed before the call."""
        if self._stopping or self.failed.is_set():
            raise errors.STOPPED()
        await self.wait_for_leader()
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._inbox.read(future)
        try:
            async with asyncio.timeout(self.request_timeout):
                await self.wait_applied(await future)
        except TimeoutError:
            raise TIMEOUT() from None

    async def wait_applied(self, index: int) -> None:
        if self._applier.applied >= index:
            return
        await self._applied_waits.add(index)

    def member_list(self) -> list[rpc_pb2.Member]:
        return self.membership.member_list()

    async def add_member(self, peer_urls: Sequence[str], is_learner: bool) -> rpc_pb2.Member:
        cc = self.membership.adding(peer_urls, is_learner)
        await self._change_membership(cc)
        return self.members.get(cc.node_id, rpc_pb2.Member.FromString(cc.context))

    async def promote_member(self, member_id: int) -> None:
        """etcd's PromoteMember, on the leader."""
        if not self.is_leader or self.node is None:
            raise NOT_LEADER()
        await self._change_membership(self.membership.promoting(member_id, self.node.raft.prs, self.id))

    async def update_member(self, member_id: int, peer_urls: Sequence[str]) -> None:
        update = self.membership.updating(member_id, peer_urls)
        await self._propose(EntryKind.MEMBER_PEER_URLS, update.SerializeToString())

    async def remove_member(self, member_id: int) -> None:
        await self._change_membership(self.membership.removing(member_id))

    async def change_alarm(self, request: rpc_pb2.AlarmRequest) -> None:
        """Raise or clear an alarm on every member, as etcd does through Raft; answered once applied."""
        await self._propose(EntryKind.ALARM, request.SerializeToString())

    def alarm_members(self, alarm: int = rpc_pb2.NONE) -> list[rpc_pb2.AlarmMember]:
        return self._alarms.members(alarm)

    async def transfer_leadership(self, target: int) -> None:
        """etcd's MoveLeader: only the leader can hand over; answered once the target leads."""
        if target == self.lead:
            return
        if not self.is_leader:
            raise NOT_LEADER()
        self._inbox.transfer_leadership(target)
        deadline = time.monotonic() + self.request_timeout
        while self.lead != target:
            if time.monotonic() > deadline:
                raise TIMEOUT()
            await asyncio.sleep(self._tick_seconds)

    async def _change_membership(self, cc: ConfChange) -> None:
        await self.wait_for_leader()
        future: asyncio.Future[ConfState] = asyncio.get_running_loop().create_future()
        self._inbox.change_membership(cc, future)
        try:
            async with asyncio.timeout(self.request_timeout):
                await future
        except TimeoutError:
            raise TIMEOUT() from None
