"""The watch cache (kube-apiserver's Cacher): one store watch per resource, shared by every watch
request on that resource.

Without it, each watch request is its own etcd watch and decodes every change itself: a hundred
kubelets watching their pods cost a hundred decodes of each pod change. A `Cacher` lists its
resource once, watches the store from there, decodes each change once into a `Change`, keeps the
most recent changes in a ring buffer, and hands them to its subscribers; a subscriber (one watch
request) applies its own namespace and selectors. A watch from a resourceVersion the buffer covers
replays from the buffer; an older one is served by its own store watch, as before (`watch.py`
decides). A subscriber that falls too far behind is ended, as Kubernetes ends slow watchers: its
client watches again from the last version it saw. The cacher also keeps its resource's current
state, which the registry takes as the first guess of a guarded write (as kube-apiserver's
GuaranteedUpdate takes the cached object) and for a namespace's existence when creating in it.

Touches: the store (one list and one watch per resource), through the registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from apiserver.codec import decode
from apiserver.meta import JSONObject
from apiserver.resources import ResourceDef
from apiserver.storage import EventType, KeyValue, StoreError, StoreEvent

log = logging.getLogger(__name__)

CAPACITY = 20000  # changes kept per resource
SUBSCRIBER_BACKLOG = 20000  # changes a watcher may lag before it is ended
RESTART_DELAY = 1.0


@dataclass(frozen=True)
class Change:
    """One store change, decoded once. For a delete, `obj` is the last state with the delete's
    resourceVersion; `prev` is the state before the change (None for a create)."""

    deleted: bool
    obj: JSONObject
    prev: JSONObject | None
    revision: int
    lines: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)  # by event type


def with_revision(obj: JSONObject, revision: int) -> JSONObject:
    """A copy of obj carrying another resourceVersion (a delete's, for the object it removed)."""
    return {**obj, "metadata": {**(obj.get("metadata") or {}), "resourceVersion": str(revision)}}


def change_of(event: StoreEvent) -> Change | None:
    """One store event decoded as a Change, or None for a delete of nothing the store knew."""
    revision = event.kv.mod_revision
    prev = decode(event.prev) if event.prev is not None else None
    if event.type == EventType.DELETE:
        return None if prev is None else Change(True, with_revision(prev, revision), prev, revision)
    return Change(False, decode(event.kv), prev, revision)


@dataclass(eq=False)
class Subscriber:
    """One watch request's view of a Cacher: a bounded queue of changes."""

    namespace: str | None
    queue: asyncio.Queue[Change | None] = field(default_factory=lambda: asyncio.Queue(SUBSCRIBER_BACKLOG))
    ended: bool = False

    def offer(self, change: Change) -> None:
        if self.ended:
            return
        if self.namespace and (change.obj.get("metadata") or {}).get("namespace") != self.namespace:
            return
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            self.end()

    def end(self) -> None:
        """Stop the stream after what is queued (the client resumes from its last version)."""
        if not self.ended:
            self.ended = True
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(None)
            if self.queue.full():  # make room for the end marker: the client will re-watch anyway
                with contextlib.suppress(asyncio.QueueEmpty):
                    self.queue.get_nowait()
                self.queue.put_nowait(None)

    async def changes(self) -> AsyncIterator[Change]:
        while (change := await self.queue.get()) is not None:
            yield change


class Cacher:
    def __init__(self, store, rd: ResourceDef, capacity: int = CAPACITY):  # type: ignore[no-untyped-def]
        self.store = store
        self.rd = rd
        self.changes: deque[Change] = deque(maxlen=capacity)
        self.oldest = 0  # every change after this revision is in `changes`
        self.revision = 0  # the last revision the cache has seen
        self.ready = asyncio.Event()
        self.advanced = asyncio.Condition()
        self.subscribers: set[Subscriber] = set()
        self.objects: dict[str, KeyValue] = {}  # the current state, as of `revision`

    def current(self, key: str) -> KeyValue | None:
        """The stored object as the cache last saw it: a good first guess for a guarded write (the
        write's guard tells if it is stale), never an answer to a read."""
        return self.objects.get(key) if self.ready.is_set() else None

    def covers(self, revision: int) -> bool:
        """Can a watch from `revision` be replayed from the buffer?"""
        return self.ready.is_set() and revision >= self.oldest

    async def wait_for(self, revision: int, timeout: float) -> bool:
        """Wait until the cache has seen `revision` (a client may know a newer one than the cache)."""
        async with self.advanced:
            try:
                async with asyncio.timeout(timeout):
                    await self.advanced.wait_for(lambda: self.revision >= revision)
            except TimeoutError:
                return False
        return True

    def subscribe(self, revision: int, namespace: str | None) -> Subscriber:
        """A subscriber fed every change after `revision` (replayed, then live). Callers check
        `covers(revision)` first; replay and registration happen with no await between them."""
        sub = Subscriber(namespace)
        for change in self.changes:
            if change.revision > revision:
                sub.offer(change)
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    async def run(self) -> None:
        """List, then watch, forever; on a broken watch end every subscriber and start again."""
        prefix = self.rd.prefix(None)
        while True:
            try:
                page = await self.store.list(prefix)
                self._reset(page.revision)
                self.objects = {kv.key: kv for kv in page.items}
                async for batch in self.store.watch(prefix, page.revision + 1):
                    for event in batch:
                        self._add(event)
                    async with self.advanced:
                        self.advanced.notify_all()
            except asyncio.CancelledError:
                self._end_all()
                raise
            except StoreError as err:
                log.warning("watch cache %s: %s; starting again", self.rd.plural, err)
            self._end_all()
            await asyncio.sleep(RESTART_DELAY)

    def _reset(self, revision: int) -> None:
        self._end_all()
        self.changes.clear()
        self.objects.clear()
        self.oldest = self.revision = revision
        self.ready.set()

    def _add(self, event: StoreEvent) -> None:
        if event.type == EventType.DELETE:
            self.objects.pop(event.kv.key, None)
        else:
            self.objects[event.kv.key] = event.kv
        change = change_of(event)
        if change is None:
            return
        revision = change.revision
        if len(self.changes) == self.changes.maxlen:
            self.oldest = self.changes[0].revision
        self.changes.append(change)
        self.revision = revision
        for sub in list(self.subscribers):
            sub.offer(change)
            if sub.ended:
                self.subscribers.discard(sub)

    def _end_all(self) -> None:
        self.ready.clear()
        for sub in self.subscribers:
            sub.end()
        self.subscribers.clear()


class WatchCache:
    """The cachers of one apiserver, started on a resource's first watch, stopped at shutdown."""

    def __init__(self, store) -> None:  # type: ignore[no-untyped-def]
        self.store = store
        self.cachers: dict[str, Cacher] = {}
        self.tasks: list[asyncio.Task[None]] = []

    async def cacher(self, rd: ResourceDef, timeout: float = 5.0) -> Cacher | None:
        """The ready cacher of rd, or None if it could not get ready in time (watch directly)."""
        cacher = self.cachers.get(rd.plural)
        if cacher is None:
            cacher = self.cachers[rd.plural] = Cacher(self.store, rd)
            self.tasks.append(asyncio.create_task(cacher.run(), name=f"watch cache {rd.plural}"))
        try:
            async with asyncio.timeout(timeout):
                await cacher.ready.wait()
        except TimeoutError:
            return None
        return cacher

    def peek(self, rd: ResourceDef) -> Cacher | None:
        """The ready cacher of rd if one runs already (a write never starts one)."""
        cacher = self.cachers.get(rd.plural)
        return cacher if cacher is not None and cacher.ready.is_set() else None

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.tasks.clear()
