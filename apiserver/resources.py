"""The table of served resources: each kind's identity (`kubelite.resources`), its strategy
(`apiserver/kinds/`) and the handlers of its subresources (`apiserver/subresources`).

Discovery, OpenAPI, routing and storage keys all come from this table; nothing else names a
kind. Adding a kind is an entry in `kubelite.resources`, its fields in `kubelite.schema`, a
strategy module, and one line in STRATEGIES below. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from apiserver import subresources
from apiserver.admission import DefaultTolerationSeconds
from apiserver.allocation import NodePortRange, ServiceIPRange
from apiserver.errors import GroupResource
from apiserver.kinds.apps import DeploymentStrategy, ReplicaSetStrategy
from apiserver.kinds.configmaps import ConfigMapStrategy
from apiserver.kinds.controllerrevisions import ControllerRevisionStrategy
from apiserver.kinds.cronjobs import CronJobStrategy
from apiserver.kinds.daemonsets import DaemonSetStrategy
from apiserver.kinds.endpoints import EndpointsStrategy
from apiserver.kinds.events import EventStrategy
from apiserver.kinds.jobs import JobStrategy
from apiserver.kinds.leases import LeaseStrategy
from apiserver.kinds.namespaces import NamespaceStrategy
from apiserver.kinds.nodes import NodeStrategy
from apiserver.kinds.poddisruptionbudgets import PodDisruptionBudgetStrategy
from apiserver.kinds.pods import PodStrategy
from apiserver.kinds.replicationcontrollers import ReplicationControllerStrategy
from apiserver.kinds.secrets import SecretStrategy
from apiserver.kinds.services import ServiceStrategy
from apiserver.kinds.statefulsets import StatefulSetStrategy
from apiserver.strategy import Strategy
from apiserver.subresources import SubresourceHandler
from kubelite import resources
from kubelite.resources import Resource, Subresource


@dataclass(frozen=True)
class ResourceDef:
    resource: Resource
    strategy: Strategy
    handlers: dict[str, SubresourceHandler] = field(default_factory=dict)
    # POST on the collection, when it is not a create (the old `bindings` collection)
    create_handler: SubresourceHandler | None = None

    @property
    def group(self) -> str:
        return self.resource.group

    @property
    def version(self) -> str:
        return self.resource.version

    @property
    def plural(self) -> str:
        return self.resource.plural

    @property
    def singular(self) -> str:
        return self.resource.singular

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def namespaced(self) -> bool:
        return self.resource.namespaced

    @property
    def verbs(self) -> tuple[str, ...]:
        return self.resource.verbs

    @property
    def short_names(self) -> tuple[str, ...]:
        return self.resource.short_names

    @property
    def categories(self) -> tuple[str, ...]:
        return self.resource.categories

    @property
    def subresources(self) -> tuple[Subresource, ...]:
        return self.resource.subresources

    @property
    def group_version(self) -> str:
        return self.resource.api_version

    @property
    def group_resource(self) -> GroupResource:
        return GroupResource(self.group, self.plural)

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

    def of(self, resource: Resource) -> ResourceDef:
        rd = self.lookup(resource.group, resource.version, resource.plural)
        assert rd is not None, f"{resource.plural} is not served"
        return rd

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


def build_resource_table(
    ip_range: ServiceIPRange,
    node_ports: NodePortRange,
    default_tolerations: DefaultTolerationSeconds | None = None,
) -> ResourceTable:
    """Every kind this apiserver serves, in discovery order."""
    strategies: dict[Resource, Callable[[bool], Strategy]] = {
        resources.NAMESPACES: NamespaceStrategy,
        resources.PODS: lambda namespaced: PodStrategy(namespaced, default_tolerations),
        resources.BINDINGS: Strategy,
        resources.NODES: NodeStrategy,
        resources.SERVICES: lambda namespaced: ServiceStrategy(namespaced, ip_range, node_ports),
        resources.ENDPOINTS: EndpointsStrategy,
        resources.EVENTS: EventStrategy,
        resources.CONFIGMAPS: ConfigMapStrategy,
        resources.SECRETS: SecretStrategy,
        resources.REPLICATIONCONTROLLERS: ReplicationControllerStrategy,
        resources.LEASES: LeaseStrategy,
        resources.DEPLOYMENTS: DeploymentStrategy,
        resources.REPLICASETS: ReplicaSetStrategy,
        resources.DAEMONSETS: DaemonSetStrategy,
        resources.STATEFULSETS: StatefulSetStrategy,
        resources.CONTROLLERREVISIONS: ControllerRevisionStrategy,
        resources.JOBS: JobStrategy,
        resources.CRONJOBS: CronJobStrategy,
        resources.PODDISRUPTIONBUDGETS: PodDisruptionBudgetStrategy,
    }
    create_handlers = {resources.BINDINGS: subresources.handler_for("binding")}
    table = []
    for res in resources.ALL:
        handlers = {sub.name: subresources.handler_for(sub.name) for sub in res.subresources}
        table.append(ResourceDef(res, strategies[res](res.namespaced), handlers, create_handlers.get(res)))
    return ResourceTable(table)
