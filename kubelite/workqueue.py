"""The controllers' work queue, after client-go's: dedupe, one worker per key, rate-limited retry.

A key that is added while a worker holds it is handed out again once the worker calls
`done`, never to two workers at once. Delays go through an injectable `call_later` so tests
can drive time by hand.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

CallLater = Callable[[float, Callable[[], None]], Any]


class ItemExponentialBackoff:
    """Per-key exponential back-off: base * 2**failures, capped (client-go's defaults)."""

    def __init__(self, base: float = 0.005, cap: float = 300.0):
        self.base = base
        self.cap = cap
        self._failures: dict[str, int] = {}

    def when(self, key: str) -> float:
        n = self._failures.get(key, 0)
        self._failures[key] = n + 1
        if n >= 64:  # past the cap for any base; 2**1024 would not even convert to a float
            return self.cap
        factor: int = 2**n  # typeshed types int ** int as Any (a negative exponent makes a float)
        return min(self.base * factor, self.cap)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def retries(self, key: str) -> int:
        return self._failures.get(key, 0)


class WorkQueue:
    def __init__(self, backoff: ItemExponentialBackoff | None = None, call_later: CallLater | None = None):
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._wakeup = asyncio.Event()
        self._shutting_down = False
        self._timers: dict[object, Any] = {}
        self.backoff = backoff or ItemExponentialBackoff()
        self._call_later = call_later

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: str) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._wakeup.set()

    def add_after(self, key: str, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        call_later = self._call_later or asyncio.get_running_loop().call_later
        token = object()

        def fire() -> None:
            self._timers.pop(token, None)
            self.add(key)

        self._timers[token] = call_later(delay, fire)

    def add_rate_limited(self, key: str) -> None:
        self.add_after(key, self.backoff.when(key))

    def forget(self, key: str) -> None:
        self.backoff.forget(key)

    async def get(self) -> str | None:
        """The next key to work on, or None once the queue is shut down."""
        while not self._queue:
            if self._shutting_down:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wakeup.set()

    def shutdown(self) -> None:
        self._shutting_down = True
        for timer in self._timers.values():
            cancel = getattr(timer, "cancel", None)
            if cancel:
                cancel()
        self._timers.clear()
        self._wakeup.set()


async def run_workers(
    queue: WorkQueue, sync: Callable[[str], Awaitable[None]], workers: int = 1, name: str = "controller"
) -> None:
    """Run `workers` loops that take keys and sync them until the queue shuts down.

    A failed sync is retried with back-off; success forgets the key's failures.
    """

    async def worker() -> None:
        while (key := await queue.get()) is not None:
            try:
                await sync(key)
                queue.forget(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                retries = queue.backoff.retries(key)
                level = logging.DEBUG if retries > 3 else logging.WARNING
                log.log(level, "%s: sync %s failed (retry %d): %s", name, key, retries, exc)
                queue.add_rate_limited(key)
            finally:
                queue.done(key)

    async with asyncio.TaskGroup() as tg:
        for _ in range(workers):
            tg.create_task(worker())
