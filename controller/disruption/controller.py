"""The disruption controller: keeps every PodDisruptionBudget's status (currentHealthy,
desiredHealthy, expectedPods, disruptionsAllowed, disruptedPods, the DisruptionAllowed condition)
current as its pods come, go and turn ready, so the eviction subresource can decide from it.

Handlers only enqueue budgets: a budget's own changes, and every pod change for the budgets that
select the pod. `sync` reads the caches (budgets, pods, and the ReplicaSets, Deployments,
StatefulSets and ReplicationControllers whose spec.replicas a percentage needs), lets
`controller.disruption.status` decide, and writes status only when it changed. An eviction
recorded in disruptedPods is looked at again when its two minutes run out. When the counts cannot
be computed the budget allows nothing (failSafe). A second queue resets a pod's DisruptionTarget
condition that no deletion followed within two minutes. Touches: the API, through the client.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from controller.disruption.status import (
    ControllerFinder,
    ScaleError,
    budget_status,
    count_healthy,
    disrupted_pods,
    expected_counts,
    fail_safe_status,
    stale_disruption_wait,
    without_stale_disruption,
)
from controller.framework.context import ControllerContext, QueueController, settled_by_next_sync
from kubelite import resources
from kubelite.client import ApiError
from kubelite.disruptionbudget import budget_selector
from kubelite.objects import Object, controller_ref, key_of
from kubelite.resources import (
    DEPLOYMENTS,
    PODDISRUPTIONBUDGETS,
    PODS,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    STATEFULSETS,
    Resource,
)
from kubelite.workqueue import WorkQueue, run_workers

log = logging.getLogger(__name__)


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


class DisruptionController(QueueController):
    name = "disruption"

    def __init__(self, ctx: ControllerContext):
        super().__init__()
        self.client = ctx.client
        self.clock: Callable[[], dt.datetime] = ctx.clock
        self.budgets = ctx.informer(PODDISRUPTIONBUDGETS)
        self.pods = ctx.informer(PODS)
        self.replicasets = ctx.informer(REPLICASETS)
        self.deployments = ctx.informer(DEPLOYMENTS)
        self.statefulsets = ctx.informer(STATEFULSETS)
        self.replication_controllers = ctx.informer(REPLICATIONCONTROLLERS)
        self.recorder = ctx.recorder("controllermanager")
        # pods whose DisruptionTarget condition may go stale (an eviction whose delete never came)
        self.stale_pods = WorkQueue()
        self.budgets.add_handler(self._on_budget)
        self.pods.add_handler(self._on_pod)

    async def run(self, workers: int = 1) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(run_workers(self.queue, self.sync, workers, name=self.name))
                tg.create_task(
                    run_workers(self.stale_pods, self.sync_stale_pod, 1, name="stale-pod-disruption")
                )
        finally:
            self.queue.shutdown()
            self.stale_pods.shutdown()

    # ------------------------------------------------------------------ event handlers: enqueue only

    def _on_budget(self, event_type: str, pdb: Object, old: Object | None) -> None:
        self.queue.add(key_of(pdb))

    def _on_pod(self, event_type: str, pod: Object, old: Object | None) -> None:
        namespace = pod["metadata"].get("namespace", "")
        for pdb in self.budgets.list(namespace):  # one namespace: only the selector is left to match
            matches = budget_selector(pdb).matches
            if matches(pod["metadata"].get("labels") or {}) or (
                old is not None and matches(old["metadata"].get("labels") or {})
            ):
                self.queue.add(key_of(pdb))
        wait = stale_disruption_wait(pod, self.clock()) if event_type != "DELETED" else None
        if wait is not None:
            self.stale_pods.add_after(key_of(pod), wait)

    # ------------------------------------------------------------------ the scale of a pod's controller

    def _owned(
        self, resource: Resource, ref: dict[str, Any], namespace: str, groups: tuple[str, ...]
    ) -> Object | None:
        """The cached object a controllerRef names, if it is of this kind and still the same one."""
        if ref.get("kind") != resource.kind or _group(str(ref.get("apiVersion", ""))) not in groups:
            return None
        informer = {
            REPLICASETS: self.replicasets, DEPLOYMENTS: self.deployments, STATEFULSETS: self.statefulsets,
            REPLICATIONCONTROLLERS: self.replication_controllers,
        }[resource]  # fmt: skip
        obj = informer.get(f"{namespace}/{ref.get('name')}")
        if obj is None or obj["metadata"].get("uid") != ref.get("uid"):
            return None
        return obj

    @staticmethod
    def _scale(obj: Object) -> tuple[str, int]:
        replicas = (obj.get("spec") or {}).get("replicas")
        return str(obj["metadata"].get("uid")), int(1 if replicas is None else replicas)

    def find_controller(self, ref: dict[str, Any], namespace: str) -> tuple[str, int] | None:
        """The finders in Kubernetes' order: ReplicationController, Deployment (through its
        ReplicaSet), a ReplicaSet no Deployment controls, StatefulSet; another kind has no scale."""
        rc = self._owned(REPLICATIONCONTROLLERS, ref, namespace, ("",))
        if rc is not None:
            return self._scale(rc)
        rs = self._owned(REPLICASETS, ref, namespace, ("apps", "extensions"))
        if rs is not None:
            owner = controller_ref(rs)
            if owner is None or owner.get("kind") != "Deployment":
                return self._scale(rs)
            deployment = self._owned(DEPLOYMENTS, owner, namespace, ("apps", "extensions"))
            return self._scale(deployment) if deployment is not None else None
        sts = self._owned(STATEFULSETS, ref, namespace, ("apps",))
        if sts is not None:
            return self._scale(sts)
        kind, group = ref.get("kind"), _group(str(ref.get("apiVersion", "")))
        if kind in ("ReplicationController", "ReplicaSet", "StatefulSet", "Deployment"):
            return None
        served = next((r for r in resources.ALL if r.kind == kind and r.group == group), None)
        if served is None:
            raise ScaleError(f'no matches for kind "{kind}" in group "{group}"')
        raise ScaleError(f"{served.group_resource} does not implement the scale subresource")

    # ------------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        pdb = self.budgets.get(key)
        if pdb is None:
            return
        finder: ControllerFinder = self.find_controller
        selector = budget_selector(pdb)
        namespace = pdb["metadata"].get("namespace", "")
        pods = [p for p in self.pods.list(namespace) if selector.matches(p["metadata"].get("labels") or {})]
        if not pods:
            await self.recorder.record(pdb, "Normal", "NoPods", "No matching pods found")
        now = self.clock()
        try:
            counts = expected_counts(pdb, pods, finder)
        except ScaleError as exc:
            await self.recorder.record(
                pdb,
                "Warning",
                "CalculateExpectedPodCountFailed",
                f"Failed to calculate the number of expected pods: {exc}",
            )
            await self._write(key, pdb, fail_safe_status(pdb, str(exc), now))
            return
        if counts.unmanaged:
            await self.recorder.record(pdb, "Warning", "UnmanagedPods", unmanaged_message(pdb))
        disrupted = disrupted_pods(pods, pdb, now)
        for name in disrupted.not_deleted:
            pod = next(p for p in pods if p["metadata"].get("name") == name)
            message = (
                f"Pod was expected by PDB {namespace}/{pdb['metadata']['name']} to be deleted but it wasn't"
            )
            await self.recorder.record(pod, "Warning", "NotDeleted", message)
        status = budget_status(pdb, count_healthy(pods, disrupted.pods, now), counts, disrupted.pods, now)
        if status is not None and not await self._write(key, pdb, status):
            return
        if disrupted.recheck_at is not None:
            self.queue.add_after(key, max(0.0, (disrupted.recheck_at - now).total_seconds()))

    async def sync_stale_pod(self, key: str) -> None:
        """Reset a DisruptionTarget=True condition that no deletion followed within two minutes."""
        pod = self.pods.get(key)
        if pod is None:
            return
        wait = stale_disruption_wait(pod, self.clock())
        if wait is None:
            return
        if wait > 0:
            self.stale_pods.add_after(key, wait)
            return
        try:
            await self.client.update(
                PODS, without_stale_disruption(copy.deepcopy(pod), self.clock()), subresource="status"
            )
        except ApiError as exc:
            if not settled_by_next_sync(self.stale_pods, "Pod", key, exc):
                raise
        log.info("reset stale DisruptionTarget condition of pod %s", key)

    async def _write(self, key: str, pdb: Object, status: Object) -> bool:
        """Write the budget's status; False when the budget is gone or changed (synced again)."""
        try:
            await self.client.update(PODDISRUPTIONBUDGETS, {**pdb, "status": status}, subresource="status")
        except ApiError as exc:
            if settled_by_next_sync(self.queue, "PodDisruptionBudget", key, exc):
                return False
            raise
        return True


def unmanaged_message(pdb: Object) -> str:
    selector = (pdb.get("spec") or {}).get("selector")
    return (
        f"Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be unmanaged. "
        "As a result, the status of the PDB cannot be calculated correctly, which may result in undefined "
        'behavior. To account for these pods please set ".spec.minAvailable" '
        "field of the PDB to an integer value."
    )
