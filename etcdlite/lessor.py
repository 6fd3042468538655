"""Lease clocks: when each lease expires, kept by the member that serves keep-alives.

As in etcd, deadlines are not part of the replicated state: the store only knows each lease's
granted TTL and attached keys. The member holding the clocks (the leader) renews them on
keep-alive and, when one runs out, proposes a LeaseRevoke through the log, so attached keys are
deleted the same way on every member. After a restart (or a new leader) every lease starts a
full TTL again. Pure: time is passed in as seconds of a monotonic clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class LeaseClock:
    ttl: int
    deadline: float
    revoking: bool = False


class Lessor:
    def __init__(self) -> None:
        self._clocks: dict[int, LeaseClock] = {}

    def grant(self, lease_id: int, ttl: int, now: float) -> None:
        self._clocks[lease_id] = LeaseClock(ttl, now + ttl)

    def revoke(self, lease_id: int) -> None:
        self._clocks.pop(lease_id, None)

    def promote(self, leases: dict[int, int], now: float) -> None:
        """Start every lease of the store afresh (after a restart), forgetting any others."""
        self._clocks = {lease_id: LeaseClock(ttl, now + ttl) for lease_id, ttl in leases.items()}

    def renew(self, lease_id: int, now: float) -> int:
        """Keep-alive: the TTL granted again, or 0 when the lease is unknown or already ran out."""
        clock = self._clocks.get(lease_id)
        if clock is None or clock.revoking or clock.deadline <= now:
            return 0
        clock.deadline = now + clock.ttl
        return clock.ttl

    def remaining(self, lease_id: int, now: float) -> int | None:
        """Whole seconds left (etcd truncates), or None when the lease is unknown."""
        clock = self._clocks.get(lease_id)
        if clock is None:
            return None
        return max(0, math.floor(clock.deadline - now))

    def expired(self, now: float) -> list[int]:
        """Leases that ran out and are not being revoked yet; they are marked as being revoked."""
        due = sorted(i for i, c in self._clocks.items() if not c.revoking and c.deadline <= now)
        for lease_id in due:
            self._clocks[lease_id].revoking = True
        return due

    def revoke_failed(self, lease_id: int) -> None:
        """The revoke could not be proposed; try again on the next check."""
        clock = self._clocks.get(lease_id)
        if clock is not None:
            clock.revoking = False
