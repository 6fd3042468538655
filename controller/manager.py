"""The controller-manager: shared informers, and one work loop per enabled controller.

Each controller maps informer events to keys and syncs keys (STYLE.md); the manager owns
the informers and every task, and cancels them all on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from controller.endpoints import EndpointsController
from controller.namespace import NamespaceController
from controller.nodelifecycle import NODE_LEASE_NAMESPACE, NodeLifecycleController
from kubelite.client import ApiClient
from kubelite.informer import Informer
from kubelite.resources import ENDPOINTS, LEASES, NAMESPACES, NODES, PODS, SERVICES, Resource
from kubelite.workqueue import run_workers

log = logging.getLogger(__name__)

ALL_CONTROLLERS = ("endpoints", "namespace", "nodelifecycle")


@dataclass
class ManagerOptions:
    controllers: tuple[str, ...] = ALL_CONTROLLERS
    node_monitor_grace_period: float = 40.0
    workers: int = 2


def enabled(spec: str) -> tuple[str, ...]:
    """kube-controller-manager's --controllers: `*` is all, `-name` disables, `name` enables."""
    names: set[str] = set()
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        if item == "*":
            names |= set(ALL_CONTROLLERS)
        elif item.startswith("-"):
            names.discard(item[1:])
        elif item in ALL_CONTROLLERS:
            names.add(item)
        else:
            raise ValueError(f'"{item}" is not in the list of known controllers')
    return tuple(sorted(names))


class ControllerManager:
    def __init__(self, client: ApiClient, options: ManagerOptions):
        self.client = client
        self.options = options
        self._informers: dict[tuple[Resource, str | None], Informer] = {}

    def informer(self, res: Resource, namespace: str | None = None) -> Informer:
        key = (res, namespace)
        if key not in self._informers:
            self._informers[key] = Informer(self.client, res, namespace)
        return self._informers[key]

    async def run(self) -> None:
        loops = []
        on = self.options.controllers
        if "endpoints" in on:
            ctl = EndpointsController(
                self.client, self.informer(SERVICES), self.informer(PODS), self.informer(ENDPOINTS)
            )
            loops.append(run_workers(ctl.queue, ctl.sync, self.options.workers, name=ctl.name))
        if "namespace" in on:
            ns_ctl = NamespaceController(self.client, self.informer(NAMESPACES))
            loops.append(run_workers(ns_ctl.queue, ns_ctl.sync, 1, name=ns_ctl.name))
        if "nodelifecycle" in on:
            nl = NodeLifecycleController(
                self.client,
                self.informer(NODES),
                self.informer(LEASES, NODE_LEASE_NAMESPACE),
                self.informer(PODS),
                self.options.node_monitor_grace_period,
            )
            loops.append(nl.run())
        log.info("starting controllers: %s", ", ".join(on))
        async with asyncio.TaskGroup() as tg:
            for inf in self._informers.values():
                tg.create_task(inf.run())
            await asyncio.gather(*(inf.synced.wait() for inf in self._informers.values()))
            log.info("caches synced")
            for loop in loops:
                tg.create_task(loop)
