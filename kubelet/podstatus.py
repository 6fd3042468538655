"""A pod's `status` as Kubernetes computes it, from what the runtime holds and what the kubelet knows.

Pure: given the same pod, runtime state, waiting reasons, probe results and clock, it returns
the same status, so the kubelet can skip writes that change nothing. No value in the result
is None (the apiserver may drop nulls, and a status that never compares equal would be
written forever).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from kubelet.containerspec import qos_class
from kubelet.podstate import PodRuntimeState, Waiting
from kubelet.runtime import ContainerState, RuntimeContainer
from kubelite.objects import Object


class PodPhase(enum.Enum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def terminal(self) -> bool:
        return self in (PodPhase.SUCCEEDED, PodPhase.FAILED)


def old_phase(pod: Object) -> PodPhase | None:
    try:
        return PodPhase(pod.get("status", {}).get("phase"))
    except ValueError:
        return None


def is_terminal(pod: Object) -> bool:
    phase = old_phase(pod)
    return bool(phase and phase.terminal)


def _terminated(c: RuntimeContainer) -> dict[str, Any]:
    if c.state is ContainerState.CREATED:
        out: dict[str, Any] = {"exitCode": c.exit_code or 128, "reason": "StartError"}
        if c.error:
            out["message"] = c.error
    else:
        reason = "OOMKilled" if c.oom_killed else ("Completed" if c.exit_code == 0 else "Error")
        out = {"exitCode": c.exit_code, "reason": reason}
    if c.started_at:
        out["startedAt"] = c.started_at
    if c.finished_at:
        out["finishedAt"] = c.finished_at
    out["containerID"] = f"docker://{c.id}"
    return out


def container_status(
    container: Object,
    state: PodRuntimeState,
    waiting: Waiting | None,
    ready_probe: Mapping[str, bool],
    started_probe: Mapping[str, bool],
) -> dict[str, Any]:
    """One entry of `containerStatuses`; probe maps are keyed by container id."""
    name = container["name"]
    latest = state.latest(name)
    previous = state.previous(name)
    status: dict[str, Any] = {
        "name": name,
        "image": container.get("image", ""),
        "imageID": "",
        "ready": False,
        "restartCount": 0,
        "started": False,
        "state": {"waiting": {"reason": "ContainerCreating"}},
        "lastState": {},
    }
    if latest is not None:
        ident = latest.identity
        status["containerID"] = f"docker://{latest.id}"
        status["imageID"] = latest.image_ref
        status["restartCount"] = ident.attempt if ident else 0
        if latest.state is ContainerState.RUNNING:
            started = started_probe.get(latest.id, False) if container.get("startupProbe") else True
            ready = started and (
                ready_probe.get(latest.id, False) if container.get("readinessProbe") else True
            )
            status["started"] = started
            status["ready"] = ready
            state_ = {"running": {"startedAt": latest.started_at}} if latest.started_at else {"running": {}}
            status["state"] = state_
        else:
            status["state"] = {"terminated": _terminated(latest)}
        if previous is not None and previous.state is not ContainerState.RUNNING:
            status["lastState"] = {"terminated": _terminated(previous)}
    if waiting is not None and (latest is None or latest.state is not ContainerState.RUNNING):
        if "terminated" in status["state"]:
            status["lastState"] = status["state"]
        body = {"reason": waiting.reason}
        if waiting.message:
            body["message"] = waiting.message
        status["state"] = {"waiting": body}
    return status


def pod_phase(pod: Object, statuses: list[dict[str, Any]]) -> PodPhase:
    """Kubernetes' getPhase over the containers' statuses; a terminal phase is final."""
    previous = old_phase(pod)
    if previous is not None and previous.terminal:
        return previous
    waiting = running = stopped = succeeded = 0
    for cs in statuses:
        st = cs["state"]
        if "running" in st:
            running += 1
        elif "terminated" in st:
            stopped += 1
            if st["terminated"].get("exitCode") == 0:
                succeeded += 1
        elif "terminated" in cs.get("lastState", {}):
            stopped += 1
        else:
            waiting += 1
    if waiting:
        return PodPhase.PENDING
    if running:
        return PodPhase.RUNNING
    if stopped:
        policy = pod.get("spec", {}).get("restartPolicy") or "Always"
        if policy == "Always":
            return PodPhase.RUNNING
        if stopped == succeeded:
            return PodPhase.SUCCEEDED
        if policy == "Never":
            return PodPhase.FAILED
        return PodPhase.RUNNING
    return PodPhase.PENDING


def _condition(
    old: Mapping[str, dict[str, Any]], type_: str, ok: bool, now: str, reason: str = "", message: str = ""
) -> dict[str, Any]:
    status = "True" if ok else "False"
    cond: dict[str, Any] = {"type": type_, "status": status}
    prev = old.get(type_)
    if prev and prev.get("status") == status and prev.get("lastTransitionTime"):
        cond["lastTransitionTime"] = prev["lastTransitionTime"]
    else:
        cond["lastTransitionTime"] = now
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


_OWNED_FIELDS = (
    "phase",
    "conditions",
    "hostIP",
    "hostIPs",
    "podIP",
    "podIPs",
    "startTime",
    "containerStatuses",
    "qosClass",
)
_OWNED_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")


def compute_pod_status(
    pod: Object,
    state: PodRuntimeState,
    waiting: Mapping[str, Waiting],
    ready_probe: Mapping[str, bool],
    started_probe: Mapping[str, bool],
    host_ip: str,
    now: str,
) -> dict[str, Any]:
    """The status to write for `pod`; `now` (RFC 3339) is used only for new transitions."""
    old = pod.get("status") or {}
    spec = pod.get("spec") or {}
    statuses = [
        container_status(c, state, waiting.get(c["name"]), ready_probe, started_probe)
        for c in spec.get("containers") or []
    ]
    phase = pod_phase(pod, statuses)
    old_conditions = {c.get("type"): c for c in old.get("conditions") or [] if isinstance(c, dict)}

    not_ready = [cs["name"] for cs in statuses if not cs["ready"]]
    if phase is PodPhase.SUCCEEDED:
        all_ready, reason, message = False, "PodCompleted", ""
    elif not_ready:
        all_ready, reason = False, "ContainersNotReady"
        message = f"containers with unready status: [{' '.join(not_ready)}]"
    else:
        all_ready, reason, message = True, "", ""

    scheduled = old_conditions.get("PodScheduled") or {
        "type": "PodScheduled",
        "status": "True",
        "lastTransitionTime": now,
    }
    conditions = [
        _condition(old_conditions, "PodReadyToStartContainers", state.ready_sandbox is not None, now),
        _condition(old_conditions, "Initialized", True, now),
        _condition(old_conditions, "Ready", all_ready, now, reason, message),
        _condition(old_conditions, "ContainersReady", all_ready, now, reason, message),
        {k: v for k, v in scheduled.items() if v is not None},
    ]
    conditions += [c for t, c in old_conditions.items() if t not in _OWNED_CONDITIONS]

    # Fields the kubelet does not own (nominatedNodeName, an eviction's reason) are kept.
    status: dict[str, Any] = {k: v for k, v in old.items() if k not in _OWNED_FIELDS}
    status["phase"] = phase.value
    status["conditions"] = conditions
    if host_ip:
        status["hostIP"] = host_ip
        status["hostIPs"] = [{"ip": host_ip}]
    pod_ip = state.pod_ip or old.get("podIP", "")
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    status["startTime"] = old.get("startTime") or now
    status["containerStatuses"] = statuses
    status["qosClass"] = old.get("qosClass") or qos_class(pod)
    return status
