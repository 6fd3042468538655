"""The single-member write-ahead log of etcdlite before Raft, and the record framing both logs use.

Members now keep their log in the Raft log (etcdlite.raft.durable), which reuses `frame`,
`parse_frame`, `fsync_dir` and `WalCorruptError` from here; `WriteAheadLog` remains so that a data
dir written before Raft can be read once and moved into a Raft log (EtcdServer._migrate_to_raft).

An entry is acknowledged only after `append` returned, i.e. after its bytes were written and
fdatasync'ed. Files live in one directory, each segment named by the index of its first
entry (`%016x.wal`); a new segment starts whenever a snapshot is taken, so whole old segments
can be dropped once the snapshot covering them is durable.

Record framing: u32 length | u32 CRC32(payload) | payload, little endian; payload is
u8 record type | u64 index | u64 term | entry data. On open, a bad or short record at the end
of the last segment (a write torn by a crash, never acknowledged) is cut with a warning; a bad
record with valid records after it, or in any earlier segment, is corruption: opening refuses
and names the file and offset. Touches only files in its directory; no asyncio (callers run
`append` in a worker thread).
"""

from __future__ import annotations

import enum
import logging
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

FRAME = struct.Struct("<II")  # u32 length, u32 CRC32 of the payload
_ENTRY = struct.Struct("<BQQ")
# Larger than any request etcdlite accepts (max-request-bytes is capped below this).
MAX_RECORD_BYTES = 256 * 1024 * 1024
SEGMENT_SUFFIX = ".wal"


class RecordType(enum.IntEnum):
    ENTRY = 1


@dataclass(frozen=True)
class LogEntry:
    index: int
    term: int
    data: bytes


class WalCorruptError(Exception):
    """The log cannot be trusted; starting would risk losing or inventing acknowledged writes."""

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        super().__init__(f"write-ahead log {path} is corrupt at offset {offset}: {reason}; refusing to start")
        self.path = path
        self.offset = offset


class WalBrokenError(OSError):
    """An earlier failed write could not be rolled back; no further writes are safe."""


def frame(payload: bytes) -> bytes:
    """A record as stored: length and CRC32 of the payload, then the payload."""
    return FRAME.pack(len(payload), zlib.crc32(payload)) + payload


@dataclass(frozen=True)
class RecordSpan:
    """Where one record, as framed on disk (header and payload), lies in a file."""

    path: Path
    offset: int
    length: int


def crc32_of(parts: Sequence[bytes]) -> int:
    """The CRC32 of the parts' concatenation, without building it."""
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    return crc


def frame_header(parts: Sequence[bytes]) -> bytes:
    """The header frame() would put before the parts' concatenation, without building it."""
    return FRAME.pack(sum(map(len, parts)), crc32_of(parts))


def read_frame(f: BinaryIO, max_length: int) -> bytes | str:
    """The payload of the record at the file's position (read in one piece, not sliced out of
    the whole file), or why there is no valid one."""
    header = f.read(FRAME.size)
    if len(header) < FRAME.size:
        return "short record header"
    length, crc = FRAME.unpack(header)
    if length > max_length:
        return f"impossible record length {length}"
    payload = f.read(length)
    if len(payload) != length:
        return f"record of {length} bytes runs past the end of the file"
    if zlib.crc32(payload) != crc:
        return "checksum mismatch"
    return payload


def parse_frame(data: bytes, offset: int, min_length: int = 1) -> tuple[bytes, int] | str:
    """The payload of the record at `offset` and the offset after it, or why there is no valid one."""
    if offset + FRAME.size > len(data):
        return "short record header"
    length, crc = FRAME.unpack_from(data, offset)
    if length < min_length or length > MAX_RECORD_BYTES:
        return f"impossible record length {length}"
    end = offset + FRAME.size + length
    if end > len(data):
        return f"record of {length} bytes runs past the end of the file"
    payload = data[offset + FRAME.size : end]
    if zlib.crc32(payload) != crc:
        return "checksum mismatch"
    return payload, end


def encode_record(entry: LogEntry) -> bytes:
    return frame(_ENTRY.pack(RecordType.ENTRY, entry.index, entry.term) + entry.data)


def _parse_record(data: bytes, offset: int) -> tuple[LogEntry, int] | str:
    """The entry at `offset` and the offset after it, or why there is no valid record there."""
    parsed = parse_frame(data, offset, _ENTRY.size)
    if isinstance(parsed, str):
        return parsed
    payload, end = parsed
    record_type, index, term = _ENTRY.unpack_from(payload)
    if record_type != RecordType.ENTRY:
        return f"unknown record type {record_type}"
    return LogEntry(index, term, payload[_ENTRY.size :]), end


def _valid_record_after(data: bytes, offset: int, after_index: int) -> bool:
    """Is there any intact record past a bad one? Then the bad one is not a torn tail."""
    for start in range(offset + 1, len(data) - FRAME.size - _ENTRY.size + 1):
        parsed = _parse_record(data, start)
        if not isinstance(parsed, str) and parsed[0].index > after_index:
            return True
    return False


def _segment_name(first_index: int) -> str:
    return f"{first_index:016x}{SEGMENT_SUFFIX}"


