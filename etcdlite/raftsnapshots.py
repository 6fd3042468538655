"""This member's Raft snapshots: writing one in the background, dropping the in-memory log it
covers, and sending the newest to a follower straight from its file; and seeding a Raft log from
the state of a pre-Raft data dir.

The Raft driver decides when (every --snapshot-count applied entries) and what (the member list,
the alarms and the store, as etcdlite.envelope encodes them). Touches the `raft/` directory
through durable, from a worker thread while a snapshot is written, and the peer sockets through
the transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

from etcdlite.envelope import encode_snapshot_data, snapshot_data_parts
from etcdlite.mvcc import StoreSnapshot
from etcdlite.raft import codec
from etcdlite.raft.durable import DurableStorage, SnapshotFileCorruptError
from etcdlite.raft.errors import RaftError
from etcdlite.raft.transport import PeerTransport, SnapshotSend
from etcdlite.raft.types import ConfState, HardState, Message, Snapshot, SnapshotMetadata
from kubelite.pb.etcdserverpb import rpc_pb2
from kubelite.pb.raftpb import raft_pb2

log = logging.getLogger(__name__)


def seed_log(raft_dir: Path, member: rpc_pb2.Member, store: StoreSnapshot) -> None:
    """Blocking: a Raft log whose first snapshot is the state of a pre-Raft single-member data dir."""
    durable = DurableStorage(raft_dir)
    try:
        data = encode_snapshot_data(raft_pb2.MemberSet(members=[member]), store)
        index = store.applied_index
        metadata = SnapshotMetadata(index=index, term=1, conf_state=ConfState(voters=(member.ID,)))
        durable.persist(HardState(term=1, vote=member.ID, commit=index), [], Snapshot(metadata, data))
    finally:
        durable.close()


class RaftSnapshots:
    """`saved` hears of each snapshot once its file is durable; the driver then calls `compact`
    between two Readies, as only its task may change the log the core reads."""

    def __init__(
        self, durable: DurableStorage, transport: PeerTransport, saved: Callable[[SnapshotMetadata], None]
    ) -> None:
        self._durable = durable
        self._transport = transport
        self._saved = saved
        self._writing: asyncio.Task[None] | None = None

    @property
    def writing(self) -> bool:
        return self._writing is not None and not self._writing.done()

    def write(self, metadata: SnapshotMetadata, members: raft_pb2.MemberSet, store: StoreSnapshot) -> None:
        self._writing = asyncio.create_task(self._write(metadata, members, store))

    async def _write(
        self, metadata: SnapshotMetadata, members: raft_pb2.MemberSet, store: StoreSnapshot
    ) -> None:
        started = time.monotonic()
        try:
            parts = await asyncio.to_thread(snapshot_data_parts, members, store)
            path = await asyncio.to_thread(self._durable.save_local_snapshot, metadata, parts)
            del parts
        except Exception:
            log.exception("writing the snapshot at entry %d failed; keeping the log", metadata.index)
            return
        log.info(
            "saved snapshot %s (entry %d, revision %d) in %.2fs",
            path,
            metadata.index,
            store.revision,
            time.monotonic() - started,
        )
        self._saved(metadata)

    def compact(self, meta: SnapshotMetadata) -> None:
        """The saved snapshot becomes the log's first entry; older entries leave memory but for
        a few kept for slow followers."""
        try:
            self._durable.create_snapshot(meta.index, meta.conf_state)
        except RaftError as exc:
            log.info("not caching snapshot %d: %s", meta.index, exc)
            return
        self._durable.compact_cache(meta.index)

    def send(self, message: Message) -> bool:
        """The core's MsgSnap names the newest snapshot; the transport streams its data (the whole
        store) from the snapshot file, so that no member keeps a copy of it in memory. False when
        there is no file to send, which the core must hear of."""
        try:
            source = self._durable.snapshot_file()
        except (OSError, SnapshotFileCorruptError) as exc:
            log.error("cannot send a snapshot to member %016x: %s", message.to, exc)
            return False
        pb = codec.message_to_pb(dataclasses.replace(message, snapshot=Snapshot(source.metadata)))
        self._transport.send_snapshot(SnapshotSend(pb, source.data))
        return True

    async def stop(self) -> None:
        """Let a snapshot being written finish before the driver closes the durable log under it."""
        if self._writing is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._writing
