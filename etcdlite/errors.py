"""etcd's error vocabulary: the exact gRPC status code and message of each failure.

clientv3 maps errors back to typed errors by their message text and etcdctl prints them as
`Error: <message>`, so these strings are wire facts (COMPAT.md B5). Pure data; the gRPC layer
turns an `EtcdError` into a status. Touches nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Code(enum.Enum):
    """gRPC status codes by name, so pure modules need not import grpc."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    NOT_FOUND = "NOT_FOUND"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAVAILABLE = "UNAVAILABLE"
    UNIMPLEMENTED = "UNIMPLEMENTED"


class EtcdError(Exception):
    """A request failed the way etcd fails it: a status code and etcd's exact message."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EtcdError) and (self.code, self.message) == (other.code, other.message)

    def __hash__(self) -> int:
        return hash((self.code, self.message))

    def __repr__(self) -> str:
        return f"EtcdError({self.code.name}, {self.message!r})"


@dataclass(frozen=True)
class Failure:
    """One of etcd's failures; calling it makes a fresh exception to raise."""

    code: Code
    message: str

    def __call__(self) -> EtcdError:
        return EtcdError(self.code, self.message)


EMPTY_KEY = Failure(Code.INVALID_ARGUMENT, "etcdserver: key is not provided")
KEY_NOT_FOUND = Failure(Code.INVALID_ARGUMENT, "etcdserver: key not found")
VALUE_PROVIDED = Failure(Code.INVALID_ARGUMENT, "etcdserver: value is provided")
LEASE_PROVIDED = Failure(Code.INVALID_ARGUMENT, "etcdserver: lease is provided")
TOO_MANY_OPS = Failure(Code.INVALID_ARGUMENT, "etcdserver: too many operations in txn request")
DUPLICATE_KEY = Failure(Code.INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request")
COMPACTED = Failure(Code.OUT_OF_RANGE, "etcdserver: mvcc: required revision has been compacted")
FUTURE_REV = Failure(Code.OUT_OF_RANGE, "etcdserver: mvcc: required revision is a future revision")
NO_SPACE = Failure(Code.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded")
LEASE_NOT_FOUND = Failure(Code.NOT_FOUND, "etcdserver: requested lease not found")
LEASE_EXIST = Failure(Code.FAILED_PRECONDITION, "etcdserver: lease already exists")
LEASE_TTL_TOO_LARGE = Failure(Code.OUT_OF_RANGE, "etcdserver: too large lease TTL")
MEMBER_NOT_FOUND = Failure(Code.NOT_FOUND, "etcdserver: member not found")
REQUEST_TOO_LARGE = Failure(Code.INVALID_ARGUMENT, "etcdserver: request is too large")
NO_LEADER = Failure(Code.UNAVAILABLE, "etcdserver: no leader")
STOPPED = Failure(Code.UNAVAILABLE, "etcdserver: server stopped")
NO_PEER_URLS = Failure(Code.INVALID_ARGUMENT, "etcdserver: member peer URLs are not provided")


def storage_failed(detail: str) -> EtcdError:
    """A write could not be made durable; nothing was applied."""
    return EtcdError(Code.UNAVAILABLE, f"etcdlite: write-ahead log failed: {detail}")
