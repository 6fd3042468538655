"""The pod spec, wherever it appears: a Pod's spec and the pod template of every workload kind
(Deployment, ReplicaSet, ReplicationController, and the kinds that come later). Defaulting as
Kubernetes' SetDefaults_PodSpec does, validation as ValidatePodSpec and ValidatePodTemplateSpec
do, with their wording. Pure.
"""

from __future__ import annotations

from typing import Any

from apiserver.errors import CauseType, FieldError, duplicate, forbidden, invalid, not_supported, required
from apiserver.kinds.common import check_protocol, normalize_quantities
from apiserver.kinds.podscheduling import validate_affinity, validate_tolerations
from apiserver.meta import JSONObject, get_path
from apiserver.validation import (
    dns1123_label,
    non_negative,
    port_range_errors,
    validate_annotations,
    validate_labels,
)

RESTART_POLICIES = ["Always", "OnFailure", "Never"]
DNS_POLICIES = ["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]


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
    """SetDefaults_PodSpec and friends: what `kubectl get deploy -o yaml` shows in the template
    that nobody wrote."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                _default_container(container)
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict):
            _default_volume(volume)
    normalize_quantities(spec.get("overhead"))


def default_pod_only(spec: JSONObject) -> None:
    """What a Pod gets on top of its template's defaults (SetDefaults_Pod, and the
    ServiceAccount and Priority admission plug-ins)."""
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec.get("serviceAccount") or "default"
    spec.setdefault("serviceAccount", spec["serviceAccountName"])


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
    errs += validate_tolerations(spec.get("tolerations"), f"{path}.tolerations")
    errs += validate_affinity(spec.get("affinity"), f"{path}.affinity")
    return errs


# ---------------------------------------------------------------------------------- templates


def default_pod_template(template: Any) -> None:
    """Defaults of a workload's `spec.template`: the pod spec's, not a Pod's own."""
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        default_pod_spec(template["spec"])


def validate_pod_template(template: Any, path: str, restart_policies: list[str]) -> list[FieldError]:
    """ValidatePodTemplateSpec for a controller: labels, annotations, the pod spec, and the restart
    policies the controller can honour (`Always` for Deployments, ReplicaSets and RCs)."""
    if not isinstance(template, dict):
        return [required(path)]
    meta = template.get("metadata") or {}
    errs = validate_labels(meta.get("labels"), f"{path}.metadata.labels")
    errs += validate_annotations(meta.get("annotations"), f"{path}.metadata.annotations")
    spec = template.get("spec")
    errs += validate_pod_spec(spec, f"{path}.spec")
    if isinstance(spec, dict):
        policy = spec.get("restartPolicy")
        if policy in RESTART_POLICIES and policy not in restart_policies:
            errs.append(not_supported(f"{path}.spec.restartPolicy", policy, restart_policies))
        if spec.get("activeDeadlineSeconds") is not None:
            errs.append(
                forbidden(
                    f"{path}.spec.activeDeadlineSeconds",
                    "activeDeadlineSeconds in ReplicaSet is not Supported",
                )
            )
    return errs
