"""Informers: a local cache of one kind, kept current by list + watch, calling handlers on change.

An informer lists, then watches from the list's resourceVersion; when the watch ends it
watches again from the last version it saw, and when that version is too old (410) it lists
again and reports the difference as events. Handlers should only enqueue keys (STYLE.md).

The cache is indexed, as client-go's indexer is: by namespace, and by the uid of each object's
controller (its ownerReference with `controller: true`), so a controller finds the objects it owns
without scanning every object of the kind. `apply` and `replace` are the only ways the cache
changes; the watch loop calls them, and so can a test's fake API.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Callable

from kubelite.client import ApiClient, ApiError
from kubelite.objects import Object, controller_ref, key_of
from kubelite.resources import Resource

log = logging.getLogger(__name__)

# handler(event_type, new_object, old_object_or_None); for DELETED new_object is the last state.
Handler = Callable[[str, Object, Object | None], None]
# An index function: the index values an object is filed under.
IndexFunc = Callable[[Object], list[str]]

NAMESPACE_INDEX = "namespace"
CONTROLLER_INDEX = "controller-uid"


def by_namespace(obj: Object) -> list[str]:
    return [obj.get("metadata", {}).get("namespace", "")]


def orphans_in(namespace: str) -> str:
    """The CONTROLLER_INDEX value of a namespace's objects that have no controller (a uid has no '/')."""
    return f"{namespace}/"


def by_controller(obj: Object) -> list[str]:
    ref = controller_ref(obj)
    return (
        [ref["uid"]] if ref and ref.get("uid") else [orphans_in(obj.get("metadata", {}).get("namespace", ""))]
    )


DEFAULT_INDEXERS: dict[str, IndexFunc] = {NAMESPACE_INDEX: by_namespace, CONTROLLER_INDEX: by_controller}


class Informer:
    def __init__(
        self,
        client: ApiClient | None,
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
        self._indexers = dict(DEFAULT_INDEXERS)
        self._indices: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def remove_handler(self, handler: Handler) -> None:
        """Stop calling a handler (its user no longer wants this informer's events)."""
        self._handlers.remove(handler)

    def get(self, key: str) -> Object | None:
        return self.store.get(key)

    def list(self, namespace: str | None = None) -> list[Object]:
        """Every cached object, or those of one namespace."""
        if namespace is None:
            return list(self.store.values())
        return self.by_index(NAMESPACE_INDEX, namespace)

    def by_index(self, index: str, value: str) -> builtins.list[Object]:
        keys = self._indices[index].get(value, set())
        return [self.store[k] for k in sorted(keys) if k in self.store]

    # ------------------------------------------------------------------ the cache

    def _index(self, key: str, obj: Object | None, old: Object | None) -> None:
        for name, func in self._indexers.items():
            index = self._indices[name]
            for value in func(old) if old is not None else []:
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
            for value in func(obj) if obj is not None else []:
                index.setdefault(value, set()).add(key)

    def _emit(self, event_type: str, obj: Object, old: Object | None) -> None:
        for handler in self._handlers:
            try:
                handler(event_type, obj, old)
            except Exception:
                log.exception("informer %s: handler failed on %s", self.resource.plural, key_of(obj))

    def apply(self, event_type: str, obj: Object) -> None:
        """One watch event: update the cache and its indices, then call the handlers."""
        obj.setdefault("kind", self.resource.kind)
        obj.setdefault("apiVersion", self.resource.api_version)
        key = key_of(obj)
        old = self.store.get(key)
        if event_type == "DELETED":
            self.store.pop(key, None)
            self._index(key, None, old)
            self._emit("DELETED", obj, old)
        else:
            self.store[key] = obj
            self._index(key, obj, old)
            self._emit("ADDED" if old is None else "MODIFIED", obj, old)

    def replace(self, items: builtins.list[Object], resource_version: str) -> None:
        """A fresh list: report what appeared, changed and vanished since the cache was filled."""
        fresh = {key_of(item): item for item in items}
        old: Object | None
        for key, old in list(self.store.items()):
            if key not in fresh:
                self.apply("DELETED", old)
        for item in fresh.values():
            old = self.store.get(key_of(item))
            if old is None or old.get("metadata", {}).get("resourceVersion") != item["metadata"].get(
                "resourceVersion"
            ):
                self.apply("MODIFIED" if old is not None else "ADDED", item)
        self._resource_version = resource_version
        self.synced.set()

    # ------------------------------------------------------------------ list and watch

    async def _relist(self) -> None:
        assert self.client is not None
        listing = await self.client.list(
            self.resource,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        self.replace(listing.get("items") or [], listing.get("metadata", {}).get("resourceVersion", ""))

    async def _watch(self) -> None:
        assert self.client is not None
        async for event in self.client.watch(
            self.resource,
            self.namespace,
            resource_version=self._resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=self.watch_timeout,
        ):
            rv = event.object.get("metadata", {}).get("resourceVersion")
            if rv:
                self._resource_version = rv
            if event.type != "BOOKMARK":
                self.apply(event.type, event.object)

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
