"""What a controller is built from: the API client, the shared informers (one per resource and
namespace, however many controllers use it), an event recorder, the manager's options and a clock.
Tests build the same context on the fake API, so a controller's code cannot tell them apart.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubelite.client import ApiClient, ApiError
from kubelite.events import EventRecorder
from kubelite.informer import Informer
from kubelite.resources import Resource
from kubelite.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class ControllerContext:
    client: ApiClient
    options: Any
    clock: Callable[[], dt.datetime] = utcnow
    informers: dict[tuple[Resource, str | None], Informer] = field(default_factory=dict)

    def informer(self, resource: Resource, namespace: str | None = None) -> Informer:
        """The shared informer of a resource (created on first use)."""
        key = (resource, namespace)
        if key not in self.informers:
            self.informers[key] = Informer(self.client, resource, namespace)
        return self.informers[key]

    def recorder(self, component: str) -> EventRecorder:
        return EventRecorder(self.client, component)


def settled_by_next_sync(queue: WorkQueue, what: str, key: str, exc: ApiError) -> bool:
    """Whether a failed write needs no error: the object is gone (nothing left to do), or it
    changed meanwhile (the key is queued again, and the next sync sees the new version)."""
    if exc.not_found:
        return True
    if exc.conflict:
        log.info("%s %s changed meanwhile; syncing it again", what, key)
        queue.add(key)
        return True
    return False


class QueueController:
    """A controller in client-go's shape: informer handlers enqueue keys, `sync(key)` does the work,
    `run(workers)` runs that many workers until cancelled."""

    name = "controller"

    def __init__(self, queue: WorkQueue | None = None):
        self.queue = queue if queue is not None else WorkQueue()

    async def sync(self, key: str) -> None:
        raise NotImplementedError

    async def run(self, workers: int = 1) -> None:
        try:
            await run_workers(self.queue, self.sync, workers, name=self.name)
        finally:
            self.queue.shutdown()
