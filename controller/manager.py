"""The controller-manager: a table of controllers, the shared informers they are built on, and one
work loop per enabled controller.

Each row of CONTROLLERS names a controller as kube-controller-manager's `--controllers` does, the
class that builds it from a ControllerContext, and the `--concurrent-*-syncs` option that sets its
workers. The manager builds the enabled ones, starts every informer they asked for, waits until
the caches are synced, then runs the controllers; it owns every task and cancels them all on
shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from controller.deployment import DeploymentController
from controller.endpoints import EndpointsController
from controller.framework.context import ControllerContext
from controller.garbagecollector import GarbageCollector
from controller.namespace import NamespaceController
from controller.nodelifecycle import NodeLifecycleController
from controller.replicaset import ReplicaSetController, ReplicationManager

log = logging.getLogger(__name__)


class Controller(Protocol):
    name: str

    async def run(self, workers: int) -> None: ...


@dataclass(frozen=True)
class ControllerDescriptor:
    name: str  # as --controllers names it
    build: Callable[[ControllerContext], Controller]
    workers_option: str | None  # the --concurrent-*-syncs option that sets its workers
    default_workers: int = 1


CONTROLLERS = (
    ControllerDescriptor("deployment", DeploymentController, "concurrent_deployment_syncs", 5),
    ControllerDescriptor("endpoints", EndpointsController, "concurrent_endpoint_syncs", 5),
    ControllerDescriptor("garbagecollector", GarbageCollector, "concurrent_gc_syncs", 20),
    ControllerDescriptor("namespace", NamespaceController, "concurrent_namespace_syncs", 10),
    ControllerDescriptor("nodelifecycle", NodeLifecycleController, None, 1),
    ControllerDescriptor("replicaset", ReplicaSetController, "concurrent_replicaset_syncs", 5),
    ControllerDescriptor("replicationcontroller", ReplicationManager, "concurrent_rc_syncs", 5),
)
ALL_CONTROLLERS = tuple(d.name for d in CONTROLLERS)


def enabled(spec: str) -> tuple[str, ...]:
    """kube-controller-manager's --controllers: `*` is all, `-name` disables, `name` enables."""
    names: set[str] = set()
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        if item == "*":
            names |= set(ALL_CONTROLLERS)
        elif item.startswith("-"):
            if item[1:] not in ALL_CONTROLLERS:
                raise ValueError(f'"{item[1:]}" is not in the list of known controllers')
            names.discard(item[1:])
        elif item in ALL_CONTROLLERS:
            names.add(item)
        else:
            raise ValueError(f'"{item}" is not in the list of known controllers')
    return tuple(sorted(names))


class ControllerManager:
    def __init__(self, ctx: ControllerContext):
        self.ctx = ctx
        self.options: Any = ctx.options

    async def run(self) -> None:
        on = set(self.options.controllers)
        running: list[tuple[Controller, int]] = []
        for descriptor in CONTROLLERS:
            if descriptor.name not in on:
                continue
            workers = descriptor.default_workers
            if descriptor.workers_option:
                workers = getattr(self.options, descriptor.workers_option, workers)
            running.append((descriptor.build(self.ctx), workers))
        log.info("starting controllers: %s", ", ".join(sorted(on)))
        async with asyncio.TaskGroup() as tg:
            for inf in list(self.ctx.informers.values()):
                tg.create_task(inf.run(), name=f"informer {inf.resource.plural}")
            await asyncio.gather(*(inf.synced.wait() for inf in self.ctx.informers.values()))
            log.info("caches synced")
            for controller, workers in running:
                tg.create_task(controller.run(workers), name=controller.name)
