"""Watch: turn the store's key changes into Kubernetes watch events for one request.

A watch from resourceVersion R is an etcd watch from R+1 on the resource's key prefix with
prev_kv. Selectors are applied to both the new and the previous object, as the apiserver's
watch cache does: an object that starts matching is ADDED, one that stops matching is
DELETED. A watch without a resourceVersion (or "0") first lists and sends synthetic ADDED
events. Watches are served from the shared watch cache (`watchcache`) whenever it covers their
starting revision. Touches: the store, through the registry.
"""

from __future__ import annotations

import enum
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from apiserver import errors
from apiserver.meta import JSONObject
from apiserver.registry import ListOptions, Registry, parse_resource_version, store_errors
from apiserver.resources import ResourceDef
from apiserver.storage import CompactedError, StoreError, StoreEvent
from apiserver.watchcache import Change, WatchCache, change_of, with_revision

FUTURE_REVISION_WAIT = 3.0  # seconds a watch from a revision the cache has not seen yet waits for it

INITIAL_EVENTS_END = "k8s.io/initial-events-end"


class WatchEventType(enum.StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"
    ERROR = "ERROR"


@dataclass(frozen=True)
class WatchEvent:
    type: WatchEventType
    object: JSONObject
    revision: int = 0
    # the shared change it came from, if any: watchers that want the plain object share one encoding
    change: Change | None = None

    def encoded(self) -> bytes:
        """The event as one line of a watch stream (the plain object), encoded once per change."""
        if self.change is None:
            return encode_line(self.type, self.object)
        lines = self.change.lines
        if self.type not in lines:
            lines[self.type] = encode_line(self.type, self.object)
        return lines[self.type]


def encode_line(kind: WatchEventType, obj: Any) -> bytes:
    return (json.dumps({"type": str(kind), "object": obj}, separators=(",", ":")) + "\n").encode()


def translate(event: StoreEvent, matches: Callable[[JSONObject], bool]) -> WatchEvent | None:
    """One store change as a watch event for a selector, or None if the watcher does not see it."""
    change = change_of(event)
    return None if change is None else translate_change(change, matches)


def translate_change(change: Change, matches: Callable[[JSONObject], bool]) -> WatchEvent | None:
    """A decoded change as this watcher sees it: an object that starts matching its selectors is
    ADDED, one that stops matching is DELETED (carrying the change's resourceVersion). Shared
    objects are never modified."""
    revision = change.revision
    prev_matches = change.prev is not None and matches(change.prev)
    if change.deleted:
        return WatchEvent(WatchEventType.DELETED, change.obj, revision, change) if prev_matches else None
    current_matches = matches(change.obj)
    if current_matches:
        kind = WatchEventType.MODIFIED if prev_matches else WatchEventType.ADDED
        return WatchEvent(kind, change.obj, revision, change)
    if prev_matches and change.prev is not None:
        return WatchEvent(WatchEventType.DELETED, with_revision(change.prev, revision), revision)
    return None


def bookmark(rd: ResourceDef, revision: int, initial_events_end: bool = False) -> WatchEvent:
    meta: JSONObject = {"resourceVersion": str(revision)}
    if initial_events_end:
        meta["annotations"] = {INITIAL_EVENTS_END: "true"}
    obj = {"kind": rd.kind, "apiVersion": rd.group_version, "metadata": meta}
    return WatchEvent(WatchEventType.BOOKMARK, obj, revision)


def error_event(err: errors.APIError) -> WatchEvent:
    return WatchEvent(WatchEventType.ERROR, err.to_status())


async def watch(
    registry: Registry,
    rd: ResourceDef,
    namespace: str | None,
    options: ListOptions,
    *,
    send_initial_events: bool | None = None,
    bookmarks: bool = False,
    cache: WatchCache | None = None,
) -> AsyncIterator[WatchEvent]:
    """The events one watch request sees; ends with an ERROR event on a compacted revision. Served
    from the watch cache when it covers the starting revision, else by a store watch of its own."""

    def matches(obj: JSONObject) -> bool:
        return registry.matches(rd, obj, options)

    rv = options.resource_version
    initial = send_initial_events if send_initial_events is not None else rv in ("", "0")
    try:
        if initial:
            listed = await registry.list(
                rd, namespace, ListOptions(options.label_selector, options.field_selector)
            )
            start = int(listed.resource_version)
            if rv not in ("", "0") and start < parse_resource_version(rv):
                start = parse_resource_version(rv)
            for obj in listed.items:
                yield WatchEvent(WatchEventType.ADDED, obj, start)
            if send_initial_events and bookmarks:
                yield bookmark(rd, start, initial_events_end=True)
        else:
            start = parse_resource_version(rv)
        cacher = await cache.cacher(rd) if cache is not None else None
        if cacher is not None and start > cacher.revision:
            await cacher.wait_for(start, FUTURE_REVISION_WAIT)
        if cacher is not None and cacher.covers(start) and start <= cacher.revision:
            subscriber = cacher.subscribe(start, namespace)
            try:
                async for change in subscriber.changes():
                    translated = translate_change(change, matches)
                    if translated is not None:
                        yield translated
            finally:
                cacher.unsubscribe(subscriber)
            return
        async for batch in registry.store.watch(rd.prefix(namespace), start + 1):
            for event in batch:
                translated = translate(event, matches)
                if translated is not None:
                    yield translated
    except CompactedError as err:
        compacted = err.compact_revision
        yield error_event(errors.too_old_resource_version(int(rv or 0), compacted))
    except errors.APIError as err:
        yield error_event(err)
    except StoreError as err:
        yield error_event(store_errors(err))
