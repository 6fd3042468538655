"""What etcdlite's Raft log entries and Raft snapshots carry, as bytes.

An entry's data is an envelope, u8 kind | u64 proposing member | u64 request id | payload
(little-endian), so that the member that proposed a write answers its client when it applies the
entry (a write sent to a follower is forwarded to the leader by Raft and answered by the
follower). A snapshot's data is u32 length | the member list (raftpb.MemberSet) | the MVCC store
(etcdlite.snapshot). Both are on every member's disk and wire: change neither. Pure: bytes in,
bytes out; touches nothing.
"""

from __future__ import annotations

import enum
import struct
from typing import NamedTuple

from etcdlite import snapshot as store_snapshots
from etcdlite.mvcc import StoreSnapshot
from kubelite.pb.raftpb import raft_pb2

_ENVELOPE = struct.Struct("<BQQ")
_LENGTH = struct.Struct("<I")


class EntryKind(enum.IntEnum):
    REQUEST = 1
    MEMBER_ATTRIBUTES = 2  # a member's name and client URLs (etcd's publish)
    MEMBER_PEER_URLS = 3  # a member's new peer URLs (etcd's MemberUpdate)
    ALARM = 4  # an etcd AlarmRequest that raises or clears an alarm


class Envelope(NamedTuple):
    """A decoded entry. `kind` stays a plain int: a log may hold kinds this version does not know."""

    kind: int
    proposer: int
    request_id: int
    payload: bytes


def encode_entry(kind: EntryKind, proposer: int, request_id: int, payload: bytes) -> bytes:
    return _ENVELOPE.pack(kind, proposer, request_id) + payload


def decode_entry(data: bytes) -> Envelope | None:
    """None for data too short to hold an envelope: the empty entry a new leader appends."""
    if len(data) < _ENVELOPE.size:
        return None
    kind, proposer, request_id = _ENVELOPE.unpack_from(data)
    return Envelope(kind, proposer, request_id, data[_ENVELOPE.size :])


def snapshot_data_parts(members: raft_pb2.MemberSet, store: StoreSnapshot) -> list[bytes]:
    """A Raft snapshot's data, as parts to write one after the other (etcdlite.snapshot.encode_parts)."""
    member_bytes = members.SerializeToString()
    parts = [_LENGTH.pack(len(member_bytes)), member_bytes]
    parts.extend(store_snapshots.encode_parts(store))
    return parts


def encode_snapshot_data(members: raft_pb2.MemberSet, store: StoreSnapshot) -> bytes:
    return b"".join(snapshot_data_parts(members, store))


def decode_snapshot_data(data: bytes) -> tuple[raft_pb2.MemberSet, StoreSnapshot]:
    view = memoryview(data)
    (length,) = _LENGTH.unpack_from(view)
    members = raft_pb2.MemberSet.FromString(bytes(view[_LENGTH.size : _LENGTH.size + length]))
    return members, store_snapshots.decode(view[_LENGTH.size + length :])
