"""What the runtime holds for one pod, grouped: its sandboxes and each container's instances.

Instances are ordered newest first (highest attempt), so `latest` is the current one and
`previous` the one `lastState` reports. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubelet.runtime import ContainerState, RuntimeContainer


@dataclass(frozen=True)
class Waiting:
    """Why a container is not running now (ErrImagePull, CrashLoopBackOff, ...)."""

    reason: str
    message: str = ""


@dataclass
class PodRuntimeState:
    pod_uid: str
    sandboxes: list[RuntimeContainer] = field(default_factory=list)
    containers: dict[str, list[RuntimeContainer]] = field(default_factory=dict)

    @property
    def sandbox(self) -> RuntimeContainer | None:
        return self.sandboxes[0] if self.sandboxes else None

    @property
    def ready_sandbox(self) -> RuntimeContainer | None:
        """The newest sandbox if it is running and has a pod IP."""
        sb = self.sandbox
        return sb if sb is not None and sb.state is ContainerState.RUNNING and sb.ip else None

    @property
    def pod_ip(self) -> str:
        sb = self.ready_sandbox
        return sb.ip if sb else ""

    def latest(self, name: str) -> RuntimeContainer | None:
        instances = self.containers.get(name)
        return instances[0] if instances else None

    def previous(self, name: str) -> RuntimeContainer | None:
        instances = self.containers.get(name) or []
        return instances[1] if len(instances) > 1 else None

    def all(self) -> list[RuntimeContainer]:
        return [*self.sandboxes, *(c for cs in self.containers.values() for c in cs)]

    def running(self) -> list[RuntimeContainer]:
        return [c for c in self.all() if c.state is ContainerState.RUNNING]

    @property
    def empty(self) -> bool:
        return not self.sandboxes and not any(self.containers.values())


def _order(c: RuntimeContainer) -> tuple[int, str]:
    ident = c.identity
    return (ident.attempt if ident else -1, c.created_at)


def group_by_pod(containers: list[RuntimeContainer]) -> dict[str, PodRuntimeState]:
    """Group runtime containers by the pod uid in their labels; unlabelled ones are ignored."""
    pods: dict[str, PodRuntimeState] = {}
    for c in containers:
        ident = c.identity
        if ident is None:
            continue
        state = pods.setdefault(ident.pod_uid, PodRuntimeState(ident.pod_uid))
        if ident.is_sandbox:
            state.sandboxes.append(c)
        else:
            state.containers.setdefault(ident.container_name, []).append(c)
    for state in pods.values():
        state.sandboxes.sort(key=_order, reverse=True)
        for instances in state.containers.values():
            instances.sort(key=_order, reverse=True)
    return pods


def pod_state(pod_uid: str, containers: list[RuntimeContainer]) -> PodRuntimeState:
    return group_by_pod(containers).get(pod_uid) or PodRuntimeState(pod_uid)
