"""The MVCC key-value state machine: etcd's revisioned store, applied one write request at a time.

`MvccStore.apply(index, request)` is the only way state changes; it is deterministic, so every
member that applies the same log reaches the same state (today the log is the local WAL, with
Raft it is the committed entries). Reads (`range`, lease and watch queries) never change state.
No IO, no clock, no randomness: lease expiry is decided outside and arrives as a LeaseRevoke.

Model (etcd's): a global revision that starts at 1 and grows by one per write request that
changes something; every key keeps its history of records (create/mod revision, version,
value, lease; a delete appends a tombstone) until a compaction drops revisions below the
compaction point. `changes` keeps every change at or after the compaction point in apply
order, which is what a watch replays.
"""

from __future__ import annotations

import bisect
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from google.protobuf.message import Message
from sortedcontainers import SortedList

from etcdlite import errors
from etcdlite import request as requests
from etcdlite.errors import EtcdError
from kubelite.pb.etcdserverpb import rpc_pb2
from kubelite.pb.mvccpb import kv_pb2

# Approximate bytes one stored revision costs beyond its key and value (for dbSize and quota).
RECORD_OVERHEAD = 64
# etcd raises smaller lease TTLs to this with its default election settings (COMPAT B6).
DEFAULT_MIN_LEASE_TTL = 2

_SortOrder = rpc_pb2.RangeRequest.SortOrder
_SortTarget = rpc_pb2.RangeRequest.SortTarget
_CompareResult = rpc_pb2.Compare.CompareResult
_CompareTarget = rpc_pb2.Compare.CompareTarget


class KeyRecord(NamedTuple):
    """One revision of one key; version 0 marks a tombstone (the key was deleted at mod_revision)."""

    key: bytes
    create_revision: int
    mod_revision: int
    version: int
    value: bytes
    lease: int

    @property
    def live(self) -> bool:
        return self.version > 0

    def to_pb(self, keys_only: bool = False) -> kv_pb2.KeyValue:
        return kv_pb2.KeyValue(
            key=self.key,
            create_revision=self.create_revision,
            mod_revision=self.mod_revision,
            version=self.version,
            value=b"" if keys_only else self.value,
            lease=self.lease,
        )


def tombstone(key: bytes, revision: int) -> KeyRecord:
    return KeyRecord(key, 0, revision, 0, b"", 0)


class Change(NamedTuple):
    """A put or delete as a watch sees it: the new record and the live record it replaced."""

    kv: KeyRecord
    prev: KeyRecord | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    @property
    def is_delete(self) -> bool:
        return not self.kv.live


@dataclass
class Applied:
    """What applying one entry did: the response (or etcd's error) and the changes to publish."""

    response: Message | None = None
    error: EtcdError | None = None
    changes: list[Change] = field(default_factory=list)


@dataclass(frozen=True)
class StoreSnapshot:
    """Everything needed to rebuild a store: taken cheaply in memory, encoded elsewhere."""

    applied_index: int
    revision: int
    compact_revision: int
    leases: dict[int, int]
    # Records below compact_revision still visible at it: at most one live record per key.
    base: list[KeyRecord]
    # Every change at or after compact_revision, in apply order.
    changes: list[KeyRecord]


def key_span(keys: SortedList, key: bytes, range_end: bytes) -> tuple[int, int]:
    """Indexes [lo, hi) of a sorted key list selected by etcd's key/range_end conventions."""
    if not range_end:
        lo = keys.bisect_left(key)
        return lo, lo + 1 if lo < len(keys) and keys[lo] == key else lo
    if range_end == b"\x00":
        return keys.bisect_left(key), len(keys)
    if key >= range_end:
        return 0, 0
    return keys.bisect_left(key), keys.bisect_left(range_end)


def in_span(key: bytes, start: bytes, range_end: bytes) -> bool:
    if not range_end:
        return key == start
    if range_end == b"\x00":
        return key >= start
    return start <= key < range_end


