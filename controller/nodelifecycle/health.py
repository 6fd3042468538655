"""What a node's health says, purely: whether its kubelet went silent, the conditions that says so,
and the taints its conditions call for.

A kubelet proves it is alive by renewing its Lease in kube-node-lease and by posting node status.
When neither happened within --node-monitor-grace-period, every node condition becomes Unknown
("Kubelet stopped posting node status."). The conditions then map to taints as Kubernetes maps
them: Ready=Unknown is `node.kubernetes.io/unreachable`, Ready=False `node.kubernetes.io/not-ready`,
each as a NoExecute taint (which evicts pods, after their tolerationSeconds) and, with the pressure
conditions and `spec.unschedulable`, as NoSchedule taints (TaintNodesByCondition). A node that is
Ready again loses them.
"""

from __future__ import annotations

import datetime as dt

from kubelite.objects import Object, get_condition, parse_rfc3339

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
TAINT_OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"

# nodeConditionToTaintKeyStatusMap: condition type -> {status: taint key}
CONDITION_TAINTS: dict[str, dict[str, str]] = {
    "Ready": {"False": TAINT_NOT_READY, "Unknown": TAINT_UNREACHABLE},
    "MemoryPressure": {"True": "node.kubernetes.io/memory-pressure"},
    "DiskPressure": {"True": "node.kubernetes.io/disk-pressure"},
    "NetworkUnavailable": {"True": "node.kubernetes.io/network-unavailable"},
    "PIDPressure": {"True": "node.kubernetes.io/pid-pressure"},
}
CONDITION_TAINT_KEYS = frozenset(key for by_status in CONDITION_TAINTS.values() for key in by_status.values())
NO_EXECUTE_KEYS = frozenset({TAINT_NOT_READY, TAINT_UNREACHABLE})


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


def _taint_for(node: Object, condition_type: str) -> str | None:
    cond = get_condition(node, condition_type)
    return CONDITION_TAINTS[condition_type].get(cond.get("status", "")) if cond else None


def desired_taints(node: Object) -> list[tuple[str, str]]:
    """The (key, effect) taints this controller wants on the node, from its conditions."""
    wanted: list[tuple[str, str]] = []
    for condition_type in CONDITION_TAINTS:
        key = _taint_for(node, condition_type)
        if key:
            wanted.append((key, "NoSchedule"))
    if (node.get("spec") or {}).get("unschedulable"):
        wanted.append((TAINT_UNSCHEDULABLE, "NoSchedule"))
    ready_key = _taint_for(node, "Ready")
    if ready_key:
        wanted.append((ready_key, "NoExecute"))
    return wanted


def is_managed(taint: Object) -> bool:
    """A taint this controller owns (and so may remove)."""
    key, effect = taint.get("key"), taint.get("effect")
    if effect == "NoSchedule":
        return key in CONDITION_TAINT_KEYS or key == TAINT_UNSCHEDULABLE
    return effect == "NoExecute" and key in NO_EXECUTE_KEYS


def reconciled_taints(node: Object, now: str) -> list[Object] | None:
    """The node's taints with the managed ones made to match its conditions (new ones stamped with
    timeAdded, kept ones untouched so their timeAdded still counts); None when nothing changes."""
    current: list[Object] = list((node.get("spec") or {}).get("taints") or [])
    wanted = desired_taints(node)
    kept = [t for t in current if not is_managed(t) or (t.get("key"), t.get("effect")) in wanted]
    have = {(t.get("key"), t.get("effect")) for t in kept}
    added = [{"key": k, "effect": e, "timeAdded": now} for k, e in wanted if (k, e) not in have]
    if not added and len(kept) == len(current):
        return None
    return kept + added
