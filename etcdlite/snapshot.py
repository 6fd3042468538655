"""Snapshots of the MVCC store: a checksummed byte encoding, and atomic files in the snapshot directory.

The encoding is the store part of every Raft snapshot (etcdlite.raftdriver); the files are those
of the single-member log before Raft, read once when such a data dir is moved into a Raft log.

A snapshot file `%016x.snap` (named by the last applied entry it contains) is written to a
temporary file, fsynced, renamed into place and the directory fsynced, so a crash leaves
either the old snapshot or the new one, never half of one. Only the newest is kept. The same
bytes are what Raft will send to a member that fell behind (InstallSnapshot).

Layout, little endian: magic | u64 applied index | i64 revision | i64 compact revision |
u32 leases | u32 base records | u32 changes | leases (i64 id, i64 ttl)* | records* | u32 CRC32 of
all before it. A record is u32 key length | u32 value length | i64 create | i64 mod |
i64 version | i64 lease | key | value. Touches only files in its directory.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from pathlib import Path

from etcdlite.mvcc import KeyRecord, StoreSnapshot
from etcdlite.wal import crc32_of, fsync_dir

log = logging.getLogger(__name__)

MAGIC = b"etcdlite-snap\x00v1"
_HEADER = struct.Struct("<QqqIII")
_LEASE = struct.Struct("<qq")
_RECORD = struct.Struct("<IIqqqq")
_CRC = struct.Struct("<I")
SUFFIX = ".snap"


class SnapshotCorruptError(Exception):
    """A snapshot file cannot be decoded; starting without it would lose acknowledged writes."""


def encode(snapshot: StoreSnapshot) -> bytes:
    return b"".join(encode_parts(snapshot))


def encode_parts(snapshot: StoreSnapshot) -> list[bytes]:
    """The encoding as a list of parts that share the store's keys and values: written out one
    after the other they are `encode(snapshot)`, without a copy of the whole store in memory."""
    parts = [
        MAGIC,
        _HEADER.pack(
            snapshot.applied_index,
            snapshot.revision,
            snapshot.compact_revision,
            len(snapshot.leases),
            len(snapshot.base),
            len(snapshot.changes),
        ),
    ]
    parts.extend(_LEASE.pack(lease_id, ttl) for lease_id, ttl in snapshot.leases.items())
    pack = _RECORD.pack
    for records in (snapshot.base, snapshot.changes):
        for r in records:
            parts.append(
                pack(len(r.key), len(r.value), r.create_revision, r.mod_revision, r.version, r.lease)
            )
            parts.append(r.key)
            parts.append(r.value)
    parts.append(_CRC.pack(crc32_of(parts)))
    return parts


def decode(data: bytes | memoryview) -> StoreSnapshot:
    """Keys and values are copied out one by one; the whole encoding is never copied."""
    view = memoryview(data)
    if len(view) < len(MAGIC) + _HEADER.size + _CRC.size or bytes(view[: len(MAGIC)]) != MAGIC:
        raise SnapshotCorruptError("not an etcdlite snapshot (bad magic or too short)")
    body, (crc,) = view[: -_CRC.size], _CRC.unpack_from(view, len(view) - _CRC.size)
    if zlib.crc32(body) != crc:
        raise SnapshotCorruptError("checksum mismatch")
    offset = len(MAGIC)
    applied_index, revision, compact_revision, n_leases, n_base, n_changes = _HEADER.unpack_from(body, offset)
    offset += _HEADER.size
    leases: dict[int, int] = {}
    for _ in range(n_leases):
        lease_id, ttl = _LEASE.unpack_from(body, offset)
        leases[lease_id] = ttl
        offset += _LEASE.size
    lists: list[list[KeyRecord]] = []
    unpack = _RECORD.unpack_from
    for count in (n_base, n_changes):
        records: list[KeyRecord] = []
        for _ in range(count):
            key_len, value_len, create, mod, version, lease = unpack(body, offset)
            offset += _RECORD.size
            key = bytes(body[offset : offset + key_len])
            offset += key_len
            value = bytes(body[offset : offset + value_len])
            offset += value_len
            records.append(KeyRecord(key, create, mod, version, value, lease))
        lists.append(records)
    if offset != len(body):
        raise SnapshotCorruptError(f"{len(body) - offset} unexpected bytes after the last record")
    return StoreSnapshot(applied_index, revision, compact_revision, leases, lists[0], lists[1])


def save(directory: Path, snapshot: StoreSnapshot) -> Path:
    """Write atomically and durably, then delete older snapshots. Blocking: run it in a thread."""
    directory.mkdir(parents=True, exist_ok=True)
    data = encode(snapshot)
    path = directory / f"{snapshot.applied_index:016x}{SUFFIX}"
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(directory)
    for older in directory.glob("*" + SUFFIX):
        if older != path:
            older.unlink(missing_ok=True)
    return path


def load_latest(directory: Path) -> tuple[Path, StoreSnapshot] | None:
    """The newest snapshot, or None on a fresh member. Raises SnapshotCorruptError naming the file."""
    if not directory.is_dir():
        return None
    for leftover in directory.glob("*.tmp"):
        log.info("removing unfinished snapshot %s", leftover)
        leftover.unlink(missing_ok=True)
    paths = sorted(directory.glob("*" + SUFFIX))
    if not paths:
        return None
    path = paths[-1]
    try:
        return path, decode(path.read_bytes())
    except (SnapshotCorruptError, struct.error) as exc:
        raise SnapshotCorruptError(f"snapshot {path} is corrupt: {exc}; refusing to start") from None
