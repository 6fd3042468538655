"""The member's pipeline in-process (no sockets): group commit, failed fsyncs, lease expiry, restart."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import pytest

from etcdlite.config import EtcdConfig, parse_flags
from etcdlite.errors import EtcdError
from etcdlite.raft.durable import DurableStorage
from etcdlite.server import EtcdServer
from kubelite.pb.etcdserverpb import rpc_pb2
from kubelite.waiting import until


def config(data_dir: Path, *flags: str) -> EtcdConfig:
    return parse_flags([f"--data-dir={data_dir}", *flags], {})


class RecordingWal:
    """Wraps the member's durable Raft log: counts entries per write, fails the next writes when told."""

    def __init__(self, server: EtcdServer) -> None:
        assert server.raft is not None and server.raft.durable is not None
        durable: DurableStorage = server.raft.durable
        self.appends: list[int] = []
        self.fail_next = 0
        self.failed = 0
        self._persist = durable.persist
        durable.persist = self.persist  # type: ignore[method-assign]

    def persist(self, hs, entries, snap) -> None:
        if self.fail_next:
            self.fail_next -= 1
            self.failed += 1
            raise OSError(errno.ENOSPC, "No space left on device")
        self._persist(hs, entries, snap)
        if entries:
            self.appends.append(len(entries))


def test_concurrent_writes_share_fsyncs_and_all_survive_a_restart(tmp_path):
    async def scenario() -> None:
        server = EtcdServer(config(tmp_path))
        await server.start()
        recording = RecordingWal(server)
        try:
            puts = [server.put(rpc_pb2.PutRequest(key=b"k%03d" % i, value=b"v")) for i in range(200)]
            responses = await asyncio.gather(*puts)
        finally:
            await server.stop()
        assert sorted(r.header.revision for r in responses) == list(range(2, 202))
        assert sum(recording.appends) >= 200  # and the member's own published attributes
        assert len(recording.appends) < 50, f"expected group commit, got {len(recording.appends)} appends"

        again = EtcdServer(config(tmp_path))
        await again.start()
        try:
            everything = await again.range(
                rpc_pb2.RangeRequest(key=b"\x00", range_end=b"\x00", count_only=True)
            )
            assert (everything.count, everything.header.revision) == (200, 201)
        finally:
            await again.stop()

    asyncio.run(scenario())


def test_a_failed_fsync_is_retried_new_writes_are_refused_meanwhile_and_nothing_is_lost(tmp_path):
    async def scenario() -> None:
        server = EtcdServer(config(tmp_path))
        await server.start()
        recording = RecordingWal(server)
        try:
            await server.put(rpc_pb2.PutRequest(key=b"before", value=b"1"))
            recording.fail_next = 3
            stalled = asyncio.create_task(server.put(rpc_pb2.PutRequest(key=b"stalled", value=b"2")))
            await until(lambda: recording.failed >= 1, "the first failed write")
            with pytest.raises(EtcdError, match="No space left on device"):
                await server.put(rpc_pb2.PutRequest(key=b"refused", value=b"x"))
            await stalled  # acknowledged only once it is durable
            await server.put(rpc_pb2.PutRequest(key=b"after", value=b"3"))
            assert server.store.get(b"refused") is None
        finally:
            await server.stop()
        again = EtcdServer(config(tmp_path))
        await again.start()
        try:
            assert again.store.live_keys() == [b"after", b"before", b"stalled"]
            assert again.store.revision == 4
        finally:
            await again.stop()

    asyncio.run(scenario())


def test_leases_expire_through_the_log_on_the_members_clock(tmp_path):
    now = [1000.0]

    async def scenario() -> None:
        server = EtcdServer(config(tmp_path), clock=lambda: now[0], tick_seconds=0.01)
        await server.start()
        try:
            lease = await server.lease_grant(rpc_pb2.LeaseGrantRequest(TTL=5))
            await server.put(rpc_pb2.PutRequest(key=b"leased", value=b"v", lease=lease.ID))
            now[0] += 4
            assert (await server.lease_keep_alive(lease.ID)).TTL == 5
            now[0] += 4
            assert server.store.get(b"leased") is not None, "the keep-alive renewed it"
            now[0] += 2
            await until(lambda: server.store.get(b"leased") is None, "the expired lease to delete its key")
            assert lease.ID not in server.store.leases
            assert (await server.lease_keep_alive(lease.ID)).TTL == 0
            ttl = await server.lease_time_to_live(rpc_pb2.LeaseTimeToLiveRequest(ID=lease.ID))
            assert ttl.TTL == -1
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_snapshots_are_taken_every_snapshot_count_entries(tmp_path):
    async def scenario() -> None:
        server = EtcdServer(config(tmp_path, "--snapshot-count=5"))
        await server.start()
        try:
            for i in range(12):
                await server.put(rpc_pb2.PutRequest(key=b"s%d" % i, value=b"v"))
            await until(
                lambda: len(list((tmp_path / "member" / "raft" / "snap").glob("*.snap"))) == 1, "a snapshot"
            )
        finally:
            await server.stop()
        (snap,) = (tmp_path / "member" / "raft" / "snap").glob("*.snap")
        assert int(snap.stem.split("-")[1], 16) >= 5
        again = EtcdServer(config(tmp_path, "--snapshot-count=5"))
        await again.start()
        try:
            assert len(again.store.live_keys()) == 12 and again.store.applied_index >= 12
        finally:
            await again.stop()

    asyncio.run(scenario())
