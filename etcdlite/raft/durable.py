"""The durable Raft log: hard state, entries and snapshots on disk, with a MemoryStorage in front.

The core reads through the `Storage` protocol (delegated to the in-memory cache); the driver
makes each Ready durable with `persist` (blocking: write + fdatasync, run it in a worker thread)
and then mirrors it into the cache with `cache` (in the driver's thread, between core calls).

Disk layout under the directory given (the member's `raft/`):
- `wal/%016x.wal` segments (numbered in order), records framed as in `etcdlite.wal` (u32
  length | u32 CRC32 | payload). Payload: u8 type, then
  ENTRY: u64 index, u64 term, u8 entry type, data; HARD_STATE: u64 term, vote, commit;
  SNAPSHOT: u64 index, u64 term (a snapshot received from the leader replaced the log here).
  Replay is etcd's: later records win, so an entry at an index already seen drops every entry
  from that index on (a conflicting suffix overwritten by a new leader). A bad record at the end
  of the last segment is a torn write, cut with a warning; anywhere else it is corruption and
  opening refuses, naming file and offset. Each new segment starts with the current hard state.
- `snap/%016x-%016x.snap` (term, index): a framed raftpb.Snapshot holding the metadata, then
  the snapshot's data as a second record (files written before kept the data inside the first
  record; both are read). Written to a temporary file, fsynced, renamed and the directory
  fsynced. After a snapshot the log is rotated and segments wholly covered by it are deleted;
  the cache keeps `catch_up_entries` before it for slow followers (etcd keeps 5000).
The snapshot's data (the whole store) is never kept in memory: it is written from its parts
as they are encoded, `snapshot()` answers with the metadata alone, and `snapshot_file` says
where the data record lies, for the transport to stream it to a follower that needs it.
Touches only files under its directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from etcdlite.raft import codec
from etcdlite.raft.storage import MemoryStorage
from etcdlite.raft.types import ConfState, Entry, EntryType, HardState, Snapshot, SnapshotMetadata
from etcdlite.wal import (
    RecordSpan,
    WalBrokenError,
    WalCorruptError,
    append_synced,
    frame,
    frame_header,
    fsync_dir,
    parse_frame,
    read_frame,
)
from kubelite.pb.raftpb import raft_pb2

log = logging.getLogger(__name__)

ENTRY, HARD_STATE, SNAPSHOT = 1, 2, 3
_ENTRY = struct.Struct("<BQQB")
_HARD_STATE = struct.Struct("<BQQQ")
_SNAPSHOT = struct.Struct("<BQQ")
SEGMENT_BYTES = 64 * 1024 * 1024
MAX_SNAPSHOT_BYTES = 2**32 - 1  # a record's u32 length
CATCH_UP_ENTRIES = 5000
_ENTRY_TYPE_CODES = {EntryType.NORMAL: 0, EntryType.CONF_CHANGE: 1}
_ENTRY_TYPES = {v: k for k, v in _ENTRY_TYPE_CODES.items()}


class SnapshotFileCorruptError(Exception):
    """The newest Raft snapshot file cannot be read; starting would lose acknowledged writes."""


@dataclass
class _Segment:
    seq: int
    path: Path
    max_index: int = 0  # highest entry or snapshot index recorded in it


@dataclass(frozen=True)
class SnapshotFile:
    """A snapshot's metadata, and where its data record lies in its file."""

    metadata: SnapshotMetadata
    data: RecordSpan


@dataclass
class Recovered:
    """What the disk held: the newest snapshot (if any), the hard state and the entries after it."""

    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot | None = None
    entries: list[Entry] = field(default_factory=list)


def encode_entry(entry: Entry) -> bytes:
    return frame(_ENTRY.pack(ENTRY, entry.index, entry.term, _ENTRY_TYPE_CODES[entry.type]) + entry.data)


def encode_hard_state(hs: HardState) -> bytes:
    return frame(_HARD_STATE.pack(HARD_STATE, hs.term, hs.vote, hs.commit))


def encode_snapshot_marker(index: int, term: int) -> bytes:
    return frame(_SNAPSHOT.pack(SNAPSHOT, index, term))


