"""The gRPC loads the benchmark drives from Python, identical for both stores so the client's cost
cancels in the ratio: sequential Put latency, concurrent Range throughput, concurrent bulk Puts.

Every loop is bounded twice: by a request count and by a wall-clock limit. Clients are grpcio's
stubs for the etcd v3 KV service (`kubelite.pb`), sync for the latency loop (no event-loop
overhead in the measured path), grpc.aio for the concurrent loads. Touches only the network.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc

from bench import memory
from bench.stats import LatencySummary, summarize_latencies
from kubelite.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc

RPC_TIMEOUT = 10.0
# one 1 KiB Put per key plus gRPC framing stays far below both stores' 1.5 MiB request limit
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]


def client_description(concurrent: bool) -> str:
    kind = "grpc.aio stubs" if concurrent else "sync stub, one channel"
    return f"Python {sys.version.split()[0]}, grpcio {grpc.__version__} {kind} (etcdserverpb.KV)"


def prefix_range_end(prefix: bytes) -> bytes:
    """etcd's GetPrefixRangeEnd: the prefix with its last byte below 0xff incremented."""
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\x00"  # every key from prefix on


@dataclass(frozen=True)
class PutLatencyResult:
    summary: LatencySummary
    errors: int
    client: str


def put_latency(address: str, count: int, value_size: int, time_limit: float) -> PutLatencyResult:
    """`count` sequential Puts (one in flight), each timed from call to answer."""
    value = os.urandom(value_size)
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + time_limit
    with grpc.insecure_channel(address, options=_CHANNEL_OPTIONS) as channel:
        kv = rpc_pb2_grpc.KVStub(channel)
        kv.Range(rpc_pb2.RangeRequest(key=b"warm-up"), timeout=RPC_TIMEOUT)  # connect outside the timing
        for i in range(count):
            if time.monotonic() > deadline:
                break
            request = rpc_pb2.PutRequest(key=b"/bench/latency/%08d" % i, value=value)
            start = time.perf_counter()
            try:
                kv.Put(request, timeout=RPC_TIMEOUT)
            except grpc.RpcError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - start)
    if not latencies:
        raise RuntimeError(f"no Put to {address} succeeded ({errors} errors)")
    return PutLatencyResult(summarize_latencies(latencies), errors, client_description(concurrent=False))


@dataclass(frozen=True)
class LoadResult:
    """Outcome of a concurrent loop: successes, failures, and who burnt the CPU meanwhile."""

    ok: int
    errors: int
    seconds: float
    first_error: str
    client_cpu_cores: float  # CPU seconds of this Python process per wall second
    server_cpu_cores: float  # the same, summed over the store's member processes

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


class _Tally:
    def __init__(self) -> None:
        self.ok = 0
        self.errors = 0
        self.first_error = ""

    def failed(self, exc: grpc.RpcError) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = f"{exc.code()}: {exc.details()}"  # type: ignore[attr-defined]


