"""Which resources the garbage collector watches (upstream's resource monitors): every served
resource that can be listed, watched and deleted, found through discovery and followed as kinds
come and go.

A resource another controller already watches shares that informer, which the manager runs. For
any other the collector creates the informer after one probing list (a kind that cannot be listed
is logged and skipped until the next discovery) and runs it in the collector's task group. Touches:
discovery, that probing list, and the context's informers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from controller.framework.context import ControllerContext
from kubelite.discovery import served_resources
from kubelite.informer import Handler, Informer
from kubelite.objects import Object
from kubelite.resources import Resource

log = logging.getLogger(__name__)

DELETABLE_VERBS = frozenset({"delete", "list", "watch"})

# The resources the apiserver serves, with their verbs.
Discover = Callable[[], Awaitable[list[Resource]]]
# (resource, event type, object): an informer event of a watched resource.
EventSink = Callable[[Resource, str, Object], None]


@dataclass(eq=False)
class Monitor:
    resource: Resource
    informer: Informer
    owned: bool  # created by the collector, which runs it
    task: asyncio.Task[None] | None = None
    handler: Handler | None = None  # its handler on the informer, removed when it is unwatched


class Monitors:
    def __init__(
        self,
        ctx: ControllerContext,
        discover: Discover | None,
        on_event: EventSink,
        on_unwatched: Callable[[Resource], None],
    ):
        self.ctx = ctx
        self.discover = discover or (lambda: served_resources(ctx.client))
        self.on_event = on_event
        self.on_unwatched = on_unwatched
        self.watched: dict[Resource, Monitor] = {}
        self.group: asyncio.TaskGroup | None = None  # where owned informers run, while running
        self._kinds: dict[tuple[str, str], Resource] = {}
        self._unlistable: set[Resource] = set()  # logged already

    def __len__(self) -> int:
        return len(self.watched)

    def __contains__(self, resource: Resource) -> bool:
        return resource in self.watched

    def resource_of(self, api_version: str, kind: str) -> Resource | None:
        """The served resource an ownerReference's apiVersion and kind name, if any."""
        return self._kinds.get((api_version, kind))

    async def resync(self) -> bool:
        """Watch what discovery lists and stop watching what it no longer lists. False, changing
        nothing, when discovery fails or lists nothing (an apiserver that is starting)."""
        try:
            served = await self.discover()
        except Exception as exc:
            log.warning("garbage collector: discovery failed; watching the same %d kinds: %s", len(self), exc)
            return False
        if not served:
            log.warning("garbage collector: discovery listed nothing; watching the same %d kinds", len(self))
            return False
        self._kinds = {(r.api_version, r.kind): r for r in served}
        wanted = {r for r in served if set(r.verbs) >= DELETABLE_VERBS}
        for resource in served:
            if resource in wanted and resource not in self.watched:
                await self._watch(resource)
        for resource in [r for r in self.watched if r not in wanted]:
            self._unwatch(resource)
        return True

    def start(self, group: asyncio.TaskGroup | None) -> None:
        """Run the owned informers in this task group from now on (None: stop starting them)."""
        self.group = group
        for monitor in self.watched.values():
            self._run(monitor)

    async def wait_synced(self) -> None:
        await asyncio.gather(*(m.informer.synced.wait() for m in list(self.watched.values())))

    def _run(self, monitor: Monitor) -> None:
        if self.group is None or not monitor.owned:
            return
        if monitor.task is None or monitor.task.done():
            name = f"garbagecollector informer {monitor.resource.group_resource}"
            monitor.task = self.group.create_task(monitor.informer.run(), name=name)

    async def _watch(self, resource: Resource) -> None:
        shared = (resource, None) in self.ctx.informers
        if not shared:
            try:
                await self.ctx.client.list(resource, limit=1)
            except Exception as exc:
                level = logging.DEBUG if resource in self._unlistable else logging.WARNING
                self._unlistable.add(resource)
                log.log(level, "garbage collector: cannot list %s; skipped: %s", resource.group_resource, exc)
                return
        self._unlistable.discard(resource)
        monitor = Monitor(resource, self.ctx.informer(resource), owned=not shared)
        self.watched[resource] = monitor
        monitor.handler = lambda event_type, obj, _old: self.on_event(resource, event_type, obj)
        monitor.informer.add_handler(monitor.handler)
        for obj in monitor.informer.list():
            self.on_event(resource, "ADDED", obj)
        self._run(monitor)
        log.info("garbage collector: watching %s", resource.group_resource)

    def _unwatch(self, resource: Resource) -> None:
        monitor = self.watched.pop(resource)
        if monitor.handler is not None:
            monitor.informer.remove_handler(monitor.handler)
        if monitor.owned:
            if monitor.task is not None:
                monitor.task.cancel()
            self.ctx.informers.pop((resource, None), None)
        log.info(
            "garbage collector: no longer watching %s, which is no longer served", resource.group_resource
        )
        self.on_unwatched(resource)
