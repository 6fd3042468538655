"""Which nodes can take a pod, and why the others cannot (kube-scheduler's filter plugins).

Pure functions over plain objects: no IO. The reasons use the real scheduler's wording,
because users read them in `kubectl describe pod`.
"""

from __future__ import annotations

from collections import Counter

from kubelite.objects import Object, is_node_ready
from kubelite.quantity import QuantityError, milli, parse_quantity
from kubelite.scheduling import matches_node_affinity, untolerated_taint

NOT_READY_TAINT = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
NODE_AFFINITY_MISMATCH = "node(s) didn't match Pod's node affinity/selector"


class NodeInfo:
    """A node with what is already placed on it: each pod's requests by uid and their running sum,
    so that filtering and scoring a node costs the same however many pods it runs."""

    def __init__(self, node: Object, pods: list[Object] | None = None) -> None:
        self.node = node
        self.pods: dict[str, tuple[int, int]] = {}
        self.cpu = self.mem = 0
        for pod in pods or []:
            self.add(pod)

    @property
    def name(self) -> str:
        return str(self.node["metadata"]["name"])

    @property
    def pod_count(self) -> int:
        return len(self.pods)

    def add(self, pod: Object) -> None:
        uid = str(pod.get("metadata", {}).get("uid") or id(pod))
        self.remove(uid)
        cpu, mem = pod_requests(pod)
        self.pods[uid] = (cpu, mem)
        self.cpu += cpu
        self.mem += mem

    def remove(self, uid: str) -> None:
        if uid in self.pods:
            cpu, mem = self.pods.pop(uid)
            self.cpu -= cpu
            self.mem -= mem

    def requested(self) -> tuple[int, int]:
        return self.cpu, self.mem

    def allocatable(self) -> tuple[int, int, int]:
        alloc = (
            self.node.get("status", {}).get("allocatable")
            or self.node.get("status", {}).get("capacity")
            or {}
        )
        return (
            _quantity(alloc.get("cpu"), milli_units=True, default=10**9),
            _quantity(alloc.get("memory"), milli_units=False, default=2**62),
            _quantity(alloc.get("pods"), milli_units=False, default=110),
        )


def _quantity(value: object, *, milli_units: bool, default: int) -> int:
    if value is None:
        return default
    try:
        return milli(value) if milli_units else int(parse_quantity(value))  # type: ignore[arg-type]
    except QuantityError:
        return default


def pod_requests(pod: Object) -> tuple[int, int]:
    """(millicores, bytes) the pod requests: the sum over containers, at least any init container's."""

    def one(container: Object) -> tuple[int, int]:
        req = (container.get("resources") or {}).get("requests") or {}
        cpu = _quantity(req.get("cpu"), milli_units=True, default=0)
        mem = _quantity(req.get("memory"), milli_units=False, default=0)
        return cpu, mem

    spec = pod.get("spec", {})
    sums = [one(c) for c in spec.get("containers") or []]
    cpu, mem = sum(c for c, _ in sums), sum(m for _, m in sums)
    for init in spec.get("initContainers") or []:
        c, m = one(init)
        cpu, mem = max(cpu, c), max(mem, m)
    return cpu, mem


def node_taints(node: Object) -> list[Object]:
    """The node's taints, plus the ones Kubernetes' TaintNodesByCondition would have added."""
    taints = list(node.get("spec", {}).get("taints") or [])
    keys = {t.get("key") for t in taints}
    if not is_node_ready(node) and NOT_READY_TAINT["key"] not in keys:
        taints.append(NOT_READY_TAINT)
    if node.get("spec", {}).get("unschedulable") and UNSCHEDULABLE_TAINT["key"] not in keys:
        taints.append(UNSCHEDULABLE_TAINT)
    return taints


def filter_node(pod: Object, info: NodeInfo) -> str | None:
    """None if the pod fits the node, else the reason it does not."""
    spec = pod.get("spec", {})
    node = info.node
    tolerations = spec.get("tolerations") or []
    if (
        node.get("spec", {}).get("unschedulable")
        and untolerated_taint([UNSCHEDULABLE_TAINT], tolerations) is not None
    ):
        return "node(s) were unschedulable"
    taint = untolerated_taint(node_taints(node), tolerations)
    if taint is not None:
        return f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"
    if not matches_node_affinity(spec, node):
        return NODE_AFFINITY_MISMATCH
    cpu_alloc, mem_alloc, pods_alloc = info.allocatable()
    if info.pod_count + 1 > pods_alloc:
        return "Too many pods"
    cpu_used, mem_used = info.requested()
    cpu_req, mem_req = pod_requests(pod)
    if cpu_req and cpu_used + cpu_req > cpu_alloc:
        return "Insufficient cpu"
    if mem_req and mem_used + mem_req > mem_alloc:
        return "Insufficient memory"
    return None


def failure_message(total_nodes: int, reasons: Counter[str]) -> str:
    """The FailedScheduling message, as `0/3 nodes are available: 1 Insufficient cpu, ...`."""
    if total_nodes == 0:
        return "no nodes available to schedule pods"
    parts = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
    return f"0/{total_nodes} nodes are available: {parts}."


def score_node(pod: Object, info: NodeInfo) -> float:
    """Higher is better: prefer the least allocated node (LeastAllocated), then fewer pods."""
    cpu_alloc, mem_alloc, pods_alloc = info.allocatable()
    cpu_used, mem_used = info.requested()
    cpu_req, mem_req = pod_requests(pod)
    cpu_free = 1 - (cpu_used + cpu_req) / cpu_alloc if cpu_alloc else 0
    mem_free = 1 - (mem_used + mem_req) / mem_alloc if mem_alloc else 0
    pods_free = 1 - (info.pod_count + 1) / pods_alloc if pods_alloc else 0
    return (cpu_free + mem_free) * 50 + pods_free * 100
