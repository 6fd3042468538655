"""The peer transport: Raft message batches between members over gRPC (`raftpb.Raft/Send`).

Receiving: a gRPC server on every `--listen-peer-urls` address hands each batch from a member of
this cluster to the driver's `deliver` callback (in the event loop) and acknowledges it.
Sending: one `PeerSender` per peer with a bounded queue and one task that ships whatever is
queued as one batch. `send` never blocks the driver: when a queue is full, or a batch cannot be
delivered, the messages are dropped and the driver is told (`unreachable`, and `snapshot_status`
for snapshots), which is how Raft learns to retry. gRPC reconnects on its own. Touches sockets
only; knows raftpb messages, not the Raft core.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import grpc

from kubelite.pb.raftpb import raft_pb2, raft_pb2_grpc

log = logging.getLogger(__name__)

# Snapshots travel as one message; allow them to be large.
MAX_MESSAGE_BYTES = 1024 * 1024 * 1024
QUEUE_LIMIT = 4096  # messages waiting for one peer (etcd's streamBufSize)
BATCH_LIMIT = 512  # messages in one batch
SEND_TIMEOUT = 5.0
SNAPSHOT_SEND_TIMEOUT = 60.0
RETRY_PAUSE = 0.05

Deliver = Callable[[int, Sequence[raft_pb2.Message]], None]
Unreachable = Callable[[int], None]
SnapshotStatus = Callable[[int, bool], None]
Removed = Callable[[], None]
REMOVED_ERROR = "the member has been permanently removed from the cluster"


class PeerListenError(Exception):
    """A --listen-peer-urls address could not be bound."""


def channel_options() -> list[tuple[str, int]]:
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", 10_000),
        ("grpc.keepalive_timeout_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]


def server_options() -> list[tuple[str, int]]:
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 5000),
        ("grpc.http2.max_ping_strikes", 0),
        ("grpc.so_reuseport", 0),
    ]


def target_of(url: str) -> str:
    """host:port of a peer URL, as a gRPC channel wants it."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}"


class PeerSender:
    """Ships messages to one peer, in order, one batch at a time."""

    def __init__(
        self,
        peer_id: int,
        urls: Sequence[str],
        header: raft_pb2.MessageBatch,
        unreachable: Unreachable,
        snapshot_status: SnapshotStatus,
        removed: Removed,
    ) -> None:
        self.peer_id = peer_id
        self._removed = removed
        self.urls = tuple(urls)
        self._header = header
        self._unreachable = unreachable
        self._snapshot_status = snapshot_status
        self._queue: asyncio.Queue[raft_pb2.Message] = asyncio.Queue(QUEUE_LIMIT)
        self._channel = grpc.aio.insecure_channel(target_of(self.urls[0]), options=channel_options())
        self._stub = raft_pb2_grpc.RaftStub(self._channel)
        self._task = asyncio.create_task(self._run(), name=f"raft-sender-{peer_id:x}")
        self._failing = False

    def send(self, message: raft_pb2.Message) -> None:
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self._dropped([message], "queue full")

    def _dropped(self, messages: Sequence[raft_pb2.Message], why: str) -> None:
        if not self._failing:
            log.warning("peer %016x unreachable (%s): dropping %d messages", self.peer_id, why, len(messages))
            self._failing = True
        self._unreachable(self.peer_id)
        for message in messages:
            if message.type == raft_pb2.MsgSnap:
                self._snapshot_status(self.peer_id, False)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < BATCH_LIMIT and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            request = raft_pb2.MessageBatch()
            request.CopyFrom(self._header)
            request.messages.extend(batch)
            has_snapshot = any(m.type == raft_pb2.MsgSnap for m in batch)
            timeout = SNAPSHOT_SEND_TIMEOUT if has_snapshot else SEND_TIMEOUT
            try:
                ack = await self._stub.Send(request, timeout=timeout)
            except grpc.aio.AioRpcError as exc:
                self._dropped(batch, f"{exc.code().name}: {exc.details()}")
                await asyncio.sleep(RETRY_PAUSE)
                continue
            if ack.error:
                if ack.error == REMOVED_ERROR:
                    self._removed()
                self._dropped(batch, ack.error)
                continue
            if self._failing:
                log.info("peer %016x reachable again", self.peer_id)
                self._failing = False
            for message in batch:
                if message.type == raft_pb2.MsgSnap:
                    self._snapshot_status(self.peer_id, True)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._channel.close()


