"""The raftpb codec: every Raft value survives a round trip through protobuf bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etcdlite.raft import codec
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

u64 = st.integers(min_value=0, max_value=2**64 - 1)
entries = st.builds(Entry, term=u64, index=u64, type=st.sampled_from(EntryType), data=st.binary(max_size=64))
conf_states = st.builds(
    ConfState, voters=st.lists(u64, max_size=5).map(tuple), learners=st.lists(u64, max_size=3).map(tuple)
)
snapshots = st.builds(
    Snapshot,
    metadata=st.builds(SnapshotMetadata, index=u64, term=u64, conf_state=conf_states),
    data=st.binary(max_size=64),
)
messages = st.builds(
    Message,
    type=st.sampled_from(MessageType),
    to=u64,
    frm=u64,
    term=u64,
    log_term=u64,
    index=u64,
    entries=st.lists(entries, max_size=4).map(tuple),
    commit=u64,
    snapshot=st.none() | snapshots,
    reject=st.booleans(),
    reject_hint=u64,
    context=st.binary(max_size=16),
)


@given(messages)
def test_message_round_trips_through_bytes(message):
    wire = codec.message_to_pb(message).SerializeToString()
    assert codec.message_from_pb(raft_pb2.Message.FromString(wire)) == message


@given(snapshots)
def test_snapshot_round_trips(snapshot):
    wire = codec.snapshot_to_pb(snapshot).SerializeToString()
    assert codec.snapshot_from_pb(raft_pb2.Snapshot.FromString(wire)) == snapshot


@given(st.builds(HardState, term=u64, vote=u64, commit=u64))
def test_hard_state_round_trips(hs):
    assert codec.hard_state_from_pb(codec.hard_state_to_pb(hs)) == hs


@given(
    st.builds(ConfChange, type=st.sampled_from(ConfChangeType), node_id=u64, context=st.binary(max_size=16))
)
def test_conf_change_round_trips(cc):
    assert codec.conf_change_from_pb(codec.conf_change_to_pb(cc)) == cc


def test_message_uses_etcd_names_on_the_wire():
    pb = codec.message_to_pb(Message(MessageType.APP, to=2, frm=1, entries=(Entry(1, 1, data=b"x"),)))
    assert raft_pb2.MessageType.Name(pb.type) == "MsgApp"
    assert getattr(pb, "from") == 1 and pb.entries[0].Data == b"x"
    assert not pb.HasField("snapshot")


def test_unknown_types_are_refused():
    with pytest.raises(codec.CodecError):
        codec.message_from_pb(raft_pb2.Message(type=99))
    with pytest.raises(codec.CodecError):
        codec.conf_change_from_pb(raft_pb2.ConfChange(Type=raft_pb2.ConfChangeUpdateNode))
