"""apps/v1 StatefulSets: Kubernetes' defaulting (OrderedReady, RollingUpdate with partition 0,
revisionHistoryLimit 10, PVC retention Retain/Retain), validation in the real server's wording
(serviceName and a matching selector are required; only replicas, ordinals, template,
updateStrategy, persistentVolumeClaimRetentionPolicy and minReadySeconds may change), and the
`kubectl get sts` columns (NAME READY AGE, wide CONTAINERS IMAGES). Pure.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any, ClassVar

from apiserver.errors import FieldError, GoValue, forbidden, invalid, not_supported, required
from apiserver.kinds.common import child_object
from apiserver.kinds.workload import WIDE_COLUMNS, ReplicatedStrategy, template_labels, validate_selector
from apiserver.meta import JSONObject
from apiserver.tables import AGE_COLUMN, NAME_COLUMN, Column
from apiserver.validation import dns1123_label, non_negative

ORDERED_READY, PARALLEL = "OrderedReady", "Parallel"
ROLLING_UPDATE, ON_DELETE = "RollingUpdate", "OnDelete"
RETAIN, DELETE = "Retain", "Delete"
RETENTION_POLICIES = [DELETE, RETAIN]  # sets.List order, as the NotSupported error lists them
# what ValidateStatefulSetUpdate lets an update change in spec
MUTABLE_SPEC = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds")  # fmt: skip
IMMUTABLE_SPEC_MESSAGE = (
    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
    "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)


def default_statefulset_spec(spec: JSONObject) -> None:
    """SetDefaults_StatefulSet (apps/v1): a rollingUpdate block with partition 0 is added only when
    the strategy type itself was defaulted, as Kubernetes does."""
    spec.setdefault("podManagementPolicy", ORDERED_READY)
    strategy = child_object(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = ROLLING_UPDATE
        if strategy.get("rollingUpdate") is None:
            strategy["rollingUpdate"] = {}
    rolling = strategy.get("rollingUpdate")
    if strategy["type"] == ROLLING_UPDATE and isinstance(rolling, dict):
        rolling.setdefault("partition", 0)
    retention = child_object(spec, "persistentVolumeClaimRetentionPolicy")
    if not retention.get("whenDeleted"):
        retention["whenDeleted"] = RETAIN
    if not retention.get("whenScaled"):
        retention["whenScaled"] = RETAIN
    spec.setdefault("revisionHistoryLimit", 10)


def go_rolling_update(rolling: Any) -> GoValue:
    """A RollingUpdateStatefulSetStrategy as a field error prints it (the internal type, %#v)."""
    rolling = rolling if isinstance(rolling, dict) else {}
    partition = int(rolling.get("partition") or 0)
    unavailable = rolling.get("maxUnavailable")
    unavailable_text = "(*intstr.IntOrString)(nil)" if unavailable is None else f"{unavailable!r}"
    return GoValue(
        f"apps.RollingUpdateStatefulSetStrategy{{Partition:{partition}, MaxUnavailable:{unavailable_text}}}"
    )


def validate_update_strategy(strategy: Any) -> list[FieldError]:
    path = "spec.updateStrategy"
    strategy = strategy if isinstance(strategy, dict) else {}
    kind = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if not kind:
        return [required(path)]
    if kind == ON_DELETE:
        if rolling is not None:
            return [
                invalid(
                    f"{path}.rollingUpdate",
                    go_rolling_update(rolling),
                    f"only allowed for updateStrategy '{ROLLING_UPDATE}'",
                )
            ]
        return []
    if kind == ROLLING_UPDATE:
        if isinstance(rolling, dict):
            return non_negative(f"{path}.rollingUpdate.partition", rolling.get("partition"))
        return []
    value = GoValue(
        f'apps.StatefulSetUpdateStrategy{{Type:"{kind}", '
        "RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}"
    )
    return [invalid(path, value, f"must be '{ROLLING_UPDATE}' or '{ON_DELETE}'")]


def validate_retention(policy: Any) -> list[FieldError]:
    path = "spec.persistentVolumeClaimRetentionPolicy"
    if not isinstance(policy, dict):
        return []
    errs: list[FieldError] = []
    for name in ("whenDeleted", "whenScaled"):
        if policy.get(name) not in (RETAIN, DELETE):
            errs.append(not_supported(f"{path}.{name}", policy.get(name), RETENTION_POLICIES))
    return errs


class StatefulSetStrategy(ReplicatedStrategy):
    kind = "StatefulSet"
    patch_schema = "StatefulSet"
    empty_status: ClassVar[JSONObject] = {"replicas": 0, "availableReplicas": 0}
    columns: ClassVar[list[Column]] = [
        NAME_COLUMN,
        Column("Ready", description="Number of the pod with ready state"),
        AGE_COLUMN,
        *WIDE_COLUMNS[:2],
    ]

    def default(self, obj: JSONObject) -> None:
        super().default(obj)
        spec = obj.get("spec")
        if isinstance(spec, dict):
            default_statefulset_spec(spec)

    def validate_spec(self, obj: JSONObject) -> list[FieldError]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [required("spec")]
        errs: list[FieldError] = []
        service = spec.get("serviceName")
        if not service:
            errs.append(required("spec.serviceName"))
        elif isinstance(service, str):
            errs += [invalid("spec.serviceName", service, msg) for msg in dns1123_label(service)]
        policy = spec.get("podManagementPolicy")
        if not policy:
            errs.append(required("spec.podManagementPolicy"))
        elif policy not in (ORDERED_READY, PARALLEL):
            errs.append(
                invalid("spec.podManagementPolicy", policy, f"must be '{ORDERED_READY}' or '{PARALLEL}'")
            )
        errs += validate_update_strategy(spec.get("updateStrategy"))
        errs += validate_retention(spec.get("persistentVolumeClaimRetentionPolicy"))
        ordinals = spec.get("ordinals")
        if isinstance(ordinals, dict):
            errs += non_negative("spec.ordinals.start", ordinals.get("start"))
        errs += validate_selector(spec.get("selector"), template_labels(obj), "statefulset")
        # the shared template checks, with StatefulSet's own word on activeDeadlineSeconds; a volume
        # mount may name a volumeClaimTemplate (the union Kubernetes' TODO asks for)
        template = spec.get("template")
        deadline = None
        if isinstance(template, dict) and isinstance(template.get("spec"), dict):
            deadline = template["spec"].get("activeDeadlineSeconds")
            template = copy.deepcopy(template)
            template["spec"].pop("activeDeadlineSeconds", None)
            volumes = template["spec"].get("volumes")
            names = (
                {v.get("name") for v in volumes if isinstance(v, dict)}
                if isinstance(volumes, list)
                else set()
            )
            claims = [
                (c.get("metadata") or {}).get("name")
                for c in spec.get("volumeClaimTemplates") or []
                if isinstance(c, dict) and isinstance(c.get("metadata"), dict)
            ]
            extra = [
                {"name": n, "emptyDir": {}} for n in claims if isinstance(n, str) and n and n not in names
            ]
            if extra:
                template["spec"]["volumes"] = (volumes if isinstance(volumes, list) else []) + extra
        errs += super().validate_spec({"spec": {**spec, "template": template}})
        if deadline is not None:
            errs.append(
                forbidden(
                    "spec.template.spec.activeDeadlineSeconds",
                    "activeDeadlineSeconds in StatefulSet is not Supported",
                )
            )
        return errs

    def validate_update(self, new: JSONObject, old: JSONObject) -> list[FieldError]:
        errs = self.validate(new)
        new_spec = {k: v for k, v in (new.get("spec") or {}).items() if k not in MUTABLE_SPEC}
        old_spec = {k: v for k, v in (old.get("spec") or {}).items() if k not in MUTABLE_SPEC}
        if new_spec != old_spec:
            errs.append(forbidden("spec", IMMUTABLE_SPEC_MESSAGE))
        return errs

    def cells(self, obj: JSONObject, now: dt.datetime) -> list[Any]:
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        ready = f"{int(status.get('readyReplicas') or 0)}/{int(spec.get('replicas') or 0)}"
        return self.row(obj, now, [ready])[:-1]  # no SELECTOR column for StatefulSets

    def fields(self, obj: JSONObject) -> dict[str, str]:
        out = super().fields(obj)
        out.pop("status.replicas", None)
        return out
