"""The kubelet's Node and node Lease objects, built from its flags and the machine's facts.

Pure functions: what to register, how an existing Node is adopted, the status (addresses,
capacity, nodeInfo, conditions with heartbeats) and the Lease renewal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from kubelet.runtime import NodeFacts
from kubelite.objects import Object, micro_time, rfc3339

KUBELET_VERSION = "v1.32.0-kubelite"
LEASE_NAMESPACE = "kube-node-lease"


@dataclass(frozen=True)
class NodeSettings:
    name: str
    ip: str
    port: int
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)
    max_pods: int = 110
    lease_duration_seconds: int = 40


def node_labels(settings: NodeSettings, facts: NodeFacts) -> dict[str, str]:
    return {
        "kubernetes.io/hostname": settings.name,
        "kubernetes.io/os": facts.operating_system,
        "kubernetes.io/arch": facts.architecture,
        **settings.labels,
    }


_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)


def node_status(
    settings: NodeSettings, facts: NodeFacts, old: dict[str, Any] | None, now: dt.datetime
) -> Object:
    """The node's status with heartbeats at `now`; a condition keeps its lastTransitionTime."""
    old = old or {}
    stamp = rfc3339(now)
    old_conditions = {c.get("type"): c for c in old.get("conditions") or [] if isinstance(c, dict)}
    conditions = []
    for type_, status, reason, message in _CONDITIONS:
        prev = old_conditions.get(type_)
        transition = prev.get("lastTransitionTime") if prev and prev.get("status") == status else None
        conditions.append(
            {
                "type": type_,
                "status": status,
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": transition or stamp,
                "reason": reason,
                "message": message,
            }
        )
    resources = {
        "cpu": str(facts.cpus),
        "memory": f"{facts.memory_bytes // 1024}Ki",
        "pods": str(settings.max_pods),
    }
    status: Object = {k: v for k, v in old.items() if k not in ("conditions", "addresses", "nodeInfo")}
    status.update(
        {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": settings.ip},
                {"type": "Hostname", "address": settings.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": settings.port}},
            "nodeInfo": {
                "machineID": facts.machine_id,
                "systemUUID": facts.machine_id,
                "bootID": facts.boot_id,
                "kernelVersion": facts.kernel_version,
                "osImage": facts.os_image,
                "containerRuntimeVersion": facts.runtime_version,
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": facts.operating_system,
                "architecture": facts.architecture,
            },
        }
    )
    return status


def new_node(settings: NodeSettings, facts: NodeFacts, now: dt.datetime) -> Object:
    """The Node to register; taints are applied at registration only, as Kubernetes does."""
    node: Object = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": settings.name, "labels": node_labels(settings, facts)},
        "spec": {},
        "status": node_status(settings, facts, None, now),
    }
    if settings.taints:
        node["spec"]["taints"] = [dict(t) for t in settings.taints]
    return node


def adopt_node(existing: Object, settings: NodeSettings, facts: NodeFacts) -> Object | None:
    """An existing Node with our labels added, or None when it already has them."""
    labels = dict(existing.get("metadata", {}).get("labels") or {})
    wanted = node_labels(settings, facts)
    if all(labels.get(k) == v for k, v in wanted.items()):
        return None
    labels.update(wanted)
    return {**existing, "metadata": {**existing["metadata"], "labels": labels}}


def new_lease(settings: NodeSettings, node_uid: str, now: dt.datetime) -> Object:
    metadata: Object = {"name": settings.name, "namespace": LEASE_NAMESPACE}
    if node_uid:
        metadata["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Node", "name": settings.name, "uid": node_uid}
        ]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {
            "holderIdentity": settings.name,
            "leaseDurationSeconds": settings.lease_duration_seconds,
            "renewTime": micro_time(now),
        },
    }


def renewed_lease(lease: Object, settings: NodeSettings, node_uid: str, now: dt.datetime) -> Object:
    fresh = new_lease(settings, node_uid, now)
    metadata = dict(lease.get("metadata") or {})
    if "ownerReferences" in fresh["metadata"] and not metadata.get("ownerReferences"):
        metadata["ownerReferences"] = fresh["metadata"]["ownerReferences"]
    spec = {**(lease.get("spec") or {}), **fresh["spec"]}
    return {**lease, "apiVersion": fresh["apiVersion"], "kind": "Lease", "metadata": metadata, "spec": spec}


def parse_taint(text: str) -> dict[str, str]:
    """'key=value:Effect' or 'key:Effect' -> a Taint; raises ValueError with the reason."""
    body, sep, effect = text.rpartition(":")
    if not sep or not body:
        raise ValueError(f"invalid taint {text!r}: want key=value:Effect")
    if effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        raise ValueError(f"invalid taint effect {effect!r}: want NoSchedule, PreferNoSchedule or NoExecute")
    key, _, value = body.partition("=")
    if not key:
        raise ValueError(f"invalid taint {text!r}: empty key")
    taint = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint
