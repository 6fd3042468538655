"""Record a history for the checker: concurrent clients doing random get/put/delete/compare-and-swap on a
few keys of etcd v3 gRPC endpoints (etcdlite or a real etcd), with call and return times.

Each client talks to one endpoint (round-robin over `endpoints`) and moves to the next one when a
request fails with UNAVAILABLE or DEADLINE_EXCEEDED, so a member can be killed or paused during the
recording; after a failure it backs off a little (up to half a second) before its next request. A
write that fails is recorded with an unknown outcome (it may have been applied), unless gRPC failed it
before sending it (no connection); a read that fails is dropped (it changed nothing). Every failed
request, recorded in the history or not, is also kept as a `Failure` (where, when, why), so a
fault-injection test can show that its faults were felt (tests/lincheck/faults.py). Reads are
linearizable (the default Range).

A recording ends when every client did its requests, at its deadline, or, for a test that injects
faults, when the test sets the `until` event (its fault schedule is over), whichever comes first.

Touches only the given endpoints, under a key prefix unique to the run (so earlier data does not
matter: every key starts absent). The operations each client chooses are a pure function of `seed`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field

import grpc

from kubelite.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.lincheck.model import CompareTarget, KVInput, KVOperation, KVOutput, OpKind
from tests.lincheck.operation import Failure, Operation

log = logging.getLogger(__name__)

FAILOVER_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# gRPC fails a request this way before sending it when it has no connection: it cannot have been applied.
NOT_SENT = "failed to connect to all addresses"
MAX_BACKOFF_S = 0.5


@dataclass
class Workload:
    """What one client asks next: mostly reads and compare-and-swaps on what it last saw, some blind
    puts and a few deletes. Values are unique per client so a read tells which write it saw."""

    client: int
    keys: list[str]
    rng: random.Random
    seen: dict[str, tuple[str | None, int]] = field(default_factory=dict)  # key -> (value, mod revision)
    count: int = 0

    def next(self) -> KVInput:
        key = self.rng.choice(self.keys)
        self.count += 1
        value = f"c{self.client}-{self.count}"
        roll = self.rng.random()
        if roll < 0.40:
            return KVInput.get(key)
        if roll < 0.65:
            return KVInput.put(key, value)
        if roll < 0.70:
            return KVInput.delete(key)
        last_value, last_mod = self.seen.get(key, (None, 0))
        if roll < 0.85 and last_value is not None:
            return KVInput.cas_value(key, last_value, value)
        return KVInput.cas_mod(key, last_mod, value)

    def observe(self, op: KVInput, out: KVOutput) -> None:
        """Remember what a completed request showed about its key, for later compare-and-swaps."""
        if op.kind is OpKind.GET and out.mod_revision is not None:
            self.seen[op.key] = (out.value, out.mod_revision)
        elif op.kind in (OpKind.PUT, OpKind.CAS) and out.succeeded and out.revision is not None:
            self.seen[op.key] = (op.value, out.revision)
        elif op.kind is OpKind.DELETE:
            self.seen[op.key] = (None, 0)


class EndpointClient:
    """A KV stub on one endpoint at a time, moving round-robin to the next one on failover."""

    def __init__(self, endpoints: list[str], first: int) -> None:
        self.targets = [e.removeprefix("http://").removeprefix("https://") for e in endpoints]
        self.index = first % len(self.targets)
        self.channel: grpc.aio.Channel | None = None
        self.stub: rpc_pb2_grpc.KVStub | None = None

    def kv(self) -> rpc_pb2_grpc.KVStub:
        if self.stub is None:
            self.channel = grpc.aio.insecure_channel(self.targets[self.index])
            self.stub = rpc_pb2_grpc.KVStub(self.channel)
        return self.stub

    async def fail_over(self) -> None:
        await self.close()
        self.index = (self.index + 1) % len(self.targets)

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()
        self.channel, self.stub = None, None


async def execute(kv: rpc_pb2_grpc.KVStub, op: KVInput, timeout: float) -> KVOutput:
    """Send one request and translate the answer into the model's terms."""
    key = op.key.encode()
    if op.kind is OpKind.GET:
        got = await kv.Range(rpc_pb2.RangeRequest(key=key), timeout=timeout)
        if not got.kvs:
            return KVOutput.read(None, 0, got.header.revision)
        return KVOutput.read(got.kvs[0].value.decode(), got.kvs[0].mod_revision, got.header.revision)
    if op.kind is OpKind.PUT:
        assert op.value is not None
        put = await kv.Put(rpc_pb2.PutRequest(key=key, value=op.value.encode()), timeout=timeout)
        return KVOutput.written(put.header.revision)
    if op.kind is OpKind.DELETE:
        deleted = await kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=key), timeout=timeout)
        return KVOutput.removed(deleted.deleted, deleted.header.revision)
    assert op.value is not None
    if op.compare is CompareTarget.VALUE:
        assert op.expected_value is not None
        compare = rpc_pb2.Compare(
            result=rpc_pb2.Compare.EQUAL,
            target=rpc_pb2.Compare.VALUE,
            key=key,
            value=op.expected_value.encode(),
        )
    else:
        compare = rpc_pb2.Compare(
            result=rpc_pb2.Compare.EQUAL,
            target=rpc_pb2.Compare.MOD,
            key=key,
            mod_revision=op.expected_mod_revision or 0,
        )
    put_op = rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=op.value.encode()))
    txn = await kv.Txn(rpc_pb2.TxnRequest(compare=[compare], success=[put_op]), timeout=timeout)
    return KVOutput.swapped(txn.succeeded, txn.header.revision)


