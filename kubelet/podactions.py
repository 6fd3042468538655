"""What one sync of a pod must do, decided from the pod and what the runtime holds.

After Kubernetes' computePodActions: a pod whose sandbox is gone gets a new sandbox and all
its containers again; otherwise each container is started, left alone, killed (liveness,
changed spec) or held back by CrashLoopBackOff according to restartPolicy. The decision is
pure: only the restart back-off (in memory) is updated when a restart is decided.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubelet import labels as lbl
from kubelet.backoff import Backoff
from kubelet.podstate import PodRuntimeState, Waiting
from kubelet.podstatus import is_terminal
from kubelet.runtime import ContainerState, RuntimeContainer
from kubelite.objects import Object, parse_rfc3339


@dataclass(frozen=True)
class ContainerToStart:
    name: str
    attempt: int


@dataclass
class PodActions:
    kill_pod: bool = False
    """Stop every container and the sandbox (the sandbox died, or the pod is finished)."""
    create_sandbox: bool = False
    sandbox_attempt: int = 0
    start: list[ContainerToStart] = field(default_factory=list)
    kill: dict[str, str] = field(default_factory=dict)
    """Running container id -> why it is killed."""
    remove: list[str] = field(default_factory=list)
    """Dead containers no longer needed, not even for `lastState`."""
    waiting: dict[str, Waiting] = field(default_factory=dict)
    requeue_after: float | None = None

    @property
    def empty(self) -> bool:
        return not (self.kill_pod or self.create_sandbox or self.start or self.kill or self.remove)

    def requeue(self, delay: float) -> None:
        self.requeue_after = delay if self.requeue_after is None else min(self.requeue_after, delay)


def backoff_key(pod: Object, container_name: str) -> str:
    return f"{pod['metadata']['uid']}/{container_name}"


def should_restart(restart_policy: str, container: RuntimeContainer) -> bool:
    if restart_policy == "Never":
        return False
    if restart_policy == "OnFailure":
        return container.state is ContainerState.CREATED or container.exit_code != 0
    return True


def _epoch(timestamp: str, fallback: float) -> float:
    try:
        return parse_rfc3339(timestamp).timestamp() if timestamp else fallback
    except ValueError:
        return fallback


def _format_delay(seconds: float) -> str:
    """Go's Duration formatting for whole seconds: 10s, 1m20s, 5m0s."""
    total = round(seconds)
    minutes, secs = divmod(total, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _garbage(state: PodRuntimeState, spec_names: set[str]) -> list[str]:
    """Old dead instances: all but the latest two per container, dead non-latest sandboxes."""
    out: list[str] = []
    for name, instances in state.containers.items():
        keep = 2 if name in spec_names else 0
        out += [c.id for c in instances[keep:] if c.state is not ContainerState.RUNNING]
    out += [sb.id for sb in state.sandboxes[1:] if sb.state is not ContainerState.RUNNING]
    return out


def compute_pod_actions(
    pod: Object,
    state: PodRuntimeState,
    backoff: Backoff,
    now: float,
    liveness_failed: frozenset[str] = frozenset(),
) -> PodActions:
    """Decide one sync of a live (not terminating) pod bound to this node."""
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    spec_names = {c["name"] for c in containers}
    policy = spec.get("restartPolicy") or "Always"
    actions = PodActions(remove=_garbage(state, spec_names))

    for name, instances in state.containers.items():
        if name not in spec_names:
            for c in instances:
                if c.state is ContainerState.RUNNING:
                    actions.kill[c.id] = f"container {name} is not in the pod spec"

    if is_terminal(pod):
        actions.kill_pod = bool(state.running())
        return actions

    sandbox = state.sandbox
    if state.ready_sandbox is None:
        attempt = (sandbox.identity.attempt + 1) if sandbox and sandbox.identity else 0
        has_run = any(state.containers.values())
        if policy == "Never" and sandbox is not None and has_run:
            # The pod ran once and must not run again; its sandbox is gone, nothing to do.
            actions.kill_pod = bool(state.running())
            return actions
        for c in containers:
            latest = state.latest(c["name"])
            if policy == "OnFailure" and latest is not None and _succeeded(latest):
                continue
            attempt_next = (_attempt(latest) + 1) if latest else _attempt_after_loss(pod, c["name"])
            actions.start.append(ContainerToStart(c["name"], attempt_next))
        if actions.start:
            actions.create_sandbox = True
            actions.sandbox_attempt = attempt
            actions.kill_pod = sandbox is not None and bool(state.running())
        return actions

    for c in containers:
        name = c["name"]
        latest = state.latest(name)
        if latest is None:
            actions.start.append(ContainerToStart(name, _attempt_after_loss(pod, name)))
            continue
        ident = latest.identity
        if latest.state is ContainerState.RUNNING:
            if latest.id in liveness_failed:
                actions.kill[latest.id] = f"Container {name} failed liveness probe, will be restarted"
            elif ident and ident.spec_hash and ident.spec_hash != lbl.container_spec_hash(c):
                actions.kill[latest.id] = f"Container {name} definition changed, will be restarted"
            continue
        if not should_restart(policy, latest):
            continue
        key = backoff_key(pod, name)
        event_time = _epoch(latest.finished_at or latest.created_at, now)
        remaining = backoff.remaining_since(key, event_time, now)
        if remaining > 0:
            m = pod["metadata"]
            delay = _format_delay(backoff.delay(key))
            actions.waiting[name] = Waiting(
                "CrashLoopBackOff",
                f"back-off {delay} restarting failed container={name} "
                f"pod={m['name']}_{m.get('namespace', 'default')}({m['uid']})",
            )
            actions.requeue(remaining)
            continue
        backoff.next(key, event_time, now)
        actions.start.append(ContainerToStart(name, _attempt(latest) + 1))
    return actions


def _attempt_after_loss(pod: Object, name: str) -> int:
    """The attempt of a container the runtime has no trace of. If it ran before (its status was
    reported with a container id) it was removed behind the kubelet's back (`docker rm -f`): the
    new one is a restart, as Kubernetes' kubelet counts it from the container's log directory."""
    for cs in pod.get("status", {}).get("containerStatuses") or []:
        if cs.get("name") == name and cs.get("containerID"):
            return int(cs.get("restartCount") or 0) + 1
    return 0


def _attempt(c: RuntimeContainer) -> int:
    ident = c.identity
    return ident.attempt if ident else 0


def _succeeded(c: RuntimeContainer) -> bool:
    return c.state is ContainerState.EXITED and c.exit_code == 0
