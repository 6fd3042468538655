"""Conversions between the Raft core's dataclasses and their raftpb protobuf form (wire and disk).

Pure: no IO. Every type of `etcdlite.raft.types` that crosses a socket or lands in the durable
log has a `*_to_pb` and a `*_from_pb` here, and the two are inverse.
"""

from __future__ import annotations

from typing import TypeVar, cast

from etcdlite.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
)
from kubelite.pb.raftpb import raft_pb2

# The core's enums carry raftpb's numbers as values. raftpb's enum values are plain ints at runtime,
# which its stubs call EntryType, MessageType and ConfChangeType: hence the casts in the *_to_pb.
_Kind = TypeVar("_Kind", EntryType, MessageType, ConfChangeType)


class CodecError(ValueError):
    """Bytes or a protobuf that do not describe a valid Raft value."""


def _kind(kinds: type[_Kind], number: int, what: str) -> _Kind:
    """The enum member for a raftpb enum number: the core's enums carry raftpb's numbers as values."""
    try:
        return kinds(number)
    except ValueError:
        raise CodecError(f"{what} {number}") from None


def entry_to_pb(entry: Entry) -> raft_pb2.Entry:
    return raft_pb2.Entry(
        Term=entry.term, Index=entry.index, Type=cast(raft_pb2.EntryType, entry.type.value), Data=entry.data
    )


def entry_from_pb(pb: raft_pb2.Entry) -> Entry:
    kind = _kind(EntryType, pb.Type, "unknown entry type")
    return Entry(term=pb.Term, index=pb.Index, type=kind, data=bytes(pb.Data))


def hard_state_to_pb(hs: HardState) -> raft_pb2.HardState:
    return raft_pb2.HardState(term=hs.term, vote=hs.vote, commit=hs.commit)


def hard_state_from_pb(pb: raft_pb2.HardState) -> HardState:
    return HardState(term=pb.term, vote=pb.vote, commit=pb.commit)


def conf_state_to_pb(cs: ConfState) -> raft_pb2.ConfState:
    return raft_pb2.ConfState(voters=list(cs.voters), learners=list(cs.learners))


def conf_state_from_pb(pb: raft_pb2.ConfState) -> ConfState:
    return ConfState(voters=tuple(pb.voters), learners=tuple(pb.learners))


def snapshot_to_pb(snap: Snapshot) -> raft_pb2.Snapshot:
    pb = raft_pb2.Snapshot()
    _fill_snapshot_pb(pb, snap)
    return pb


def _fill_snapshot_pb(pb: raft_pb2.Snapshot, snap: Snapshot) -> None:
    """In place: the data (a whole store) is copied once, not once per enclosing message."""
    meta = snap.metadata
    pb.data = snap.data
    pb.metadata.index = meta.index
    pb.metadata.term = meta.term
    pb.metadata.conf_state.CopyFrom(conf_state_to_pb(meta.conf_state))


def snapshot_from_pb(pb: raft_pb2.Snapshot) -> Snapshot:
    meta = pb.metadata
    return Snapshot(
        metadata=SnapshotMetadata(
            index=meta.index, term=meta.term, conf_state=conf_state_from_pb(meta.conf_state)
        ),
        data=bytes(pb.data),
    )


def message_to_pb(msg: Message) -> raft_pb2.Message:
    pb = raft_pb2.Message(
        type=cast(raft_pb2.MessageType, msg.type.value),
        to=msg.to,
        term=msg.term,
        logTerm=msg.log_term,
        index=msg.index,
        entries=[entry_to_pb(e) for e in msg.entries],
        commit=msg.commit,
        reject=msg.reject,
        rejectHint=msg.reject_hint,
        context=msg.context,
    )
    setattr(pb, "from", msg.frm)  # `from` is a Python keyword
    if msg.snapshot is not None:
        _fill_snapshot_pb(pb.snapshot, msg.snapshot)
    return pb


def message_from_pb(pb: raft_pb2.Message) -> Message:
    return Message(
        type=_kind(MessageType, pb.type, "unknown message type"),
        to=pb.to,
        frm=getattr(pb, "from"),
        term=pb.term,
        log_term=pb.logTerm,
        index=pb.index,
        entries=tuple(entry_from_pb(e) for e in pb.entries),
        commit=pb.commit,
        snapshot=snapshot_from_pb(pb.snapshot) if pb.HasField("snapshot") else None,
        reject=pb.reject,
        reject_hint=pb.rejectHint,
        context=bytes(pb.context),
    )


def conf_change_to_pb(cc: ConfChange) -> raft_pb2.ConfChange:
    return raft_pb2.ConfChange(
        Type=cast(raft_pb2.ConfChangeType, cc.type.value), NodeID=cc.node_id, Context=cc.context
    )


def conf_change_from_pb(pb: raft_pb2.ConfChange) -> ConfChange:
    kind = _kind(ConfChangeType, pb.Type, "unsupported conf change type")
    return ConfChange(type=kind, node_id=pb.NodeID, context=bytes(pb.Context))
