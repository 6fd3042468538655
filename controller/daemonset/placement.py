"""Which nodes a DaemonSet's pod belongs on, and the pod it makes for a node (Kubernetes'
daemon_controller NodeShouldRunDaemonPod and daemon/util). Pure.

A node is eligible when the template's nodeName (if any), nodeSelector and required node affinity
admit it and no NoSchedule/NoExecute taint goes untolerated, counting the tolerations every daemon
pod gets (not-ready and unreachable NoExecute for ever; the pressure, unschedulable and, with
hostNetwork, network-unavailable NoSchedule taints). A pod already running may stay while only
NoSchedule taints are untolerated. The pod for a node carries the node affinity Kubernetes sets,
`matchFields metadata.name In [node]`, so that the scheduler, never the controller, binds it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from kubelite.objects import Object, is_pod_ready, is_terminating
from kubelite.scheduling import NODE_NAME_FIELD, add_toleration, matches_node_affinity, untolerated_taint

POD_TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DISK_PRESSURE = "node.kubernetes.io/disk-pressure"
MEMORY_PRESSURE = "node.kubernetes.io/memory-pressure"
PID_PRESSURE = "node.kubernetes.io/pid-pressure"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"


def daemon_tolerations(pod_spec: Object) -> list[Object]:
    """AddOrUpdateDaemonPodTolerations: the template's tolerations plus those of every daemon pod."""
    out = list(pod_spec.get("tolerations") or [])
    for key in (NOT_READY, UNREACHABLE):
        out = add_toleration(out, {"key": key, "operator": "Exists", "effect": "NoExecute"})
    keys = [DISK_PRESSURE, MEMORY_PRESSURE, PID_PRESSURE, UNSCHEDULABLE]
    if pod_spec.get("hostNetwork"):
        keys.append(NETWORK_UNAVAILABLE)
    for key in keys:
        out = add_toleration(out, {"key": key, "operator": "Exists", "effect": "NoSchedule"})
    return out


def template_generation(ds: Object) -> str | None:
    value = (ds.get("metadata", {}).get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    return str(value) if value is not None else None


def node_name_affinity(affinity: Object | None, node_name: str) -> Object:
    """ReplaceDaemonSetPodNodeNameNodeAffinity: the template's affinity with its required node
    selector replaced by one term naming the node (the controller has already checked the rest)."""
    out = copy.deepcopy(affinity or {})
    term = {"matchFields": [{"key": NODE_NAME_FIELD, "operator": "In", "values": [node_name]}]}
    node_affinity = out.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [term]}
    return out


def pod_template_for(ds: Object, node_name: str, hash_: str) -> Object:
    """The template of the daemon pod for one node: CreatePodTemplate's labels and tolerations, and
    the node named in its affinity."""
    template = copy.deepcopy(ds.get("spec", {}).get("template") or {})
    meta = template.setdefault("metadata", {})
    labels = dict(meta.get("labels") or {})
    generation = template_generation(ds)
    if generation is not None:
        labels[POD_TEMPLATE_GENERATION_LABEL] = generation
    if hash_:
        labels["controller-revision-hash"] = hash_
    meta["labels"] = labels
    spec = template.setdefault("spec", {})
    spec["tolerations"] = daemon_tolerations(spec)
    spec["affinity"] = node_name_affinity(spec.get("affinity"), node_name)
    return template


@dataclass(frozen=True)
class Eligibility:
    should_run: bool  # a daemon pod should be created here
    should_continue: bool  # a daemon pod already here may stay


def node_should_run(node: Object, ds: Object) -> Eligibility:
    """NodeShouldRunDaemonPod against the node's own taints (spec.taints)."""
    spec = ds.get("spec", {}).get("template", {}).get("spec") or {}
    name = node.get("metadata", {}).get("name")
    if spec.get("nodeName") and spec["nodeName"] != name:
        return Eligibility(False, False)
    if not matches_node_affinity(spec, node):
        return Eligibility(False, False)
    taints = list(node.get("spec", {}).get("taints") or [])
    tolerations = daemon_tolerations(spec)
    if untolerated_taint(taints, tolerations) is None:
        return Eligibility(True, True)
    return Eligibility(False, untolerated_taint(taints, tolerations, ("NoExecute",)) is None)


def is_pod_updated(pod: Object, hash_: str, generation: str | None) -> bool:
    """IsPodUpdated: the pod carries the current revision's hash, or the current template generation."""
    labels = pod.get("metadata", {}).get("labels") or {}
    hash_matches = bool(hash_) and labels.get("controller-revision-hash") == hash_
    generation_matches = generation is not None and labels.get(POD_TEMPLATE_GENERATION_LABEL) == generation
    return hash_matches or generation_matches


def creation_order(pod: Object) -> tuple[int, str, str]:
    """podByCreationTimestampAndPhase: a scheduled pod (spec.nodeName set) before an unscheduled
    one, then older first, then by name."""
    scheduled = 0 if (pod.get("spec") or {}).get("nodeName") else 1
    created = pod.get("metadata", {}).get("creationTimestamp") or ""
    return (scheduled, created, pod.get("metadata", {}).get("name", ""))


@dataclass
class NodePlan:
    """What manage() does for one node: create its daemon pod, delete some pods, report failed ones."""

    create: bool = False
    delete: list[Object] = field(default_factory=list)
    failed: list[Object] = field(default_factory=list)  # failed pods (deleted unless in back-off)


def plan_node(
    eligibility: Eligibility,
    pods: list[Object],
    hash_: str,
    surge: bool,
    available: dict[str, bool],
) -> NodePlan:
    """podsShouldBeOnNode: the pods of one node against whether a daemon pod belongs there.
    `available` says, by pod name, whether each pod is available (ready for minReadySeconds)."""
    plan = NodePlan()
    if eligibility.should_run and not pods:
        plan.create = True
        return plan
    if not eligibility.should_continue:
        plan.delete = [p for p in pods if not is_terminating(p)]
        return plan
    running: list[Object] = []
    for pod in pods:
        if is_terminating(pod):
            continue
        phase = pod.get("status", {}).get("phase")
        if phase == "Failed":
            plan.failed.append(pod)
        elif phase == "Succeeded":
            plan.delete.append(pod)
        else:
            running.append(pod)
    running.sort(key=creation_order)
    if not surge:
        plan.delete += running[1:]  # only the oldest pod stays
        return plan
    if not running:
        plan.create = eligibility.should_run
        return plan
    # surging: one new and one old pod may share the node until the new one is available
    oldest_new: Object | None = None
    oldest_old: Object | None = None
    for pod in running:
        is_new = (pod.get("metadata", {}).get("labels") or {}).get("controller-revision-hash") == hash_
        if is_new and oldest_new is None:
            oldest_new = pod
        elif not is_new and oldest_old is None:
            oldest_old = pod
        else:
            plan.delete.append(pod)
    if oldest_new is not None and oldest_old is not None:
        old_ready = is_pod_ready(oldest_old)
        if not old_ready or available.get(oldest_new["metadata"]["name"], False):
            plan.delete.append(oldest_old)
    return plan
