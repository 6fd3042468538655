"""The apiserver's only door to the store: an etcd v3 gRPC client (KV and Watch).

Works against etcdlite or a real etcd. Keys and values are opaque here (str keys, bytes
values); the registry decides what they mean. Writes are Txns guarded on
`create_revision == 0` (create) or `mod_revision == N` (update, delete) so that concurrent
writers conflict instead of losing updates. Several `--etcd-servers` endpoints: the client
sticks to the first that answers and moves to the next one on `UNAVAILABLE`.

Touches: the network (gRPC channels it owns and closes in `close()`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

import grpc
import grpc.aio

from kubelite.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kubelite.pb.mvccpb import kv_pb2

log = logging.getLogger(__name__)

T = TypeVar("T")

UNARY_TIMEOUT = 10.0
COMPACTED_MESSAGE = "mvcc: required revision has been compacted"
FUTURE_MESSAGE = "mvcc: required revision is a future revision"


class StoreError(Exception):
    """The store failed in a way the client cannot fix by retrying."""


class StoreUnavailable(StoreError):
    """No endpoint answered."""


class CompactedError(StoreError):
    """A read or watch asked for history that compaction removed."""

    def __init__(self, requested: int, compact_revision: int) -> None:
        super().__init__(f"revision {requested} compacted (compact revision {compact_revision})")
        self.requested = requested
        self.compact_revision = compact_revision


class FutureRevisionError(StoreError):
    """A read at a revision the store has not reached."""


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True)
class Page:
    """One Range answer: `revision` is the store revision the page was read at."""

    items: list[KeyValue]
    revision: int
    more: bool
    count: int


@dataclass(frozen=True)
class Absent:
    """Guard: the key does not exist (`create_revision == 0`)."""

    key: str


@dataclass(frozen=True)
class Unchanged:
    """Guard: the key's `mod_revision` is still `mod_revision`."""

    key: str
    mod_revision: int


Guard = Absent | Unchanged


@dataclass(frozen=True)
class Put:
    key: str
    value: bytes


@dataclass(frozen=True)
class Delete:
    key: str


Write = Put | Delete


@dataclass(frozen=True)
class TxnResult:
    """`current` holds, when the guards failed, what each guarded key holds now."""

    succeeded: bool
    revision: int
    current: dict[str, KeyValue | None] = field(default_factory=dict)


class EventType:
    PUT = "PUT"
    DELETE = "DELETE"


@dataclass(frozen=True)
class StoreEvent:
    """A change of one key; `kv.mod_revision` is the revision of the change (for a delete too)."""

    type: str
    kv: KeyValue
    prev: KeyValue | None


def prefix_end(prefix: str) -> bytes:
    """The range_end that selects every key starting with `prefix`."""
    raw = bytearray(prefix.encode())
    for i in range(len(raw) - 1, -1, -1):
        if raw[i] < 0xFF:
            raw[i] += 1
            return bytes(raw[: i + 1])
    return b"\x00"


def _kv(kv: kv_pb2.KeyValue) -> KeyValue:
    return KeyValue(kv.key.decode(), kv.value, kv.create_revision, kv.mod_revision)


@dataclass(frozen=True)
class TLSFiles:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


def parse_endpoints(servers: str) -> list[tuple[str, bool]]:
    """`http://127.0.0.1:2379,https://h:2379` -> [(target, secure)], keeping the order."""
    endpoints = []
    for raw in servers.split(","):
        raw = raw.strip()
        if not raw:
            continue
        url = urlparse(raw if "://" in raw else f"http://{raw}")
        if not url.hostname or not url.port:
            raise ValueError(f"invalid etcd server {raw!r}: want http(s)://host:port")
        host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
        endpoints.append((f"{host}:{url.port}", url.scheme == "https"))
    if not endpoints:
        raise ValueError("--etcd-servers must name at least one endpoint")
    return endpoints


_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