async def _run_workers(
    addresses: Sequence[str],
    server_pids: Sequence[int],
    clients: int,
    channels: int,
    work: Callable[[rpc_pb2_grpc.KVStub, _Tally], Awaitable[None]],
) -> LoadResult:
    """Run `clients` coroutines `work(kv, tally)` spread over `channels` channels round-robin over
    the members; measures wall time and CPU of client and servers over the run."""
    chans = [
        grpc.aio.insecure_channel(addresses[i % len(addresses)], options=_CHANNEL_OPTIONS)
        for i in range(channels)
    ]
    tally = _Tally()
    try:
        stubs = [rpc_pb2_grpc.KVStub(c) for c in chans]
        for stub in stubs:  # connect every channel before the clock starts
            await stub.Range(rpc_pb2.RangeRequest(key=b"warm-up"), timeout=RPC_TIMEOUT)
        server_cpu0 = sum(memory.cpu_seconds(p) for p in server_pids)
        client_cpu0 = time.process_time()
        start = time.perf_counter()
        tasks = [asyncio.create_task(work(stubs[i % len(stubs)], tally)) for i in range(clients)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        seconds = time.perf_counter() - start
        client_cpu = time.process_time() - client_cpu0
        server_cpu = sum(memory.cpu_seconds(p) for p in server_pids) - server_cpu0
    finally:
        for chan in chans:
            await chan.close()
    return LoadResult(
        ok=tally.ok,
        errors=tally.errors,
        seconds=seconds,
        first_error=tally.first_error,
        client_cpu_cores=client_cpu / seconds if seconds else 0.0,
        server_cpu_cores=server_cpu / seconds if seconds else 0.0,
    )


async def bulk_put(
    addresses: Sequence[str],
    server_pids: Sequence[int],
    prefix: bytes,
    count: int,
    value_size: int,
    time_limit: float,
    clients: int = 100,
    channels: int = 4,
) -> LoadResult:
    """Put keys prefix+00000000 .. prefix+count-1 with `clients` Puts in flight; stops at the limit."""
    value = os.urandom(value_size)
    indexes = iter(range(count))
    deadline = time.monotonic() + time_limit

    async def work(kv: rpc_pb2_grpc.KVStub, tally: _Tally) -> None:
        for i in indexes:
            if time.monotonic() > deadline:
                return
            try:
                await kv.Put(rpc_pb2.PutRequest(key=prefix + b"%08d" % i, value=value), timeout=RPC_TIMEOUT)
                tally.ok += 1
            except grpc.RpcError as exc:
                tally.failed(exc)

    return await _run_workers(addresses, server_pids, clients, channels, work)


async def range_throughput(
    addresses: Sequence[str],
    server_pids: Sequence[int],
    prefix: bytes,
    keys: int,
    serializable: bool,
    seconds: float,
    clients: int = 100,
    channels: int = 4,
    max_requests: int = 10_000_000,
) -> LoadResult:
    """Single-key Ranges of random preloaded keys from `clients` coroutines for `seconds`."""
    deadline = time.monotonic() + seconds
    budget = itertools.count()
    rng = random.Random(1)

    async def work(kv: rpc_pb2_grpc.KVStub, tally: _Tally) -> None:
        while time.monotonic() < deadline and next(budget) < max_requests:
            key = prefix + b"%08d" % rng.randrange(keys)
            try:
                await kv.Range(rpc_pb2.RangeRequest(key=key, serializable=serializable), timeout=RPC_TIMEOUT)
                tally.ok += 1
            except grpc.RpcError as exc:
                tally.failed(exc)

    return await _run_workers(addresses, server_pids, clients, channels, work)


def clear_prefix(address: str, prefix: bytes) -> int:
    """DeleteRange the prefix and compact to that revision (what `check perf --auto-compact` does),
    so a run starts on an empty prefix and no history of the previous one; returns keys deleted."""
    with grpc.insecure_channel(address, options=_CHANNEL_OPTIONS) as channel:
        kv = rpc_pb2_grpc.KVStub(channel)
        deleted = kv.DeleteRange(
            rpc_pb2.DeleteRangeRequest(key=prefix, range_end=prefix_range_end(prefix)), timeout=60
        )
        try:
            kv.Compact(rpc_pb2.CompactionRequest(revision=deleted.header.revision, physical=True), timeout=60)
        except grpc.RpcError as exc:
            if "compacted" not in (exc.details() or ""):  # type: ignore[attr-defined]
                raise  # already compacted to this revision is fine: nothing new since the last run
        left = kv.Range(
            rpc_pb2.RangeRequest(key=prefix, range_end=prefix_range_end(prefix), count_only=True), timeout=60
        )
        if left.count:
            raise RuntimeError(f"{left.count} keys under {prefix!r} survived a DeleteRange on {address}")
        return deleted.deleted
