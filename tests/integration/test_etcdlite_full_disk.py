"""A member whose data directory's filesystem fills up (a real 8 MiB tmpfs, filled by a ballast
file): the write in flight is not acknowledged while it is not durable, new writes are refused
with a clear error, nothing refused is ever applied, the member keeps serving reads, and it
takes writes again, by itself, once space returns. Needs root to mount (CI runs as root)."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from kubelite.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.integration.etcd_helpers import start_etcdlite, wait_until


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "8m") -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], text=True, capture_output=True
    )
    assert mounted.returncode == 0, f"cannot mount a tmpfs (the test needs root): {mounted.stderr}"
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(path: Path) -> None:
    """Write a ballast file until the filesystem is full."""
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                chunk = chunk[: len(chunk) // 2]
                if not chunk:
                    return


def put(stub: rpc_pb2_grpc.KVStub, key: bytes, timeout: float = 10.0) -> rpc_pb2.PutResponse:
    return stub.Put(rpc_pb2.PutRequest(key=key, value=b"v" * 512), timeout=timeout)


def test_a_full_disk_refuses_writes_cleanly_and_the_member_recovers_when_space_returns(tmp_path):
    with small_filesystem(tmp_path / "disk") as disk:
        data_dir = disk / "member.etcd"
        member = start_etcdlite(tmp_path, data_dir=data_dir)
        try:
            with grpc.insecure_channel(member.address) as channel:
                kv = rpc_pb2_grpc.KVStub(channel)
                put(kv, b"/before")
                ballast = disk / "ballast"
                fill(ballast)
                # the write in flight cannot be made durable (it needs pages the WAL's last one cannot
                # hold): it is not acknowledged meanwhile
                big = rpc_pb2.PutRequest(key=b"/in-flight", value=b"v" * 16384)
                in_flight = kv.Put.future(big, timeout=30.0)
                wait_until(
                    lambda: "retrying until it succeeds" in member.log(),
                    10,
                    "the member to report the full disk",
                    seen=member.log,
                )
                assert not in_flight.done()
                # and new writes are refused at once with the reason, and change nothing
                with pytest.raises(grpc.RpcError) as refused:
                    put(kv, b"/refused")
                assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
                assert "No space left on device" in refused.value.details(), refused.value.details()
                got = kv.Range(rpc_pb2.RangeRequest(key=b"/before", serializable=True), timeout=5.0)
                assert got.kvs and got.kvs[0].key == b"/before"  # reads still work
                os.unlink(ballast)
                assert in_flight.result(timeout=20.0).header.revision > 0  # durable now, so acknowledged
                wait_until(lambda: put(kv, b"/after", timeout=2.0), 10, "the member to take writes again")
                assert member.process.poll() is None, member.log()
            assert member.stop() == 0, member.log()
            member = start_etcdlite(tmp_path, data_dir=data_dir)  # and it all survived a restart
            with grpc.insecure_channel(member.address) as channel:
                kv = rpc_pb2_grpc.KVStub(channel)
                keys = kv.Range(rpc_pb2.RangeRequest(key=b"/", range_end=b"0", keys_only=True), timeout=5.0)
                assert [kv_.key for kv_ in keys.kvs] == [b"/after", b"/before", b"/in-flight"]
        finally:
            member.kill()
