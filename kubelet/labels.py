"""How a kubelet names and labels the containers it creates, and reads them back.

Everything the kubelet needs to rebuild its view after a restart is in these labels, so the
mapping must round-trip: `container_labels` writes, `identity_of` reads. Pure functions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from kubelite.objects import Object

POD_NAMESPACE = "io.kubernetes.pod.namespace"
POD_NAME = "io.kubernetes.pod.name"
POD_UID = "io.kubernetes.pod.uid"
CONTAINER_NAME = "io.kubernetes.container.name"
CONTAINER_ATTEMPT = "io.kubernetes.container.restartCount"
CONTAINER_HASH = "io.kubernetes.container.hash"
TERMINATION_GRACE = "io.kubernetes.pod.terminationGracePeriod"
NODE = "kubelite.io/node"
CLUSTER = "kubelite.io/cluster"

SANDBOX = "POD"
"""The container name the pod sandbox carries, as in Kubernetes."""

DEFAULT_GRACE_SECONDS = 30


@dataclass(frozen=True)
class ContainerIdentity:
    """Which pod and which of its containers a runtime container belongs to."""

    namespace: str
    pod_name: str
    pod_uid: str
    container_name: str
    attempt: int
    spec_hash: str = ""
    grace_seconds: int = DEFAULT_GRACE_SECONDS

    @property
    def is_sandbox(self) -> bool:
        return self.container_name == SANDBOX


def owner_labels(node: str, cluster: str) -> dict[str, str]:
    """The labels that mark a container as created by this kubelet (node) of this cluster."""
    return {NODE: node, CLUSTER: cluster}


def container_labels(
    pod: Object, container_name: str, attempt: int, node: str, cluster: str, spec_hash: str = ""
) -> dict[str, str]:
    m = pod["metadata"]
    labels = {
        POD_NAMESPACE: m.get("namespace", "default"),
        POD_NAME: m["name"],
        POD_UID: m["uid"],
        CONTAINER_NAME: container_name,
        CONTAINER_ATTEMPT: str(attempt),
        TERMINATION_GRACE: str(termination_grace_seconds(pod)),
        **owner_labels(node, cluster),
    }
    if spec_hash:
        labels[CONTAINER_HASH] = spec_hash
    return labels


def docker_name(pod: Object, container_name: str, attempt: int) -> str:
    """`k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`, the dockershim convention."""
    m = pod["metadata"]
    return f"k8s_{container_name}_{m['name']}_{m.get('namespace', 'default')}_{m['uid']}_{attempt}"


def identity_of(labels: dict[str, str] | None) -> ContainerIdentity | None:
    """The identity written by `container_labels`, or None for a container that is not a pod's."""
    labels = labels or {}
    try:
        return ContainerIdentity(
            namespace=labels[POD_NAMESPACE],
            pod_name=labels[POD_NAME],
            pod_uid=labels[POD_UID],
            container_name=labels[CONTAINER_NAME],
            attempt=int(labels.get(CONTAINER_ATTEMPT, "0")),
            spec_hash=labels.get(CONTAINER_HASH, ""),
            grace_seconds=int(labels.get(TERMINATION_GRACE, str(DEFAULT_GRACE_SECONDS))),
        )
    except (KeyError, ValueError):
        return None


def termination_grace_seconds(pod: Object) -> int:
    value = pod.get("spec", {}).get("terminationGracePeriodSeconds")
    return DEFAULT_GRACE_SECONDS if value is None else max(int(value), 0)


def container_spec_hash(container: dict[str, Any]) -> str:
    """A digest of the fields that, when changed, make the kubelet replace a running container."""
    relevant = {
        k: container.get(k)
        for k in ("image", "command", "args", "env", "workingDir", "ports", "resources", "securityContext")
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]
