"""Expectations (client-go's ControllerExpectations and UIDTrackingControllerExpectations).

A controller that asked for N pods to be created must not create them again when it syncs before
its informer has seen them. It records what it expects; the informer's handlers lower the count as
creations and deletions arrive; `satisfied` says whether a sync may act on the cache. Expectations
expire (5 minutes, as in Kubernetes) so that a lost watch event cannot wedge a controller.
Deletions are tracked by pod key, so one deletion observed twice is counted once. Pure; the clock
is injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

EXPECTATIONS_TIMEOUT = 300.0


@dataclass
class _Expected:
    adds: int
    deletes: set[str] = field(default_factory=set)
    since: float = 0.0


class Expectations:
    def __init__(self, clock: Callable[[], float] = time.monotonic, timeout: float = EXPECTATIONS_TIMEOUT):
        self.clock = clock
        self.timeout = timeout
        self._by_key: dict[str, _Expected] = {}

    def expect_creations(self, key: str, count: int) -> None:
        self._by_key[key] = _Expected(count, set(), self.clock())

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        self._by_key[key] = _Expected(0, set(pod_keys), self.clock())

    def creation_observed(self, key: str) -> None:
        expected = self._by_key.get(key)
        if expected is not None:
            expected.adds -= 1

    def lower_creations(self, key: str, count: int = 1) -> None:
        """Creates that failed or were skipped: they will never be observed."""
        expected = self._by_key.get(key)
        if expected is not None:
            expected.adds -= count

    def deletion_observed(self, key: str, pod_key: str) -> None:
        expected = self._by_key.get(key)
        if expected is not None:
            expected.deletes.discard(pod_key)

    def satisfied(self, key: str) -> bool:
        """True when nothing is in flight for key (or what was expired): a sync may trust the cache."""
        expected = self._by_key.get(key)
        if expected is None:
            return True
        if expected.adds <= 0 and not expected.deletes:
            return True
        return self.clock() - expected.since > self.timeout

    def pending(self, key: str) -> tuple[int, int]:
        """(creations, deletions) still expected for key."""
        expected = self._by_key.get(key)
        return (max(expected.adds, 0), len(expected.deletes)) if expected else (0, 0)

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)
