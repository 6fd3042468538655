"""Waiting for a condition with a deadline, saying what was awaited and what was last seen.

Used by the CLI and the tests instead of sleeping: poll `probe` until it returns a truthy
value, and on timeout raise with the description and the last observation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    pass


class ConditionFailed(AssertionError):
    """Raised by a probe when the condition can no longer be met (a process it waits on has
    exited): `wait_for` gives up at once instead of waiting out its deadline."""


def wait_for(
    probe: Callable[[], T],
    what: str,
    timeout: float = 60.0,
    interval: float = 0.2,
    seen: Callable[[], str] | None = None,
) -> T:
    """Call probe until it returns a truthy value; exceptions count as "not yet" and are reported.
    `seen` adds context to the timeout message (a log tail, say)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
            if value:
                return value
            last = value
        except ConditionFailed:
            raise
        except Exception as exc:  # the condition is not met yet; keep the reason for the message
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            context = f" {seen()}" if seen else ""
            raise WaitTimeout(
                f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}{context}"
            )
        time.sleep(interval)


async def until(
    condition: Callable[[], object], what: str, timeout: float = 5.0, interval: float = 0.01
) -> None:
    """`wait_for` for code on an event loop: poll `condition` without blocking the loop."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for {what}")
        await asyncio.sleep(interval)
