"""Pods: a Pod's own defaults (on top of the pod spec's, in `podspec`), what a pod update may
change, graceful deletion and the STATUS text `kubectl get pods` shows. Pure.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any, ClassVar

from apiserver import tables
from apiserver.admission import DefaultTolerationSeconds, admit_default_toleration_seconds
from apiserver.errors import FieldError, forbidden
from apiserver.kinds.common import bool_field
from apiserver.kinds.podspec import default_pod_only, default_pod_spec, qos_class, validate_pod_spec
from apiserver.meta import JSONObject, get_path, parse_time
from apiserver.strategy import Strategy
from apiserver.tables import AGE_COLUMN, NAME_COLUMN, Column

UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def _mutable_view(spec: JSONObject, old: JSONObject) -> JSONObject:
    """`spec` with the fields a pod update may change copied from `old`, for comparison."""
    view = copy.deepcopy(spec)
    for key in ("containers", "initContainers"):
        new_list, old_list = view.get(key) or [], old.get(key) or []
        if len(new_list) == len(old_list):
            for n, o in zip(new_list, old_list, strict=True):
                if isinstance(n, dict) and isinstance(o, dict):
                    n["image"] = o.get("image")
                    n["imagePullPolicy"] = o.get("imagePullPolicy")
    for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds", "schedulingGates"):
        if key in old:
            view[key] = old[key]
        else:
            view.pop(key, None)
    return view


def _phase_terminal(phase: Any) -> bool:
    return phase in ("Succeeded", "Failed")


def _latest(a: dt.datetime | None, value: Any) -> dt.datetime | None:
    moment = parse_time(value)
    if moment is None:
        return a
    return moment if a is None or moment > a else a


def pod_status_text(pod: JSONObject, now: dt.datetime) -> tuple[str, str, str]:
    """READY, STATUS and RESTARTS cells, following kubectl's printPod rules."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    containers = spec.get("containers") or []
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or [] if isinstance(c, dict)}

    def sidecar(name: Any) -> bool:
        return (init_specs.get(name) or {}).get("restartPolicy") == "Always"

    total = len(containers) + sum(1 for c in init_specs.values() if c.get("restartPolicy") == "Always")
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart: dt.datetime | None = None
    last_sidecar_restart: dt.datetime | None = None
    reason = status.get("reason") or status.get("phase") or "Pending"
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for i, cs in enumerate(init_statuses):
        restarts += int(cs.get("restartCount") or 0)
        last_restart = _latest(last_restart, get_path(cs, "lastState.terminated.finishedAt"))
        if sidecar(cs.get("name")):
            sidecar_restarts += int(cs.get("restartCount") or 0)
            last_sidecar_restart = _latest(
                last_sidecar_restart, get_path(cs, "lastState.terminated.finishedAt")
            )
        state = cs.get("state") or {}
        terminated = state.get("terminated")
        waiting = state.get("waiting")
        if terminated is not None and int(terminated.get("exitCode") or 0) == 0:
            continue
        if sidecar(cs.get("name")) and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if terminated is not None:
            if terminated.get("reason"):
                reason = "Init:" + terminated["reason"]
            elif terminated.get("signal"):
                reason = f"Init:Signal:{terminated['signal']}"
            else:
                reason = f"Init:ExitCode:{terminated.get('exitCode', 0)}"
        elif waiting is not None and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    initialized = any(
        c.get("type") == "Initialized" and c.get("status") == "True" for c in status.get("conditions") or []
    )
    if not initializing or initialized:
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            last_restart = _latest(last_restart, get_path(cs, "lastState.terminated.finishedAt"))
            state = cs.get("state") or {}
            waiting, terminated, running = state.get("waiting"), state.get("terminated"), state.get("running")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                if terminated.get("signal"):
                    reason = f"Signal:{terminated['signal']}"
                else:
                    reason = f"ExitCode:{terminated.get('exitCode', 0)}"
            elif cs.get("ready") and running is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
            )
            reason = "Running" if pod_ready else "NotReady"

    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and not _phase_terminal(status.get("phase")):
        reason = "Terminating"

    restarts_text = str(restarts)
    if restarts and last_restart is not None:
        restarts_text = f"{restarts} ({tables.human_duration((now - last_restart).total_seconds())} ago)"
    return f"{ready}/{total}", reason, restarts_text


