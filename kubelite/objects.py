"""Small helpers over Kubernetes objects as plain dicts: keys, timestamps, conditions.

Pure functions; nothing here does IO.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

Object = dict[str, Any]


def micro_time(moment: dt.datetime) -> str:
    """Kubernetes MicroTime: `2006-01-02T15:04:05.000000Z`."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339(moment: dt.datetime) -> str:
    """A time as Kubernetes writes it (metav1.Time): RFC 3339, seconds, UTC, `Z`."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_rfc3339() -> str:
    """The current time as Kubernetes writes it."""
    return rfc3339(dt.datetime.now(dt.UTC))


def parse_rfc3339(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def key_of(obj: Object) -> str:
    """The work-queue key: `namespace/name`, or `name` for cluster-scoped objects."""
    m = obj.get("metadata", {})
    ns = m.get("namespace")
    return f"{ns}/{m['name']}" if ns else m["name"]


def split_key(key: str) -> tuple[str | None, str]:
    if "/" in key:
        ns, name = key.split("/", 1)
        return ns, name
    return None, key


def get_condition(obj: Object, type_: str) -> dict[str, Any] | None:
    cond: dict[str, Any]
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond
    return None


def is_pod_finished(pod: Object) -> bool:
    """The pod has run to its end (phase Succeeded or Failed) and will not run again."""
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_pod_ready(pod: Object) -> bool:
    cond = get_condition(pod, "Ready")
    return bool(cond and cond.get("status") == "True")


def is_node_ready(node: Object) -> bool:
    cond = get_condition(node, "Ready")
    return bool(cond and cond.get("status") == "True")


def is_terminating(obj: Object) -> bool:
    return bool(obj.get("metadata", {}).get("deletionTimestamp"))


def labels_match(selector: dict[str, str] | None, labels: dict[str, str] | None) -> bool:
    """A Service-style selector (a plain map): every pair must be present. Empty selects nothing."""
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def controller_ref(obj: Object) -> dict[str, Any] | None:
    """The ownerReference with `controller: true`: the object that manages this one, if any."""
    ref: dict[str, Any]
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_reference(owner: Object, block_owner_deletion: bool = True) -> dict[str, Any]:
    """The ownerReference a controller puts on what it makes (controller: true)."""
    m = owner.get("metadata", {})
    return {
        "apiVersion": owner.get("apiVersion", ""),
        "kind": owner.get("kind", ""),
        "name": m.get("name", ""),
        "uid": m.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": block_owner_deletion,
    }


def is_pod_available(pod: Object, min_ready_seconds: int, now: dt.datetime) -> bool:
    """Ready for at least min_ready_seconds (podutil.IsPodAvailable)."""
    cond = get_condition(pod, "Ready")
    if not cond or cond.get("status") != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    since = cond.get("lastTransitionTime")
    if not since:
        return False
    return (now - parse_rfc3339(since)).total_seconds() >= min_ready_seconds
