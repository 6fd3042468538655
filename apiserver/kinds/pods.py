"""Pods: defaults (restart policy, pull policy, QoS...), validation, graceful deletion and the
STATUS text `kubectl get pods` shows. Pure.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any, ClassVar

from apiserver import tables
from apiserver.errors import CauseType, FieldError, duplicate, forbidden, invalid, not_supported, required
from apiserver.kinds.common import bool_field, check_protocol, normalize_quantities
from apiserver.meta import JSONObject, get_path, parse_time
from apiserver.strategy import Strategy
from apiserver.tables import AGE_COLUMN, NAME_COLUMN, Column
from apiserver.validation import dns1123_label, non_negative, port_range_errors

RESTART_POLICIES = ["Always", "OnFailure", "Never"]
DNS_POLICIES = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
DEFAULT_TOLERATIONS = [
    {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
    {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
]
UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def default_pull_policy(image: str) -> str:
    """Always for `:latest` or no tag, IfNotPresent otherwise (digests count as pinned)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "Always"
    return "Always" if last.rsplit(":", 1)[1] == "latest" else "IfNotPresent"


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    if isinstance(probe.get("httpGet"), dict):
        probe["httpGet"].setdefault("path", "/")
        probe["httpGet"].setdefault("scheme", "HTTP")


def _default_container(container: JSONObject) -> None:
    image = container.get("image")
    if not container.get("imagePullPolicy"):
        container["imagePullPolicy"] = default_pull_policy(image if isinstance(image, str) else "")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    resources = container.get("resources")
    if not isinstance(resources, dict):
        resources = container["resources"] = {}
    normalize_quantities(resources.get("limits"))
    normalize_quantities(resources.get("requests"))
    if isinstance(resources.get("limits"), dict):
        requests = resources.setdefault("requests", {})
        for name, value in resources["limits"].items():
            requests.setdefault(name, value)
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for env in container.get("env") or []:
        ref = get_path(env, "valueFrom.fieldRef")
        if isinstance(ref, dict):
            ref.setdefault("apiVersion", "v1")
    for name in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(container.get(name))


def _default_volume(volume: JSONObject) -> None:
    for source in ("configMap", "secret"):
        if isinstance(volume.get(source), dict):
            volume[source].setdefault("defaultMode", 420)
    if isinstance(volume.get("hostPath"), dict):
        volume["hostPath"].setdefault("type", "")


def default_pod_spec(spec: JSONObject) -> None:
    """SetDefaults_PodSpec and friends: what `kubectl get pod -o yaml` shows that nobody wrote."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("securityContext", {})
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec.get("serviceAccount") or "default"
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                _default_container(container)
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict):
            _default_volume(volume)
    normalize_quantities(spec.get("overhead"))


def qos_class(spec: JSONObject) -> str:
    """Guaranteed if every container's requests equal its limits for cpu and memory; BestEffort if none."""
    containers = [
        c for c in (spec.get("containers") or []) + (spec.get("initContainers") or []) if isinstance(c, dict)
    ]
    any_set = False
    guaranteed = True
    for container in containers:
        resources = container.get("resources") or {}
        limits = resources.get("limits") or {}
        requests = resources.get("requests") or {}
        if limits or requests:
            any_set = True
        for name in ("cpu", "memory"):
            if name not in limits or requests.get(name, limits.get(name)) != limits.get(name):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _validate_container(container: Any, path: str, volumes: set[str]) -> list[FieldError]:
    if not isinstance(container, dict):
        return [invalid(path, str(container), "must be an object")]
    errs: list[FieldError] = []
    name = container.get("name")
    if not name:
        errs.append(required(f"{path}.name"))
    else:
        errs.extend(invalid(f"{path}.name", name, m) for m in dns1123_label(str(name)))
    if not container.get("image") or not str(container.get("image")).strip():
        errs.append(required(f"{path}.image"))
    policy = container.get("imagePullPolicy")
    if policy not in PULL_POLICIES:
        errs.append(not_supported(f"{path}.imagePullPolicy", policy, PULL_POLICIES))
    seen_ports: set[tuple[Any, Any]] = set()
    for i, port in enumerate(container.get("ports") or []):
        ppath = f"{path}.ports[{i}]"
        if not isinstance(port, dict):
            errs.append(invalid(ppath, str(port), "must be an object"))
            continue
        if not port.get("containerPort"):
            errs.append(required(f"{ppath}.containerPort"))
        else:
            errs.extend(port_range_errors(f"{ppath}.containerPort", port["containerPort"]))
        if port.get("hostPort"):
            errs.extend(port_range_errors(f"{ppath}.hostPort", port["hostPort"]))
        errs.extend(check_protocol(f"{ppath}.protocol", port.get("protocol")))
        key = (port.get("containerPort"), port.get("protocol"))
        if key in seen_ports and port.get("hostPort"):
            errs.append(duplicate(ppath, port.get("containerPort")))
        seen_ports.add(key)
    for i, env in enumerate(container.get("env") or []):
        if not isinstance(env, dict) or not env.get("name"):
            errs.append(required(f"{path}.env[{i}].name"))
    for i, mount in enumerate(container.get("volumeMounts") or []):
        mpath = f"{path}.volumeMounts[{i}]"
        if not isinstance(mount, dict):
            errs.append(invalid(mpath, str(mount), "must be an object"))
            continue
        if not mount.get("name"):
            errs.append(required(f"{mpath}.name"))
        elif mount["name"] not in volumes:
            errs.append(FieldError(CauseType.NOT_FOUND, f"{mpath}.name", mount["name"]))
        if not mount.get("mountPath"):
            errs.append(required(f"{mpath}.mountPath"))
    return errs


