"""The userspace proxier: keep one NodePortListener per nodePort in the routing table.

Watches Services and Endpoints (informers); any change marks the table dirty and one
reconcile loop recomputes it, opening listeners for new nodePorts and closing those whose
service went away. Listeners read their route from the latest table, so endpoint changes
take effect on the next connection. A port that cannot be opened (already in use) is
logged once and tried again on later changes. Touches the apiserver (reads) and sockets.
"""

from __future__ import annotations

import asyncio
import logging

from kubelite.client import ApiClient
from kubelite.informer import Informer
from kubelite.objects import Object
from kubelite.resources import ENDPOINTS, SERVICES
from proxy.listener import NodePortListener
from proxy.routing import NodePortRoute, RoutingTable, routing_table

log = logging.getLogger(__name__)


class Proxier:
    def __init__(self, client: ApiClient, bind_address: str):
        self.bind_address = bind_address
        self.services = Informer(client, SERVICES)
        self.endpoints = Informer(client, ENDPOINTS)
        self.table = RoutingTable({})
        self.listeners: dict[int, NodePortListener] = {}
        self._dirty = asyncio.Event()
        self._failed_ports: set[int] = set()
        self._reported_conflicts: set[str] = set()
        for informer in (self.services, self.endpoints):
            informer.add_handler(self._on_change)

    def _on_change(self, _event: str, _obj: Object, _old: Object | None) -> None:
        self._dirty.set()

    def route(self, node_port: int) -> NodePortRoute | None:
        return self.table.routes.get(node_port)

    async def run(self) -> None:
        """Run until cancelled; listeners are closed on the way out."""
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.services.run(), name="service-informer")
                tg.create_task(self.endpoints.run(), name="endpoints-informer")
                tg.create_task(self._reconcile_loop(), name="proxier")
        finally:
            await self.close_all()

    async def _reconcile_loop(self) -> None:
        await asyncio.gather(self.services.synced.wait(), self.endpoints.synced.wait())
        while True:
            self._dirty.clear()
            try:
                await self.reconcile()
            except Exception:
                log.exception("cannot apply the routing table; trying again on the next change")
            await self._dirty.wait()

    async def reconcile(self) -> None:
        self.table = routing_table(self.services.list(), self.endpoints.store)
        for note in self.table.conflicts:
            if note not in self._reported_conflicts:
                log.warning("%s; ignoring the second claim", note)
                self._reported_conflicts.add(note)
        for node_port in sorted(set(self.listeners) - set(self.table.routes)):
            listener = self.listeners.pop(node_port)
            await listener.close()
            log.info("closed nodePort %d", node_port)
        self._failed_ports &= set(self.table.routes)
        for node_port, route in sorted(self.table.routes.items()):
            if node_port in self.listeners:
                continue
            listener = NodePortListener(self.bind_address, node_port, lambda p=node_port: self.route(p))
            try:
                await listener.start()
            except OSError as e:
                if node_port not in self._failed_ports:
                    log.error(
                        "cannot listen on %s:%d for %s: %s", self.bind_address, node_port, route.display, e
                    )
                    self._failed_ports.add(node_port)
                continue
            self._failed_ports.discard(node_port)
            self.listeners[node_port] = listener
            log.info(
                "listening on %s:%d for %s (%d endpoints)",
                self.bind_address,
                node_port,
                route.display,
                len(route.backends),
            )

    async def close_all(self) -> None:
        listeners, self.listeners = list(self.listeners.values()), {}
        await asyncio.gather(*(listener.close() for listener in listeners), return_exceptions=True)