def _header(revision: int) -> rpc_pb2.ResponseHeader:
    return rpc_pb2.ResponseHeader(revision=revision)


def _record_size(record: KeyRecord) -> int:
    return len(record.key) + len(record.value) + RECORD_OVERHEAD


class MvccStore:
    """etcd's MVCC store and lessor bookkeeping, as a pure state machine."""

    def __init__(self, min_lease_ttl: int = DEFAULT_MIN_LEASE_TTL) -> None:
        self.min_lease_ttl = min_lease_ttl
        self.revision = 1
        self.compact_revision = 0
        self.applied_index = 0
        self.db_size = 0
        # lease id -> granted TTL (after the minimum was applied)
        self.leases: dict[int, int] = {}
        self._lease_keys: dict[int, set[bytes]] = {}
        self._history: dict[bytes, list[KeyRecord]] = {}
        # SortedList: a key is added in O(log n), where a plain list's insort moves half the keys
        self._all_keys = SortedList()  # keys with any retained record
        self._live_keys = SortedList()  # keys that exist at the current revision
        self._changes: list[Change] = []
        # set while one write request is being applied
        self._pending: list[Change] | None = None
        self._write_revision = 0
        self._last_changes: list[Change] = []

    # ------------------------------------------------------------------ applying entries

    def apply(self, index: int, request: requests.WriteRequest | None) -> Applied:
        """Apply log entry `index` (None for an entry that carries no request)."""
        if index != self.applied_index + 1:
            raise ValueError(f"entry {index} applied after {self.applied_index}: the log has a gap")
        self.applied_index = index
        self._last_changes = []
        if request is None:
            return Applied()
        try:
            if isinstance(request, rpc_pb2.PutRequest):
                response: Message = self._apply_put(request)
            elif isinstance(request, rpc_pb2.DeleteRangeRequest):
                response = self._apply_delete_range(request)
            elif isinstance(request, rpc_pb2.TxnRequest):
                response = self._apply_txn(request)
            elif isinstance(request, rpc_pb2.CompactionRequest):
                response = self._apply_compaction(request)
            elif isinstance(request, rpc_pb2.LeaseGrantRequest):
                response = self._apply_lease_grant(request)
            elif isinstance(request, rpc_pb2.LeaseRevokeRequest):
                response = self._apply_lease_revoke(request)
            else:
                raise TypeError(f"not a write request: {type(request).__name__}")
        except EtcdError as exc:
            return Applied(error=exc)
        return Applied(response=response, changes=self._last_changes)

    def _begin_write(self) -> None:
        self._pending = []
        self._write_revision = self.revision + 1

    def _end_write(self) -> None:
        pending = self._pending or []
        self._pending = None
        if pending:
            self.revision = self._write_revision
            self._changes.extend(pending)
        self._last_changes = pending

    def _read_revision(self) -> int:
        """The revision reads see: inside a write that already changed something, the new one."""
        return self.revision + 1 if self._pending else self.revision

    def _apply_put(self, req: rpc_pb2.PutRequest) -> rpc_pb2.PutResponse:
        requests.check_put(req)
        self._check_put(req)
        self._begin_write()
        try:
            response = self._exec_put(req)
        finally:
            self._end_write()
        response.header.revision = self.revision
        return response

    def _apply_delete_range(self, req: rpc_pb2.DeleteRangeRequest) -> rpc_pb2.DeleteRangeResponse:
        requests.check_delete_range(req)
        self._begin_write()
        try:
            response = self._exec_delete_range(req)
        finally:
            self._end_write()
        response.header.revision = self.revision
        return response

    def _apply_txn(self, txn: rpc_pb2.TxnRequest) -> rpc_pb2.TxnResponse:
        requests.check_txn(txn)
        path: list[bool] = []
        self._txn_path(txn, path)
        self._check_txn_path(txn, iter(path))
        self._begin_write()
        try:
            response = self._exec_txn(txn, iter(path))
        finally:
            self._end_write()
        response.header.revision = self.revision
        return response

    def _apply_compaction(self, req: rpc_pb2.CompactionRequest) -> rpc_pb2.CompactionResponse:
        if req.revision <= self.compact_revision:
            raise errors.COMPACTED()
        if req.revision > self.revision:
            raise errors.FUTURE_REV()
        self._compact(req.revision)
        return rpc_pb2.CompactionResponse(header=_header(self.revision))

    def _apply_lease_grant(self, req: rpc_pb2.LeaseGrantRequest) -> rpc_pb2.LeaseGrantResponse:
        requests.check_lease_grant(req)
        if req.ID == 0:
            raise errors.LEASE_NOT_FOUND()
        if req.ID in self.leases:
            raise errors.LEASE_EXIST()
        ttl = max(req.TTL, self.min_lease_ttl)
        self.leases[req.ID] = ttl
        self._lease_keys[req.ID] = set()
        return rpc_pb2.LeaseGrantResponse(header=_header(self.revision), ID=req.ID, TTL=ttl)

    def _apply_lease_revoke(self, req: rpc_pb2.LeaseRevokeRequest) -> rpc_pb2.LeaseRevokeResponse:
        if req.ID not in self.leases:
            raise errors.LEASE_NOT_FOUND()
        self._begin_write()
        try:
            for key in sorted(self._lease_keys[req.ID]):
                self._delete_key(key)
                self._live_keys.remove(key)
        finally:
            self._end_write()
        del self.leases[req.ID]
        del self._lease_keys[req.ID]
        return rpc_pb2.LeaseRevokeResponse(header=_header(self.revision))

    # ------------------------------------------------------------------ checks before writing

    def _check_put(self, req: rpc_pb2.PutRequest) -> None:
        if req.lease and req.lease not in self.leases:
            raise errors.LEASE_NOT_FOUND()
        if (req.ignore_value or req.ignore_lease) and self._current(req.key) is None:
            raise errors.KEY_NOT_FOUND()

    def _check_range_revision(self, revision: int) -> None:
        if revision > self._read_revision():
            raise errors.FUTURE_REV()
        if 0 < revision < self.compact_revision:
            raise errors.COMPACTED()

    def _txn_path(self, txn: rpc_pb2.TxnRequest, path: list[bool]) -> None:
        """Decide every (nested) branch up front against the state before the txn, as etcd does."""
        succeeded = all(self._compare(c) for c in txn.compare)
        path.append(succeeded)
        for op in txn.success if succeeded else txn.failure:
            if op.WhichOneof("request") == "request_txn":
                self._txn_path(op.request_txn, path)

    def _check_txn_path(self, txn: rpc_pb2.TxnRequest, path: Iterator[bool]) -> None:
        for op in txn.success if next(path) else txn.failure:
            kind = op.WhichOneof("request")
            if kind == "request_put":
                self._check_put(op.request_put)
            elif kind == "request_range":
                self._check_range_revision(op.request_range.revision)
            elif kind == "request_txn":
                self._check_txn_path(op.request_txn, path)

    def _compare(self, compare: rpc_pb2.Compare) -> bool:
        records = self._live_in_span(compare.key, compare.range_end)
        if not records:
            if compare.target == _CompareTarget.VALUE:
                return False
            records = [KeyRecord(compare.key, 0, 0, 0, b"", 0)]
        return all(_compare_record(compare, record) for record in records)

    def _live_in_span(self, key: bytes, range_end: bytes) -> list[KeyRecord]:
        lo, hi = key_span(self._live_keys, key, range_end)
        return [self._history[k][-1] for k in self._live_keys[lo:hi]]

    # ------------------------------------------------------------------ executing writes

    def _exec_put(self, req: rpc_pb2.PutRequest) -> rpc_pb2.PutResponse:
        assert self._pending is not None
        key = req.key
        revision = self._write_revision
        history = self._history.get(key)
        prev = history[-1] if history and history[-1].live else None
        value = prev.value if req.ignore_value and prev else req.value
        lease = prev.lease if req.ignore_lease and prev else req.lease
        if prev is not None:
            record = KeyRecord(key, prev.create_revision, revision, prev.version + 1, value, lease)
        else:
            record = KeyRecord(key, revision, revision, 1, value, lease)
        if history is None:
            self._history[key] = [record]
            self._all_keys.add(key)
        else:
            history.append(record)
        if prev is None:
            self._live_keys.add(key)
        elif prev.lease and prev.lease != lease:
            self._lease_keys[prev.lease].discard(key)
        if lease and (prev is None or prev.lease != lease):
            self._lease_keys[lease].add(key)
        self.db_size += _record_size(record)
        self._pending.append(Change(record, prev))
        response = rpc_pb2.PutResponse(header=_header(revision))
        if req.prev_kv and prev is not None:
            response.prev_kv.CopyFrom(prev.to_pb())
        return response

    def _exec_delete_range(self, req: rpc_pb2.DeleteRangeRequest) -> rpc_pb2.DeleteRangeResponse:
        lo, hi = key_span(self._live_keys, req.key, req.range_end)
        keys = self._live_keys[lo:hi]
        del self._live_keys[lo:hi]
        response = rpc_pb2.DeleteRangeResponse(deleted=len(keys))
        for key in keys:
            prev = self._delete_key(key)
            if req.prev_kv:
                response.prev_kvs.append(prev.to_pb())
        response.header.revision = self._read_revision()
        return response

    def _delete_key(self, key: bytes) -> KeyRecord:
        """Tombstone a live key; the caller removes it from the live key list."""
        assert self._pending is not None
        history = self._history[key]
        prev = history[-1]
        record = tombstone(key, self._write_revision)
        history.append(record)
        if prev.lease:
            self._lease_keys[prev.lease].discard(key)
        self.db_size += _record_size(record)
        self._pending.append(Change(record, prev))
        return prev

    def _exec_txn(self, txn: rpc_pb2.TxnRequest, path: Iterator[bool]) -> rpc_pb2.TxnResponse:
        succeeded = next(path)
        response = rpc_pb2.TxnResponse(succeeded=succeeded)
        for op in txn.success if succeeded else txn.failure:
            kind = op.WhichOneof("request")
            if kind == "request_range":
                response.responses.add(response_range=self._range(op.request_range))
            elif kind == "request_put":
                response.responses.add(response_put=self._exec_put(op.request_put))
            elif kind == "request_delete_range":
                response.responses.add(response_delete_range=self._exec_delete_range(op.request_delete_range))
            elif kind == "request_txn":
                response.responses.add(response_txn=self._exec_txn(op.request_txn, path))
        response.header.SetInParent()  # a nested txn's header stays empty, as etcd's
        return response

    def _compact(self, revision: int) -> None:
        drop = bisect.bisect_left(self._changes, revision, key=_change_revision)
        touched = {change.kv.key for change in self._changes[:drop]}
        emptied = 0
        for key in touched:
            history = self._history[key]
            keep = [r for r in history if r.mod_revision >= revision]
            older = [r for r in history if r.mod_revision < revision]
            if older and older[-1].live:
                keep.insert(0, older[-1])
            self.db_size -= sum(map(_record_size, history)) - sum(map(_record_size, keep))
            if keep:
                self._history[key] = keep
            else:
                del self._history[key]
                emptied += 1
        if emptied > 64:
            self._all_keys = SortedList(k for k in self._all_keys if k in self._history)
        elif emptied:
            for key in touched:
                if key not in self._history:
                    self._all_keys.remove(key)
        self._changes = self._changes[drop:]
        self.compact_revision = revision

    # ------------------------------------------------------------------ reads

    def range(self, req: rpc_pb2.RangeRequest) -> rpc_pb2.RangeResponse:
        """etcd's Range at the current (or a requested) revision; raises EtcdError."""
        requests.check_range(req)
        return self._range(req)

    def _range(self, req: rpc_pb2.RangeRequest) -> rpc_pb2.RangeResponse:
        read_revision = self._read_revision()
        revision = req.revision if req.revision > 0 else read_revision
        if revision > read_revision:
            raise errors.FUTURE_REV()
        if revision < self.compact_revision:
            raise errors.COMPACTED()
        order, target = req.sort_order, req.sort_target
        if target != _SortTarget.KEY and order == _SortOrder.NONE:
            order = _SortOrder.ASCEND
        filtered = bool(
            req.min_mod_revision or req.max_mod_revision or req.min_create_revision or req.max_create_revision
        )
        simple = target == _SortTarget.KEY and order != _SortOrder.DESCEND and not filtered
        limit = req.limit if req.limit > 0 else 0
        response = rpc_pb2.RangeResponse(header=_header(read_revision))

        if revision == read_revision:
            lo, hi = key_span(self._live_keys, req.key, req.range_end)
            count = hi - lo
            if simple:
                response.count = count
                if req.count_only:
                    return response
                end = min(hi, lo + limit) if limit else hi
                response.more = end < hi
                latest = (self._history[k][-1] for k in self._live_keys[lo:end])
                response.kvs.extend(r.to_pb(req.keys_only) for r in latest)
                return response
            records = [self._history[k][-1] for k in self._live_keys[lo:hi]]
        else:
            lo, hi = key_span(self._all_keys, req.key, req.range_end)
            records = [r for k in self._all_keys[lo:hi] if (r := self._record_at(k, revision)) is not None]
            count = len(records)

        response.count = count
        if req.count_only:
            return response
        if filtered:
            records = [r for r in records if _passes_filters(req, r)]
        if order != _SortOrder.NONE and target != _SortTarget.KEY:
            records.sort(key=_SORT_KEYS[target], reverse=order == _SortOrder.DESCEND)
        elif order == _SortOrder.DESCEND:
            records.reverse()
        if limit and len(records) > limit:
            records = records[:limit]
            response.more = True
        response.kvs.extend(r.to_pb(req.keys_only) for r in records)
        return response

    def read_txn(self, txn: rpc_pb2.TxnRequest) -> rpc_pb2.TxnResponse:
        """Evaluate a txn whose branches only read; it needs no log entry."""
        if not requests.is_read_only_txn(txn):
            raise ValueError("read_txn got a txn that writes")
        requests.check_txn(txn)
        path: list[bool] = []
        self._txn_path(txn, path)
        self._check_txn_path(txn, iter(path))
        response = self._exec_txn(txn, iter(path))
        response.header.revision = self.revision
        return response

    def _record_at(self, key: bytes, revision: int) -> KeyRecord | None:
        for record in reversed(self._history[key]):
            if record.mod_revision <= revision:
                return record if record.live else None
        return None

    def _current(self, key: bytes) -> KeyRecord | None:
        history = self._history.get(key)
        if history and history[-1].live:
            return history[-1]
        return None

    def get(self, key: bytes) -> KeyRecord | None:
        """The live record of one key at the current revision."""
        return self._current(key)

    def live_keys(self) -> list[bytes]:
        return list(self._live_keys)

    def changes_since(self, revision: int) -> list[Change]:
        """Every change at or after `revision` (callers check it is not compacted)."""
        start = bisect.bisect_left(self._changes, revision, key=_change_revision)
        return self._changes[start:]

    def lease_keys(self, lease_id: int) -> list[bytes]:
        return sorted(self._lease_keys.get(lease_id, ()))

    def hash_kv(self, revision: int) -> int:
        """A CRC32 over every retained record up to `revision`, for comparing members."""
        if revision <= 0:
            revision = self.revision
        self._check_range_revision(revision)
        crc = 0
        for key in self._all_keys:
            for r in self._history[key]:
                if r.mod_revision <= revision:
                    crc = zlib.crc32(key, crc)
                    meta = struct.pack("<qqqq", r.create_revision, r.mod_revision, r.version, r.lease)
                    crc = zlib.crc32(meta, crc)
                    crc = zlib.crc32(r.value, crc)
        return crc

    # ------------------------------------------------------------------ snapshots

    def snapshot(self) -> StoreSnapshot:
        """Capture the state as plain immutable records, cheap enough to take between two applies."""
        compact = self.compact_revision
        base = [h[0] for h in self._history.values() if h[0].mod_revision < compact]
        return StoreSnapshot(
            applied_index=self.applied_index,
            revision=self.revision,
            compact_revision=compact,
            leases=dict(self.leases),
            base=base,
            changes=[c.kv for c in self._changes],
        )

    @classmethod
    def restore(cls, snapshot: StoreSnapshot, min_lease_ttl: int = DEFAULT_MIN_LEASE_TTL) -> MvccStore:
        store = cls(min_lease_ttl)
        store.applied_index = snapshot.applied_index
        store.revision = snapshot.revision
        store.compact_revision = snapshot.compact_revision
        store.leases = dict(snapshot.leases)
        store._lease_keys = {lease: set() for lease in store.leases}
        history = store._history
        for record in snapshot.base:
            history[record.key] = [record]
        changes = store._changes
        for record in snapshot.changes:
            records = history.get(record.key)
            if records is None:
                history[record.key] = [record]
                changes.append(Change(record, None))
            else:
                prev = records[-1]
                records.append(record)
                changes.append(Change(record, prev if prev.live else None))
        store._all_keys = SortedList(history)
        store._live_keys = SortedList(k for k in store._all_keys if history[k][-1].live)
        for key in store._live_keys:
            lease = history[key][-1].lease
            if lease:
                store._lease_keys.setdefault(lease, set()).add(key)
        store.db_size = sum(_record_size(r) for records in history.values() for r in records)
        return store

    def records(self) -> Iterable[KeyRecord]:
        """Every retained record, key by key (for tests and hashing)."""
        for key in self._all_keys:
            yield from self._history[key]


