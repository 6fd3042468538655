"""The table of served resources: one `ResourceDef` per kind, built from the flags.

Adding a kind is one entry here plus a strategy module in `apiserver/kinds/`. Discovery,
OpenAPI, routing and storage keys all come from this table. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from apiserver.allocation import NodePortRange, ServiceIPRange
from apiserver.errors import GroupResource
from apiserver.kinds.configmaps import ConfigMapStrategy
from apiserver.kinds.endpoints import EndpointsStrategy
from apiserver.kinds.events import EventStrategy
from apiserver.kinds.leases import LeaseStrategy
from apiserver.kinds.namespaces import NamespaceStrategy
from apiserver.kinds.nodes import NodeStrategy
from apiserver.kinds.pods import PodStrategy
from apiserver.kinds.secrets import SecretStrategy
from apiserver.kinds.services import ServiceStrategy
from apiserver.strategy import Strategy

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Subresource:
    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class ResourceDef:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    strategy: Strategy
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> GroupResource:
        return GroupResource(self.group, self.plural)

    def subresource(self, name: str) -> Subresource | None:
        return next((s for s in self.subresources if s.name == name), None)

    def key(self, namespace: str, name: str) -> str:
        """The etcd key of one object."""
        if self.namespaced:
            return f"/registry/{self.plural}/{namespace}/{name}"
        return f"/registry/{self.plural}/{name}"

    def prefix(self, namespace: str | None) -> str:
        """The etcd key prefix of a list: one namespace, or all of them."""
        if self.namespaced and namespace:
            return f"/registry/{self.plural}/{namespace}/"
        return f"/registry/{self.plural}/"


@dataclass
class ResourceTable:
    resources: list[ResourceDef] = field(default_factory=list)

    def lookup(self, group: str, version: str, plural: str) -> ResourceDef | None:
        for rd in self.resources:
            if rd.group == group and rd.version == version and rd.plural == plural:
                return rd
        return None

    def by_kind(self, kind: str) -> ResourceDef | None:
        return next((rd for rd in self.resources if rd.kind == kind), None)

    def group_versions(self) -> list[tuple[str, str]]:
        """(group, version) pairs in first-seen order; core ("") first."""
        seen: dict[tuple[str, str], None] = {}
        for rd in self.resources:
            seen[(rd.group, rd.version)] = None
        return list(seen)

    def in_group_version(self, group: str, version: str) -> Iterable[ResourceDef]:
        return [rd for rd in self.resources if rd.group == group and rd.version == version]


def build_resource_table(ip_range: ServiceIPRange, node_ports: NodePortRange) -> ResourceTable:
    """Every kind this apiserver serves, in discovery order."""
    status = ("get", "patch", "update")
    return ResourceTable(
        [
            ResourceDef(
                "",
                "v1",
                "namespaces",
                "namespace",
                "Namespace",
                False,
                NamespaceStrategy(False),
                short_names=("ns",),
                verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
                subresources=(
                    Subresource("status", "Namespace", status),
                    Subresource("finalize", "Namespace", ("update",)),
                ),
            ),
            ResourceDef(
                "",
                "v1",
                "pods",
                "pod",
                "Pod",
                True,
                PodStrategy(True),
                short_names=("po",),
                categories=("all",),
                subresources=(
                    Subresource("status", "Pod", status),
                    Subresource("binding", "Binding", ("create",)),
                    Subresource("log", "Pod", ("get",)),
                ),
            ),
            ResourceDef("", "v1", "bindings", "binding", "Binding", True, Strategy(True), verbs=("create",)),
            ResourceDef(
                "",
                "v1",
                "nodes",
                "node",
                "Node",
                False,
                NodeStrategy(False),
                short_names=("no",),
                subresources=(Subresource("status", "Node", status),),
            ),
            ResourceDef(
                "",
                "v1",
                "services",
                "service",
                "Service",
                True,
                ServiceStrategy(True, ip_range, node_ports),
                short_names=("svc",),
                categories=("all",),
                verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
                subresources=(Subresource("status", "Service", status),),
            ),
            ResourceDef(
                "",
                "v1",
                "endpoints",
                "endpoints",
                "Endpoints",
                True,
                EndpointsStrategy(True),
                short_names=("ep",),
            ),
            ResourceDef("", "v1", "events", "event", "Event", True, EventStrategy(True), short_names=("ev",)),
            ResourceDef(
                "",
                "v1",
                "configmaps",
                "configmap",
                "ConfigMap",
                True,
                ConfigMapStrategy(True),
                short_names=("cm",),
            ),
            ResourceDef("", "v1", "secrets", "secret", "Secret", True, SecretStrategy(True)),
            ResourceDef("coordination.k8s.io", "v1", "leases", "lease", "Lease", True, LeaseStrategy(True)),
        ]
    )
