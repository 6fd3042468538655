"""What a Raft log entry and a Raft snapshot carry: bytes that are on every member's disk and wire."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from etcdlite.envelope import (
    EntryKind,
    Envelope,
    decode_entry,
    decode_snapshot_data,
    encode_entry,
    encode_snapshot_data,
    snapshot_data_parts,
)
from etcdlite.mvcc import MvccStore
from kubelite.pb.etcdserverpb import rpc_pb2
from kubelite.pb.raftpb import raft_pb2

u64 = st.integers(min_value=0, max_value=2**64 - 1)


@given(kind=st.sampled_from(EntryKind), proposer=u64, request_id=u64, payload=st.binary())
def test_an_entry_decodes_to_what_was_encoded(kind, proposer, request_id, payload) -> None:
    data = encode_entry(kind, proposer, request_id, payload)
    assert decode_entry(data) == Envelope(kind, proposer, request_id, payload)


def test_the_envelope_is_kind_then_member_then_request_id_little_endian() -> None:
    data = encode_entry(EntryKind.ALARM, 0x0102030405060708, 9, b"payload")
    assert data == bytes([4, 8, 7, 6, 5, 4, 3, 2, 1, 9, 0, 0, 0, 0, 0, 0, 0]) + b"payload"


def test_a_new_leaders_empty_entry_carries_no_envelope() -> None:
    assert decode_entry(b"") is None
    assert decode_entry(bytes(16)) is None  # one byte short of the header
    assert decode_entry(bytes(17)) == Envelope(0, 0, 0, b"")


def test_a_kind_this_version_does_not_know_still_decodes() -> None:
    envelope = decode_entry(bytes([99]) + bytes(16) + b"x")
    assert envelope is not None
    assert envelope.kind == 99 and envelope.payload == b"x"


def test_a_snapshot_carries_the_member_list_and_the_store() -> None:
    store = MvccStore()
    store.apply(1, rpc_pb2.PutRequest(key=b"k", value=b"v"))
    members = raft_pb2.MemberSet(
        members=[rpc_pb2.Member(ID=1, name="a", peerURLs=["http://a:2380"])],
        removed=[7],
        alarms=[rpc_pb2.AlarmMember(memberID=1, alarm=rpc_pb2.NOSPACE)],
    )
    data = encode_snapshot_data(members, store.snapshot())
    assert data == b"".join(snapshot_data_parts(members, store.snapshot()))
    decoded_members, decoded_store = decode_snapshot_data(data)
    assert decoded_members == members
    assert decoded_store == store.snapshot()
    assert int.from_bytes(data[:4], "little") == members.ByteSize()  # u32 length, then the members
