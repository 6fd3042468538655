"""The member: etcd's request pipeline around the MVCC state machine (etcd's `EtcdServer`).

Every member runs Raft (etcdlite.raftdriver), a lone member too (it elects itself at once).
Writes are checked, proposed, and answered when this member applies the committed entry, so an
acknowledged write is durable on a majority. Every member applies every committed entry here,
through the driver's `StateMachine` methods: the store applies it in log order and its changes
are published to watchers. Linearizable reads wait for a Raft read index; serializable reads
are served from the applied state at once. Only the leader runs the lease clock (expiry is
proposed as LeaseRevoke, so attached keys go the same way everywhere) and auto-compaction;
keep-alives and TimeToLive on a follower are forwarded to the leader's client URL. A data dir
written by the single-member log of earlier versions is moved into a Raft log on first start.

Touches the data directory (a lock file; the Raft log through the driver); sockets only through
the Raft driver and the lease forwarding.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from etcdlite import errors, snapshot
from etcdlite import request as requests
from etcdlite.compactor import Compactor
from etcdlite.config import EtcdConfig
from etcdlite.errors import EtcdError
from etcdlite.lessor import Lessor
from etcdlite.mvcc import Applied, MvccStore, StoreSnapshot
from etcdlite.raftdriver import RaftDriver
from etcdlite.wal import WriteAheadLog, fsync_dir
from etcdlite.watch import Send, WatchHub, WatchStream
from kubelite.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

VERSION = "3.4.23"  # the etcd API version etcdlite speaks; clients print and parse it
# etcd's progressReportInterval for watchers created with progress_notify.
PROGRESS_NOTIFY_INTERVAL = 600.0


class DataDirInUseError(Exception):
    """Another process holds this data directory."""


class EtcdServer:
    """One member. `start()` recovers from disk and starts the background tasks; `stop()` ends them."""

    def __init__(
        self,
        config: EtcdConfig,
        clock: Callable[[], float] = time.monotonic,
        tick_seconds: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        """`clock` drives lease expiry, `rng` picks lease ids; both are injectable for tests."""
        self.config = config
        self.member_id = config.member_id
        # what MemberList shows; port 0 is resolved once the listener is bound
        self.client_urls: tuple[str, ...] = config.advertise_client_urls
        self._clock = clock
        self._tick_seconds = tick_seconds
        self.store = MvccStore(config.min_lease_ttl)
        self.lessor = Lessor()
        self.hub = WatchHub(self.header)
        self._lock_fd = -1
        self.failed = asyncio.Event()  # set when the member can no longer serve (the driver failed)
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._random = rng or random.Random()
        self.raft = RaftDriver(config, self, rng)
        self._leader_channels: dict[str, grpc.aio.Channel] = {}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Lock the data dir, recover the Raft log and apply what it committed, start the loops."""
        config = self.config
        (config.data_dir / "member").mkdir(parents=True, exist_ok=True)
        self._lock_data_dir(config.data_dir / "member" / "lock")
        if not self.raft.raft_dir.exists() and (config.wal_dir.exists() or config.snap_dir.exists()):
            await asyncio.to_thread(self._migrate_to_raft)
        await self.raft.start()
        loops = [self._run_lease_clock(), self._run_progress_notify(), self._watch_raft_failure()]
        if self.config.compaction is not None:
            loops.append(self._run_auto_compaction())
        self._tasks = [asyncio.create_task(loop) for loop in loops]

    def _migrate_to_raft(self) -> None:
        """A data dir written by the single-member log before Raft: replay it, and make its state
        the first snapshot of a new Raft log (built aside, then renamed into place)."""
        config = self.config
        loaded = snapshot.load_latest(config.snap_dir)
        store = MvccStore(config.min_lease_ttl)
        if loaded is not None:
            store = MvccStore.restore(loaded[1], config.min_lease_ttl)
        wal, entries = WriteAheadLog.open(config.wal_dir, store.applied_index)
        wal.close()
        for entry in entries:
            store.apply(entry.index, requests.decode(entry.data))
        staging = self.raft.raft_dir.with_name("raft.migrating")
        if staging.exists():
            shutil.rmtree(staging)
        if store.applied_index > 0:
            self.raft.seed(staging, store.snapshot())
            staging.rename(self.raft.raft_dir)
        for old in (config.wal_dir, config.snap_dir):
            if old.exists():
                old.rename(old.with_name(old.name + ".pre-raft"))
        fsync_dir(config.data_dir / "member")
        log.info(
            "moved the single-member log (entry %d, revision %d) into a Raft log; old files: *.pre-raft",
            store.applied_index,
            store.revision,
        )

    async def _watch_raft_failure(self) -> None:
        await self.raft.failed.wait()
        self.failed.set()

    def serving(self, client_urls: tuple[str, ...]) -> None:
        """The client port is bound: advertise it (a Raft member publishes it to the cluster)."""
        self.client_urls = client_urls
        self.raft.start_publishing(client_urls)

    def _lock_data_dir(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirInUseError(f"data dir {self.config.data_dir} is in use by another process") from None
        self._lock_fd = fd

    async def stop(self) -> None:
        """Stop every task, the Raft driver (refusing what is still waiting) and close the log."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.raft.stop()
        for channel in self._leader_channels.values():
            await channel.close()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    # ------------------------------------------------------------------ the log driver

    async def _propose(self, request: requests.WriteRequest) -> Message:
        if self._stopping or self.failed.is_set():
            raise errors.STOPPED()
        data = requests.encode(request)
        if len(data) - 1 > self.config.max_request_bytes:
            raise errors.REQUEST_TOO_LARGE()
        applied = await self.raft.propose(data)
        if applied.error is not None:
            raise applied.error
        assert applied.response is not None
        return applied.response

    # ------------------------------------------------------------------ the Raft state machine

    def apply_request(self, index: int, request: requests.WriteRequest) -> Applied:
        applied = self.store.apply(index, request)
        if applied.changes:
            self.hub.publish(applied.changes, self.store.compact_revision)
        if applied.error is None:
            if isinstance(request, rpc_pb2.LeaseGrantRequest):
                assert isinstance(applied.response, rpc_pb2.LeaseGrantResponse)
                self.lessor.grant(request.ID, applied.response.TTL, self._clock())
            elif isinstance(request, rpc_pb2.LeaseRevokeRequest):
                self.lessor.revoke(request.ID)
        return applied

    def apply_nothing(self, index: int) -> None:
        self.store.apply(index, None)

    def capture(self) -> StoreSnapshot:
        return self.store.snapshot()

    def restore(self, snap: StoreSnapshot) -> None:
        """Replace the store by a snapshot in place (watch streams keep their reference), and
        bring watchers up to it: what they missed from its history, or a compacted cancel."""
        old_revision = self.store.revision
        restored = MvccStore.restore(snap, self.config.min_lease_ttl)
        self.store.__dict__.update(restored.__dict__)
        self.hub.state_replaced(old_revision, self.store)
        self.lessor.promote(self.store.leases, self._clock())

    def leadership_changed(self, is_leader: bool) -> None:
        """A new leader starts every lease clock afresh (etcd's lessor Promote)."""
        if is_leader:
            self.lessor.promote(self.store.leases, self._clock())

    def _is_follower(self) -> bool:
        return not self.raft.is_leader

    # ------------------------------------------------------------------ background loops

    async def _run_lease_clock(self) -> None:
        while True:
            await asyncio.sleep(self._tick_seconds)
            if self._is_follower():
                continue  # only the leader expires leases
            expired = self.lessor.expired(self._clock())
            if not expired:
                continue
            log.info("leases expired: %s", ", ".join(f"{i:016x}" for i in expired))
            results = await asyncio.gather(
                *(self._propose(rpc_pb2.LeaseRevokeRequest(ID=i)) for i in expired), return_exceptions=True
            )
            for lease_id, result in zip(expired, results, strict=True):
                if isinstance(result, BaseException) and not _is_lease_not_found(result):
                    log.warning("revoking expired lease %016x failed: %s", lease_id, result)
                    self.lessor.revoke_failed(lease_id)

    async def _run_auto_compaction(self) -> None:
        assert self.config.compaction is not None
        compactor = Compactor(self.config.compaction, self._clock())
        while True:
            await asyncio.sleep(min(compactor.interval, 60.0))
            target = compactor.tick(self._clock(), self.store.revision)
            if self._is_follower():
                continue
            if target is None or target <= self.store.compact_revision:
                continue
            try:
                await self._propose(rpc_pb2.CompactionRequest(revision=target))
                log.info("auto-compacted to revision %d", target)
            except EtcdError as exc:
                log.warning("auto-compaction to revision %d failed: %s", target, exc.message)

    async def _run_progress_notify(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_NOTIFY_INTERVAL)
            self.hub.notify_progress(self.store.revision)

    # ------------------------------------------------------------------ the API, for the gRPC layer

    @property
    def cluster_id(self) -> int:
        """A member that joined an existing cluster learns the id from its first peer."""
        return self.raft.cluster_id or self.config.cluster_id

    @property
    def raft_term(self) -> int:
        return self.raft.term

    def header(self, revision: int | None = None) -> rpc_pb2.ResponseHeader:
        return rpc_pb2.ResponseHeader(
            cluster_id=self.cluster_id,
            member_id=self.member_id,
            revision=self.store.revision if revision is None else revision,
            raft_term=self.raft_term,
        )

    def _stamp(self, response: M) -> M:
        """Fill in who answered; the store only knows revisions."""
        header = response.header  # type: ignore[attr-defined]
        header.cluster_id = self.cluster_id
        header.member_id = self.member_id
        header.raft_term = self.raft_term
        return response

    async def _write(self, request: requests.WriteRequest, response_type: type[M]) -> M:
        response = await self._propose(request)
        assert isinstance(response, response_type)
        return self._stamp(response)

    async def _linearizable(self) -> None:
        """Raft's read index: wait until everything committed before this read is applied here."""
        await self.raft.read_barrier()

    async def range(self, request: rpc_pb2.RangeRequest) -> rpc_pb2.RangeResponse:
        if not request.serializable:
            await self._linearizable()
        return self._stamp(self.store.range(request))

    async def put(self, request: rpc_pb2.PutRequest) -> rpc_pb2.PutResponse:
        requests.check_put(request)
        await self._check_quota(request.ByteSize())
        return await self._write(request, rpc_pb2.PutResponse)

    async def delete_range(self, request: rpc_pb2.DeleteRangeRequest) -> rpc_pb2.DeleteRangeResponse:
        requests.check_delete_range(request)
        return await self._write(request, rpc_pb2.DeleteRangeResponse)

    async def txn(self, request: rpc_pb2.TxnRequest) -> rpc_pb2.TxnResponse:
        requests.check_txn(request)
        if requests.is_read_only_txn(request):
            await self._linearizable()
            return self._stamp(self.store.read_txn(request))
        await self._check_quota(request.ByteSize())
        return await self._write(request, rpc_pb2.TxnResponse)

    async def compact(self, request: rpc_pb2.CompactionRequest) -> rpc_pb2.CompactionResponse:
        return await self._write(request, rpc_pb2.CompactionResponse)

    async def _check_quota(self, size: int) -> None:
        """etcd's quota: a write that would pass it raises the NOSPACE alarm on every member (through
        Raft, so it survives restarts), which then refuses every write that adds data (deletes and
        compaction still work) until it is disarmed."""
        if any(kind == rpc_pb2.NOSPACE for _, kind in self.raft.alarms):
            raise errors.NO_SPACE()
        if self.store.db_size + size > self.config.quota_backend_bytes:
            log.warning(
                "store size %d bytes would exceed --quota-backend-bytes %d: raising the NOSPACE alarm",
                self.store.db_size + size,
                self.config.quota_backend_bytes,
            )
            raise_alarm = rpc_pb2.AlarmRequest(
                action=rpc_pb2.AlarmRequest.ACTIVATE, memberID=self.member_id, alarm=rpc_pb2.NOSPACE
            )
            await self.raft.change_alarm(raise_alarm)
            raise errors.NO_SPACE()

    async def alarm(self, request: rpc_pb2.AlarmRequest) -> rpc_pb2.AlarmResponse:
        """etcd's Alarm: GET lists the raised alarms (of one type unless NONE); ACTIVATE and
        DEACTIVATE go through Raft and answer with the alarm they changed."""
        if request.action == rpc_pb2.AlarmRequest.GET:
            return rpc_pb2.AlarmResponse(header=self.header(), alarms=self.raft.alarm_members(request.alarm))
        was_raised = (request.memberID, request.alarm) in self.raft.alarms
        await self.raft.change_alarm(request)
        response = rpc_pb2.AlarmResponse(header=self.header())
        if request.action == rpc_pb2.AlarmRequest.ACTIVATE or was_raised:
            response.alarms.add(memberID=request.memberID, alarm=request.alarm)
        return response

    async def lease_grant(self, request: rpc_pb2.LeaseGrantRequest) -> rpc_pb2.LeaseGrantResponse:
        requests.check_lease_grant(request)
        grant = rpc_pb2.LeaseGrantRequest(TTL=request.TTL, ID=request.ID)
        if grant.ID == 0:
            while grant.ID == 0 or grant.ID in self.store.leases:
                grant.ID = self._random.getrandbits(63)
        return await self._write(grant, rpc_pb2.LeaseGrantResponse)

    async def lease_revoke(self, request: rpc_pb2.LeaseRevokeRequest) -> rpc_pb2.LeaseRevokeResponse:
        if request.ID not in self.store.leases:
            raise errors.LEASE_NOT_FOUND()
        return await self._write(request, rpc_pb2.LeaseRevokeResponse)

    async def lease_keep_alive(self, lease_id: int) -> rpc_pb2.LeaseKeepAliveResponse:
        if self._is_follower():
            return await self._forward_keep_alive(lease_id)
        ttl = self.lessor.renew(lease_id, self._clock()) if lease_id in self.store.leases else 0
        return rpc_pb2.LeaseKeepAliveResponse(header=self.header(), ID=lease_id, TTL=ttl)

    def _leader_channel(self) -> grpc.aio.Channel:
        """A client connection to the leader's first client URL (etcd forwards lease calls and
        learner promotions to the leader too)."""
        leader = self.raft.members.get(self.raft.lead)
        if leader is None or not leader.clientURLs:
            raise errors.NO_LEADER()
        target = leader.clientURLs[0].removeprefix("http://").rstrip("/")
        channel = self._leader_channels.get(target)
        if channel is None:
            channel = grpc.aio.insecure_channel(target)
            self._leader_channels[target] = channel
        return channel

    def _leader_stub(self) -> rpc_pb2_grpc.LeaseStub:
        return rpc_pb2_grpc.LeaseStub(self._leader_channel())

    async def _forward_keep_alive(self, lease_id: int) -> rpc_pb2.LeaseKeepAliveResponse:
        await self.raft.wait_for_leader()
        call = self._leader_stub().LeaseKeepAlive(timeout=self.raft.request_timeout)
        try:
            await call.write(rpc_pb2.LeaseKeepAliveRequest(ID=lease_id))
            response = await call.read()
        except grpc.aio.AioRpcError as exc:
            log.info("forwarding a keep-alive to the leader failed: %s", exc.details())
            raise errors.NO_LEADER() from None
        finally:
            call.cancel()
        if not isinstance(response, rpc_pb2.LeaseKeepAliveResponse):
            raise errors.NO_LEADER()
        return response

    async def lease_time_to_live(
        self, request: rpc_pb2.LeaseTimeToLiveRequest
    ) -> rpc_pb2.LeaseTimeToLiveResponse:
        if self._is_follower():
            await self.raft.wait_for_leader()
            try:
                return await self._leader_stub().LeaseTimeToLive(request, timeout=self.raft.request_timeout)
            except grpc.aio.AioRpcError as exc:
                log.info("forwarding a lease TimeToLive to the leader failed: %s", exc.details())
                raise errors.NO_LEADER() from None
        response = rpc_pb2.LeaseTimeToLiveResponse(header=self.header(), ID=request.ID)
        granted = self.store.leases.get(request.ID)
        remaining = self.lessor.remaining(request.ID, self._clock())
        if granted is None or remaining is None:
            response.TTL = -1
            return response
        response.TTL = remaining
        response.grantedTTL = granted
        if request.keys:
            response.keys.extend(self.store.lease_keys(request.ID))
        return response

    def lease_leases(self) -> rpc_pb2.LeaseLeasesResponse:
        return rpc_pb2.LeaseLeasesResponse(
            header=self.header(), leases=[rpc_pb2.LeaseStatus(ID=i) for i in sorted(self.store.leases)]
        )

    def open_watch_stream(self, send: Send) -> WatchStream:
        return WatchStream(self.hub, self.store, self.header, send)

    def status(self) -> rpc_pb2.StatusResponse:
        alarms = self.raft.alarm_members()
        errors_list = [f"memberID:{a.memberID} alarm:{rpc_pb2.AlarmType.Name(a.alarm)} " for a in alarms]
        return rpc_pb2.StatusResponse(
            header=self.header(),
            version=VERSION,
            dbSize=self.store.db_size,
            dbSizeInUse=self.store.db_size,
            leader=self.raft.lead,
            raftIndex=self.raft.last_index(),
            raftTerm=self.raft_term,
            raftAppliedIndex=self.store.applied_index,
            errors=errors_list,
        )

    def hash_kv(self, revision: int) -> rpc_pb2.HashKVResponse:
        crc = self.store.hash_kv(revision)
        return rpc_pb2.HashKVResponse(
            header=self.header(), hash=crc, compact_revision=self.store.compact_revision
        )

    def member_list(self) -> list[rpc_pb2.Member]:
        members = []
        for member in self.raft.member_list():
            copy = rpc_pb2.Member()
            copy.CopyFrom(member)
            if self.member_id == member.ID and not copy.clientURLs:
                copy.clientURLs.extend(self.client_urls)
            members.append(copy)
        return members

    async def member_add(self, request: rpc_pb2.MemberAddRequest) -> rpc_pb2.MemberAddResponse:
        if not request.peerURLs:
            raise errors.NO_PEER_URLS()
        member = await self.raft.add_member(list(request.peerURLs), request.isLearner)
        return rpc_pb2.MemberAddResponse(header=self.header(), member=member, members=self.member_list())

    async def move_leader(self, request: rpc_pb2.MoveLeaderRequest) -> rpc_pb2.MoveLeaderResponse:
        if request.targetID not in self.raft.members:
            raise errors.MEMBER_NOT_FOUND()
        await self.raft.transfer_leadership(request.targetID)
        return rpc_pb2.MoveLeaderResponse(header=self.header())

    async def member_promote(self, request: rpc_pb2.MemberPromoteRequest) -> rpc_pb2.MemberPromoteResponse:
        """Only the leader knows how far a learner got: a follower forwards (as etcd does)."""
        await self.raft.wait_for_leader()
        if not self.raft.is_leader:
            return await self._forward_promote(request)
        await self.raft.promote_member(request.ID)
        return rpc_pb2.MemberPromoteResponse(header=self.header(), members=self.member_list())

    async def _forward_promote(self, request: rpc_pb2.MemberPromoteRequest) -> rpc_pb2.MemberPromoteResponse:
        stub = rpc_pb2_grpc.ClusterStub(self._leader_channel())
        try:
            return await stub.MemberPromote(request, timeout=self.raft.request_timeout)
        except grpc.aio.AioRpcError as exc:
            log.info("forwarding a member promotion to the leader failed: %s", exc.details())
            code = errors.Code.__members__.get(exc.code().name, errors.Code.UNAVAILABLE)
            raise EtcdError(code, exc.details() or "") from None

    async def member_update(self, request: rpc_pb2.MemberUpdateRequest) -> rpc_pb2.MemberUpdateResponse:
        if not request.peerURLs:
            raise errors.NO_PEER_URLS()
        await self.raft.update_member(request.ID, list(request.peerURLs))
        return rpc_pb2.MemberUpdateResponse(header=self.header(), members=self.member_list())

    async def member_remove(self, request: rpc_pb2.MemberRemoveRequest) -> rpc_pb2.MemberRemoveResponse:
        await self.raft.remove_member(request.ID)
        return rpc_pb2.MemberRemoveResponse(header=self.header(), members=self.member_list())


def _is_lease_not_found(exc: BaseException) -> bool:
    return isinstance(exc, EtcdError) and exc.message == errors.LEASE_NOT_FOUND.message
