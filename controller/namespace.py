"""The namespace controller: empties a Terminating namespace, then finalizes it.

Deletes every namespaced object of every served kind in the namespace (found through
discovery), waits until they are gone (pods go gracefully, through their kubelet), then
removes the `kubernetes` finalizer through `namespaces/<name>/finalize` so the apiserver
removes the namespace.
"""

from __future__ import annotations

import logging

from controller.framework.context import ControllerContext, QueueController
from kubelite.client import ApiError
from kubelite.discovery import namespaced_deletable
from kubelite.objects import is_terminating, key_of
from kubelite.resources import NAMESPACES

log = logging.getLogger(__name__)

RECHECK_SECONDS = 1.0


class NamespaceController(QueueController):
    name = "namespace"

    def __init__(self, ctx: ControllerContext):
        super().__init__()
        self.client = ctx.client
        self.namespaces = ctx.informer(NAMESPACES)
        self.namespaces.add_handler(self._on_namespace)

    def _on_namespace(self, event_type: str, ns: dict, _old: dict | None) -> None:
        if event_type != "DELETED" and is_terminating(ns):
            self.queue.add(key_of(ns))

    async def sync(self, key: str) -> None:
        ns = self.namespaces.get(key)
        if ns is None or not is_terminating(ns):
            return
        remaining = 0
        for res in await namespaced_deletable(self.client):
            try:
                listing = await self.client.list(res, key)
            except ApiError as exc:
                log.warning("namespace %s: cannot list %s: %s", key, res.plural, exc)
                remaining += 1
                continue
            for item in listing.get("items") or []:
                remaining += 1
                if item.get("metadata", {}).get("deletionTimestamp"):
                    continue
                try:
                    await self.client.delete(
                        res, item["metadata"]["name"], key, propagation_policy="Background"
                    )
                except ApiError as exc:
                    if not exc.not_found:
                        log.warning("namespace %s: cannot delete %s/%s: %s", key, res.plural, item, exc)
        if remaining:
            self.queue.add_after(key, RECHECK_SECONDS)
            return
        finalizers = [f for f in ns.get("spec", {}).get("finalizers") or [] if f != "kubernetes"]
        body = {**ns, "spec": {**ns.get("spec", {}), "finalizers": finalizers}}
        try:
            await self.client.put_path(NAMESPACES.path(None, key, "finalize"), body)
        except ApiError as exc:
            if exc.not_found:
                return
            raise
        log.info("namespace %s finalized", key)
