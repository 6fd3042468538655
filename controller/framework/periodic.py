"""wait.Until for the controllers that work on a period instead of a queue (node health, pod GC):
a failed pass, whatever the error (the apiserver restarting, a timeout, a bug), is logged with its
traceback and the next pass runs a period later. Letting it out would end the controller's task,
and with it the controller-manager's task group and every other controller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[Any]]


async def until(
    step: Callable[[], Awaitable[Any]], period: float, what: str, sleep: Sleep = asyncio.sleep
) -> NoReturn:
    """Run `step` every `period` seconds until cancelled; a cancellation is never swallowed
    (CancelledError is not an Exception)."""
    while True:
        try:
            await step()
        except Exception:
            log.warning("%s failed; retrying in %gs", what, period, exc_info=True)
        await sleep(period)
