"""The taint manager (Kubernetes' tainteviction controller): pods leave nodes with NoExecute taints.

For each pod on a node with NoExecute taints: a taint the pod does not tolerate evicts it at once;
tolerations with tolerationSeconds keep it until the shortest has passed since the taint it
tolerates was added, or since the pod was bound if that came later (the key comes back through
the queue's add_after then, and a taint that went away meanwhile cancels it); tolerations without
seconds (DaemonSet pods) keep it forever. Eviction is what
Kubernetes does: the event TaintManagerEviction "Marking for deletion Pod ns/name" on the pod, the
DisruptionTarget condition (DeletionByTaintManager), then a graceful delete, after which the pod's
controller makes a replacement on a healthy node. Handlers only enqueue pod keys; the decision is
`tolerations.eviction_decision`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from controller.framework.context import ControllerContext, QueueController
from controller.nodelifecycle.tolerations import bound_at, eviction_decision, no_execute_taints, tainted_since
from kubelite.client import STRATEGIC_MERGE_PATCH, ApiError
from kubelite.objects import Object, is_terminating, key_of, rfc3339, split_key
from kubelite.resources import NODES, PODS
from kubelite.workqueue import WorkQueue

log = logging.getLogger(__name__)

EVICTION_REASON = "TaintManagerEviction"
UPDATE_WORKERS = 8  # Kubernetes' UpdateWorkerSize


def _pod_ref(namespace: str, name: str) -> Object:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": namespace, "name": name}}


class TaintEvictionController(QueueController):
    name = "taint-eviction-controller"

    def __init__(self, ctx: ControllerContext, queue: WorkQueue | None = None):
        super().__init__(queue)
        self.client = ctx.client
        self.clock: Callable[[], dt.datetime] = ctx.clock
        self.nodes = ctx.informer(NODES)
        self.pods = ctx.informer(PODS)
        self.recorder = ctx.recorder(self.name)
        # when this controller first saw a node's NoExecute taints (for taints without timeAdded)
        self.first_seen: dict[str, dt.datetime] = {}
        # pod key -> when its eviction is due (to say "Cancelling deletion" when it no longer is)
        self.scheduled: dict[str, dt.datetime] = {}
        self.nodes.add_handler(self._on_node)
        self.pods.add_handler(self._on_pod)

    # ------------------------------------------------------------------ handlers: enqueue only

    def _on_node(self, event: str, node: Object, old: Object | None) -> None:
        name = node["metadata"]["name"]
        taints = no_execute_taints(node) if event != "DELETED" else []
        if not taints:
            self.first_seen.pop(name, None)
        else:
            self.first_seen.setdefault(name, self.clock())
        if old is not None and event != "DELETED" and no_execute_taints(old) == taints:
            return
        for pod in self.pods.list():
            if (pod.get("spec") or {}).get("nodeName") == name:
                self.queue.add(key_of(pod))

    def _on_pod(self, event: str, pod: Object, old: Object | None) -> None:
        if event == "MODIFIED" and old is not None:
            new_spec, old_spec = pod.get("spec") or {}, old.get("spec") or {}
            if (
                new_spec.get("tolerations") == old_spec.get("tolerations")
                and new_spec.get("nodeName") == old_spec.get("nodeName")
                and is_terminating(pod) == is_terminating(old)
            ):
                return
        self.queue.add(key_of(pod))

    # ------------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        pod = self.pods.get(key)
        node_name = (pod.get("spec") or {}).get("nodeName") if pod else None
        if pod is None or not node_name or is_terminating(pod):
            await self._cancel(key)
            return
        node = self.nodes.get(node_name)
        taints = no_execute_taints(node) if node else []
        now = self.clock()
        tolerations = (pod.get("spec") or {}).get("tolerations") or []
        since = tainted_since(taints, tolerations, self.first_seen.get(node_name, now), bound_at(pod))
        decision = eviction_decision(pod, taints, now, since)
        if decision.evict:
            self.scheduled.pop(key, None)
            log.info("evicting pod %s from node %s: %s", key, node_name, decision.reason)
            await self._evict(pod)
        elif decision.due is not None:
            if key not in self.scheduled:
                log.info(
                    "pod %s on tainted node %s will be evicted at %s", key, node_name, rfc3339(decision.due)
                )
            self.scheduled[key] = decision.due
            self.queue.add_after(key, (decision.due - now).total_seconds())
        else:
            await self._cancel(key)

    async def _cancel(self, key: str) -> None:
        if self.scheduled.pop(key, None) is None:
            return
        namespace, name = split_key(key)
        await self.recorder.record(
            _pod_ref(namespace or "", name), "Normal", EVICTION_REASON, f"Cancelling deletion of Pod {key}"
        )

    async def _evict(self, pod: Object) -> None:
        m = pod["metadata"]
        namespace, name = m["namespace"], m["name"]
        await self.recorder.record(
            pod, "Normal", EVICTION_REASON, f"Marking for deletion Pod {namespace}/{name}"
        )
        condition = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
            "lastTransitionTime": rfc3339(self.clock()),
        }
        try:
            await self.client.patch(
                PODS, name, {"status": {"conditions": [condition]}}, namespace,
                subresource="status", content_type=STRATEGIC_MERGE_PATCH,
            )  # fmt: skip
            await self.client.delete(PODS, name, namespace, preconditions={"uid": m.get("uid", "")})
        except ApiError as exc:
            if exc.not_found or exc.conflict:
                return  # gone, or replaced by a pod of the same name: nothing of ours to evict
            raise

    async def run(self, workers: int = UPDATE_WORKERS) -> None:
        await super().run(workers)
