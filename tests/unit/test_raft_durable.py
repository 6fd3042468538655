"""The durable Raft log: what was persisted comes back after a restart, torn tails are cut,
corruption refuses to start, and a conflicting suffix is overwritten as in etcd's WAL."""

from __future__ import annotations

from pathlib import Path

import pytest

from etcdlite.raft import codec
from etcdlite.raft.durable import DurableStorage, SnapshotFileCorruptError
from etcdlite.raft.errors import CompactedError
from etcdlite.raft.types import ConfState, Entry, EntryType, HardState, Snapshot, SnapshotMetadata
from etcdlite.wal import WalCorruptError, frame, parse_frame


def ents(first: int, last: int, term: int, tag: bytes = b"") -> list[Entry]:
    return [Entry(term=term, index=i, data=tag + str(i).encode()) for i in range(first, last + 1)]


def data_record(log: DurableStorage) -> tuple[SnapshotMetadata, bytes]:
    """What a follower would be sent: the newest snapshot's metadata, and its data record read
    where `snapshot_file` says it lies."""
    source = log.snapshot_file()
    span = source.data
    record = span.path.read_bytes()[span.offset : span.offset + span.length]
    assert len(record) == span.length
    payload, end = parse_frame(record, 0, min_length=0)
    assert end == len(record)
    return source.metadata, payload


def reopen(path, **kwargs) -> DurableStorage:
    storage = DurableStorage(path, **kwargs)
    return storage


def test_restart_recovers_hard_state_and_entries(tmp_path):
    log = reopen(tmp_path)
    log.save(HardState(term=2, vote=7, commit=3), ents(1, 5, 2), None)
    log.close()
    log = reopen(tmp_path)
    assert log.initial_state()[0] == HardState(term=2, vote=7, commit=3)
    assert (log.first_index(), log.last_index()) == (1, 5)
    assert log.entries(1, 6) == ents(1, 5, 2)
    assert log.term(4) == 2


def test_conflicting_suffix_is_overwritten_and_stays_overwritten(tmp_path):
    log = reopen(tmp_path)
    log.save(HardState(term=1, vote=1, commit=2), ents(1, 6, 1, b"old"), None)
    log.save(HardState(term=3, vote=2, commit=2), ents(4, 5, 3, b"new"), None)
    log.close()
    log = reopen(tmp_path)
    assert log.last_index() == 5, "entries after the overwritten ones are gone"
    assert log.entries(1, 6) == ents(1, 3, 1, b"old") + ents(4, 5, 3, b"new")


def test_torn_tail_is_cut_with_a_warning(tmp_path, caplog):
    log = reopen(tmp_path)
    log.save(HardState(term=1, commit=2), ents(1, 2, 1), None)
    log.save(None, ents(3, 3, 1), None)
    (segment,) = log.segment_paths
    log.close()
    data = segment.read_bytes()
    segment.write_bytes(data[:-5])  # the last record half written
    log = reopen(tmp_path)
    assert "torn tail" in caplog.text
    assert log.last_index() == 2
    log.save(None, ents(3, 4, 1), None)
    log.close()
    assert reopen(tmp_path).last_index() == 4, "appends after the cut are readable"