class Recorder:
    """One recording: its history and failures so far, and which endpoint each client is on."""

    def __init__(
        self,
        endpoints: list[str],
        clients: int,
        keys: int,
        seed: int,
        *,
        op_timeout_s: float = 1.0,
        prefix: str | None = None,
    ) -> None:
        if not endpoints or clients < 1 or keys < 1:
            raise ValueError(f"need endpoints, clients >= 1 and keys >= 1: {endpoints=} {clients=} {keys=}")
        prefix = prefix if prefix is not None else f"/lincheck/{uuid.uuid4().hex[:12]}/key-"
        self.keys = [f"{prefix}{k}" for k in range(keys)]
        self.seed = seed
        self.op_timeout_s = op_timeout_s
        self.connections = [EndpointClient(endpoints, i) for i in range(clients)]
        self.history: list[KVOperation] = []
        self.failures: list[Failure[KVInput]] = []

    def clients_on(self, endpoint: str) -> int:
        """How many clients send their next request to `endpoint` (host:port or http://host:port)."""
        target = endpoint.removeprefix("http://").removeprefix("https://")
        return sum(c.targets[c.index] == target for c in self.connections)

    async def run(
        self, ops_per_client: int, deadline_s: float, until: asyncio.Event | None = None
    ) -> list[KVOperation]:
        """Run every client until it did `ops_per_client` requests, `deadline_s` passed or `until` is set.

        No request starts after that; one in flight may run `op_timeout_s` longer. Returns the
        history ordered by call time.
        """
        deadline = time.monotonic() + deadline_s
        try:
            async with asyncio.TaskGroup() as group:
                for i, connection in enumerate(self.connections):
                    workload = Workload(i, self.keys, random.Random(f"{self.seed}/{i}"))
                    group.create_task(self._run_client(connection, workload, ops_per_client, deadline, until))
        finally:
            for connection in self.connections:
                await connection.close()
        self.history.sort(key=lambda op: op.call_time)
        self.failures.sort(key=lambda f: f.call_time)
        return self.history

    async def run_during(self, schedule: Awaitable[object], ops_per_client: int, deadline_s: float) -> bool:
        """Record while `schedule` (a test's fault schedule) runs: `run` until the schedule is over
        (or its own limits), also when the schedule fails. Whether the recording was still going
        when the schedule ended (if not, the faults came after it and it shows none of them)."""
        schedule_over = asyncio.Event()
        recording = asyncio.create_task(self.run(ops_per_client, deadline_s, until=schedule_over))
        try:
            await schedule
            return not recording.done()
        finally:
            schedule_over.set()
            await recording

    async def _run_client(
        self,
        client: EndpointClient,
        workload: Workload,
        ops: int,
        deadline: float,
        until: asyncio.Event | None,
    ) -> None:
        failures = 0
        for _ in range(ops):
            if time.monotonic() >= deadline or (until is not None and until.is_set()):
                return
            op = workload.next()
            call = time.monotonic_ns()
            try:
                out = await execute(client.kv(), op, self.op_timeout_s)
            except grpc.aio.AioRpcError as exc:
                code, details = exc.code(), exc.details() or ""
                target = client.targets[client.index]
                log.debug("client %d: %s on %s: %s %s", workload.client, op, target, code, details)
                sent = not (code is grpc.StatusCode.UNAVAILABLE and details.startswith(NOT_SENT))
                self.failures.append(
                    Failure(
                        workload.client,
                        target,
                        call,
                        time.monotonic_ns(),
                        op,
                        f"{code.name}: {details}",
                        sent,
                    )
                )
                if sent and op.kind is not OpKind.GET:
                    self.history.append(Operation(workload.client, call, None, op, None))
                if code in FAILOVER_CODES:
                    await client.fail_over()
                # Back off while nothing answers, so a cluster that is down does not turn into a flood of
                # writes with unknown outcomes (each one makes the check harder).
                failures += 1
                await asyncio.sleep(min(MAX_BACKOFF_S, 0.01 * 2**failures))
                continue
            failures = 0
            self.history.append(Operation(workload.client, call, time.monotonic_ns(), op, out))
            workload.observe(op, out)


async def record(
    endpoints: list[str],
    clients: int,
    ops_per_client: int,
    keys: int,
    deadline_s: float,
    seed: int,
    *,
    op_timeout_s: float = 1.0,
    prefix: str | None = None,
) -> list[KVOperation]:
    """Run `clients` concurrent clients until each did `ops_per_client` requests or `deadline_s` passed.

    No request starts after the deadline; one in flight may run `op_timeout_s` longer. Client i
    starts on endpoints[i % len(endpoints)]. Keys are `prefix` + 0..keys-1 (default: a fresh
    /lincheck/<random>/key-). Returns the history ordered by call time. (`Recorder` also keeps the
    failures and can be stopped by an event.)
    """
    recorder = Recorder(endpoints, clients, keys, seed, op_timeout_s=op_timeout_s, prefix=prefix)
    return await recorder.run(ops_per_client, deadline_s)
