"""Pod garbage collection (Kubernetes' podgc): force-delete the pods nobody else will.

Every 20 s: terminated pods (Succeeded/Failed) beyond --terminated-pod-gc-threshold go, evicted
and oldest first; pods bound to a node that no longer exists go once the node has been missing for
a 40 s quarantine and a GET confirms it (DisruptionTarget "DeletionByPodGC"); pods being deleted
that were never scheduled go at once; and pods being deleted on a node that is not Ready and will
not finish them go: Kubernetes does that for nodes tainted `node.kubernetes.io/out-of-service`, and
kubelite also for nodes tainted unreachable once the pod's grace period has run out, so that a
dead node's evicted pods really disappear (StatefulSet pods excepted: they keep Kubernetes'
at-most-one guarantee and wait for the node to come back or be deleted). Each pod is first marked
Failed (no kubelet will), then deleted with grace period 0. The choices are pure functions.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from controller.framework.context import ControllerContext
from controller.framework.periodic import Sleep, until
from kubelite.client import STRATEGIC_MERGE_PATCH, ApiError
from kubelite.objects import Object, controller_ref, is_node_ready, parse_rfc3339, rfc3339
from kubelite.resources import NODES, PODS

log = logging.getLogger(__name__)

GC_CHECK_PERIOD = 20.0
QUARANTINE_TIME = 40.0
DEFAULT_TERMINATED_POD_GC_THRESHOLD = 12500
TAINT_OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"


def is_terminated(pod: Object) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Pending", "Running", "Unknown")


def is_evicted(pod: Object) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Failed" and status.get("reason") == "Evicted"


def _eviction_then_age(pod: Object) -> tuple[bool, str, str]:
    m = pod.get("metadata") or {}
    return (not is_evicted(pod), m.get("creationTimestamp") or "", m.get("name") or "")


def terminated_to_delete(pods: list[Object], threshold: int) -> list[Object]:
    """gcTerminated: the terminated pods beyond the threshold, evicted ones first, then oldest."""
    if threshold <= 0:
        return []
    terminated = [p for p in pods if is_terminated(p)]
    excess = len(terminated) - threshold
    return sorted(terminated, key=_eviction_then_age)[:excess] if excess > 0 else []


def _has_taint(node: Object, key: str) -> bool:
    return any(t.get("key") == key for t in (node.get("spec") or {}).get("taints") or [])


def terminating_on_lost_nodes(pods: list[Object], nodes: dict[str, Object], now: dt.datetime) -> list[Object]:
    """gcTerminating: pods being deleted on a node that is not Ready and is out of service, or (kubelite)
    unreachable with the pod's grace period over; StatefulSet pods only for out-of-service."""
    out = []
    for pod in pods:
        m = pod.get("metadata") or {}
        node = nodes.get((pod.get("spec") or {}).get("nodeName") or "")
        if not m.get("deletionTimestamp") or node is None or is_node_ready(node):
            continue
        if _has_taint(node, TAINT_OUT_OF_SERVICE):
            out.append(pod)
            continue
        owner = controller_ref(pod)
        grace_over = parse_rfc3339(m["deletionTimestamp"]) <= now
        if (
            _has_taint(node, TAINT_UNREACHABLE)
            and grace_over
            and not (owner and owner.get("kind") == "StatefulSet")
        ):
            out.append(pod)
    return sorted(out, key=_eviction_then_age)


def unscheduled_terminating(pods: list[Object]) -> list[Object]:
    """gcUnscheduledTerminating: pods being deleted that no node ever took."""
    return [
        p
        for p in pods
        if (p.get("metadata") or {}).get("deletionTimestamp") and not (p.get("spec") or {}).get("nodeName")
    ]


def missing_nodes(pods: list[Object], node_names: set[str]) -> set[str]:
    """The nodes pods are bound to that the node informer does not have."""
    return {n for p in pods if (n := (p.get("spec") or {}).get("nodeName")) and n not in node_names}


class PodGCController:
    name = "podgc"

    def __init__(self, ctx: ControllerContext):
        self.client = ctx.client
        self.clock: Callable[[], dt.datetime] = ctx.clock
        self.pods = ctx.informer(PODS)
        self.nodes = ctx.informer(NODES)
        self.threshold = int(
            getattr(ctx.options, "terminated_pod_gc_threshold", DEFAULT_TERMINATED_POD_GC_THRESHOLD)
        )
        self.period = GC_CHECK_PERIOD
        self.quarantine = QUARANTINE_TIME
        self.missing_since: dict[str, dt.datetime] = {}  # node name -> when first found missing
        self.sleep: Sleep = asyncio.sleep

    async def gc(self) -> None:
        """One pass of every rule (Kubernetes' order)."""
        pods = self.pods.list()
        nodes = {n["metadata"]["name"]: n for n in self.nodes.list()}
        now = self.clock()
        for pod in terminated_to_delete(pods, self.threshold):
            await self._force_delete(pod)
        for pod in terminating_on_lost_nodes(pods, nodes, now):
            await self._force_delete(pod)
        for pod in await self._orphaned(pods, set(nodes), now):
            condition = {
                "type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                "message": "PodGC: node no longer exists", "lastTransitionTime": rfc3339(now),
            }  # fmt: skip
            await self._force_delete(pod, condition)
        for pod in unscheduled_terminating(pods):
            await self._force_delete(pod)

    async def _orphaned(self, pods: list[Object], node_names: set[str], now: dt.datetime) -> list[Object]:
        """gcOrphaned: pods of nodes missing for the whole quarantine and confirmed gone by a GET."""
        missing = missing_nodes(pods, node_names)
        self.missing_since = {n: self.missing_since.get(n, now) for n in missing}
        gone = set()
        for name, since in self.missing_since.items():
            if (now - since).total_seconds() < self.quarantine:
                continue
            try:
                await self.client.get(NODES, name)
            except ApiError as exc:
                if exc.not_found:
                    gone.add(name)
                else:
                    log.warning("pod GC: cannot get node %s: %s", name, exc)
        return [p for p in pods if (p.get("spec") or {}).get("nodeName") in gone]

    async def _force_delete(self, pod: Object, condition: Object | None = None) -> None:
        """markFailedAndDeletePod: phase Failed (and the condition), then delete with grace 0."""
        m = pod["metadata"]
        namespace, name = m["namespace"], m["name"]
        log.info("PodGC is force deleting Pod %s/%s", namespace, name)
        try:
            if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                status: Object = {"phase": "Failed"}
                if condition is not None:
                    status["conditions"] = [condition]
                await self.client.patch(
                    PODS, name, {"status": status}, namespace, subresource="status",
                    content_type=STRATEGIC_MERGE_PATCH,
                )  # fmt: skip
            await self.client.delete(
                PODS, name, namespace, grace_period_seconds=0, preconditions={"uid": m.get("uid", "")}
            )
        except ApiError as exc:
            if not (exc.not_found or exc.conflict):
                log.warning("pod GC: cannot delete pod %s/%s: %s", namespace, name, exc)

    async def run(self, workers: int = 1) -> None:
        """A gc pass every 20 s; `workers` is unused (one loop, as Kubernetes' wait.Until)."""
        await until(self.gc, self.period, "pod GC pass", self.sleep)