def test_corruption_in_the_middle_refuses_naming_file_and_offset(tmp_path):
    log = reopen(tmp_path)
    log.save(HardState(term=1, commit=1), ents(1, 1, 1), None)
    log.save(None, ents(2, 2, 1), None)
    log.save(None, ents(3, 3, 1), None)
    (segment,) = log.segment_paths
    log.close()
    data = bytearray(segment.read_bytes())
    second = data.find(b"2", len(data) // 2 - 30)  # somewhere inside a middle record
    data[second] ^= 0xFF
    segment.write_bytes(bytes(data))
    with pytest.raises(WalCorruptError) as info:
        reopen(tmp_path)
    assert str(segment) in str(info.value) and "offset" in str(info.value)


def test_local_snapshot_drops_covered_segments_and_restart_starts_from_it(tmp_path):
    log = reopen(tmp_path, catch_up_entries=2)
    cs = ConfState(voters=(1,))
    log.save(HardState(term=1, vote=1, commit=10), ents(1, 10, 1), None)
    old_segments = log.segment_paths
    log.save_local_snapshot(SnapshotMetadata(index=8, term=1, conf_state=cs), [b"state ", b"at 8"])
    log.create_snapshot(8, cs)
    log.compact_cache(8)
    assert log.first_index() == 7, "two entries kept before the snapshot for slow followers"
    log.save(HardState(term=1, vote=1, commit=11), ents(11, 11, 1), None)
    metadata = SnapshotMetadata(index=11, term=1, conf_state=cs)
    log.save_local_snapshot(metadata, [b"state", b" at ", b"11"])
    log.create_snapshot(11, cs)
    assert not any(p.exists() for p in old_segments), "segments wholly covered are deleted"
    assert log.snapshot() == Snapshot(metadata), "the cache keeps no snapshot data"
    assert data_record(log) == (metadata, b"state at 11"), "the file has it"
    log.close()
    log = reopen(tmp_path)
    assert log.snapshot() == Snapshot(metadata)
    assert log.recovered.snapshot == Snapshot(metadata, b"state at 11")
    assert log.initial_state() == (HardState(term=1, vote=1, commit=11), cs)
    assert log.first_index() == 12 and log.last_index() == 11
    with pytest.raises(CompactedError):
        log.entries(5, 6)


def test_received_snapshot_replaces_the_log_across_restart(tmp_path):
    log = reopen(tmp_path)
    log.save(HardState(term=1, commit=2), ents(1, 5, 1), None)
    snap = Snapshot(SnapshotMetadata(index=20, term=3, conf_state=ConfState(voters=(1, 2, 3))), b"leader's")
    log.save(HardState(term=3, commit=20), [], snap)
    log.save(None, ents(21, 22, 3), None)
    log.close()
    assert log.snapshot() == Snapshot(snap.metadata) and data_record(log) == (snap.metadata, snap.data)
    log = reopen(tmp_path)
    assert log.recovered.snapshot == snap and log.snapshot() == Snapshot(snap.metadata)
    assert (log.first_index(), log.last_index()) == (21, 22)
    assert log.entries(21, 23) == ents(21, 22, 3)


def saved_snapshot_file(tmp_path, data: bytes) -> Path:
    """A log of 3 entries with a local snapshot at 3 holding `data`, closed; its snapshot file."""
    log = reopen(tmp_path)
    log.save(HardState(term=1, commit=3), ents(1, 3, 1), None)
    path = log.save_local_snapshot(SnapshotMetadata(index=3, term=1, conf_state=ConfState((1,))), [data])
    log.close()
    return path


def test_corrupt_snapshot_file_refuses_to_start(tmp_path):
    path = saved_snapshot_file(tmp_path, b"x" * 100)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(SnapshotFileCorruptError, match=str(path)):
        reopen(tmp_path)


def test_a_snapshot_file_that_lost_its_data_record_refuses_to_start(tmp_path):
    """Not taken for the earlier layout (and rewritten with no data): the file is named as corrupt."""
    path = saved_snapshot_file(tmp_path, b"x" * 100)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - len(frame(b"x" * 100))])
    with pytest.raises(SnapshotFileCorruptError, match=f"{path}.*data record is missing"):
        reopen(tmp_path)
    assert path.read_bytes() == whole[: len(whole) - len(frame(b"x" * 100))], "left as found"


def test_a_snapshot_file_with_the_data_inside_its_first_record_is_still_read(tmp_path):
    """The layout before the data got a record of its own: one framed raftpb.Snapshot."""
    metadata = SnapshotMetadata(index=4, term=2, conf_state=ConfState(voters=(1, 2)))
    snap_dir = tmp_path / "snap"
    snap_dir.mkdir()
    (snap_dir / f"{2:016x}-{4:016x}.snap").write_bytes(
        frame(codec.snapshot_to_pb(Snapshot(metadata, b"old layout")).SerializeToString())
    )
    log = reopen(tmp_path)
    assert log.recovered.snapshot == Snapshot(metadata, b"old layout")
    assert data_record(log) == (metadata, b"old layout"), "rewritten in the current layout"


def test_bootstrap_writes_through_the_storage_api(tmp_path):
    log = reopen(tmp_path)
    cc = [Entry(term=1, index=1, type=EntryType.CONF_CHANGE, data=b"\x00" + bytes(8))]
    log.append(cc)
    log.set_hard_state(HardState(term=1, commit=1))
    log.close()
    log = reopen(tmp_path)
    assert log.entries(1, 2) == cc and log.initial_state()[0].commit == 1
