"""The pods matching a label selector, kept current by a watch, for the cluster benchmarks.

Touches: the apiserver (one list, then one watch stream, relisting when the stream breaks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from kubelite.client import ApiClient
from kubelite.resources import PODS

log = logging.getLogger("bench")


class PodView:
    """The pods matching a label selector, kept current by a watch (relisting when it breaks), so
    that waiting on hundreds of pods costs the apiserver one stream, not a list per poll."""

    def __init__(self, client: ApiClient, selector: str):
        self.client, self.selector = client, selector
        self.pods: dict[str, dict[str, Any]] = {}
        # called with every pod the watch reports, and whether it was deleted
        self.on_event: Callable[[dict[str, Any], bool], None] = lambda pod, deleted: None

    async def run(self) -> None:
        while True:
            try:
                listing = await self.client.list(PODS, "default", label_selector=self.selector)
                self.pods = {p["metadata"]["name"]: p for p in listing.get("items") or []}
                rv = listing["metadata"]["resourceVersion"]
                while True:
                    async for ev in self.client.watch(
                        PODS,
                        "default",
                        resource_version=rv,
                        label_selector=self.selector,
                        timeout_seconds=300,
                    ):
                        rv = ev.object.get("metadata", {}).get("resourceVersion", rv)
                        if ev.type == "DELETED":
                            self.pods.pop(ev.object["metadata"]["name"], None)
                        elif ev.type in ("ADDED", "MODIFIED"):
                            self.pods[ev.object["metadata"]["name"]] = ev.object
                        if ev.type != "BOOKMARK":
                            self.on_event(ev.object, ev.type == "DELETED")
            except Exception as exc:  # a broken stream, a 410, a refused connection
                log.info("pod watch (%s) broke (%s); listing again", self.selector, exc)
                await asyncio.sleep(0.5)


@contextlib.asynccontextmanager
async def watching(client: ApiClient, selector: str) -> AsyncIterator[PodView]:
    view = PodView(client, selector)
    task = asyncio.create_task(view.run())
    try:
        yield view
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
