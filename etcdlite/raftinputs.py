"""What other tasks queue for the Raft core: peer messages, ticks, proposals, membership changes,
read-index requests, leadership transfers, peer reports and snapshots saved.

Producers add to the inbox and wake the Raft driver; the driver waits (a little longer under load,
so that one Ready carries many proposals), takes the whole batch at once and feeds it to the core
between two Readies, so that the core is touched by the driver's task alone (etcdlite.raftdriver's
contract). Memory only; touches nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from etcdlite.raft import codec
from etcdlite.raft.types import ConfChange, ConfState, Message, Snapshot, SnapshotMetadata
from kubelite.pb.raftpb import raft_pb2

log = logging.getLogger(__name__)

# Batching under load (Inbox.wait): an idle loop iteration takes about 6 us here; one that took
# over 20 us ran other tasks. Under `check perf --load=m` on 3 members this made Readies 3 to 4
# times larger and cut the CPU per write by a fifth.
BATCH_BUSY_SECONDS = 20e-6
BATCH_MAX_YIELDS = 50
BATCH_MAX_SECONDS = 0.005  # ticks, peer messages and fsyncs wait behind it: a twentieth of a heartbeat


@dataclass
class Inputs:
    """Everything queued for the core since the last Ready."""

    messages: list[Message] = field(default_factory=list)
    ticks: int = 0
    proposals: list[tuple[bytes, int]] = field(default_factory=list)  # (entry data, request id)
    conf_changes: list[tuple[ConfChange, asyncio.Future[ConfState]]] = field(default_factory=list)
    unreachable: set[int] = field(default_factory=set)
    snapshot_reports: list[tuple[int, bool]] = field(default_factory=list)
    reads: list[asyncio.Future[int]] = field(default_factory=list)
    local_snapshots: list[SnapshotMetadata] = field(default_factory=list)
    transfers: list[int] = field(default_factory=list)


class Inbox:
    """One per driver: producers call the methods that queue; the driver `wait`s and `take`s."""

    def __init__(self) -> None:
        self._inputs = Inputs()
        self._wake = asyncio.Event()

    async def wait(self) -> None:
        """Until something is queued. Under load, let the request handlers run a little longer
        before the driver takes a Ready, so that one Ready carries many proposals: a Ready's costs
        (a fsync, a batch to each peer, a wake-up of every follower) are mostly per Ready, not
        per entry. Yield to the loop while it has other work (an iteration that took longer than
        an idle one), at most BATCH_MAX_YIELDS times and for at most BATCH_MAX_SECONDS; an idle
        member yields once, which costs its clients a few microseconds."""
        await self._wake.wait()
        clock = time.perf_counter
        deadline = clock() + BATCH_MAX_SECONDS
        for _ in range(BATCH_MAX_YIELDS):
            started = clock()
            await asyncio.sleep(0)
            finished = clock()
            if finished - started < BATCH_BUSY_SECONDS or finished >= deadline:
                return

    def wake(self) -> None:
        self._wake.set()

    def take(self) -> Inputs:
        """The batch so far; what comes after wakes the driver again."""
        self._wake.clear()
        inputs, self._inputs = self._inputs, Inputs()
        return inputs

    def deliver(self, sender: int, messages: Sequence[raft_pb2.Message], snapshot_data: bytes | None) -> None:
        """Peer messages to step; `snapshot_data` is the data of the MsgSnap among them (it travels
        beside the message, see etcdlite.raft.transport)."""
        for pb in messages:
            try:
                message = codec.message_from_pb(pb)
            except codec.CodecError as exc:
                log.warning("dropping a message from %016x: %s", sender, exc)
                continue
            if message.snapshot is not None:
                if snapshot_data is None:  # a sender that does not stream the data beside it
                    log.warning("dropping a snapshot from %016x that came without its data", sender)
                    continue
                snapshot = Snapshot(message.snapshot.metadata, snapshot_data)
                message = dataclasses.replace(message, snapshot=snapshot)
            self._inputs.messages.append(message)
        self._wake.set()

    def unreachable(self, peer_id: int) -> None:
        self._inputs.unreachable.add(peer_id)
        self._wake.set()

    def snapshot_status(self, peer_id: int, ok: bool) -> None:
        self._inputs.snapshot_reports.append((peer_id, ok))
        self._wake.set()

    def tick(self) -> None:
        self._inputs.ticks += 1
        self._wake.set()

    def propose(self, data: bytes, request_id: int) -> None:
        self._inputs.proposals.append((data, request_id))
        self._wake.set()

    def change_membership(self, cc: ConfChange, future: asyncio.Future[ConfState]) -> None:
        self._inputs.conf_changes.append((cc, future))
        self._wake.set()

    def read(self, future: asyncio.Future[int]) -> None:
        self._inputs.reads.append(future)
        self._wake.set()

    def transfer_leadership(self, target: int) -> None:
        self._inputs.transfers.append(target)
        self._wake.set()

    def snapshot_saved(self, metadata: SnapshotMetadata) -> None:
        self._inputs.local_snapshots.append(metadata)
        self._wake.set()