def _decode(payload: bytes) -> Entry | HardState | tuple[int, int] | str:
    kind = payload[0]
    if kind == ENTRY and len(payload) >= _ENTRY.size:
        _, index, term, etype = _ENTRY.unpack_from(payload)
        if etype not in _ENTRY_TYPES:
            return f"unknown entry type {etype}"
        return Entry(term=term, index=index, type=_ENTRY_TYPES[etype], data=payload[_ENTRY.size :])
    if kind == HARD_STATE and len(payload) == _HARD_STATE.size:
        _, term, vote, commit = _HARD_STATE.unpack(payload)
        return HardState(term=term, vote=vote, commit=commit)
    if kind == SNAPSHOT and len(payload) == _SNAPSHOT.size:
        _, index, term = _SNAPSHOT.unpack(payload)
        return (index, term)
    return f"unknown record type {kind} of {len(payload)} bytes"


def _intact_record_after(data: bytes, offset: int) -> bool:
    """Is there a valid record past a bad one? Then the bad one is not a torn tail."""
    for start in range(offset + 1, len(data) - 8):
        parsed = parse_frame(data, start)
        if not isinstance(parsed, str) and not isinstance(_decode(parsed[0]), str):
            return True
    return False


def _segment_name(seq: int) -> str:
    return f"{seq:016x}.wal"


def _snapshot_name(term: int, index: int) -> str:
    return f"{term:016x}-{index:016x}.snap"


def _snapshot_index(path: Path) -> int:
    return int(path.stem.split("-")[1], 16)


def newest_snapshot_file(snap_dir: Path) -> Path | None:
    if not snap_dir.is_dir():
        return None
    paths = []
    for path in snap_dir.glob("*.snap"):
        try:
            paths.append((_snapshot_index(path), path))
        except (ValueError, IndexError):
            log.warning("ignoring %s: not a snapshot name", path)
    return max(paths)[1] if paths else None


def load_snapshot(snap_dir: Path) -> Snapshot | None:
    """The newest snapshot with its data (leftover temporary files are removed); None if there is
    none. A file of the earlier layout is rewritten in the current one. Blocking.
    SnapshotFileCorruptError names the file."""
    if snap_dir.is_dir():
        for leftover in snap_dir.glob("*.tmp"):
            leftover.unlink(missing_ok=True)
    path = newest_snapshot_file(snap_dir)
    if path is None:
        return None

    def corrupt(why: str) -> SnapshotFileCorruptError:
        return SnapshotFileCorruptError(f"snapshot {path} is corrupt: {why}; refusing to start")

    with open(path, "rb") as f:
        header = read_frame(f, MAX_SNAPSHOT_BYTES)
        if isinstance(header, str):
            raise corrupt(header)
        pb = raft_pb2.Snapshot.FromString(header)
        del header
        earlier_layout = not f.peek(1)
        if earlier_layout:  # the data inside the first record
            if not pb.data:  # a snapshot always holds its members: this lost its data record
                raise corrupt("the data record is missing")
            data = bytes(pb.data)
            pb.ClearField("data")
        else:
            record = read_frame(f, MAX_SNAPSHOT_BYTES)
            if isinstance(record, str):
                raise corrupt(record)
            if f.read(1):
                raise corrupt("bytes after the data record")
            data = record
    snap = Snapshot(codec.snapshot_from_pb(pb).metadata, data)
    if earlier_layout:
        save_snapshot_file(snap_dir, snap.metadata, [data])
    return snap


