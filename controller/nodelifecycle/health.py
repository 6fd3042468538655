"""The node lifecycle controller: a node whose kubelet went silent becomes NotReady.

A kubelet proves it is alive by renewing its Lease in kube-node-lease (and by posting node
status). When neither happened within --node-monitor-grace-period, every node condition is
set to Unknown ("Kubelet stopped posting node status.") and the node's pods are marked not
Ready, so Services stop sending them traffic. `stale_since` is the pure decision.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from controller.framework.context import ControllerContext
from kubelite.client import STRATEGIC_MERGE_PATCH, ApiError
from kubelite.objects import Object, get_condition, now_rfc3339, parse_rfc3339
from kubelite.resources import LEASES, NODES, PODS

log = logging.getLogger(__name__)

NODE_LEASE_NAMESPACE = "kube-node-lease"


def last_heartbeat(node: Object, lease: Object | None) -> dt.datetime | None:
    times = []
    if lease and lease.get("spec", {}).get("renewTime"):
        times.append(parse_rfc3339(lease["spec"]["renewTime"]))
    ready = get_condition(node, "Ready")
    if ready and ready.get("lastHeartbeatTime"):
        times.append(parse_rfc3339(ready["lastHeartbeatTime"]))
    created = node.get("metadata", {}).get("creationTimestamp")
    if not times and created:
        times.append(parse_rfc3339(created))
    return max(times) if times else None


def is_stale(node: Object, lease: Object | None, now: dt.datetime, grace: float) -> bool:
    """True when the kubelet has not been heard from within grace seconds and Ready is not Unknown yet."""
    ready = get_condition(node, "Ready")
    if ready and ready.get("status") == "Unknown":
        return False
    heard = last_heartbeat(node, lease)
    return heard is not None and (now - heard).total_seconds() > grace


def unknown_conditions(node: Object, now: str) -> list[Object]:
    out = []
    for cond in node.get("status", {}).get("conditions") or [{"type": "Ready"}]:
        out.append(
            {
                **cond,
                "status": "Unknown",
                "reason": "NodeStatusUnknown",
                "message": "Kubelet stopped posting node status.",
                "lastTransitionTime": now,
            }
        )
    return out


class NodeLifecycleController:
    name = "nodelifecycle"

    def __init__(self, ctx: ControllerContext):
        self.client = ctx.client
        self.nodes = ctx.informer(NODES)
        self.leases = ctx.informer(LEASES, NODE_LEASE_NAMESPACE)
        self.pods = ctx.informer(PODS)
        self.grace = ctx.options.node_monitor_grace_period

    async def check(self) -> None:
        now = dt.datetime.now(dt.UTC)
        for node in self.nodes.list():
            name = node["metadata"]["name"]
            lease = self.leases.get(f"{NODE_LEASE_NAMESPACE}/{name}")
            if is_stale(node, lease, now, self.grace):
                await self._mark_unknown(node)

    async def _mark_unknown(self, node: Object) -> None:
        name = node["metadata"]["name"]
        log.warning("node %s: kubelet stopped posting node status; marking it NotReady", name)
        patch = {"status": {"conditions": unknown_conditions(node, now_rfc3339())}}
        try:
            await self.client.patch(
                NODES, name, patch, subresource="status", content_type=STRATEGIC_MERGE_PATCH
            )
        except ApiError as exc:
            if exc.not_found:
                return
            raise
        for pod in self.pods.list():
            if pod.get("spec", {}).get("nodeName") != name:
                continue
            ready = get_condition(pod, "Ready")
            if ready is None or ready.get("status") != "True":
                continue
            m = pod["metadata"]
            cond = {"type": "Ready", "status": "False", "lastTransitionTime": now_rfc3339()}
            try:
                await self.client.patch(
                    PODS,
                    m["name"],
                    {"status": {"conditions": [cond]}},
                    m["namespace"],
                    subresource="status",
                    content_type=STRATEGIC_MERGE_PATCH,
                )
            except ApiError as exc:
                log.info("could not mark pod %s/%s not ready: %s", m["namespace"], m["name"], exc)

    async def run(self, workers: int = 1, period: float = 5.0) -> None:
        """Check every node each period (--node-monitor-period); `workers` is unused: one loop."""
        while True:
            try:
                await self.check()
            except ApiError as exc:
                log.warning("node lifecycle check failed: %s", exc)
            await asyncio.sleep(period)
