"""The scheduling loop: watch unscheduled pods and nodes, pick a node, bind.

Placement decisions come from `predicates` (pure), over the nodes of `cache` (kept current by the
informers' events, with the pods it has bound but not yet seen bound "assumed" on their nodes).
This module owns the IO: informers, the work queue, the `pods/<name>/binding` call, the
PodScheduled condition and events.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter

from kubelite.client import ApiClient, ApiError
from kubelite.events import EventRecorder
from kubelite.informer import Informer
from kubelite.objects import Object, is_pod_finished, is_terminating, key_of, now_rfc3339, split_key
from kubelite.resources import NODES, PODS
from kubelite.scheduling import target_node_names
from kubelite.workqueue import WorkQueue, run_workers
from scheduler.cache import SchedulerCache
from scheduler.predicates import NODE_AFFINITY_MISMATCH, NodeInfo, failure_message, filter_node, score_node

log = logging.getLogger(__name__)

SCHEDULER_NAME = "default-scheduler"


def wants_scheduling(pod: Object) -> bool:
    spec = pod.get("spec", {})
    return (
        not spec.get("nodeName")
        and spec.get("schedulerName", SCHEDULER_NAME) == SCHEDULER_NAME
        and not is_terminating(pod)
        and not is_pod_finished(pod)
    )


def candidate_nodes(pod: Object, nodes: dict[str, NodeInfo]) -> tuple[list[NodeInfo], int]:
    """The nodes worth filtering for pod, and how many others its affinity rules out unseen: a pod
    whose required affinity names its nodes (`matchFields metadata.name In`, as DaemonSet pods have)
    is weighed against those nodes only, as the NodeAffinity PreFilter arranges."""
    names = target_node_names(pod.get("spec") or {})
    if names is None:
        return list(nodes.values()), 0
    infos = [nodes[name] for name in sorted(names) if name in nodes]
    return infos, len(nodes) - len(infos)


def choose_node(
    pod: Object, infos: list[NodeInfo], rng: random.Random, ruled_out: int = 0
) -> tuple[str | None, Counter[str]]:
    """The best node for pod (random among the best), or None with the reasons per node; ruled_out
    nodes were excluded by the pod's node affinity before filtering."""
    reasons: Counter[str] = Counter()
    if ruled_out:
        reasons[NODE_AFFINITY_MISMATCH] += ruled_out
    feasible: list[tuple[float, str]] = []
    for info in infos:
        reason = filter_node(pod, info)
        if reason:
            reasons[reason] += 1
        else:
            feasible.append((score_node(pod, info), info.name))
    if not feasible:
        return None, reasons
    best = max(score for score, _ in feasible)
    return rng.choice(sorted(name for score, name in feasible if score == best)), reasons


class Scheduler:
    def __init__(self, client: ApiClient, rng: random.Random | None = None):
        self.client = client
        self.rng = rng or random.Random()
        self.pods = Informer(client, PODS)
        self.nodes = Informer(client, NODES)
        self.queue = WorkQueue()
        self.recorder = EventRecorder(client, SCHEDULER_NAME)
        self.cache = SchedulerCache()
        self.unschedulable: set[str] = set()
        self.pods.add_handler(self._on_pod)
        self.nodes.add_handler(self._on_node)

    def _on_pod(self, event_type: str, pod: Object, old: Object | None) -> None:
        if event_type == "DELETED":
            self.cache.remove_pod(pod)
        else:
            self.cache.set_pod(pod)
        if event_type == "DELETED" or (
            old and old.get("spec", {}).get("nodeName") != pod["spec"].get("nodeName")
        ):
            self._retry_unschedulable()  # capacity may have been freed
        if event_type != "DELETED" and wants_scheduling(pod):
            self.queue.add(key_of(pod))

    def _on_node(self, event_type: str, node: Object, old: Object | None) -> None:
        if event_type == "DELETED":
            self.cache.remove_node(node["metadata"]["name"])
            return
        self.cache.set_node(node)
        self._retry_unschedulable()

    def _retry_unschedulable(self) -> None:
        for key in list(self.unschedulable):
            self.queue.add(key)

    async def sync(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None or not wants_scheduling(pod) or pod["metadata"].get("uid") in self.cache.assumed:
            self.unschedulable.discard(key)
            return
        infos, ruled_out = candidate_nodes(pod, self.cache.nodes)
        node, reasons = choose_node(pod, infos, self.rng, ruled_out)
        if node is None:
            self.unschedulable.add(key)
            await self._report_unschedulable(pod, failure_message(len(infos) + ruled_out, reasons))
            return
        self.unschedulable.discard(key)
        namespace, name = split_key(key)
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, "uid": pod["metadata"].get("uid")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        self.cache.assume(pod, node)  # counted on the node while the binding is in flight
        try:
            await self.client.post_subresource(PODS, name, "binding", binding, namespace)
        except ApiError as exc:
            self.cache.forget(pod)
            if exc.not_found or exc.code == 409:
                log.info("not binding %s: %s", key, exc)
                return
            raise
        except BaseException:
            self.cache.forget(pod)
            raise
        log.info("bound %s to %s", key, node)
        await self.recorder.record(
            pod, "Normal", "Scheduled", f"Successfully assigned {namespace}/{name} to {node}"
        )

    async def _report_unschedulable(self, pod: Object, message: str) -> None:
        conditions = pod.get("status", {}).get("conditions") or []
        current = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
        if current and current.get("reason") == "Unschedulable" and current.get("message") == message:
            return
        log.info("cannot schedule %s: %s", key_of(pod), message)
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": None,
            "lastTransitionTime": now_rfc3339(),
        }
        patch = {"status": {"conditions": [condition]}}
        m = pod["metadata"]
        try:
            await self.client.patch(
                PODS,
                m["name"],
                patch,
                m["namespace"],
                subresource="status",
                content_type="application/strategic-merge-patch+json",
            )
        except ApiError as exc:
            if not exc.not_found:
                raise
        await self.recorder.record(pod, "Warning", "FailedScheduling", message)

    async def run(self, workers: int = 2) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.pods.run())
                tg.create_task(self.nodes.run())
                await asyncio.gather(self.pods.synced.wait(), self.nodes.synced.wait())
                log.info("caches synced; scheduling")
                tg.create_task(run_workers(self.queue, self.sync, workers, name="scheduler"))
        finally:
            self.queue.shutdown()
