"""The controller-manager: a table of controllers, the shared informers they are built on, and one
work loop per enabled controller.

Each row of CONTROLLERS names a controller as kube-controller-manager's `--controllers` does, the
class that builds it from a ControllerContext, and the `--concurrent-*-syncs` option that sets its
workers. The manager builds the enabled ones, starts every informer they asked for, waits until
the caches are synced, then runs the controllers; it owns every task and cancels them all on
shutdown. With --leader-elect (the default) it does all of this only while it holds the Lease
kube-system/kube-controller-manager, so a second manager can stand by (kubelite.leaderelection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from controller.cronjob import CronJobController
from controller.daemonset import DaemonSetController
from controller.deployment import DeploymentController
from controller.disruption import DisruptionController
from controller.endpoints import EndpointsController
from controller.framework.context import ControllerContext
from controller.garbagecollector import GarbageCollector
from controller.job import JobController, TTLAfterFinishedController
from controller.namespace import NamespaceController
from controller.nodelifecycle import NodeLifecycleController
from controller.podgc import PodGCController
from controller.replicaset import ReplicaSetController, ReplicationManager
from controller.statefulset import StatefulSetController
from kubelite.leaderelection import LeaderElector

log = logging.getLogger(__name__)

RELEASE_TIMEOUT = 5.0  # seconds a stopping leader tries to release its Lease before it exits anyway


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
    ControllerDescriptor("cronjob", CronJobController, "concurrent_cron_job_syncs", 5),
    ControllerDescriptor("daemonset", DaemonSetController, "concurrent_daemonset_syncs", 2),
    ControllerDescriptor("deployment", DeploymentController, "concurrent_deployment_syncs", 5),
    ControllerDescriptor("disruption", DisruptionController, None, 1),
    ControllerDescriptor("endpoints", EndpointsController, "concurrent_endpoint_syncs", 5),
    ControllerDescriptor("garbagecollector", GarbageCollector, "concurrent_gc_syncs", 20),
    ControllerDescriptor("job", JobController, "concurrent_job_syncs", 5),
    ControllerDescriptor("namespace", NamespaceController, "concurrent_namespace_syncs", 10),
    ControllerDescriptor("nodelifecycle", NodeLifecycleController, None, 1),
    ControllerDescriptor("podgc", PodGCController, None, 1),
    ControllerDescriptor("replicaset", ReplicaSetController, "concurrent_replicaset_syncs", 5),
    ControllerDescriptor("replicationcontroller", ReplicationManager, "concurrent_rc_syncs", 5),
    ControllerDescriptor(
        "ttl-after-finished", TTLAfterFinishedController, "concurrent_ttl_after_finished_syncs", 5
    ),
    ControllerDescriptor("statefulset", StatefulSetController, "concurrent_statefulset_syncs", 5),
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


class LeadershipLost(Exception):
    """The Lease could not be renewed in time: the controllers have stopped; the process must exit
    (kube-controller-manager exits 1 with "leaderelection lost") and its supervisor restart it."""


class ControllerManager:
    def __init__(self, ctx: ControllerContext, elector: LeaderElector | None = None):
        self.ctx = ctx
        self.options: Any = ctx.options
        self.elector = elector  # None: --leader-elect=false, the controllers run at once

    async def run(self) -> None:
        """Run the controllers; with leader election, only while this manager holds the Lease. On
        shutdown the controllers stop first and only then is the Lease released (ReleaseOnCancel),
        so no two managers ever act at once; a lost Lease stops them and raises LeadershipLost."""
        elector = self.elector
        if elector is None:
            await self.run_controllers()
            return
        await elector.acquire()
        controllers = asyncio.create_task(self.run_controllers(), name="controllers")
        renewing = asyncio.create_task(elector.renew(), name="leader election")
        lost = False
        try:
            await asyncio.wait({controllers, renewing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost = renewing.done() and not renewing.cancelled()
            for task in (controllers, renewing):
                task.cancel()
            await asyncio.gather(controllers, renewing, return_exceptions=True)
            if not lost:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RELEASE_TIMEOUT):
                        await elector.release()
        if lost:
            await elector.stopped_leading()
            log.error("leaderelection lost")
            raise LeadershipLost(elector.lock.describe())
        controllers.result()  # a controller's failure fails the process

    async def run_controllers(self) -> None:
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