class EtcdStore:
    """A client of one etcd cluster, with failover between its endpoints."""

    def __init__(self, servers: str, tls: TLSFiles | None = None) -> None:
        self._endpoints = parse_endpoints(servers)
        self._tls = tls or TLSFiles()
        self._index = 0
        self._channel: grpc.aio.Channel | None = None
        self._kv: rpc_pb2_grpc.KVStub | None = None
        self._watch: rpc_pb2_grpc.WatchStub | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def endpoint(self) -> str:
        return self._endpoints[self._index][0]

    def _credentials(self) -> grpc.ChannelCredentials:
        def read(path: str | None) -> bytes | None:
            return Path(path).read_bytes() if path else None

        return grpc.ssl_channel_credentials(
            read(self._tls.ca_file), read(self._tls.key_file), read(self._tls.cert_file)
        )

    def _connect(self) -> None:
        target, secure = self._endpoints[self._index]
        if secure:
            self._channel = grpc.aio.secure_channel(target, self._credentials(), options=_CHANNEL_OPTIONS)
        else:
            self._channel = grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)
        self._kv = rpc_pb2_grpc.KVStub(self._channel)
        self._watch = rpc_pb2_grpc.WatchStub(self._channel)
        log.info("using etcd endpoint %s", target)

    async def _failover(self, failed_channel: grpc.aio.Channel | None) -> None:
        async with self._lock:
            if self._channel is not failed_channel:
                return  # someone else already moved on
            old = self._channel
            self._index = (self._index + 1) % len(self._endpoints)
            self._connect()
            if old is not None:
                await old.close()

    def _stubs(self) -> tuple[grpc.aio.Channel, rpc_pb2_grpc.KVStub, rpc_pb2_grpc.WatchStub]:
        if self._closed:
            raise StoreUnavailable("the store client is closed")
        if self._channel is None:
            self._connect()
        assert self._channel is not None and self._kv is not None and self._watch is not None
        return self._channel, self._kv, self._watch

    async def _call(self, fn: Callable[[rpc_pb2_grpc.KVStub], Awaitable[T]]) -> T:
        last: grpc.aio.AioRpcError | None = None
        for _ in range(len(self._endpoints)):
            channel, kv, _watch = self._stubs()
            try:
                return await fn(kv)
            except grpc.aio.AioRpcError as err:
                code, details = err.code(), err.details() or ""
                if code == grpc.StatusCode.OUT_OF_RANGE and COMPACTED_MESSAGE in details:
                    raise CompactedError(0, 0) from err
                if code == grpc.StatusCode.OUT_OF_RANGE and FUTURE_MESSAGE in details:
                    raise FutureRevisionError(details) from err
                if code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise StoreError(f"etcd {code.name}: {details}") from err
                last = err
                log.warning("etcd endpoint %s failed (%s: %s)", self.endpoint, code.name, details)
                if len(self._endpoints) > 1:
                    await self._failover(channel)
        raise StoreUnavailable(f"no etcd endpoint answered: {last.details() if last else 'unknown'}")

    async def close(self) -> None:
        self._closed = True
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    # ------------------------------------------------------------------------- reads

    async def get(self, key: str, revision: int = 0) -> tuple[KeyValue | None, int]:
        """The key's value (or None) and the store revision it was read at."""
        request = rpc_pb2.RangeRequest(key=key.encode(), revision=revision)
        response = await self._call(lambda kv: kv.Range(request, timeout=UNARY_TIMEOUT))
        item = _kv(response.kvs[0]) if response.kvs else None
        return item, response.header.revision

    async def list(
        self,
        prefix: str,
        *,
        start: str | None = None,
        limit: int = 0,
        revision: int = 0,
        keys_only: bool = False,
    ) -> Page:
        """Keys under `prefix` from `start` on, at `revision` (0 = now)."""
        request = rpc_pb2.RangeRequest(
            key=(start or prefix).encode(),
            range_end=prefix_end(prefix),
            limit=limit,
            revision=revision,
            keys_only=keys_only,
        )
        try:
            response = await self._call(lambda kv: kv.Range(request, timeout=UNARY_TIMEOUT))
        except CompactedError as err:
            raise CompactedError(revision, 0) from err
        items = [_kv(kv) for kv in response.kvs]
        read_at = revision or response.header.revision
        return Page(items, read_at, response.more, response.count)

    async def revision(self) -> int:
        """The current store revision (a cheap count-only read)."""
        request = rpc_pb2.RangeRequest(key=b"/registry/", range_end=prefix_end("/registry/"), count_only=True)
        response = await self._call(lambda kv: kv.Range(request, timeout=UNARY_TIMEOUT))
        return response.header.revision

    # ------------------------------------------------------------------------- writes

    async def txn(self, guards: Sequence[Guard], writes: Sequence[Write]) -> TxnResult:
        """Apply `writes` atomically if every guard holds; else report what the keys hold now."""
        compares = []
        for guard in guards:
            if isinstance(guard, Absent):
                compares.append(
                    rpc_pb2.Compare(
                        key=guard.key.encode(),
                        target=rpc_pb2.Compare.CREATE,
                        result=rpc_pb2.Compare.EQUAL,
                        create_revision=0,
                    )
                )
            else:
                compares.append(
                    rpc_pb2.Compare(
                        key=guard.key.encode(),
                        target=rpc_pb2.Compare.MOD,
                        result=rpc_pb2.Compare.EQUAL,
                        mod_revision=guard.mod_revision,
                    )
                )
        success = []
        for write in writes:
            if isinstance(write, Put):
                success.append(
                    rpc_pb2.RequestOp(
                        request_put=rpc_pb2.PutRequest(key=write.key.encode(), value=write.value)
                    )
                )
            else:
                success.append(
                    rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(key=write.key.encode()))
                )
        guarded_keys = list(dict.fromkeys(g.key for g in guards))
        failure = [
            rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=k.encode())) for k in guarded_keys
        ]
        request = rpc_pb2.TxnRequest(compare=compares, success=success, failure=failure)
        response = await self._call(lambda kv: kv.Txn(request, timeout=UNARY_TIMEOUT))
        if response.succeeded:
            return TxnResult(True, response.header.revision)
        current: dict[str, KeyValue | None] = {}
        for key, op in zip(guarded_keys, response.responses, strict=False):
            kvs = op.response_range.kvs
            current[key] = _kv(kvs[0]) if kvs else None
        return TxnResult(False, response.header.revision, current)

    async def compact(self, revision: int) -> None:
        request = rpc_pb2.CompactionRequest(revision=revision)
        await self._call(lambda kv: kv.Compact(request, timeout=UNARY_TIMEOUT))

    # ------------------------------------------------------------------------- watch

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[StoreEvent]]:
        """Batches of changes under `prefix` with revision >= `start_revision`, in order.

        Raises CompactedError if that history is gone. Survives an endpoint failing by
        re-creating the watch on the next endpoint from the last revision seen + 1.
        """
        next_revision = start_revision
        failures = 0
        while True:
            channel, _kv_stub, watch_stub = self._stubs()
            call = watch_stub.Watch()
            try:
                create = rpc_pb2.WatchCreateRequest(
                    key=prefix.encode(),
                    range_end=prefix_end(prefix),
                    start_revision=next_revision,
                    prev_kv=True,
                )
                await call.write(rpc_pb2.WatchRequest(create_request=create))
                while True:
                    response = await call.read()
                    if response is grpc.aio.EOF:
                        raise StoreUnavailable("etcd closed the watch stream")
                    failures = 0
                    if response.compact_revision:
                        raise CompactedError(next_revision, response.compact_revision)
                    if response.canceled:
                        raise StoreError(f"etcd canceled the watch: {response.cancel_reason}")
                    if not response.events:
                        continue
                    batch = []
                    for event in response.events:
                        kind = EventType.DELETE if event.type == kv_pb2.Event.DELETE else EventType.PUT
                        prev = _kv(event.prev_kv) if event.HasField("prev_kv") and event.prev_kv.key else None
                        batch.append(StoreEvent(kind, _kv(event.kv), prev))
                    next_revision = batch[-1].kv.mod_revision + 1
                    yield batch
            except grpc.aio.AioRpcError as err:
                if err.code() != grpc.StatusCode.UNAVAILABLE or failures >= len(self._endpoints):
                    raise StoreUnavailable(f"watch failed: {err.code().name}: {err.details()}") from err
                failures += 1
                log.warning(
                    "watch on %s broke (%s); resuming at %d", self.endpoint, err.details(), next_revision
                )
                if len(self._endpoints) > 1:
                    await self._failover(channel)
                else:
                    await asyncio.sleep(0.5)  # back-off before reconnecting to the only endpoint
            finally:
                call.cancel()
