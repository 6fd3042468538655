"""Conversions between the Raft core's dataclasses and their raftpb protobuf form (wire and disk).

Pure: no IO. Every type of `etcdlite.raft.types` that crosses a socket or lands in the durable
log has a `*_to_pb` and a `*_from_pb` here, and the two are inverse.
"""

from __future__ import annotations

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

_ENTRY_TYPES = {
    EntryType.NORMAL: raft_pb2.EntryNormal,
    EntryType.CONF_CHANGE: raft_pb2.EntryConfChange,
}
_ENTRY_TYPES_BACK = {v: k for k, v in _ENTRY_TYPES.items()}

_MESSAGE_TYPES = {
    MessageType.HUP: raft_pb2.MsgHup,
    MessageType.BEAT: raft_pb2.MsgBeat,
    MessageType.PROP: raft_pb2.MsgProp,
    MessageType.APP: raft_pb2.MsgApp,
    MessageType.APP_RESP: raft_pb2.MsgAppResp,
    MessageType.VOTE: raft_pb2.MsgVote,
    MessageType.VOTE_RESP: raft_pb2.MsgVoteResp,
    MessageType.SNAP: raft_pb2.MsgSnap,
    MessageType.HEARTBEAT: raft_pb2.MsgHeartbeat,
    MessageType.HEARTBEAT_RESP: raft_pb2.MsgHeartbeatResp,
    MessageType.UNREACHABLE: raft_pb2.MsgUnreachable,
    MessageType.SNAP_STATUS: raft_pb2.MsgSnapStatus,
    MessageType.CHECK_QUORUM: raft_pb2.MsgCheckQuorum,
    MessageType.TRANSFER_LEADER: raft_pb2.MsgTransferLeader,
    MessageType.TIMEOUT_NOW: raft_pb2.MsgTimeoutNow,
    MessageType.READ_INDEX: raft_pb2.MsgReadIndex,
    MessageType.READ_INDEX_RESP: raft_pb2.MsgReadIndexResp,
    MessageType.PRE_VOTE: raft_pb2.MsgPreVote,
    MessageType.PRE_VOTE_RESP: raft_pb2.MsgPreVoteResp,
}
_MESSAGE_TYPES_BACK = {v: k for k, v in _MESSAGE_TYPES.items()}

_CONF_CHANGE_TYPES = {
    ConfChangeType.ADD_NODE: raft_pb2.ConfChangeAddNode,
    ConfChangeType.REMOVE_NODE: raft_pb2.ConfChangeRemoveNode,
    ConfChangeType.ADD_LEARNER_NODE: raft_pb2.ConfChangeAddLearnerNode,
}
_CONF_CHANGE_TYPES_BACK = {v: k for k, v in _CONF_CHANGE_TYPES.items()}


class CodecError(ValueError):
    """Bytes or a protobuf that do not describe a valid Raft value."""


def entry_to_pb(entry: Entry) -> raft_pb2.Entry:
    return raft_pb2.Entry(Term=entry.term, Index=entry.index, Type=_ENTRY_TYPES[entry.type], Data=entry.data)


def entry_from_pb(pb: raft_pb2.Entry) -> Entry:
    try:
        kind = _ENTRY_TYPES_BACK[pb.Type]
    except KeyError:
        raise CodecError(f"unknown entry type {pb.Type}") from None
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
    meta = snap.metadata
    return raft_pb2.Snapshot(
        data=snap.data,
        metadata=raft_pb2.SnapshotMetadata(
            conf_state=conf_state_to_pb(meta.conf_state), index=meta.index, term=meta.term
        ),
    )


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
        type=_MESSAGE_TYPES[msg.type],
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
        pb.snapshot.CopyFrom(snapshot_to_pb(msg.snapshot))
    return pb


def message_from_pb(pb: raft_pb2.Message) -> Message:
    try:
        kind = _MESSAGE_TYPES_BACK[pb.type]
    except KeyError:
        raise CodecError(f"unknown message type {pb.type}") from None
    return Message(
        type=kind,
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
    return raft_pb2.ConfChange(Type=_CONF_CHANGE_TYPES[cc.type], NodeID=cc.node_id, Context=cc.context)


def conf_change_from_pb(pb: raft_pb2.ConfChange) -> ConfChange:
    try:
        kind = _CONF_CHANGE_TYPES_BACK[pb.Type]
    except KeyError:
        raise CodecError(f"unsupported conf change type {pb.Type}") from None
    return ConfChange(type=kind, node_id=pb.NodeID, context=bytes(pb.Context))
