"""etcdlite as a process: durability across SIGKILL, snapshots, refusing corrupt data, flags, shutdown."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import sys

import grpc

from etcdlite import request as requests
from etcdlite import snapshot as store_snapshot
from etcdlite.mvcc import MvccStore
from etcdlite.wal import LogEntry, WriteAheadLog
from kubelite.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.integration.etcd_helpers import EtcdProcess, etcdctl, running_etcdctl, start_etcdlite, wait_until


def kv(proc: EtcdProcess) -> tuple[grpc.Channel, rpc_pb2_grpc.KVStub]:
    channel = grpc.insecure_channel(proc.address)
    return channel, rpc_pb2_grpc.KVStub(channel)


def all_keys(proc: EtcdProcess) -> dict[bytes, bytes]:
    channel, stub = kv(proc)
    with channel:
        response = stub.Range(rpc_pb2.RangeRequest(key=b"\x00", range_end=b"\x00"), timeout=5)
    return {item.key: item.value for item in response.kvs}


def test_acknowledged_writes_survive_sigkill(tmp_path):
    data_dir = tmp_path / "data"
    proc = start_etcdlite(tmp_path, data_dir=data_dir)
    try:
        etcdctl(proc.endpoint, "put", "/durable/first", "1")
        channel, stub = kv(proc)
        with channel, concurrent.futures.ThreadPoolExecutor(16) as pool:
            puts = [
                pool.submit(
                    stub.Put,
                    rpc_pb2.PutRequest(key=b"/durable/%03d" % i, value=b"\x00\xff%d" % i),
                    timeout=10,
                )
                for i in range(100)
            ]
            revisions = sorted(f.result().header.revision for f in puts)
        assert revisions == list(range(3, 103)), "each concurrent put got its own revision"
        before = all_keys(proc)
    finally:
        proc.kill()
    assert proc.process.returncode == -9

    proc = start_etcdlite(tmp_path, data_dir=data_dir)
    try:
        assert all_keys(proc) == before
        status = etcdctl(proc.endpoint, "get", "/durable/first", "-w", "json").stdout
        assert '"revision":102' in status
        etcdctl(proc.endpoint, "put", "/durable/after", "x")
        assert '"revision":103' in etcdctl(proc.endpoint, "get", "/durable/after", "-w", "json").stdout
    finally:
        assert proc.stop() == 0


def test_snapshots_replace_old_wal_and_restart_from_them(tmp_path):
    data_dir = tmp_path / "data"
    proc = start_etcdlite(tmp_path, "--snapshot-count=10", data_dir=data_dir)
    try:
        lease = etcdctl(proc.endpoint, "lease", "grant", "600").stdout.split()[1]
        for i in range(34):
            etcdctl(proc.endpoint, "put", f"/snap/{i % 5}", str(i))
        etcdctl(proc.endpoint, "put", "/snap/leased", "v", f"--lease={lease}")
        etcdctl(proc.endpoint, "compaction", "20")
        before = all_keys(proc)
        history = etcdctl(proc.endpoint, "get", "/snap/1", "--rev=25").stdout
    finally:
        proc.kill()
    snaps = list((data_dir / "member" / "raft" / "snap").glob("*.snap"))
    segments = sorted(p.name for p in (data_dir / "member" / "raft" / "wal").glob("*.wal"))
    assert len(snaps) == 1, snaps
    assert segments[0] != "0000000000000001.wal", f"covered segments are dropped: {segments}"

    proc = start_etcdlite(tmp_path, "--snapshot-count=10", data_dir=data_dir)
    try:
        assert all_keys(proc) == before
        assert etcdctl(proc.endpoint, "get", "/snap/1", "--rev=25").stdout == history
        too_old = etcdctl(proc.endpoint, "get", "/snap/1", "--rev=19", check=False)
        assert "required revision has been compacted" in too_old.stderr
        ttl = etcdctl(proc.endpoint, "lease", "timetolive", lease, "--keys").stdout
        assert "attached keys([/snap/leased])" in ttl
        assert "recovered the Raft log" in proc.log() and "snapshot at 0," not in proc.log()
    finally:
        assert proc.stop() == 0


def test_torn_tail_is_cut_and_mid_log_corruption_refuses_to_start(tmp_path):
    data_dir = tmp_path / "data"
    proc = start_etcdlite(tmp_path, data_dir=data_dir)
    try:
        for i in range(3):
            etcdctl(proc.endpoint, "put", f"/torn/{i}", "v" * 50)
    finally:
        proc.kill()
    (segment,) = (data_dir / "member" / "raft" / "wal").glob("*.wal")
    data = segment.read_bytes()
    segment.write_bytes(data + data[:30])  # a half-written record after the crash

    proc = start_etcdlite(tmp_path, data_dir=data_dir)
    try:
        assert sorted(all_keys(proc)) == [b"/torn/0", b"/torn/1", b"/torn/2"]
        assert "cutting torn tail" in proc.log()
    finally:
        assert proc.stop() == 0

    corrupted = bytearray(segment.read_bytes())
    corrupted[20] ^= 0xFF  # inside the first record; two intact ones follow
    segment.write_bytes(bytes(corrupted))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "etcdlite",
            f"--data-dir={data_dir}",
            "--listen-client-urls=http://127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert f"write-ahead log {segment} is corrupt at offset 0" in result.stderr
    assert "refusing to start" in result.stderr


def test_sigterm_ends_open_watches_then_exits_zero(tmp_path):
    proc = start_etcdlite(tmp_path)
    try:
        # from revision 1, so a put that lands before the watch is registered is replayed
        with running_etcdctl(proc.endpoint, "watch", "--prefix", "/", "--rev=1") as watch:
            etcdctl(proc.endpoint, "put", "/x", "1")
            watch.wait_for_lines(["PUT", "/x", "1"])
            code = proc.stop()
            # The member ended the stream itself, so the client hears that the server canceled its
            # watch and gives up. (A stream left open is cut when the shutdown grace period runs
            # out, without a word: etcdctl then keeps trying to reconnect.)
            wait_until(
                lambda: watch.process.poll() is not None,
                10.0,
                "etcdctl watch to end with the server",
                seen=lambda: f"its output: {watch.lines}",
            )
            assert "Error: watch is canceled by the server" in watch.lines, watch.lines
    finally:
        proc.kill()
    assert code == 0, proc.log()
    assert "shutting down" in proc.log() and "stopped" in proc.log()


def test_second_process_on_the_same_data_dir_is_refused(tmp_path):
    data_dir = tmp_path / "data"
    proc = start_etcdlite(tmp_path, data_dir=data_dir)
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "etcdlite",
                f"--data-dir={data_dir}",
                "--listen-client-urls=http://127.0.0.1:0",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 1
        assert "is in use by another process" in result.stderr
    finally:
        assert proc.stop() == 0


def test_bad_flags_exit_2_with_a_clear_message(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "etcdlite", "--listen-client-urls=https://127.0.0.1:2379"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "TLS (https) is not supported" in result.stderr


def test_requests_over_max_request_bytes_get_etcds_error(tmp_path):
    proc = start_etcdlite(tmp_path, "--max-request-bytes=2048")
    try:
        channel, stub = kv(proc)
        with channel:
            try:
                stub.Put(rpc_pb2.PutRequest(key=b"big", value=b"x" * 4096), timeout=5)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert exc.details() == "etcdserver: request is too large"
            else:
                raise AssertionError("a 4 KiB put was accepted with --max-request-bytes=2048")
            stub.Put(rpc_pb2.PutRequest(key=b"small", value=b"x" * 1000), timeout=5)
        assert list(all_keys(proc)) == [b"small"]
    finally:
        assert proc.stop() == 0


def test_quota_refuses_writes_with_etcds_error_but_allows_deletes(tmp_path):
    proc = start_etcdlite(tmp_path, "--quota-backend-bytes=20000")
    try:
        channel, stub = kv(proc)
        with channel:
            for i in range(15):
                stub.Put(rpc_pb2.PutRequest(key=b"q%d" % i, value=b"x" * 1000), timeout=5)
            try:
                for i in range(15, 30):
                    stub.Put(rpc_pb2.PutRequest(key=b"q%d" % i, value=b"x" * 1000), timeout=5)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert exc.details() == "etcdserver: mvcc: database space exceeded"
            else:
                raise AssertionError("30 KB of puts fit in a 20 KB quota")
            stub.DeleteRange(rpc_pb2.DeleteRangeRequest(key=b"q0"), timeout=5)
        assert "alarm:NOSPACE" in etcdctl(proc.endpoint, "alarm", "list").stdout
        refused = etcdctl(proc.endpoint, "put", "tiny", "x", check=False)
        assert "etcdserver: mvcc: database space exceeded" in refused.stderr, "the alarm stays until disarmed"
        etcdctl(proc.endpoint, "del", "q", "--prefix")
        current = json.loads(etcdctl(proc.endpoint, "get", "x", "-w", "json").stdout)["header"]["revision"]
        etcdctl(proc.endpoint, "compaction", str(current))
        etcdctl(proc.endpoint, "alarm", "disarm")
        assert etcdctl(proc.endpoint, "alarm", "list").stdout == ""
        etcdctl(proc.endpoint, "put", "tiny", "x")
    finally:
        assert proc.stop() == 0


def test_a_data_dir_of_the_single_member_log_moves_into_raft(tmp_path):
    """Data written by the pre-Raft single-member log (a snapshot plus WAL entries after it) is kept."""
    data_dir = tmp_path / "old"
    member = data_dir / "member"
    store = MvccStore()
    for index in range(1, 6):
        store.apply(index, rpc_pb2.PutRequest(key=b"/old/%d" % index, value=b"v%d" % index))
    store_snapshot.save(member / "snap", store.snapshot())
    wal, _ = WriteAheadLog.open(member / "wal", store.applied_index)
    later = rpc_pb2.PutRequest(key=b"/old/after-snapshot", value=b"w")
    wal.append([LogEntry(6, 1, requests.encode(later))])
    wal.close()

    proc = start_etcdlite(tmp_path, data_dir=data_dir)
    try:
        keys = all_keys(proc)
        assert keys[b"/old/3"] == b"v3" and keys[b"/old/after-snapshot"] == b"w", keys
        etcdctl(proc.endpoint, "put", "/new", "x")
        assert "moved the single-member log" in proc.log()
    finally:
        assert proc.stop() == 0
    assert (member / "wal.pre-raft").is_dir() and not (member / "wal").exists()
    proc = start_etcdlite(tmp_path, data_dir=data_dir)
    try:
        keys = all_keys(proc)
        assert keys[b"/old/after-snapshot"] == b"w" and keys[b"/new"] == b"x", keys
    finally:
        assert proc.stop() == 0
