"""From a pod's spec to what the runtime is asked to create: sandbox and container configs.

Also the small spec-derived facts the kubelet needs: the effective imagePullPolicy, an image
reference split for a pull, the pod's hostname and QoS class. Pure functions.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from kubelet import labels as lbl
from kubelet.envvars import ContainerConfigError, container_env, expand
from kubelet.runtime import ContainerConfig, SandboxConfig
from kubelite.objects import Object
from kubelite.quantity import milli, parse_quantity


class PullPolicy(enum.Enum):
    ALWAYS = "Always"
    IF_NOT_PRESENT = "IfNotPresent"
    NEVER = "Never"


def split_image(image: str) -> tuple[str, str]:
    """'reg:5000/a/b:1' -> ('reg:5000/a/b', '1'); a digest stays whole; no tag -> 'latest'."""
    if "@" in image:
        repo, digest = image.split("@", 1)
        return repo, digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1 :]
    return image, "latest"


def pull_policy(container: Object) -> PullPolicy:
    """The container's imagePullPolicy, defaulted as the apiserver would."""
    value = container.get("imagePullPolicy")
    if value:
        try:
            return PullPolicy(value)
        except ValueError:
            return PullPolicy.IF_NOT_PRESENT
    image = container.get("image", "")
    if "@" in image:
        return PullPolicy.IF_NOT_PRESENT
    _, tag = split_image(image)
    return PullPolicy.ALWAYS if tag == "latest" else PullPolicy.IF_NOT_PRESENT


def pod_hostname(pod: Object) -> str:
    """spec.hostname or the pod name, cut to a 63-character DNS label."""
    name = pod.get("spec", {}).get("hostname") or pod["metadata"]["name"]
    return name[:63].rstrip("-.") or "pod"


def termination_grace(pod: Object) -> int:
    """The grace period for stopping this pod now: the deletion's, else the spec's."""
    m = pod.get("metadata", {})
    if m.get("deletionGracePeriodSeconds") is not None:
        return max(int(m["deletionGracePeriodSeconds"]), 0)
    return lbl.termination_grace_seconds(pod)


def sandbox_config(
    pod: Object, image: str, network: str, node: str, cluster: str, attempt: int
) -> SandboxConfig:
    return SandboxConfig(
        name=lbl.docker_name(pod, lbl.SANDBOX, attempt),
        image=image,
        hostname=pod_hostname(pod),
        network=network,
        labels=lbl.container_labels(pod, lbl.SANDBOX, attempt, node, cluster),
    )


def container_config(
    pod: Object,
    container: Object,
    sandbox_id: str,
    attempt: int,
    node: str,
    cluster: str,
    host_ip: str,
    pod_ip: str,
    configmaps: Mapping[str, Object | None] | None = None,
) -> ContainerConfig:
    """Kubernetes `command` is Docker's entrypoint and `args` Docker's cmd, both `$(VAR)`-expanded.

    Raises ContainerConfigError for what cannot be honoured.
    """
    name = container["name"]
    env = container_env(pod, container, host_ip, pod_ip, configmaps)
    command = container.get("command") or None
    args = container.get("args") or None
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    security = container.get("securityContext") or {}
    try:
        memory_limit = _bytes(limits["memory"]) if "memory" in limits else None
        nano_cpus = milli(limits["cpu"]) * 1_000_000 if "cpu" in limits else None
        cpu_request = requests.get("cpu", limits.get("cpu"))
        cpu_shares = max(2, milli(cpu_request) * 1024 // 1000) if cpu_request is not None else None
    except ValueError as e:
        raise ContainerConfigError(f"container {name}: {e}") from e
    user = security.get("runAsUser")
    if user is not None and security.get("runAsGroup") is not None:
        user = f"{user}:{security['runAsGroup']}"
    return ContainerConfig(
        name=lbl.docker_name(pod, name, attempt),
        image=container["image"],
        sandbox_id=sandbox_id,
        labels=lbl.container_labels(pod, name, attempt, node, cluster, lbl.container_spec_hash(container)),
        entrypoint=[expand(str(a), env) for a in command] if command else None,
        command=[expand(str(a), env) for a in args] if args else None,
        env=env,
        working_dir=container.get("workingDir") or None,
        user=None if user is None else str(user),
        tty=bool(container.get("tty")),
        stdin=bool(container.get("stdin")),
        memory_limit=memory_limit,
        nano_cpus=nano_cpus,
        cpu_shares=cpu_shares,
        privileged=bool(security.get("privileged")),
    )


def qos_class(pod: Object) -> str:
    """Guaranteed, Burstable or BestEffort, from the containers' requests and limits."""
    containers = (pod.get("spec", {}).get("containers") or []) + (
        pod.get("spec", {}).get("initContainers") or []
    )
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        limits = {k: v for k, v in (res.get("limits") or {}).items() if k in ("cpu", "memory")}
        requests = {k: v for k, v in (res.get("requests") or {}).items() if k in ("cpu", "memory")}
        if limits or requests:
            any_set = True
        effective_requests = {**limits, **requests}
        if set(limits) != {"cpu", "memory"} or any(_differ(effective_requests[k], limits[k]) for k in limits):
            guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def unsupported_features(pod: Object) -> list[str]:
    """What the pod asks for that this kubelet does not do (it runs the rest and says so)."""
    spec = pod.get("spec") or {}
    out = []
    if spec.get("initContainers"):
        out.append("spec.initContainers")
    if spec.get("ephemeralContainers"):
        out.append("spec.ephemeralContainers")
    if spec.get("hostNetwork"):
        out.append("spec.hostNetwork")
    if spec.get("volumes"):
        out.append("spec.volumes")
    for c in spec.get("containers") or []:
        if c.get("volumeMounts"):
            out.append(f"volumeMounts of container {c.get('name')}")
        if any(p.get("hostPort") for p in c.get("ports") or []):
            out.append(f"hostPort of container {c.get('name')}")
        if c.get("lifecycle"):
            out.append(f"lifecycle hooks of container {c.get('name')}")
    return out


def _bytes(value: str) -> int:
    return int(parse_quantity(value).to_integral_value(rounding="ROUND_CEILING"))


def _differ(a: str, b: str) -> bool:
    try:
        return parse_quantity(a) != parse_quantity(b)
    except ValueError:
        return str(a) != str(b)


__all__ = [
    "ContainerConfigError",
    "PullPolicy",
    "container_config",
    "pod_hostname",
    "pull_policy",
    "qos_class",
    "sandbox_config",
    "split_image",
    "termination_grace",
    "unsupported_features",
]
