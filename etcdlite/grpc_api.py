"""The etcd v3 gRPC services (KV, Watch, Lease, Cluster, Maintenance) on grpc.aio.

Each servicer only translates: it hands the request to the `EtcdServer` and turns an
`EtcdError` into etcd's gRPC status code and message. `start_grpc_server` binds every
`--listen-client-urls` address with the server options real clients need: keepalive pings
from idle watchers allowed (COMPAT.md section 0 item 5, B8), and received messages capped at
`--max-request-bytes` plus gRPC's overhead, as etcd does. Touches sockets only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

import grpc

from etcdlite.errors import Code, EtcdError, Failure
from etcdlite.server import EtcdServer
from etcdlite.watch import WatchStream
from kubelite.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc

log = logging.getLogger(__name__)

T = TypeVar("T")
Context = grpc.aio.ServicerContext

# etcd's grpcOverheadBytes: room for gRPC framing on top of --max-request-bytes.
GRPC_OVERHEAD_BYTES = 512 * 1024
MAX_SEND_BYTES = 2**31 - 1
NOT_FOR_LEARNER = Failure(Code.UNAVAILABLE, "etcdserver: rpc not supported for learner")
_STATUS = "/etcdserverpb.Maintenance/Status"
_RANGE = "/etcdserverpb.KV/Range"


def server_options(max_request_bytes: int) -> list[tuple[str, int]]:
    return [
        # etcdctl pings every 10 s even when idle; grpc-core's defaults answer that with GOAWAY.
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 5000),
        ("grpc.http2.max_ping_strikes", 0),
        # etcd's --grpc-keepalive-interval (2h) and --grpc-keepalive-timeout (20s).
        ("grpc.keepalive_time_ms", 2 * 60 * 60 * 1000),
        ("grpc.keepalive_timeout_ms", 20 * 1000),
        ("grpc.max_receive_message_length", max_request_bytes + GRPC_OVERHEAD_BYTES),
        ("grpc.max_send_message_length", MAX_SEND_BYTES),
        ("grpc.so_reuseport", 0),
    ]


async def _abort(context: Context, exc: EtcdError) -> NoReturn:
    await context.abort(grpc.StatusCode[exc.code.value], exc.message)
    raise AssertionError("abort returned")  # pragma: no cover


async def _answer(context: Context, call: Awaitable[T]) -> T:
    try:
        return await call
    except EtcdError as exc:
        await _abort(context, exc)


class KVServicer(rpc_pb2_grpc.KVServicer):
    def __init__(self, server: EtcdServer) -> None:
        self._server = server

    async def Range(self, request: rpc_pb2.RangeRequest, context: Context) -> rpc_pb2.RangeResponse:
        return await _answer(context, self._server.range(request))

    async def Put(self, request: rpc_pb2.PutRequest, context: Context) -> rpc_pb2.PutResponse:
        return await _answer(context, self._server.put(request))

    async def DeleteRange(
        self, request: rpc_pb2.DeleteRangeRequest, context: Context
    ) -> rpc_pb2.DeleteRangeResponse:
        return await _answer(context, self._server.delete_range(request))

    async def Txn(self, request: rpc_pb2.TxnRequest, context: Context) -> rpc_pb2.TxnResponse:
        return await _answer(context, self._server.txn(request))

    async def Compact(
        self, request: rpc_pb2.CompactionRequest, context: Context
    ) -> rpc_pb2.CompactionResponse:
        return await _answer(context, self._server.compact(request))


class WatchServicer(rpc_pb2_grpc.WatchServicer):
    def __init__(self, server: EtcdServer) -> None:
        self._server = server
        self._queues: set[asyncio.Queue[rpc_pb2.WatchResponse | None]] = set()

    def close_streams(self) -> None:
        """End every open Watch stream (at shutdown, so idle watchers do not hold up the grace period)."""
        for queue in self._queues:
            queue.put_nowait(None)

    async def Watch(
        self, request_iterator: AsyncIterator[rpc_pb2.WatchRequest], context: Context
    ) -> AsyncIterator[rpc_pb2.WatchResponse]:
        """Requests are handled as they arrive; responses leave in the order they were queued.

        The stream lives until the client goes away, even after it half-closes (as in etcd).
        """
        queue: asyncio.Queue[rpc_pb2.WatchResponse | None] = asyncio.Queue()
        stream = self._server.open_watch_stream(queue.put_nowait)
        reader = asyncio.create_task(self._read(request_iterator, stream, queue))
        self._queues.add(queue)
        try:
            while True:
                response = await queue.get()
                if response is None:
                    return
                yield response
        finally:
            self._queues.discard(queue)
            stream.close()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    @staticmethod
    async def _read(
        requests: AsyncIterator[rpc_pb2.WatchRequest],
        stream: WatchStream,
        queue: asyncio.Queue[rpc_pb2.WatchResponse | None],
    ) -> None:
        try:
            async for request in requests:
                stream.handle(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a broken client stream ends this stream only
            log.debug("watch stream ended by the client: %s", exc)
            queue.put_nowait(None)


class LeaseServicer(rpc_pb2_grpc.LeaseServicer):
    def __init__(self, server: EtcdServer) -> None:
        self._server = server

    async def LeaseGrant(
        self, request: rpc_pb2.LeaseGrantRequest, context: Context
    ) -> rpc_pb2.LeaseGrantResponse:
        return await _answer(context, self._server.lease_grant(request))

    async def LeaseRevoke(
        self, request: rpc_pb2.LeaseRevokeRequest, context: Context
    ) -> rpc_pb2.LeaseRevokeResponse:
        return await _answer(context, self._server.lease_revoke(request))

    async def LeaseKeepAlive(
        self, request_iterator: AsyncIterator[rpc_pb2.LeaseKeepAliveRequest], context: Context
    ) -> AsyncIterator[rpc_pb2.LeaseKeepAliveResponse]:
        async for request in request_iterator:
            try:
                yield await self._server.lease_keep_alive(request.ID)
            except EtcdError as exc:
                await _abort(context, exc)

    async def LeaseTimeToLive(
        self, request: rpc_pb2.LeaseTimeToLiveRequest, context: Context
    ) -> rpc_pb2.LeaseTimeToLiveResponse:
        return await _answer(context, self._server.lease_time_to_live(request))

    async def LeaseLeases(
        self, request: rpc_pb2.LeaseLeasesRequest, context: Context
    ) -> rpc_pb2.LeaseLeasesResponse:
        return self._server.lease_leases()


class ClusterServicer(rpc_pb2_grpc.ClusterServicer):
    """Membership: the Raft conf state with names and URLs; adds and removes are Raft conf changes."""

    def __init__(self, server: EtcdServer) -> None:
        self._server = server

    async def MemberList(
        self, request: rpc_pb2.MemberListRequest, context: Context
    ) -> rpc_pb2.MemberListResponse:
        return rpc_pb2.MemberListResponse(header=self._server.header(), members=self._server.member_list())

    async def MemberAdd(
        self, request: rpc_pb2.MemberAddRequest, context: Context
    ) -> rpc_pb2.MemberAddResponse:
        return await _answer(context, self._server.member_add(request))

    async def MemberRemove(
        self, request: rpc_pb2.MemberRemoveRequest, context: Context
    ) -> rpc_pb2.MemberRemoveResponse:
        return await _answer(context, self._server.member_remove(request))

    async def MemberUpdate(
        self, request: rpc_pb2.MemberUpdateRequest, context: Context
    ) -> rpc_pb2.MemberUpdateResponse:
        return await _answer(context, self._server.member_update(request))

    async def MemberPromote(
        self, request: rpc_pb2.MemberPromoteRequest, context: Context
    ) -> rpc_pb2.MemberPromoteResponse:
        return await _answer(context, self._server.member_promote(request))


class MaintenanceServicer(rpc_pb2_grpc.MaintenanceServicer):
    def __init__(self, server: EtcdServer) -> None:
        self._server = server

    async def Status(self, request: rpc_pb2.StatusRequest, context: Context) -> rpc_pb2.StatusResponse:
        return self._server.status()

    async def Alarm(self, request: rpc_pb2.AlarmRequest, context: Context) -> rpc_pb2.AlarmResponse:
        return await _answer(context, self._server.alarm(request))

    async def Defragment(
        self, request: rpc_pb2.DefragmentRequest, context: Context
    ) -> rpc_pb2.DefragmentResponse:
        # Memory holds no free pages to give back; compaction already released the space.
        return rpc_pb2.DefragmentResponse(header=self._server.header())

    async def Hash(self, request: rpc_pb2.HashRequest, context: Context) -> rpc_pb2.HashResponse:
        try:
            crc = self._server.store.hash_kv(0)
        except EtcdError as exc:
            await _abort(context, exc)
        return rpc_pb2.HashResponse(header=self._server.header(), hash=crc)

    async def HashKV(self, request: rpc_pb2.HashKVRequest, context: Context) -> rpc_pb2.HashKVResponse:
        try:
            return self._server.hash_kv(request.revision)
        except EtcdError as exc:
            await _abort(context, exc)

    async def Snapshot(
        self, request: rpc_pb2.SnapshotRequest, context: Context
    ) -> AsyncIterator[rpc_pb2.SnapshotResponse]:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED, "etcdlite: snapshot download is not supported (no bolt database)"
        )
        yield rpc_pb2.SnapshotResponse()  # pragma: no cover (makes this a stream handler)

    async def MoveLeader(
        self, request: rpc_pb2.MoveLeaderRequest, context: Context
    ) -> rpc_pb2.MoveLeaderResponse:
        return await _answer(context, self._server.move_leader(request))


class LearnerGuard(grpc.aio.ServerInterceptor):
    """etcd 3.4's learner interceptors: a learner answers Status and serializable Ranges only,
    and refuses everything else (streams too) with "rpc not supported for learner"."""

    def __init__(self, server: EtcdServer) -> None:
        self._server = server

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method == _STATUS or not self._server.raft.is_learner:
            return handler
        serve = handler.unary_unary if method == _RANGE else None

        async def refuse(request: object, context: Context) -> object:
            if serve is not None and getattr(request, "serializable", False):
                return await serve(request, context)  # type: ignore[misc]
            await _abort(context, NOT_FOR_LEARNER())

        deserialize, serialize = handler.request_deserializer, handler.response_serializer
        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(refuse, deserialize, serialize)
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(refuse, deserialize, serialize)
        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(refuse, deserialize, serialize)
        return grpc.unary_unary_rpc_method_handler(refuse, deserialize, serialize)


class ListenError(Exception):
    """A --listen-client-urls address could not be bound."""


@dataclass
class ClientServer:
    """The running gRPC server for clients, and the host:port of each bound listen URL."""

    grpc_server: grpc.aio.Server
    watch: WatchServicer
    addresses: list[str]

    async def stop(self, grace: float) -> None:
        """Refuse new calls, end watch streams, give unary calls `grace` seconds to finish."""
        stopping = asyncio.ensure_future(self.grpc_server.stop(grace))
        self.watch.close_streams()
        await stopping


async def start_grpc_server(server: EtcdServer) -> ClientServer:
    """Serve the etcd API on every listen URL."""
    config = server.config
    grpc_server = grpc.aio.server(
        options=server_options(config.max_request_bytes), interceptors=[LearnerGuard(server)]
    )
    watch = WatchServicer(server)
    rpc_pb2_grpc.add_KVServicer_to_server(KVServicer(server), grpc_server)
    rpc_pb2_grpc.add_WatchServicer_to_server(watch, grpc_server)
    rpc_pb2_grpc.add_LeaseServicer_to_server(LeaseServicer(server), grpc_server)
    rpc_pb2_grpc.add_ClusterServicer_to_server(ClusterServicer(server), grpc_server)
    rpc_pb2_grpc.add_MaintenanceServicer_to_server(MaintenanceServicer(server), grpc_server)
    bound: list[str] = []
    for url in config.listen_client_urls:
        try:
            port = grpc_server.add_insecure_port(url.address)
        except RuntimeError as exc:
            raise ListenError(f"cannot listen on {url.url} ({url.address}): {exc}") from None
        host = url.address.rsplit(":", 1)[0]
        bound.append(f"{host}:{port}")
    await grpc_server.start()
    return ClientServer(grpc_server, watch, bound)