class _RaftServicer(raft_pb2_grpc.RaftServicer):
    def __init__(self, transport: PeerTransport) -> None:
        self._transport = transport

    async def Send(self, request: raft_pb2.MessageBatch, context: grpc.aio.ServicerContext) -> raft_pb2.Ack:
        return self._transport.receive(request)


class PeerTransport:
    """Peer server plus one sender per peer; `set_peer`/`remove_peer` follow membership changes."""

    def __init__(
        self,
        member_id: int,
        cluster_id: int,
        deliver: Deliver,
        unreachable: Unreachable,
        snapshot_status: SnapshotStatus,
        removed: Removed,
    ) -> None:
        """`removed` is called when a peer says this member was removed from the cluster."""
        self.member_id = member_id
        self._on_removed = removed
        self.cluster_id = cluster_id
        self._deliver = deliver
        self._unreachable = unreachable
        self._snapshot_status = snapshot_status
        self._senders: dict[int, PeerSender] = {}
        self._removed: set[int] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._server: grpc.aio.Server | None = None
        self._header = raft_pb2.MessageBatch(cluster_id=cluster_id)
        setattr(self._header, "from", member_id)

    async def start(self, listen_addresses: Sequence[tuple[str, str]]) -> list[str]:
        """Bind every (url, host:port); return the bound host:port of each."""
        server = grpc.aio.server(options=server_options())
        raft_pb2_grpc.add_RaftServicer_to_server(_RaftServicer(self), server)
        bound = []
        for url, address in listen_addresses:
            try:
                port = server.add_insecure_port(address)
            except RuntimeError as exc:
                raise PeerListenError(f"cannot listen on peer URL {url} ({address}): {exc}") from None
            bound.append(f"{address.rsplit(':', 1)[0]}:{port}")
        await server.start()
        self._server = server
        return bound

    def receive(self, batch: raft_pb2.MessageBatch) -> raft_pb2.Ack:
        sender = getattr(batch, "from")
        if self.cluster_id == 0 and batch.cluster_id:
            # a member joining an existing cluster learns its id from the first member to call
            log.info("joined cluster %016x (first contact from %016x)", batch.cluster_id, sender)
            self.cluster_id = batch.cluster_id
            self._header.cluster_id = batch.cluster_id
        if batch.cluster_id != self.cluster_id:
            log.warning("refusing messages from %016x of cluster %016x", sender, batch.cluster_id)
            return raft_pb2.Ack(error=f"cluster ID mismatch: this is cluster {self.cluster_id:016x}")
        if sender in self._removed:
            return raft_pb2.Ack(error=REMOVED_ERROR)
        self._deliver(sender, batch.messages)
        return raft_pb2.Ack()

    def set_peer(self, peer_id: int, urls: Sequence[str]) -> None:
        if peer_id == self.member_id or not urls:
            return
        current = self._senders.get(peer_id)
        if current is not None and current.urls == tuple(urls):
            return
        if current is not None:
            self._senders.pop(peer_id)
            self._close_later(current)
        self._senders[peer_id] = PeerSender(
            peer_id, urls, self._header, self._unreachable, self._snapshot_status, self._on_removed
        )

    def remove_peer(self, peer_id: int) -> None:
        self._removed.add(peer_id)
        sender = self._senders.pop(peer_id, None)
        if sender is not None:
            self._close_later(sender)

    def send(self, message: raft_pb2.Message) -> None:
        sender = self._senders.get(message.to)
        if sender is None:
            if message.to not in self._removed:
                self._unreachable(message.to)
            return
        sender.send(message)

    def _close_later(self, sender: PeerSender) -> None:
        """Closing is async; `stop` awaits whatever is still closing."""
        task = asyncio.ensure_future(sender.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def stop(self) -> None:
        senders, self._senders = list(self._senders.values()), {}
        await asyncio.gather(*(s.close() for s in senders), *self._closing)
        if self._server is not None:
            await self._server.stop(0.5)
            self._server = None