def validate_pod_spec(spec: Any, path: str = "spec") -> list[FieldError]:
    if not isinstance(spec, dict):
        return [required(path)]
    errs: list[FieldError] = []
    volumes: set[str] = set()
    for i, volume in enumerate(spec.get("volumes") or []):
        vpath = f"{path}.volumes[{i}]"
        name = volume.get("name") if isinstance(volume, dict) else None
        if not name:
            errs.append(required(f"{vpath}.name"))
            continue
        errs.extend(invalid(f"{vpath}.name", name, m) for m in dns1123_label(str(name)))
        if name in volumes:
            errs.append(duplicate(f"{vpath}.name", name))
        volumes.add(name)
    containers = spec.get("containers")
    if not containers:
        errs.append(required(f"{path}.containers"))
    names: set[str] = set()
    for key in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(key) or []):
            cpath = f"{path}.{key}[{i}]"
            errs.extend(_validate_container(container, cpath, volumes))
            name = container.get("name") if isinstance(container, dict) else None
            if name:
                if name in names:
                    errs.append(duplicate(f"{cpath}.name", name))
                names.add(name)
    policy = spec.get("restartPolicy")
    if policy not in RESTART_POLICIES:
        errs.append(not_supported(f"{path}.restartPolicy", policy, RESTART_POLICIES))
    dns = spec.get("dnsPolicy")
    if dns not in DNS_POLICIES:
        errs.append(not_supported(f"{path}.dnsPolicy", dns, DNS_POLICIES))
    errs.extend(
        non_negative(f"{path}.terminationGracePeriodSeconds", spec.get("terminationGracePeriodSeconds"))
    )
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not isinstance(deadline, int) or deadline <= 0):
        errs.append(
            invalid(f"{path}.activeDeadlineSeconds", deadline, "must be between 1 and 2147483647, inclusive")
        )
    selector = spec.get("nodeSelector")
    if selector is not None and not isinstance(selector, dict):
        errs.append(invalid(f"{path}.nodeSelector", str(selector), "must be a map of strings"))
    return errs


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

    def default(self, obj: JSONObject) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict):
            default_pod_spec(spec)

    def prepare_for_create(self, obj: JSONObject) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict):
            tolerations = spec.setdefault("tolerations", [])
            if isinstance(tolerations, list):
                for toleration in DEFAULT_TOLERATIONS:
                    if not any(
                        isinstance(t, dict) and t.get("key") == toleration["key"] for t in tolerations
                    ):
                        tolerations.append(dict(toleration))
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
