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
