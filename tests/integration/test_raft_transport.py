"""The peer transport on loopback: batches arrive in order over one connection, refusals reach
the sender, and an unreachable peer is reported to Raft (snapshots as failed) until it returns."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from etcdlite.raft.transport import PeerTransport, SnapshotSend
from etcdlite.raft.transport import frame as transport_frame
from etcdlite.wal import RecordSpan, frame
from kubelite.pb.raftpb import raft_pb2
from kubelite.waiting import until

CLUSTER = 0xC1


@dataclass
class Member:
    """A transport plus everything its callbacks told the driver."""

    id: int
    cluster_id: int = CLUSTER
    delivered: list[tuple[int, int]] = field(default_factory=list)  # (sender, message index)
    snapshot_data: list[bytes] = field(default_factory=list)  # what came with each MsgSnap
    unreachable: list[int] = field(default_factory=list)
    snapshots: list[tuple[int, bool]] = field(default_factory=list)
    removed: int = 0
    transport: PeerTransport | None = None
    url: str = ""

    async def start(self, port: int = 0) -> Member:
        self.transport = PeerTransport(
            self.id,
            self.cluster_id,
            self._on_deliver,
            self.unreachable.append,
            lambda peer, ok: self.snapshots.append((peer, ok)),
            self._on_removed,
        )
        [address] = await self.transport.start([(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}")])
        self.url = f"http://{address}"
        return self

    def _on_deliver(self, sender: int, messages, data: bytes | None) -> None:
        self.delivered.extend((sender, m.index) for m in messages)
        if data is not None:
            self.snapshot_data.append(data)

    def _on_removed(self) -> None:
        self.removed += 1

    def send(self, to: int, index: int, kind: int = raft_pb2.MsgApp) -> None:
        message = raft_pb2.Message(type=kind, to=to, index=index)
        setattr(message, "from", self.id)
        assert self.transport is not None
        self.transport.send(message)

    async def stop(self) -> None:
        assert self.transport is not None
        await self.transport.stop()


def run(scenario) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 30))


@contextlib.asynccontextmanager
async def connected(a: Member, b: Member) -> AsyncIterator[tuple[Member, Member]]:
    """Both members listening, and a told where b is; both stopped afterwards."""
    await a.start()
    try:
        await b.start()
        try:
            a.transport.set_peer(b.id, [b.url])
            yield a, b
        finally:
            await b.stop()
    finally:
        await a.stop()


def snapshot_file(tmp_path: Path, data: bytes, damage: bool = False) -> SnapshotSend:
    """A file laid out as a snapshot file (some leading bytes, then the framed data record)."""
    record = bytearray(frame(data))
    if damage:
        record[-1] ^= 0xFF
    path = tmp_path / "snap"
    path.write_bytes(b"metadata record" + record)
    message = raft_pb2.Message(type=raft_pb2.MsgSnap, to=2, index=7)
    setattr(message, "from", 1)
    return SnapshotSend(message, RecordSpan(path, len(b"metadata record"), len(record)))


async def a_message_gets_through(a: Member, b: Member, when: str) -> None:
    """Until a message from a (sent again every 0.1 s, as Raft would) is delivered at b."""

    def delivered() -> bool:
        a.send(b.id, 9)
        return (a.id, 9) in b.delivered

    await until(delivered, f"a message {when} to reach member {b.id}", interval=0.1)


def test_messages_arrive_in_order() -> None:
    async def scenario() -> None:
        async with connected(Member(1), Member(2)) as (a, b):
            for i in range(2000):
                a.send(2, i)
            await until(lambda: len(b.delivered) == 2000, "2000 messages at member 2")
            assert b.delivered == [(1, i) for i in range(2000)]
            assert a.unreachable == []

    run(scenario)


def test_a_peer_that_is_down_is_reported_unreachable_and_is_redialed_when_it_returns(tmp_path) -> None:
    snapshot = snapshot_file(tmp_path, b"state")

    async def scenario() -> None:
        a, b = await Member(1).start(), await Member(2).start()
        url = b.url
        await b.stop()
        try:
            a.transport.set_peer(2, [url])
            a.send(2, 1)
            a.transport.send_snapshot(snapshot)
            await until(lambda: (2, False) in a.snapshots, "the snapshot to member 2 to be reported failed")
            assert 2 in a.unreachable
            b = await Member(2).start(port=int(url.rsplit(":", 1)[1]))  # back on the same address

            def delivered() -> bool:
                a.transport.send_snapshot(snapshot)
                return (1, 7) in b.delivered

            await until(delivered, "member 1 to reach member 2 again", timeout=10, interval=0.1)
            await until(lambda: (2, True) in a.snapshots, "a snapshot to member 2 to be reported sent")
        finally:
            await a.stop()
            await b.stop()

    run(scenario)


def test_stopping_while_a_peer_refuses_connections_always_ends() -> None:
    """The peer port is closed, so each dial fails at once; stop lands at every point of that
    dial. Python 3.11's asyncio.wait_for dropped a cancellation that arrived as the dial failed,
    and the sender then waited for messages forever (a member hung on SIGTERM): 30 of 400 here."""

    async def scenario() -> None:
        gone = await Member(2).start()
        await gone.stop()
        for attempt in range(300):
            a = await Member(1).start()
            a.transport.set_peer(2, [gone.url])
            a.send(2, 1)
            for _ in range(attempt % 30):
                await asyncio.sleep(0)
            try:
                async with asyncio.timeout(2.0):
                    await a.stop()
            except TimeoutError:
                raise AssertionError(f"stop #{attempt} hung, dialing a closed port") from None

    run(scenario)


def test_a_snapshot_is_streamed_from_its_file_after_the_messages_before_it(tmp_path) -> None:
    data = bytes(range(256)) * 40_000  # 10 MB, more than one socket buffer
    item = snapshot_file(tmp_path, data)

    async def scenario() -> None:
        async with connected(Member(1), Member(2)) as (a, b):
            a.send(2, 5)
            a.transport.send_snapshot(item)
            a.send(2, 8)
            await until(lambda: (1, 8) in b.delivered, "the message after the snapshot at member 2")
            assert b.delivered == [(1, 5), (1, 7), (1, 8)], "in the order sent"
            assert b.snapshot_data == [data]
            await until(lambda: (2, True) in a.snapshots, "the snapshot to be reported sent")

    run(scenario)


def test_snapshot_data_that_fails_its_checksum_is_not_delivered(tmp_path) -> None:
    item = snapshot_file(tmp_path, b"state" * 1000, damage=True)

    async def scenario() -> None:
        async with connected(Member(1), Member(2)) as (a, b):
            a.transport.send_snapshot(item)
            await a_message_gets_through(a, b, "after the bad record")
            assert (1, 7) not in b.delivered and b.snapshot_data == [], "the MsgSnap was dropped"

    run(scenario)


def test_a_snapshot_file_shorter_than_its_record_fails_the_send_and_the_peer_stays_reachable(
    tmp_path,
) -> None:
    item = snapshot_file(tmp_path, b"state" * 1000)
    item.data.path.write_bytes(item.data.path.read_bytes()[:-10])  # cut after the core named it

    async def scenario() -> None:
        async with connected(Member(1), Member(2)) as (a, b):
            a.transport.send_snapshot(item)
            await until(lambda: (2, False) in a.snapshots, "the snapshot to be reported failed")
            await a_message_gets_through(a, b, "after the failed snapshot")
            assert (1, 7) not in b.delivered and b.snapshot_data == [], "no MsgSnap without its data"

    run(scenario)


def test_an_unexpected_failure_while_sending_does_not_end_the_sender(tmp_path, monkeypatch) -> None:
    """What sendfile raises on a transport that closed under it (RuntimeError) must not silence the peer."""
    item = snapshot_file(tmp_path, b"state" * 1000)

    async def failing_sendfile(*args, **kwargs):
        raise RuntimeError("Transport is closing")

    async def scenario() -> None:
        async with connected(Member(1), Member(2)) as (a, b):
            monkeypatch.setattr(asyncio.get_running_loop(), "sendfile", failing_sendfile)
            a.transport.send_snapshot(item)
            await until(lambda: (2, False) in a.snapshots, "the snapshot to be reported failed")
            await a_message_gets_through(a, b, "after the failed snapshot")

    run(scenario)


def test_a_connection_that_ends_inside_the_snapshot_data_delivers_nothing_of_it() -> None:
    """A sender that dies mid-snapshot: its batch is not delivered, and the member takes the redial."""

    async def scenario() -> None:
        b = await Member(2).start()
        try:
            host, port = b.url.removeprefix("http://").split(":")
            hello = raft_pb2.MessageBatch(cluster_id=CLUSTER)
            setattr(hello, "from", 1)
            message = raft_pb2.Message(type=raft_pb2.MsgSnap, to=2, index=7)
            setattr(message, "from", 1)
            batch = raft_pb2.MessageBatch(cluster_id=CLUSTER, snapshot_data_follows=True, messages=[message])
            setattr(batch, "from", 1)
            reader, writer = await asyncio.open_connection(host, int(port))
            record = frame(b"state" * 100_000)
            writer.write(transport_frame(hello) + transport_frame(batch) + record[: len(record) // 2])
            await writer.drain()
            await reader.readexactly(4)  # the listener's Ack: the hello was taken
            writer.close()
            await writer.wait_closed()
            a = await Member(1).start()
            try:
                a.transport.set_peer(2, [b.url])
                a.send(2, 9)
                await until(lambda: (1, 9) in b.delivered, "a message over a new connection")
                assert b.delivered == [(1, 9)] and b.snapshot_data == [], "nothing of the cut snapshot"
            finally:
                await a.stop()
        finally:
            await b.stop()

    run(scenario)


def test_a_member_of_another_cluster_is_refused() -> None:
    async def scenario() -> None:
        async with connected(Member(1, cluster_id=0xBAD), Member(2)) as (a, b):
            a.send(2, 1)
            await until(lambda: 2 in a.unreachable, "member 2 to be reported unreachable")
            assert b.delivered == [] and a.removed == 0

    run(scenario)


def test_a_removed_member_is_told_so_even_on_an_open_connection() -> None:
    async def scenario() -> None:
        async with connected(Member(1), Member(2)) as (a, b):
            a.send(2, 1)
            await until(lambda: b.delivered == [(1, 1)], "the first message at member 2")
            b.transport.remove_peer(1)
            a.send(2, 2)
            await until(lambda: a.removed, "member 1 to learn that it was removed")
            assert b.delivered == [(1, 1)]

    run(scenario)
