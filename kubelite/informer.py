"""Informers: a local cache of one kind, kept current by list + watch, calling handlers on change.

An informer lists, then watches from the list's resourceVersion; when the watch ends it
watches again from the last version it saw, and when that version is too old (410) it lists
again and reports the difference as events. Handlers should only enqueue keys (STYLE.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from kubelite.client import ApiClient, ApiError
from kubelite.objects import Object, key_of
from kubelite.resources import Resource

log = logging.getLogger(__name__)

# handler(event_type, new_object, old_object_or_None); for DELETED new_object is the last state.
Handler = Callable[[str, Object, Object | None], None]


class Informer:
    def __init__(
        self,
        client: ApiClient,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        watch_timeout: int = 300,
    ):
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.watch_timeout = watch_timeout
        self.store: dict[str, Object] = {}
        self.synced = asyncio.Event()
        self._handlers: list[Handler] = []
        self._resource_version = ""

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def get(self, key: str) -> Object | None:
        return self.store.get(key)

    def list(self) -> list[Object]:
        return list(self.store.values())

    def _emit(self, event_type: str, obj: Object, old: Object | None) -> None:
        for handler in self._handlers:
            try:
                handler(event_type, obj, old)
            except Exception:
                log.exception("informer %s: handler failed on %s", self.resource.plural, key_of(obj))

    async def _relist(self) -> None:
        listing = await self.client.list(
            self.resource,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        fresh = {key_of(item): item for item in listing.get("items") or []}
        kind = self.resource.kind
        for item in fresh.values():
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", self.resource.api_version)
        old_store, self.store = self.store, fresh
        for key, item in fresh.items():
            old = old_store.get(key)
            if old is None:
                self._emit("ADDED", item, None)
            elif old.get("metadata", {}).get("resourceVersion") != item["metadata"].get("resourceVersion"):
                self._emit("MODIFIED", item, old)
        for key, old in old_store.items():
            if key not in fresh:
                self._emit("DELETED", old, old)
        self._resource_version = listing.get("metadata", {}).get("resourceVersion", "")
        self.synced.set()

    async def _watch(self) -> None:
        async for event in self.client.watch(
            self.resource,
            self.namespace,
            resource_version=self._resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=self.watch_timeout,
        ):
            obj = event.object
            rv = obj.get("metadata", {}).get("resourceVersion")
            if rv:
                self._resource_version = rv
            if event.type == "BOOKMARK":
                continue
            key = key_of(obj)
            old = self.store.get(key)
            if event.type == "DELETED":
                self.store.pop(key, None)
                self._emit("DELETED", obj, old)
            else:
                self.store[key] = obj
                self._emit("ADDED" if old is None else "MODIFIED", obj, old)

    async def run(self) -> None:
        """List and watch until cancelled."""
        delay = 0.2
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                await self._watch()
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                need_list = True
                if not exc.gone:
                    log.warning("informer %s: %s; listing again in %.1fs", self.resource.plural, exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10)
            except Exception as exc:
                need_list = True
                log.warning("informer %s: %r; listing again in %.1fs", self.resource.plural, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