def fsync_dir(directory: Path) -> None:
    """Make a create, rename or unlink in directory durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append_synced(fd: int, size: int, buffer: bytes) -> None:
    """Write buffer at offset size and fdatasync. On failure cut the file back to size so the log
    stays clean and raise the error; if even that fails, raise WalBrokenError (restart needed)."""
    try:
        written = 0
        while written < len(buffer):
            written += os.pwrite(fd, buffer[written:], size + written)
        os.fdatasync(fd)
    except OSError as err:
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        except OSError:
            log.exception("write-ahead log could not be rolled back after a failed write")
            raise WalBrokenError(f"write failed and could not be rolled back: {err}") from err
        raise


class WriteAheadLog:
    """Appends entries durably; opened with `WriteAheadLog.open`, which also recovers the entries."""

    def __init__(self, directory: Path, segments: list[tuple[int, Path]], size: int) -> None:
        self.directory = directory
        self._segments = segments  # (first index, path), ascending; the last one is appended to
        self._fd = os.open(segments[-1][1], os.O_WRONLY)
        self._size = size
        self._broken = False

    @classmethod
    def open(cls, directory: Path, after_index: int) -> tuple[WriteAheadLog, list[LogEntry]]:
        """Recover every entry after `after_index` (the snapshot's), repairing a torn tail."""
        directory.mkdir(parents=True, exist_ok=True)
        segments: list[tuple[int, Path]] = []
        for path in sorted(directory.glob("*" + SEGMENT_SUFFIX)):
            try:
                segments.append((int(path.stem, 16), path))
            except ValueError:
                log.warning("ignoring %s: not a WAL segment name", path)
        if not segments:
            path = directory / _segment_name(after_index + 1)
            path.touch()
            fsync_dir(directory)
            return cls(directory, [(after_index + 1, path)], 0), []

        entries: list[LogEntry] = []
        last_index: int | None = None
        size = 0
        tail_last_index: int | None = None  # last entry in the last segment
        for position, (first_index, path) in enumerate(segments):
            is_last = position == len(segments) - 1
            data = path.read_bytes()
            offset = 0
            while offset < len(data):
                parsed = _parse_record(data, offset)
                if isinstance(parsed, str):
                    if is_last and not _valid_record_after(data, offset, last_index or 0):
                        log.warning(
                            "cutting torn tail of write-ahead log %s at offset %d (%s, %d bytes dropped)",
                            path,
                            offset,
                            parsed,
                            len(data) - offset,
                        )
                        with open(path, "r+b") as f:
                            f.truncate(offset)
                            os.fsync(f.fileno())
                        break
                    raise WalCorruptError(path, offset, parsed)
                entry, next_offset = parsed
                if offset == 0 and entry.index != first_index:
                    raise WalCorruptError(
                        path, offset, f"segment named for entry {first_index} starts with entry {entry.index}"
                    )
                # a jump is fine only where the snapshot covers the entries skipped
                if last_index is not None and entry.index != last_index + 1 and entry.index - 1 > after_index:
                    raise WalCorruptError(
                        path, offset, f"entry {entry.index} follows entry {last_index}: entries are missing"
                    )
                last_index = entry.index
                if is_last:
                    tail_last_index = entry.index
                if entry.index > after_index:
                    entries.append(entry)
                offset = next_offset
            if is_last:
                size = offset
        if entries and entries[0].index != after_index + 1:
            reason = f"first entry after the snapshot is {entries[0].index}, not {after_index + 1}"
            raise WalCorruptError(segments[0][1], 0, reason)
        wal = cls(directory, segments, size)
        next_index = (entries[-1].index if entries else after_index) + 1
        if tail_last_index is None:
            appendable = segments[-1][0] == next_index
        else:
            appendable = tail_last_index == next_index - 1
        if not appendable:
            # The snapshot is ahead of the log's end: continue in a fresh segment after it.
            log.info("write-ahead log ends before snapshot entry %d; starting a new segment", after_index)
            wal.rotate(next_index)
            wal.drop_before(next_index)
        return wal, entries

    @property
    def segment_paths(self) -> list[Path]:
        return [path for _, path in self._segments]

    def append(self, entries: list[LogEntry]) -> None:
        """Write and fdatasync; on failure roll the segment back so the log stays clean, and raise."""
        if self._broken:
            raise WalBrokenError("an earlier write could not be rolled back; restart the member")
        buffer = b"".join(encode_record(entry) for entry in entries)
        try:
            append_synced(self._fd, self._size, buffer)
        except WalBrokenError:
            self._broken = True
            raise
        self._size += len(buffer)

    def rotate(self, next_index: int) -> None:
        """Continue in a new segment whose first entry will be `next_index`."""
        path = self.directory / _segment_name(next_index)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fsync(fd)
        fsync_dir(self.directory)
        os.close(self._fd)
        self._fd = fd
        self._size = 0
        self._segments.append((next_index, path))

    def drop_before(self, index: int) -> None:
        """Delete whole segments that hold only entries before `index` (a durable snapshot covers them)."""
        keep: list[tuple[int, Path]] = []
        dropped = False
        for position, (first_index, path) in enumerate(self._segments):
            following = self._segments[position + 1][0] if position + 1 < len(self._segments) else None
            if following is not None and following <= index:
                path.unlink(missing_ok=True)
                dropped = True
            else:
                keep.append((first_index, path))
        self._segments = keep
        if dropped:
            fsync_dir(self.directory)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
