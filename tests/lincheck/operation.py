"""One client operation as a history records it: who called, when it was called and returned, what
was asked and what came back. Pure data; touches nothing.

Times are integers from one monotonic clock (time.monotonic_ns in the recorder). An operation whose
outcome is unknown (the client timed out, the connection broke) has neither a return time nor an
output: it may have taken effect at any moment after its call, or never.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(frozen=True)
class Operation(Generic[In, Out]):
    """A call and, when the client learnt it, its answer."""

    client: int
    call_time: int
    return_time: int | None
    input: In
    output: Out | None

    @property
    def completed(self) -> bool:
        """Did the client learn the outcome? Unknown outcomes are pending forever."""
        return self.return_time is not None


@dataclass(frozen=True)
class Anomaly:
    """An operation no linearization can explain, found without searching, and why."""

    op: Operation
    reason: str
    others: tuple[Operation, ...] = ()


@dataclass(frozen=True)
class Failure(Generic[In]):
    """A request that got an error instead of an answer: who sent it where, when it was sent and when
    it failed, and how. A failed write may still have been applied (the history then holds it with an
    unknown outcome); a failed read changed nothing and a request that was never sent did nothing, so
    the history leaves those out and only the failures list shows them."""

    client: int
    endpoint: str
    call_time: int
    fail_time: int
    input: In
    reason: str  # the gRPC status code and details
    sent: bool  # False when the client had no connection: the request cannot have been applied
