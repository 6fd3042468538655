"""Nodes: cluster-scoped, status written by the kubelet, STATUS/ROLES columns. Pure."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from apiserver import tables
from apiserver.kinds.common import bool_field, normalize_quantities
from apiserver.meta import JSONObject
from apiserver.strategy import Strategy
from apiserver.tables import AGE_COLUMN, NAME_COLUMN, Column

ROLE_LABEL_PREFIX = "node-role.kubernetes.io/"


def node_status_text(node: JSONObject) -> str:
    """`Ready`, `NotReady` or `Unknown`, plus `,SchedulingDisabled` when cordoned."""
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if isinstance(c, dict) and c.get("type") == "Ready"), None)
    text = "Unknown" if ready is None else ("Ready" if ready.get("status") == "True" else "NotReady")
    if (node.get("spec") or {}).get("unschedulable"):
        text += ",SchedulingDisabled"
    return text


def node_roles(node: JSONObject) -> str:
    labels = (node.get("metadata") or {}).get("labels") or {}
    roles = set()
    for key, value in labels.items():
        if key.startswith(ROLE_LABEL_PREFIX) and key[len(ROLE_LABEL_PREFIX) :]:
            roles.add(key[len(ROLE_LABEL_PREFIX) :])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) if roles else "<none>"


def _address(node: JSONObject, kind: str) -> str:
    for address in (node.get("status") or {}).get("addresses") or []:
        if isinstance(address, dict) and address.get("type") == kind:
            return address.get("address") or "<none>"
    return "<none>"


class NodeStrategy(Strategy):
    kind = "Node"
    patch_schema = "Node"
    tracks_generation = False
    columns: ClassVar[list[Column]] = [
        NAME_COLUMN,
        Column("Status", description="The status of the node"),
        Column("Roles", description="The roles of the node"),
        AGE_COLUMN,
        Column("Version", description="Kubelet Version reported by the node."),
        Column("Internal-IP", description="List of addresses reachable to the node.", priority=1),
        Column("External-IP", description="List of addresses reachable to the node.", priority=1),
        Column(
            "OS-Image",
            description="OS Image reported by the node from /etc/os-release.",
            priority=1,
        ),
        Column(
            "Kernel-Version",
            description="Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
            priority=1,
        ),
        Column(
            "Container-Runtime",
            description="ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
            priority=1,
        ),
    ]

    def default(self, obj: JSONObject) -> None:
        status = obj.get("status")
        if isinstance(status, dict):
            normalize_quantities(status.get("capacity"))
            normalize_quantities(status.get("allocatable"))

    def prepare_for_update(self, new: JSONObject, old: JSONObject) -> None:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)

    def fields(self, obj: JSONObject) -> dict[str, str]:
        out = super().fields(obj)
        out["spec.unschedulable"] = bool_field((obj.get("spec") or {}).get("unschedulable"))
        return out

    def cells(self, obj: JSONObject, now: dt.datetime) -> list[Any]:
        meta = obj.get("metadata") or {}
        info = (obj.get("status") or {}).get("nodeInfo") or {}
        return [
            meta.get("name", ""),
            node_status_text(obj),
            node_roles(obj),
            tables.age(meta.get("creationTimestamp"), now),
            info.get("kubeletVersion", ""),
            _address(obj, "InternalIP"),
            _address(obj, "ExternalIP"),
            info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>",
        ]
