"""The node lifecycle controller: watch node health and taint nodes by it (Kubernetes'
nodelifecycle), and run the taint manager that evicts pods from NoExecute-tainted nodes.

Every --node-monitor-period each node is checked: a kubelet silent for longer than
--node-monitor-grace-period has its conditions set Unknown (`health.is_stale`); the node's
managed taints are then made to match its conditions (`health.reconciled_taints`): unreachable or
not-ready NoExecute and NoSchedule taints while it is not Ready, none once it is Ready again. When
a node stops being Ready its pods are marked not Ready, so Services stop sending them traffic.
Nodes are tainted at once, not rate-limited per zone as Kubernetes does for large clusters.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from controller.framework.context import ControllerContext
from controller.framework.periodic import Sleep, until
from controller.nodelifecycle.health import is_stale, reconciled_taints, unknown_conditions
from controller.nodelifecycle.tainteviction import TaintEvictionController
from kubelite.client import STRATEGIC_MERGE_PATCH, ApiError
from kubelite.objects import Object, get_condition, rfc3339
from kubelite.resources import LEASES, NODES, PODS

log = logging.getLogger(__name__)

NODE_LEASE_NAMESPACE = "kube-node-lease"
DEFAULT_MONITOR_PERIOD = 5.0
DEFAULT_GRACE_PERIOD = 40.0


def ready_status(node: Object) -> str:
    cond = get_condition(node, "Ready")
    return str(cond.get("status")) if cond else ""


class NodeLifecycleController:
    name = "nodelifecycle"

    def __init__(self, ctx: ControllerContext):
        self.client = ctx.client
        self.clock: Callable[[], dt.datetime] = ctx.clock
        self.nodes = ctx.informer(NODES)
        self.leases = ctx.informer(LEASES, NODE_LEASE_NAMESPACE)
        self.pods = ctx.informer(PODS)
        self.grace = float(getattr(ctx.options, "node_monitor_grace_period", DEFAULT_GRACE_PERIOD))
        self.period = float(getattr(ctx.options, "node_monitor_period", DEFAULT_MONITOR_PERIOD))
        self.recorder = ctx.recorder("node-controller")
        self.taint_manager = TaintEvictionController(ctx)
        self.observed_ready: dict[str, str] = {}  # node -> Ready status at the last pass
        self.sleep: Sleep = asyncio.sleep

    async def check(self) -> None:
        """One monitorNodeHealth pass over every node."""
        now = self.clock()
        seen = set()
        for node in self.nodes.list():
            name = node["metadata"]["name"]
            seen.add(name)
            try:
                await self._check_node(node, now)
            except ApiError as exc:
                if not (exc.not_found or exc.conflict):
                    raise
                log.info("node %s changed or went while being checked (%s); next pass", name, exc)
        for name in set(self.observed_ready) - seen:
            del self.observed_ready[name]

    async def _check_node(self, node: Object, now: dt.datetime) -> None:
        name = node["metadata"]["name"]
        lease = self.leases.get(f"{NODE_LEASE_NAMESPACE}/{name}")
        if is_stale(node, lease, now, self.grace):
            log.warning("node %s: kubelet stopped posting node status; marking it NotReady", name)
            patch = {"status": {"conditions": unknown_conditions(node, rfc3339(now))}}
            node = await self.client.patch(
                NODES, name, patch, subresource="status", content_type=STRATEGIC_MERGE_PATCH
            )
        status = ready_status(node)
        was = self.observed_ready.get(name)
        self.observed_ready[name] = status
        if (was == "True" and status != "True") or (was is None and status == "Unknown"):
            await self.recorder.record(
                {**node, "kind": "Node", "apiVersion": "v1"}, "Normal", "NodeNotReady",
                f"Node {name} status is now: NodeNotReady",
            )  # fmt: skip
            await self._mark_pods_not_ready(name)
        await self._sync_taints(node, now)

    async def _sync_taints(self, node: Object, now: dt.datetime, attempts: int = 3) -> None:
        """Make the node's managed taints match its conditions; a node that changed meanwhile (its
        kubelet posted status) is read again and retried, as Kubernetes' taint swap does."""
        name = node["metadata"]["name"]
        for attempt in range(attempts):
            taints = reconciled_taints(node, rfc3339(now))
            if taints is None:
                return
            updated = {**node, "spec": {**(node.get("spec") or {}), "taints": taints}}
            if not taints:
                updated["spec"].pop("taints")
            try:
                await self.client.update(NODES, updated)
            except ApiError as exc:
                if not exc.conflict or attempt == attempts - 1:
                    raise
                node = await self.client.get(NODES, name)
                continue
            log.info("node %s taints now: %s", name, [f"{t['key']}:{t['effect']}" for t in taints] or "none")
            return

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        """MarkPodsNotReady: a pod on a node that is not Ready is not Ready either."""
        for pod in self.pods.list():
            if (pod.get("spec") or {}).get("nodeName") != node_name:
                continue
            ready = get_condition(pod, "Ready")
            if ready is None or ready.get("status") != "True":
                continue
            m = pod["metadata"]
            cond = {"type": "Ready", "status": "False", "lastTransitionTime": rfc3339(self.clock())}
            try:
                await self.client.patch(
                    PODS, m["name"], {"status": {"conditions": [cond]}}, m["namespace"],
                    subresource="status", content_type=STRATEGIC_MERGE_PATCH,
                )  # fmt: skip
            except ApiError as exc:
                log.info("could not mark pod %s/%s not ready: %s", m["namespace"], m["name"], exc)
                continue
            await self.recorder.record(pod, "Warning", "NodeNotReady", "Node is not ready")

    async def monitor(self) -> None:
        """check() every --node-monitor-period; a failed pass (the apiserver away) waits for the next."""
        await until(self.check, self.period, "node lifecycle check", self.sleep)

    async def run(self, workers: int = 1) -> None:
        """The health monitor every --node-monitor-period, and the taint manager's workers."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.taint_manager.run(), name="taint-eviction-controller")
            tg.create_task(self.monitor(), name="node-lifecycle-monitor")
