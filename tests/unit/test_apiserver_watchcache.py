"""The watch cache: one store watch per resource, the same events a watch request would see on its
own, replay from a covered revision, a direct store watch for an older one, and slow watchers
ended rather than buffered without bound."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from typing import Any

from apiserver.allocation import NodePortRange, ServiceIPRange
from apiserver.registry import ListOptions, Registry
from apiserver.resources import build_resource_table
from apiserver.watch import WatchEventType, watch
from apiserver.watchcache import Subscriber, WatchCache
from kubelite.selectors import parse_label_selector
from tests.fakestore import FakeStore

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


async def registry() -> Registry:
    table = build_resource_table(ServiceIPRange("10.96.0.0/28"), NodePortRange(30000, 30004))
    reg = Registry(FakeStore(), table, clock=lambda: NOW)  # type: ignore[arg-type]
    await reg.ensure_namespace("default")
    await reg.ensure_namespace("other")
    return reg


def configmaps(reg: Registry):
    return reg.table.lookup("", "v1", "configmaps")


async def collect(agen: Any, count: int) -> list[tuple[str, str, str]]:
    out = []
    async with asyncio.timeout(5), contextlib.aclosing(agen):
        async for event in agen:
            meta = event.object["metadata"]
            out.append((str(event.type), meta.get("namespace", ""), meta["name"]))
            if len(out) == count:
                break
    return out


def test_a_cached_watch_sees_exactly_what_a_direct_watch_sees():
    async def scenario(cached: bool) -> list[tuple[str, str, str]]:
        reg = await registry()
        cms = configmaps(reg)
        cache = WatchCache(reg.store) if cached else None
        if cache is not None:
            await cache.cacher(cms)  # the cache is running before the first change
        start = str(reg.store.rev)
        await reg.create(cms, "default", {"metadata": {"name": "a", "labels": {"x": "1"}}})
        await reg.create(cms, "other", {"metadata": {"name": "b", "labels": {"x": "1"}}})
        obj = await reg.get(cms, "default", "a")
        obj["metadata"]["labels"]["x"] = "2"
        await reg.update(cms, "default", "a", obj)
        options = ListOptions(label_selector=parse_label_selector("x=1"), resource_version=start)
        events = await collect(watch(reg, cms, "default", options, cache=cache), 2)
        if cache is not None:
            assert cache.cachers["configmaps"].subscribers == set(), "the subscriber left with its watch"
            await cache.close()
        return events

    direct = asyncio.run(scenario(cached=False))
    assert direct == [("ADDED", "default", "a"), ("DELETED", "default", "a")]
    assert asyncio.run(scenario(cached=True)) == direct


def test_a_watch_from_before_the_cache_is_served_by_its_own_store_watch():
    async def scenario() -> list[tuple[str, str, str]]:
        reg = await registry()
        cms = configmaps(reg)
        start = str(reg.store.rev)
        await reg.create(cms, "default", {"metadata": {"name": "early"}})
        cache = WatchCache(reg.store)
        cacher = await cache.cacher(cms)
        assert cacher is not None and not cacher.covers(int(start))
        events = await collect(
            watch(reg, cms, "default", ListOptions(resource_version=start), cache=cache), 1
        )
        await cache.close()
        return events

    assert asyncio.run(scenario()) == [("ADDED", "default", "early")]


def test_live_changes_reach_every_subscriber_once_decoded_and_a_compacted_start_is_gone():
    async def scenario() -> None:
        reg = await registry()
        cms = configmaps(reg)
        cache = WatchCache(reg.store)
        cacher = await cache.cacher(cms)
        assert cacher is not None
        start = str(cacher.revision)
        watchers = [
            asyncio.create_task(
                collect(watch(reg, cms, ns, ListOptions(resource_version=start), cache=cache), 1)
            )
            for ns in ("default", "other")
        ]
        await asyncio.sleep(0)
        await reg.create(cms, "other", {"metadata": {"name": "o"}})
        await reg.create(cms, "default", {"metadata": {"name": "d"}})
        assert [await w for w in watchers] == [[("ADDED", "default", "d")], [("ADDED", "other", "o")]]
        reg.store.compacted = reg.store.rev  # type: ignore[attr-defined]
        gone = [e async for e in watch(reg, cms, "default", ListOptions(resource_version="1"), cache=cache)]
        assert gone[0].type is WatchEventType.ERROR and gone[0].object["code"] == 410
        await cache.close()

    asyncio.run(scenario())


def test_a_subscriber_that_falls_behind_is_ended_not_buffered_forever():
    async def scenario() -> list[Any]:
        sub = Subscriber(None, asyncio.Queue(2))
        from apiserver.watchcache import Change

        for i in range(5):
            sub.offer(Change(False, {"metadata": {"name": f"c{i}"}}, None, i + 2))
        assert sub.ended
        return [c async for c in sub.changes()]

    drained = asyncio.run(scenario())
    assert len(drained) <= 2, "what was queued before the end is delivered, then the stream ends"
