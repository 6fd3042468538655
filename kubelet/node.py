"""The kubelet's side of its Node: register it, post its status, keep its Lease renewed.

Touches the apiserver only: nodes, nodes/<name>/status and leases in kube-node-lease.
Registration retries until the apiserver answers; a Node deleted behind the kubelet's back is
registered again by the next status update.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from kubelet.nodestatus import (
    LEASE_NAMESPACE,
    NodeSettings,
    adopt_node,
    new_lease,
    new_node,
    node_status,
    renewed_lease,
)
from kubelet.runtime import NodeFacts
from kubelite.client import ApiClient, ApiError
from kubelite.resources import LEASES, NAMESPACES, NODES

log = logging.getLogger(__name__)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class NodeAgent:
    def __init__(self, client: ApiClient, settings: NodeSettings, facts: NodeFacts, status_period: float):
        self.client = client
        self.settings = settings
        self.facts = facts
        self.status_period = status_period
        self.node_uid = ""

    async def register(self) -> None:
        """Create the Node, or adopt an existing one; retry until the apiserver answers."""
        delay = 0.2
        while True:
            try:
                await self._register_once()
                return
            except (ApiError, OSError, TimeoutError) as e:
                log.warning("cannot register node %s: %s; retrying in %.1fs", self.settings.name, e, delay)
            except Exception as e:  # aiohttp client errors and the like
                log.warning("cannot register node %s: %r; retrying in %.1fs", self.settings.name, e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 7.0)

    async def _register_once(self) -> None:
        name = self.settings.name
        try:
            created = await self.client.create(NODES, new_node(self.settings, self.facts, _now()))
            self.node_uid = created.get("metadata", {}).get("uid", "")
            log.info("registered node %s", name)
            await self.update_status()  # create may ignore status, as the real apiserver does
            return
        except ApiError as e:
            if not e.already_exists and e.code != 409:
                raise
        existing = await self.client.get(NODES, name)
        adopted = adopt_node(existing, self.settings, self.facts)
        if adopted is not None:
            existing = await self.client.update(NODES, adopted)
        self.node_uid = existing.get("metadata", {}).get("uid", "")
        log.info("node %s already registered; adopted it", name)
        await self.update_status()

    async def update_status(self) -> None:
        node = await self.client.get(NODES, self.settings.name)
        self.node_uid = node.get("metadata", {}).get("uid", self.node_uid)
        node["status"] = node_status(self.settings, self.facts, node.get("status"), _now())
        node.setdefault("apiVersion", "v1")
        node.setdefault("kind", "Node")
        await self.client.update(NODES, node, subresource="status")

    async def run_status_updates(self) -> None:
        """Post the node's status (heartbeats) every period."""
        while True:
            await asyncio.sleep(self.status_period)
            try:
                await self.update_status()
            except ApiError as e:
                if e.not_found:
                    log.warning("node %s is gone from the API; registering it again", self.settings.name)
                    await self.register()
                else:
                    log.warning("cannot update status of node %s: %s", self.settings.name, e)
            except Exception as e:
                log.warning("cannot update status of node %s: %r", self.settings.name, e)

    async def renew_lease(self) -> None:
        name = self.settings.name
        try:
            lease = await self.client.get(LEASES, name, LEASE_NAMESPACE)
        except ApiError as e:
            if not e.not_found:
                raise
            await self._create_lease()
            return
        await self.client.update(LEASES, renewed_lease(lease, self.settings, self.node_uid, _now()))

    async def _create_lease(self) -> None:
        lease = new_lease(self.settings, self.node_uid, _now())
        try:
            await self.client.create(LEASES, lease, LEASE_NAMESPACE)
        except ApiError as e:
            if not e.not_found:
                raise
            # The namespace is missing: a fresh apiserver may not have made it yet.
            try:
                await self.client.create(
                    NAMESPACES,
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LEASE_NAMESPACE}},
                )
            except ApiError as ns_error:
                if ns_error.code != 409:
                    raise
            await self.client.create(LEASES, lease, LEASE_NAMESPACE)

    async def run_lease(self) -> None:
        """Renew the Lease every quarter of its duration; retry failures quickly."""
        interval = max(self.settings.lease_duration_seconds / 4, 0.5)
        delay = 0.2
        while True:
            try:
                await self.renew_lease()
                delay = 0.2
                await asyncio.sleep(interval)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning(
                    "cannot renew lease of node %s: %r; retrying in %.1fs", self.settings.name, e, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 7.0)
