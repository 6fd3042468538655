"""Write requests as log entries: their kinds, their byte encoding, and the checks made before proposing.

Every change to the store is one of these requests, proposed to a log (today the local
write-ahead log, later Raft) and applied in log order by the MVCC state machine. The encoding
is a kind byte followed by the request's protobuf bytes, so an entry decodes to exactly the
request a client sent (with server-chosen fields such as a lease id filled in). The static
checks here need no store state; they reject bad input before anything is logged. Pure.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from etcdlite import errors
from kubelite.pb.etcdserverpb import rpc_pb2

# etcd's embed.DefaultMaxTxnOps.
MAX_TXN_OPS = 128
# etcd's lease.MaxLeaseTTL (seconds).
MAX_LEASE_TTL = 9_000_000_000

WriteRequest = (
    rpc_pb2.PutRequest
    | rpc_pb2.DeleteRangeRequest
    | rpc_pb2.TxnRequest
    | rpc_pb2.CompactionRequest
    | rpc_pb2.LeaseGrantRequest
    | rpc_pb2.LeaseRevokeRequest
)


class RequestKind(enum.IntEnum):
    """The first byte of an entry: which request message follows."""

    PUT = 1
    DELETE_RANGE = 2
    TXN = 3
    COMPACTION = 4
    LEASE_GRANT = 5
    LEASE_REVOKE = 6


_KIND_OF: dict[type, RequestKind] = {
    rpc_pb2.PutRequest: RequestKind.PUT,
    rpc_pb2.DeleteRangeRequest: RequestKind.DELETE_RANGE,
    rpc_pb2.TxnRequest: RequestKind.TXN,
    rpc_pb2.CompactionRequest: RequestKind.COMPACTION,
    rpc_pb2.LeaseGrantRequest: RequestKind.LEASE_GRANT,
    rpc_pb2.LeaseRevokeRequest: RequestKind.LEASE_REVOKE,
}
_TYPE_OF = {kind: cls for cls, kind in _KIND_OF.items()}


class EntryDecodeError(ValueError):
    """An entry's bytes are not a request this version knows."""


def encode(request: WriteRequest) -> bytes:
    return bytes([_KIND_OF[type(request)]]) + request.SerializeToString()


def decode(data: bytes) -> WriteRequest:
    if not data:
        raise EntryDecodeError("empty entry")
    try:
        cls = _TYPE_OF[RequestKind(data[0])]
    except ValueError:
        raise EntryDecodeError(f"unknown request kind {data[0]}") from None
    message = cls()
    try:
        message.ParseFromString(data[1:])
    except Exception as exc:  # protobuf raises its own DecodeError type
        raise EntryDecodeError(f"undecodable {cls.__name__}: {exc}") from None
    return message


def is_read_only_txn(txn: rpc_pb2.TxnRequest) -> bool:
    """A txn with only ranges in every branch (nested too) changes nothing and need not be logged."""
    for op in (*txn.success, *txn.failure):
        kind = op.WhichOneof("request")
        if kind == "request_txn":
            if not is_read_only_txn(op.request_txn):
                return False
        elif kind != "request_range":
            return False
    return True


def check_range(request: rpc_pb2.RangeRequest) -> None:
    if not request.key:
        raise errors.EMPTY_KEY()


def check_put(request: rpc_pb2.PutRequest) -> None:
    if not request.key:
        raise errors.EMPTY_KEY()
    if request.ignore_value and request.value:
        raise errors.VALUE_PROVIDED()
    if request.ignore_lease and request.lease:
        raise errors.LEASE_PROVIDED()


def check_delete_range(request: rpc_pb2.DeleteRangeRequest) -> None:
    if not request.key:
        raise errors.EMPTY_KEY()


def check_lease_grant(request: rpc_pb2.LeaseGrantRequest) -> None:
    if request.TTL > MAX_LEASE_TTL:
        raise errors.LEASE_TTL_TOO_LARGE()


def check_txn(txn: rpc_pb2.TxnRequest) -> None:
    """etcd's checkTxnRequest and checkIntervals: op counts, valid ops, no key written twice."""
    _check_txn_ops(txn)
    _written_in_txn(txn)


def _check_txn_ops(txn: rpc_pb2.TxnRequest) -> None:
    if len(txn.compare) > MAX_TXN_OPS or len(txn.success) > MAX_TXN_OPS or len(txn.failure) > MAX_TXN_OPS:
        raise errors.TOO_MANY_OPS()
    for compare in txn.compare:
        if not compare.key:
            raise errors.EMPTY_KEY()
    for op in (*txn.success, *txn.failure):
        kind = op.WhichOneof("request")
        if kind == "request_range":
            check_range(op.request_range)
        elif kind == "request_put":
            check_put(op.request_put)
        elif kind == "request_delete_range":
            check_delete_range(op.request_delete_range)
        elif kind == "request_txn":
            _check_txn_ops(op.request_txn)


# A written span: (key, range_end) with etcd's range_end conventions; range_end b"" is one key.
_Span = tuple[bytes, bytes]


def _written_in_txn(txn: rpc_pb2.TxnRequest) -> tuple[set[bytes], list[_Span]]:
    """Puts and deletes of both branches; each branch alone must not write a key twice."""
    puts: set[bytes] = set()
    deletes: list[_Span] = []
    for branch in (txn.success, txn.failure):
        branch_puts, branch_deletes = _written_in_branch(branch)
        puts |= branch_puts
        deletes.extend(branch_deletes)
    return puts, deletes


def _written_in_branch(ops: Iterable[rpc_pb2.RequestOp]) -> tuple[set[bytes], list[_Span]]:
    puts: set[bytes] = set()
    deletes: list[_Span] = []
    nested: list[tuple[set[bytes], list[_Span]]] = []
    for op in ops:
        kind = op.WhichOneof("request")
        if kind == "request_put":
            key = op.request_put.key
            if key in puts:
                raise errors.DUPLICATE_KEY()
            puts.add(key)
        elif kind == "request_delete_range":
            deletes.append((op.request_delete_range.key, op.request_delete_range.range_end))
        elif kind == "request_txn":
            nested.append(_written_in_txn(op.request_txn))
    for key in puts:
        if any(_span_contains(span, key) for span in deletes):
            raise errors.DUPLICATE_KEY()
    for nested_puts, nested_deletes in nested:
        for key in nested_puts:
            if key in puts or any(_span_contains(span, key) for span in deletes):
                raise errors.DUPLICATE_KEY()
        for span in nested_deletes:
            if any(_span_contains(span, key) for key in puts):
                raise errors.DUPLICATE_KEY()
        puts |= nested_puts
        deletes.extend(nested_deletes)
    return puts, deletes


def _span_contains(span: _Span, key: bytes) -> bool:
    start, end = span
    if not end:
        return key == start
    if end == b"\x00":
        return key >= start
    return start <= key < end