class PodStrategy(Strategy):
    kind = "Pod"
    patch_schema = "Pod"
    return_deleted_object = True
    columns: ClassVar[list[Column]] = [
        NAME_COLUMN,
        Column("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
        Column("Status", description="The aggregate status of the containers in this pod."),
        Column(
            "Restarts",
            description="The number of times the containers in this pod have been restarted, and when last.",
        ),
        AGE_COLUMN,
        Column(
            "IP",
            description="IP address allocated to the pod. Routable at least within the cluster.",
            priority=1,
        ),
        Column("Node", description="Name of the Node to which this pod is assigned.", priority=1),
        Column(
            "Nominated Node",
            description="Name of the node where the pod may be scheduled once preemption completes.",
            priority=1,
        ),
        Column(
            "Readiness Gates",
            description="If specified, all readiness gates will be evaluated for pod readiness.",
            priority=1,
        ),
    ]

    def __init__(self, namespaced: bool, default_tolerations: DefaultTolerationSeconds | None = None) -> None:
        super().__init__(namespaced)
        self.default_tolerations = default_tolerations or DefaultTolerationSeconds()  # admission's config

    def default(self, obj: JSONObject) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict):
            default_pod_spec(spec)
            default_pod_only(spec)

    def prepare_for_create(self, obj: JSONObject) -> None:
        admit_default_toleration_seconds(obj, self.default_tolerations)
        spec = obj.get("spec")
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(spec if isinstance(spec, dict) else {})}

    def prepare_for_update(self, new: JSONObject, old: JSONObject) -> None:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)

    def validate(self, obj: JSONObject) -> list[FieldError]:
        return super().validate(obj) + validate_pod_spec(obj.get("spec"))

    def validate_update(self, new: JSONObject, old: JSONObject) -> list[FieldError]:
        errs = self.validate(new)
        new_spec, old_spec = new.get("spec"), old.get("spec")
        if (
            isinstance(new_spec, dict)
            and isinstance(old_spec, dict)
            and _mutable_view(new_spec, old_spec) != _mutable_view(old_spec, old_spec)
        ):
            errs.append(forbidden("spec", UPDATE_FORBIDDEN))
        return errs

    def fields(self, obj: JSONObject) -> dict[str, str]:
        out = super().fields(obj)
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        out.update(
            {
                "spec.nodeName": spec.get("nodeName", ""),
                "spec.restartPolicy": spec.get("restartPolicy", ""),
                "spec.schedulerName": spec.get("schedulerName", ""),
                "spec.serviceAccountName": spec.get("serviceAccountName", ""),
                "spec.hostNetwork": bool_field(spec.get("hostNetwork")),
                "status.phase": status.get("phase", ""),
                "status.podIP": status.get("podIP", ""),
                "status.nominatedNodeName": status.get("nominatedNodeName", ""),
            }
        )
        return out

    def grace_period(self, obj: JSONObject, requested: int | None) -> int:
        spec = obj.get("spec") or {}
        if not spec.get("nodeName") or _phase_terminal((obj.get("status") or {}).get("phase")):
            return 0
        if requested is not None:
            return max(requested, 0)
        seconds = spec.get("terminationGracePeriodSeconds")
        return int(seconds) if isinstance(seconds, int) and seconds >= 0 else 30

    def cells(self, obj: JSONObject, now: dt.datetime) -> list[Any]:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        ready, reason, restarts = pod_status_text(obj, now)
        ips = status.get("podIPs") or []
        ip = (
            (ips[0].get("ip") if ips and isinstance(ips[0], dict) else None)
            or status.get("podIP")
            or "<none>"
        )
        gates = spec.get("readinessGates") or []
        if gates:
            true_types = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
            gates_text = f"{sum(1 for g in gates if g.get('conditionType') in true_types)}/{len(gates)}"
        else:
            gates_text = "<none>"
        return [
            meta.get("name", ""),
            ready,
            reason,
            restarts,
            tables.age(meta.get("creationTimestamp"), now),
            ip,
            spec.get("nodeName") or "<none>",
            status.get("nominatedNodeName") or "<none>",
            gates_text,
        ]