def save_snapshot_file(snap_dir: Path, metadata: SnapshotMetadata, data: Sequence[bytes]) -> Path:
    """Atomically and durably, the data written from its parts (never joined in memory); older
    snapshot files are deleted after. Blocking."""
    snap_dir.mkdir(parents=True, exist_ok=True)
    path = snap_dir / _snapshot_name(metadata.term, metadata.index)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(frame(codec.snapshot_to_pb(Snapshot(metadata)).SerializeToString()))
        f.write(frame_header(data))
        f.writelines(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(snap_dir)
    for older in snap_dir.glob("*.snap"):
        with contextlib.suppress(ValueError, IndexError):
            if _snapshot_index(older) < metadata.index:
                older.unlink(missing_ok=True)
    return path


def read_wal(wal_dir: Path, snapshot: Snapshot | None) -> tuple[Recovered, list[_Segment], int]:
    """Replay every segment; returns what it held, the segments, and the size of the last one."""
    segments: list[_Segment] = []
    for path in wal_dir.glob("*.wal"):
        try:
            segments.append(_Segment(int(path.stem, 16), path))
        except ValueError:
            log.warning("ignoring %s: not a WAL segment name", path)
    segments.sort(key=lambda s: s.seq)
    hard_state = HardState()
    entries: list[Entry] = []
    size = 0
    for position, segment in enumerate(segments):
        is_last = position == len(segments) - 1
        data = segment.path.read_bytes()
        offset = 0
        while offset < len(data):
            parsed = parse_frame(data, offset)
            record = _decode(parsed[0]) if not isinstance(parsed, str) else parsed
            if isinstance(record, str):
                if is_last and not _intact_record_after(data, offset):
                    log.warning(
                        "cutting torn tail of Raft log %s at offset %d (%s, %d bytes dropped)",
                        segment.path,
                        offset,
                        record,
                        len(data) - offset,
                    )
                    with open(segment.path, "r+b") as f:
                        f.truncate(offset)
                        os.fsync(f.fileno())
                    break
                raise WalCorruptError(segment.path, offset, record)
            assert not isinstance(parsed, str)
            if isinstance(record, HardState):
                hard_state = record
            elif isinstance(record, Entry):
                if entries and record.index <= entries[-1].index:
                    del entries[max(0, record.index - entries[0].index) :]
                if entries and record.index != entries[-1].index + 1:
                    reason = f"entry {record.index} follows entry {entries[-1].index}: entries are missing"
                    raise WalCorruptError(segment.path, offset, reason)
                entries.append(record)
                segment.max_index = max(segment.max_index, record.index)
            else:
                entries = []  # a received snapshot replaced the whole log
                segment.max_index = max(segment.max_index, record[0])
            offset = parsed[1]
        if is_last:
            size = offset
    snap_index, snap_term = (snapshot.metadata.index, snapshot.metadata.term) if snapshot else (0, 0)
    at_snapshot = [e for e in entries if e.index == snap_index]
    after = [e for e in entries if e.index > snap_index]
    if snapshot is not None and (
        (at_snapshot and at_snapshot[0].term != snap_term) or (after and after[0].index != snap_index + 1)
    ):
        log.warning("Raft log entries after snapshot %d do not follow it; dropping them", snap_index)
        after = []
    if hard_state.commit < snap_index:
        hard_state = HardState(term=hard_state.term, vote=hard_state.vote, commit=snap_index)
    return Recovered(hard_state, snapshot, after), segments, size


class DurableStorage:
    """The Raft log of one member, durable; implements the core's Storage protocol."""

    def __init__(self, directory: Path, catch_up_entries: int = CATCH_UP_ENTRIES) -> None:
        """Recover from `directory` (created if missing); WalCorruptError/SnapshotFileCorruptError if bad."""
        self.directory = directory
        self.wal_dir = directory / "wal"
        self.snap_dir = directory / "snap"
        self.catch_up_entries = catch_up_entries
        self.wal_dir.mkdir(parents=True, exist_ok=True)
        snapshot = load_snapshot(self.snap_dir)
        self.recovered, self._segments, size = read_wal(self.wal_dir, snapshot)
        self._lock = threading.Lock()  # persist runs in worker threads; one writer at a time
        self.memory = MemoryStorage()
        if snapshot is not None:
            self.memory.apply_snapshot(Snapshot(snapshot.metadata))
        if self.recovered.entries:
            self.memory.append(self.recovered.entries)
        self.memory.set_hard_state(self.recovered.hard_state)
        self.hard_state = self.recovered.hard_state
        self._fd = -1
        self._size = 0
        if self._segments:
            self._fd = os.open(self._segments[-1].path, os.O_WRONLY)
            self._size = size
        else:
            self._rotate()
        self.broken = False

    # --- Storage protocol, served by the cache
    def initial_state(self) -> tuple[HardState, ConfState]:
        return self.memory.initial_state()

    def entries(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]:
        return self.memory.entries(lo, hi, max_size)

    def term(self, i: int) -> int:
        return self.memory.term(i)

    def first_index(self) -> int:
        return self.memory.first_index()

    def last_index(self) -> int:
        return self.memory.last_index()

    def snapshot(self) -> Snapshot:
        """The newest snapshot's metadata, without its data (`snapshot_file` says where that is)."""
        return self.memory.snapshot()

    def snapshot_file(self) -> SnapshotFile:
        """Where the newest snapshot's data lies, to stream it to a follower (it reads only the
        metadata record). It may be newer than `snapshot()` while a local snapshot is cached."""
        path = newest_snapshot_file(self.snap_dir)
        if path is None:
            raise FileNotFoundError(f"no snapshot file in {self.snap_dir}")
        with open(path, "rb") as f:
            header = read_frame(f, MAX_SNAPSHOT_BYTES)
            if isinstance(header, str):
                raise SnapshotFileCorruptError(f"snapshot {path} is corrupt: {header}")
            offset = f.tell()
            length = os.fstat(f.fileno()).st_size - offset
        metadata = codec.snapshot_from_pb(raft_pb2.Snapshot.FromString(header)).metadata
        return SnapshotFile(metadata, RecordSpan(path, offset, length))

    # --- what MemoryStorage offers to writers (RawNode.bootstrap uses these): durable, then cached
    def set_hard_state(self, hs: HardState) -> None:
        self.persist(hs, [], None)
        self.cache(hs, [], None)

    def append(self, entries: list[Entry]) -> None:
        self.persist(None, entries, None)
        self.cache(None, entries, None)

    def apply_snapshot(self, snap: Snapshot) -> None:
        self.persist(None, [], snap)
        self.cache(None, [], snap)

    # --- the driver's two steps for each Ready
    def persist(self, hs: HardState | None, entries: list[Entry], snap: Snapshot | None) -> None:
        """Make a Ready's state durable: snapshot file first, then one WAL write and one fdatasync."""
        with self._lock:
            if self.broken:
                raise OSError("an earlier Raft log write failed half way; restart the member")
            if snap is not None:
                save_snapshot_file(self.snap_dir, snap.metadata, [snap.data])
            parts = []
            if snap is not None:
                parts.append(encode_snapshot_marker(snap.metadata.index, snap.metadata.term))
            parts.extend(encode_entry(e) for e in entries)
            if hs is not None:
                parts.append(encode_hard_state(hs))
            if not parts:
                return
            buffer = b"".join(parts)
            try:
                append_synced(self._fd, self._size, buffer)
            except WalBrokenError:
                self.broken = True
                raise
            self._size += len(buffer)
            segment = self._segments[-1]
            if entries:
                segment.max_index = max(segment.max_index, entries[-1].index)
            if snap is not None:
                segment.max_index = max(segment.max_index, snap.metadata.index)
            if hs is not None:
                self.hard_state = hs
            if self._size >= SEGMENT_BYTES:
                self._rotate()

    def save(self, hs: HardState | None, entries: list[Entry], snap: Snapshot | None) -> None:
        """persist, then cache: for callers that do both in one thread."""
        self.persist(hs, entries, snap)
        self.cache(hs, entries, snap)

    def cache(self, hs: HardState | None, entries: list[Entry], snap: Snapshot | None) -> None:
        """Mirror what `persist` made durable into the cache the core reads (a snapshot without
        its data)."""
        if snap is not None:
            self.memory.apply_snapshot(Snapshot(snap.metadata))
        if entries:
            self.memory.append(entries)
        if hs is not None:
            self.memory.set_hard_state(hs)

    def create_snapshot(self, index: int, conf_state: ConfState) -> Snapshot:
        """Cache side of a local snapshot at `index`, once `save_local_snapshot` wrote it."""
        return self.memory.create_snapshot(index, conf_state, b"")

    def save_local_snapshot(self, metadata: SnapshotMetadata, data: Sequence[bytes]) -> Path:
        """Blocking: write the snapshot file from the parts of its data, start a new segment, drop
        segments it covers."""
        path = save_snapshot_file(self.snap_dir, metadata, data)
        with self._lock:
            self._rotate()
            keep = []
            for segment in self._segments[:-1]:
                if segment.max_index <= metadata.index:
                    segment.path.unlink(missing_ok=True)
                else:
                    keep.append(segment)
            keep.append(self._segments[-1])
            if len(keep) != len(self._segments):
                fsync_dir(self.wal_dir)
            self._segments = keep
        return path

    def compact_cache(self, snapshot_index: int) -> None:
        """Drop cached entries well before a durable snapshot, keeping some for slow followers."""
        target = snapshot_index - self.catch_up_entries
        if target > self.memory.first_index():
            self.memory.compact(target)

    def _rotate(self) -> None:
        seq = self._segments[-1].seq + 1 if self._segments else 1
        path = self.wal_dir / _segment_name(seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        record = encode_hard_state(self.hard_state) if hasattr(self, "hard_state") else b""
        if record:
            os.write(fd, record)
        os.fsync(fd)
        fsync_dir(self.wal_dir)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = fd
        self._size = len(record)
        self._segments.append(_Segment(seq, path))

    @property
    def segment_paths(self) -> list[Path]:
        return [s.path for s in self._segments]

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
