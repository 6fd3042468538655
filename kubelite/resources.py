"""Every kind kubelite serves, in one table: where it lives in the REST API (group, version,
plural, scope), its names for kubectl (singular, short names, categories) and its subresources.

Pure data shared by every process: clients build paths from it, the apiserver builds discovery,
routing and storage keys from it, and the type schema (`kubelite.schema`) describes the fields of
each kind under the same kind name. Adding a kind is one entry here, its fields in the schema and
a strategy module in `apiserver/kinds/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
STATUS_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class Subresource:
    """A subresource as discovery lists it: `deployments/scale` returns an autoscaling/v1 Scale."""

    name: str
    kind: str
    verbs: tuple[str, ...]
    group: str | None = None  # set only when the kind returned lives in another group
    version: str | None = None


def status(kind: str) -> Subresource:
    return Subresource("status", kind, STATUS_VERBS)


SCALE = Subresource("scale", "Scale", STATUS_VERBS, "autoscaling", "v1")


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`deployments.apps`, `pods`: how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def subresource(self, name: str) -> Subresource | None:
        return next((s for s in self.subresources if s.name == name), None)

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """The URL path of the collection, or of one object (and its subresource)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
            if subresource:
                base += f"/{subresource}"
        return base


NAMESPACES = Resource(
    "", "v1", "namespaces", "Namespace", False, "namespace", ("ns",),
    subresources=(status("Namespace"), Subresource("finalize", "Namespace", ("update",))),
    verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
)  # fmt: skip
PODS = Resource(
    "", "v1", "pods", "Pod", True, "pod", ("po",), ("all",),
    subresources=(
        status("Pod"),
        Subresource("binding", "Binding", ("create",)),
        Subresource("eviction", "Eviction", ("create",), "policy", "v1"),
        Subresource("log", "Pod", ("get",)),
    ),
)  # fmt: skip
BINDINGS = Resource("", "v1", "bindings", "Binding", True, "binding", verbs=("create",))
NODES = Resource("", "v1", "nodes", "Node", False, "node", ("no",), subresources=(status("Node"),))
SERVICES = Resource(
    "", "v1", "services", "Service", True, "service", ("svc",), ("all",), (status("Service"),),
    verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
)  # fmt: skip
ENDPOINTS = Resource("", "v1", "endpoints", "Endpoints", True, "endpoints", ("ep",))
EVENTS = Resource("", "v1", "events", "Event", True, "event", ("ev",))
CONFIGMAPS = Resource("", "v1", "configmaps", "ConfigMap", True, "configmap", ("cm",))
SECRETS = Resource("", "v1", "secrets", "Secret", True, "secret")
REPLICATIONCONTROLLERS = Resource(
    "", "v1", "replicationcontrollers", "ReplicationController", True, "replicationcontroller", ("rc",),
    ("all",), (status("ReplicationController"), SCALE),
)  # fmt: skip
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease", True, "lease")
DEPLOYMENTS = Resource(
    "apps", "v1", "deployments", "Deployment", True, "deployment", ("deploy",), ("all",),
    (status("Deployment"), SCALE),
)  # fmt: skip
REPLICASETS = Resource(
    "apps", "v1", "replicasets", "ReplicaSet", True, "replicaset", ("rs",), ("all",),
    (status("ReplicaSet"), SCALE),
)  # fmt: skip
DAEMONSETS = Resource(
    "apps", "v1", "daemonsets", "DaemonSet", True, "daemonset", ("ds",), ("all",), (status("DaemonSet"),),
)  # fmt: skip
STATEFULSETS = Resource(
    "apps", "v1", "statefulsets", "StatefulSet", True, "statefulset", ("sts",), ("all",),
    (status("StatefulSet"), SCALE),
)  # fmt: skip
CONTROLLERREVISIONS = Resource(
    "apps", "v1", "controllerrevisions", "ControllerRevision", True, "controllerrevision",
)  # fmt: skip
JOBS = Resource("batch", "v1", "jobs", "Job", True, "job", (), ("all",), (status("Job"),))
CRONJOBS = Resource(
    "batch", "v1", "cronjobs", "CronJob", True, "cronjob", ("cj",), ("all",), (status("CronJob"),)
)
PODDISRUPTIONBUDGETS = Resource(
    "policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, "poddisruptionbudget", ("pdb",),
    subresources=(status("PodDisruptionBudget"),),
)  # fmt: skip

# Everything the apiserver serves, in discovery order (core first).
ALL = (
    NAMESPACES, PODS, BINDINGS, NODES, SERVICES, ENDPOINTS, EVENTS, CONFIGMAPS, SECRETS,
    REPLICATIONCONTROLLERS, DEPLOYMENTS, REPLICASETS, DAEMONSETS, STATEFULSETS, CONTROLLERREVISIONS,
    JOBS, CRONJOBS, PODDISRUPTIONBUDGETS, LEASES,
)  # fmt: skip


def by_kind(kind: str, api_version: str | None = None) -> Resource | None:
    """The served resource of a kind (an ownerReference's kind and apiVersion), if any."""
    for res in ALL:
        if res.kind == kind and (api_version is None or res.api_version == api_version):
            return res
    return None