def _compare_record(compare: rpc_pb2.Compare, record: KeyRecord) -> bool:
    target = compare.target
    if target == _CompareTarget.VALUE:
        ours: bytes | int = record.value
        theirs: bytes | int = compare.value
    elif target == _CompareTarget.VERSION:
        ours, theirs = record.version, compare.version
    elif target == _CompareTarget.CREATE:
        ours, theirs = record.create_revision, compare.create_revision
    elif target == _CompareTarget.MOD:
        ours, theirs = record.mod_revision, compare.mod_revision
    elif target == _CompareTarget.LEASE:
        ours, theirs = record.lease, compare.lease
    else:
        return False
    result = compare.result
    if result == _CompareResult.EQUAL:
        return ours == theirs
    if result == _CompareResult.NOT_EQUAL:
        return ours != theirs
    if result == _CompareResult.GREATER:
        return ours > theirs  # type: ignore[operator]
    if result == _CompareResult.LESS:
        return ours < theirs  # type: ignore[operator]
    return False


def _change_revision(change: Change) -> int:
    return change.kv.mod_revision


def _passes_filters(req: rpc_pb2.RangeRequest, record: KeyRecord) -> bool:
    if req.min_mod_revision and record.mod_revision < req.min_mod_revision:
        return False
    if req.max_mod_revision and record.mod_revision > req.max_mod_revision:
        return False
    if req.min_create_revision and record.create_revision < req.min_create_revision:
        return False
    return not (req.max_create_revision and record.create_revision > req.max_create_revision)


_SORT_KEYS = {
    _SortTarget.VERSION: lambda r: r.version,
    _SortTarget.CREATE: lambda r: r.create_revision,
    _SortTarget.MOD: lambda r: r.mod_revision,
    _SortTarget.VALUE: lambda r: r.value,
}
