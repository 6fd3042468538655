"""The write-ahead log and snapshot files: recovery, torn tails, corruption, rotation, atomic snapshots."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from etcdlite import snapshot
from etcdlite.mvcc import MvccStore
from etcdlite.wal import LogEntry, WalCorruptError, WriteAheadLog, encode_record
from kubelite.pb.etcdserverpb import rpc_pb2


def entries(first: int, count: int) -> list[LogEntry]:
    return [LogEntry(i, 1, b"entry-%d" % i) for i in range(first, first + count)]


def write(directory: Path, *batches: list[LogEntry]) -> Path:
    wal, recovered = WriteAheadLog.open(directory, 0)
    assert recovered == []
    for batch in batches:
        wal.append(batch)
    wal.close()
    (segment,) = directory.glob("*.wal")
    return segment


def test_appended_entries_come_back_in_order(tmp_path):
    write(tmp_path, entries(1, 3), entries(4, 2))
    wal, recovered = WriteAheadLog.open(tmp_path, 0)
    assert recovered == entries(1, 5)
    wal.append(entries(6, 1))
    wal.close()
    assert WriteAheadLog.open(tmp_path, 0)[1] == entries(1, 6)
    assert WriteAheadLog.open(tmp_path, 4)[1] == entries(5, 2), "entries in the snapshot are skipped"


@pytest.mark.parametrize("cut", [1, 7, 20])
def test_a_torn_last_record_is_cut_with_a_warning(tmp_path, caplog, cut):
    segment = write(tmp_path, entries(1, 3))
    size = segment.stat().st_size
    with open(segment, "r+b") as f:
        f.truncate(size - cut)
    with caplog.at_level(logging.WARNING):
        wal, recovered = WriteAheadLog.open(tmp_path, 0)
    assert recovered == entries(1, 2)
    assert "torn tail" in caplog.text and str(segment) in caplog.text
    wal.append(entries(3, 1))
    wal.close()
    assert WriteAheadLog.open(tmp_path, 0)[1] == entries(1, 3), "appending continues after the cut"


def test_zeroed_tail_after_a_crash_is_cut(tmp_path):
    segment = write(tmp_path, entries(1, 2))
    with open(segment, "ab") as f:
        f.write(b"\x00" * 4096)
    assert WriteAheadLog.open(tmp_path, 0)[1] == entries(1, 2)


def test_a_garbled_last_record_is_cut(tmp_path):
    segment = write(tmp_path, entries(1, 3))
    data = bytearray(segment.read_bytes())
    data[-2] ^= 0xFF
    segment.write_bytes(bytes(data))
    assert WriteAheadLog.open(tmp_path, 0)[1] == entries(1, 2)


def test_corruption_in_the_middle_refuses_and_names_file_and_offset(tmp_path):
    segment = write(tmp_path, entries(1, 3))
    second_record = len(encode_record(entries(1, 1)[0]))
    data = bytearray(segment.read_bytes())
    data[second_record + 12] ^= 0x01  # a byte inside entry 2; entry 3 is intact after it
    segment.write_bytes(bytes(data))
    with pytest.raises(WalCorruptError) as exc:
        WriteAheadLog.open(tmp_path, 0)
    assert exc.value.path == segment and exc.value.offset == second_record
    assert str(segment) in str(exc.value) and f"offset {second_record}" in str(exc.value)
    assert segment.read_bytes() == bytes(data), "a refused log is left untouched"


def test_a_corrupted_length_in_the_middle_is_still_corruption(tmp_path):
    segment = write(tmp_path, entries(1, 4))
    data = bytearray(segment.read_bytes())
    data[0:4] = (10**6).to_bytes(4, "little")
    segment.write_bytes(bytes(data))
    with pytest.raises(WalCorruptError, match="offset 0"):
        WriteAheadLog.open(tmp_path, 0)


def test_rotation_and_dropping_old_segments(tmp_path):
    wal, _ = WriteAheadLog.open(tmp_path, 0)
    wal.append(entries(1, 3))
    wal.rotate(4)
    wal.append(entries(4, 2))
    assert [p.name for p in wal.segment_paths] == ["0000000000000001.wal", "0000000000000004.wal"]
    wal.close()
    assert WriteAheadLog.open(tmp_path, 0)[1] == entries(1, 5)
    wal, recovered = WriteAheadLog.open(tmp_path, 3)
    assert recovered == entries(4, 2)
    wal.drop_before(4)
    assert [p.name for p in wal.segment_paths] == ["0000000000000004.wal"]
    wal.append(entries(6, 1))
    wal.close()
    assert WriteAheadLog.open(tmp_path, 3)[1] == entries(4, 3)


def test_corruption_in_an_earlier_segment_is_never_a_torn_tail(tmp_path):
    wal, _ = WriteAheadLog.open(tmp_path, 0)
    wal.append(entries(1, 2))
    wal.rotate(3)
    wal.append(entries(3, 1))
    wal.close()
    first = tmp_path / "0000000000000001.wal"
    with open(first, "r+b") as f:
        f.truncate(first.stat().st_size - 3)
    with pytest.raises(WalCorruptError) as exc:
        WriteAheadLog.open(tmp_path, 0)
    assert exc.value.path == first


def test_missing_entries_are_refused(tmp_path):
    wal, _ = WriteAheadLog.open(tmp_path, 0)
    wal.append(entries(1, 2))
    wal.append(entries(4, 1))
    wal.close()
    with pytest.raises(WalCorruptError, match="entries are missing"):
        WriteAheadLog.open(tmp_path, 0)


def test_log_behind_the_snapshot_continues_in_a_new_segment(tmp_path):
    write(tmp_path, entries(1, 2))
    wal, recovered = WriteAheadLog.open(tmp_path, 10)
    assert recovered == []
    wal.append(entries(11, 1))
    wal.close()
    assert WriteAheadLog.open(tmp_path, 10)[1] == entries(11, 1)


def _store() -> MvccStore:
    store = MvccStore()
    store.apply(1, rpc_pb2.LeaseGrantRequest(ID=3, TTL=60))
    store.apply(2, rpc_pb2.PutRequest(key=b"a\x00\xff", value=b"\x01" * 100, lease=3))
    store.apply(3, rpc_pb2.PutRequest(key=b"b", value=b"x"))
    store.apply(4, rpc_pb2.DeleteRangeRequest(key=b"b"))
    store.apply(5, rpc_pb2.CompactionRequest(revision=3))
    store.apply(6, rpc_pb2.PutRequest(key=b"c", value=b""))
    return store


def test_snapshot_files_round_trip_and_replace_older_ones(tmp_path):
    store = _store()
    older = snapshot.save(tmp_path, MvccStore().snapshot())
    path = snapshot.save(tmp_path, store.snapshot())
    assert path.name == "0000000000000006.snap" and not older.exists()
    loaded_path, loaded = snapshot.load_latest(tmp_path)
    assert loaded_path == path
    assert loaded == store.snapshot()
    assert snapshot.load_latest(tmp_path / "absent") is None


def test_a_corrupt_snapshot_refuses_to_start_and_names_the_file(tmp_path):
    path = snapshot.save(tmp_path, _store().snapshot())
    data = bytearray(path.read_bytes())
    data[40] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(snapshot.SnapshotCorruptError, match=str(path)):
        snapshot.load_latest(tmp_path)


def test_an_unfinished_snapshot_is_ignored(tmp_path):
    path = snapshot.save(tmp_path, _store().snapshot())
    (tmp_path / "0000000000000009.tmp").write_bytes(b"half")
    assert snapshot.load_latest(tmp_path)[0] == path
    assert not (tmp_path / "0000000000000009.tmp").exists()


def test_a_jump_covered_by_the_snapshot_is_accepted(tmp_path):
    wal, _ = WriteAheadLog.open(tmp_path, 0)
    wal.append(entries(1, 2))
    wal.rotate(11)  # e.g. a snapshot up to 10 arrived from elsewhere
    wal.append(entries(11, 2))
    wal.close()
    assert WriteAheadLog.open(tmp_path, 10)[1] == entries(11, 2)
    with pytest.raises(WalCorruptError, match="entries are missing"):
        WriteAheadLog.open(tmp_path, 5)
