"""The member: etcd's request pipeline around the MVCC state machine (etcd's `EtcdServer`).

Writes are proposed to the log and answered only once durable and applied. One driver task
owns the write-ahead log and runs, batch after batch, in this fixed order:
  1. take every proposal queued since the last batch (concurrent writes share one fsync),
  2. append them to the WAL and fdatasync (in a worker thread; the event loop keeps serving),
  3. apply them to the store in log order, publish their changes to watchers,
  4. answer each proposer,
  5. every `--snapshot-count` entries: start a new WAL segment, capture the store in memory,
     and write the snapshot in the background; once it is durable, drop the older segments.
Reads are served from the applied state (on one member that is linearizable: everything
acknowledged has been applied). With Raft, steps 1-2 become "propose and wait for commit" and
the rest stays. Leases expire through the log: a clock loop proposes LeaseRevoke.

Touches the data directory (through wal and snapshot) and nothing else; no sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from google.protobuf.message import Message

from etcdlite import errors, snapshot
from etcdlite import request as requests
from etcdlite.compactor import Compactor
from etcdlite.config import EtcdConfig
from etcdlite.errors import EtcdError
from etcdlite.lessor import Lessor
from etcdlite.mvcc import Applied, MvccStore
from etcdlite.wal import LogEntry, WriteAheadLog
from etcdlite.watch import Send, WatchHub, WatchStream
from kubelite.pb.etcdserverpb import rpc_pb2

log = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

VERSION = "3.4.23"  # the etcd API version etcdlite speaks; clients print and parse it
RAFT_TERM = 1  # a single member never holds an election
# etcd's progressReportInterval for watchers created with progress_notify.
PROGRESS_NOTIFY_INTERVAL = 600.0


class DataDirInUseError(Exception):
    """Another process holds this data directory."""


@dataclass
class _Proposal:
    request: requests.WriteRequest
    data: bytes
    future: asyncio.Future[Applied]


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
        self.cluster_id = config.cluster_id
        self._clock = clock
        self._tick_seconds = tick_seconds
        self.store = MvccStore(config.min_lease_ttl)
        self.lessor = Lessor()
        self.hub = WatchHub(self.header)
        self._wal: WriteAheadLog | None = None
        self._lock_fd = -1
        self._last_index = 0
        self._proposals: list[_Proposal] = []
        self._wakeup = asyncio.Event()
        self.failed = asyncio.Event()  # set when the member can no longer serve (see _run_log)
        self._stopping = False
        self._log_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._next_snapshot_at = 0
        self._snapshot_task: asyncio.Task[None] | None = None
        self._random = rng or random.Random()
        self._nospace = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await asyncio.to_thread(self._recover)
        self.lessor.promote(self.store.leases, self._clock())
        self._next_snapshot_at = self._last_index + self.config.snapshot_count
        self._log_task = asyncio.create_task(self._run_log())
        loops = [self._run_lease_clock(), self._run_progress_notify()]
        if self.config.compaction is not None:
            loops.append(self._run_auto_compaction())
        self._tasks = [asyncio.create_task(loop) for loop in loops]

    def _recover(self) -> None:
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        (config.data_dir / "member").mkdir(exist_ok=True)
        self._lock_data_dir(config.data_dir / "member" / "lock")
        loaded = snapshot.load_latest(config.snap_dir)
        if loaded is not None:
            path, snap = loaded
            self.store = MvccStore.restore(snap, config.min_lease_ttl)
            log.info("loaded snapshot %s (entry %d, revision %d)", path, snap.applied_index, snap.revision)
        self._wal, entries = WriteAheadLog.open(config.wal_dir, self.store.applied_index)
        for entry in entries:
            try:
                request = requests.decode(entry.data)
            except requests.EntryDecodeError as exc:
                raise requests.EntryDecodeError(f"write-ahead log entry {entry.index}: {exc}") from None
            self.store.apply(entry.index, request)
        self._last_index = self.store.applied_index
        log.info(
            "recovered %d write-ahead log entries: applied entry %d, revision %d, %d keys",
            len(entries),
            self._last_index,
            self.store.revision,
            len(self.store.live_keys()),
        )

    def _lock_data_dir(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirInUseError(f"data dir {self.config.data_dir} is in use by another process") from None
        self._lock_fd = fd

    async def stop(self) -> None:
        """Finish the batch in flight, refuse queued proposals, stop every task, close the log."""
        self._stopping = True
        self._wakeup.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._log_task is not None:
            await self._log_task  # it drains the queue and returns once _stopping is seen
            self._log_task = None
        if self._snapshot_task is not None:
            await self._snapshot_task
            self._snapshot_task = None
        if self._wal is not None:
            self._wal.close()
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
        future: asyncio.Future[Applied] = asyncio.get_running_loop().create_future()
        self._proposals.append(_Proposal(request, data, future))
        self._wakeup.set()
        applied = await future
        if applied.error is not None:
            raise applied.error
        assert applied.response is not None
        return applied.response

    async def _run_log(self) -> None:
        """The driver; if it ever fails (a bug), fail every waiting proposal and flag the member."""
        try:
            await self._drive_log()
        except Exception:
            log.critical("the log driver failed; this member cannot take writes any more", exc_info=True)
            self.failed.set()
            for proposal in self._proposals:
                if not proposal.future.done():
                    proposal.future.set_exception(errors.STOPPED())
            self._proposals = []

    async def _drive_log(self) -> None:
        assert self._wal is not None
        wal = self._wal
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._proposals:
                batch, self._proposals = self._proposals, []
                first = self._last_index + 1
                entries = [LogEntry(first + i, RAFT_TERM, p.data) for i, p in enumerate(batch)]
                try:
                    await asyncio.to_thread(wal.append, entries)
                except OSError as exc:
                    log.error("write-ahead log append of %d entries failed: %s", len(entries), exc)
                    for proposal in batch:
                        if not proposal.future.done():
                            proposal.future.set_exception(errors.storage_failed(str(exc)))
                    continue
                self._last_index = entries[-1].index
                for entry, proposal in zip(entries, batch, strict=True):
                    applied = self._apply(entry.index, proposal.request)
                    if not proposal.future.done():
                        proposal.future.set_result(applied)
                self._maybe_snapshot()
            if self._stopping:
                return

    def _apply(self, index: int, request: requests.WriteRequest) -> Applied:
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

    def _maybe_snapshot(self) -> None:
        if self._last_index < self._next_snapshot_at:
            return
        if self._snapshot_task is not None and not self._snapshot_task.done():
            return
        assert self._wal is not None
        self._next_snapshot_at = self._last_index + self.config.snapshot_count
        self._wal.rotate(self._last_index + 1)
        self._snapshot_task = asyncio.create_task(self._write_snapshot(self.store.snapshot()))

    async def _write_snapshot(self, snap: snapshot.StoreSnapshot) -> None:
        started = time.monotonic()
        try:
            path = await asyncio.to_thread(snapshot.save, self.config.snap_dir, snap)
        except Exception:
            log.exception("writing the snapshot at entry %d failed; keeping the log", snap.applied_index)
            return
        assert self._wal is not None
        self._wal.drop_before(snap.applied_index + 1)
        log.info(
            "saved snapshot %s (entry %d, revision %d) in %.2fs",
            path,
            snap.applied_index,
            snap.revision,
            time.monotonic() - started,
        )

    # ------------------------------------------------------------------ background loops

    async def _run_lease_clock(self) -> None:
        while True:
            await asyncio.sleep(self._tick_seconds)
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

    def header(self, revision: int | None = None) -> rpc_pb2.ResponseHeader:
        return rpc_pb2.ResponseHeader(
            cluster_id=self.cluster_id,
            member_id=self.member_id,
            revision=self.store.revision if revision is None else revision,
            raft_term=RAFT_TERM,
        )

    def _stamp(self, response: M) -> M:
        """Fill in who answered; the store only knows revisions."""
        header = response.header  # type: ignore[attr-defined]
        header.cluster_id = self.cluster_id
        header.member_id = self.member_id
        header.raft_term = RAFT_TERM
        return response

    async def _write(self, request: requests.WriteRequest, response_type: type[M]) -> M:
        response = await self._propose(request)
        assert isinstance(response, response_type)
        return self._stamp(response)

    async def range(self, request: rpc_pb2.RangeRequest) -> rpc_pb2.RangeResponse:
        return self._stamp(self.store.range(request))

    async def put(self, request: rpc_pb2.PutRequest) -> rpc_pb2.PutResponse:
        requests.check_put(request)
        self._check_quota(request.ByteSize())
        return await self._write(request, rpc_pb2.PutResponse)

    async def delete_range(self, request: rpc_pb2.DeleteRangeRequest) -> rpc_pb2.DeleteRangeResponse:
        requests.check_delete_range(request)
        return await self._write(request, rpc_pb2.DeleteRangeResponse)

    async def txn(self, request: rpc_pb2.TxnRequest) -> rpc_pb2.TxnResponse:
        requests.check_txn(request)
        if requests.is_read_only_txn(request):
            return self._stamp(self.store.read_txn(request))
        self._check_quota(request.ByteSize())
        return await self._write(request, rpc_pb2.TxnResponse)

    async def compact(self, request: rpc_pb2.CompactionRequest) -> rpc_pb2.CompactionResponse:
        return await self._write(request, rpc_pb2.CompactionResponse)

    def _check_quota(self, size: int) -> None:
        """etcd's quota: a write that would pass it raises the NOSPACE alarm, which then refuses
        every write that adds data (deletes and compaction still work) until it is disarmed."""
        if not self._nospace and self.store.db_size + size > self.config.quota_backend_bytes:
            log.warning(
                "store size %d bytes would exceed --quota-backend-bytes %d: raising the NOSPACE alarm",
                self.store.db_size + size,
                self.config.quota_backend_bytes,
            )
            self._nospace = True
        if self._nospace:
            raise errors.NO_SPACE()

    def alarm(self, request: rpc_pb2.AlarmRequest) -> rpc_pb2.AlarmResponse:
        Action = rpc_pb2.AlarmRequest.AlarmAction
        if request.alarm in (rpc_pb2.NOSPACE, rpc_pb2.NONE):
            if request.action == Action.ACTIVATE and request.alarm == rpc_pb2.NOSPACE:
                self._nospace = True
            elif request.action == Action.DEACTIVATE:
                if self._nospace:
                    log.info("NOSPACE alarm disarmed")
                self._nospace = False
        response = rpc_pb2.AlarmResponse(header=self.header())
        if self._nospace:
            response.alarms.add(memberID=self.member_id, alarm=rpc_pb2.NOSPACE)
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

    def lease_keep_alive(self, lease_id: int) -> rpc_pb2.LeaseKeepAliveResponse:
        ttl = self.lessor.renew(lease_id, self._clock()) if lease_id in self.store.leases else 0
        return rpc_pb2.LeaseKeepAliveResponse(header=self.header(), ID=lease_id, TTL=ttl)

    def lease_time_to_live(self, request: rpc_pb2.LeaseTimeToLiveRequest) -> rpc_pb2.LeaseTimeToLiveResponse:
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
        errors_list = [f"memberID:{self.member_id} alarm:NOSPACE "] if self._nospace else []
        return rpc_pb2.StatusResponse(
            header=self.header(),
            version=VERSION,
            dbSize=self.store.db_size,
            dbSizeInUse=self.store.db_size,
            leader=self.member_id,
            raftIndex=self._last_index,
            raftTerm=RAFT_TERM,
            raftAppliedIndex=self.store.applied_index,
            errors=errors_list,
        )

    def hash_kv(self, revision: int) -> rpc_pb2.HashKVResponse:
        crc = self.store.hash_kv(revision)
        return rpc_pb2.HashKVResponse(
            header=self.header(), hash=crc, compact_revision=self.store.compact_revision
        )

    def member(self) -> rpc_pb2.Member:
        return rpc_pb2.Member(
            ID=self.member_id,
            name=self.config.name,
            peerURLs=list(self.config.initial_advertise_peer_urls),
            clientURLs=list(self.client_urls),
        )


def _is_lease_not_found(exc: BaseException) -> bool:
    return isinstance(exc, EtcdError) and exc.message == errors.LEASE_NOT_FOUND.message
