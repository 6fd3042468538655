"""A StatefulSet pod's identity (Kubernetes' stateful_set_utils.go): the name `<set>-<ordinal>`, the
hostname and subdomain that give it a stable DNS name under the governing Service, the labels
that name it (`statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index`) and the
revision it was made from (`controller-revision-hash`). Pure.
"""

from __future__ import annotations

import logging
import re

from controller.framework.history import POD_REVISION_LABEL
from controller.framework.podcontrol import pod_from_template
from kubelite.objects import Object, owner_reference

log = logging.getLogger(__name__)

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")


def parent_and_ordinal(pod: Object) -> tuple[str, int]:
    """The set name and ordinal a pod's name encodes; ("", -1) when it encodes none."""
    match = _ORDINAL.match(pod.get("metadata", {}).get("name", ""))
    if not match:
        return "", -1
    return match.group(1), int(match.group(2))


def ordinal_of(pod: Object) -> int:
    return parent_and_ordinal(pod)[1]


def is_member_of(sts: Object, pod: Object) -> bool:
    """The pod's name says it belongs to this set (isMemberOf): only such pods are claimed."""
    return bool(parent_and_ordinal(pod)[0] == sts["metadata"]["name"])


def pod_name(sts: Object, ordinal: int) -> str:
    return f"{sts['metadata']['name']}-{ordinal}"


def start_ordinal(sts: Object) -> int:
    """spec.ordinals.start: the first replica's index (0 unless set)."""
    return int((sts.get("spec", {}).get("ordinals") or {}).get("start") or 0)


def replica_count(sts: Object) -> int:
    return int(sts.get("spec", {}).get("replicas") or 0)


def in_ordinal_range(sts: Object, pod: Object) -> bool:
    ordinal, start = ordinal_of(pod), start_ordinal(sts)
    return start <= ordinal < start + replica_count(sts)


def pod_revision(pod: Object) -> str:
    return str((pod.get("metadata", {}).get("labels") or {}).get(POD_REVISION_LABEL, ""))


def identity_labels(sts: Object, ordinal: int) -> dict[str, str]:
    return {POD_NAME_LABEL: pod_name(sts, ordinal), POD_INDEX_LABEL: str(ordinal)}


def identity_matches(sts: Object, pod: Object) -> bool:
    """identityMatches: named, placed and labelled as the set's pod of its ordinal."""
    parent, ordinal = parent_and_ordinal(pod)
    meta = pod.get("metadata", {})
    return (
        ordinal >= 0
        and parent == sts["metadata"]["name"]
        and meta.get("namespace") == sts["metadata"].get("namespace")
        and (meta.get("labels") or {}).get(POD_NAME_LABEL) == meta.get("name")
    )


def claim_volumes(sts: Object, template: Object) -> list[Object]:
    """Volumes standing in for volumeClaimTemplates. PersistentVolumeClaims are not served yet, so
    each claim the template lacks a volume for becomes an emptyDir of the same name: the pod can be
    created and its mounts resolve, but the data does not outlive the pod."""
    claims = sts.get("spec", {}).get("volumeClaimTemplates") or []
    have = {v.get("name") for v in (template.get("spec") or {}).get("volumes") or []}
    out = []
    for claim in claims:
        name = (claim.get("metadata") or {}).get("name")
        if name and name not in have:
            out.append({"name": name, "emptyDir": {}})
    return out


def new_pod(sts: Object, template: Object, ordinal: int, revision: str) -> Object:
    """newVersionedStatefulSetPod for one ordinal: the revision's template, the set's identity."""
    pod = pod_from_template(template, sts, owner_reference(sts))
    meta = pod["metadata"]
    meta.pop("generateName", None)
    meta["name"] = pod_name(sts, ordinal)
    meta["labels"] = {**meta.get("labels", {}), **identity_labels(sts, ordinal), POD_REVISION_LABEL: revision}
    spec = pod["spec"]
    spec["hostname"] = meta["name"]
    spec["subdomain"] = sts.get("spec", {}).get("serviceName", "")
    volumes = claim_volumes(sts, template)
    if volumes:
        spec["volumes"] = list(spec.get("volumes") or []) + volumes
    return pod
