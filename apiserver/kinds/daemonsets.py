"""apps/v1 DaemonSets: Kubernetes' defaulting (RollingUpdate with maxUnavailable 1 and maxSurge 0,
revisionHistoryLimit 10), validation with the real server's wording (ValidateDaemonSet: the selector
must match the template and cannot change, restartPolicy Always, exactly one of maxUnavailable and
maxSurge non-zero), the template generation kept in the `deprecated.daemonset.template.generation`
annotation as the apps/v1 conversion does, and the `kubectl get ds` columns. Pure.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from apiserver.errors import CauseType, FieldError, GoValue, forbidden, invalid, not_supported, required
from apiserver.kinds.apps import immutable_selector
from apiserver.kinds.common import child_object
from apiserver.kinds.workload import (
    PERCENT_RE,
    WIDE_COLUMNS,
    ReplicatedStrategy,
    int_or_percent,
    not_over_100_percent,
    template_labels,
    validate_selector,
)
from apiserver.meta import JSONObject
from apiserver.strategy import Strategy
from apiserver.tables import AGE_COLUMN, NAME_COLUMN, Column
from apiserver.validation import non_negative

TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
UPDATE_STRATEGIES = ["RollingUpdate", "OnDelete"]
# the status fields apps/v1 always writes (no omitempty), which the Python client requires
EMPTY_STATUS: JSONObject = {
    "currentNumberScheduled": 0,
    "numberMisscheduled": 0,
    "desiredNumberScheduled": 0,
    "numberReady": 0,
}
DESCRIPTIONS = {
    "desired": "The total number of nodes that should be running the daemon pod (including nodes correctly "
    "running the daemon pod).",
    "current": "The number of nodes that are running at least 1 daemon pod and are supposed to run the "
    "daemon pod.",
    "ready": "Total number of nodes that should be running the daemon pod and have one or more of the daemon "
    "pod running with a Ready Condition.",
    "updated": "The total number of nodes that are running updated daemon pod",
    "available": "The number of nodes that should be running the daemon pod and have one or more of the "
    "daemon pod running and available (ready for at least spec.minReadySeconds)",
    "nodeSelector": "NodeSelector is a selector which must be true for the pod to fit on a node. Selector "
    "which must match a node's labels for the pod to be scheduled on that node.",
}
ACTIVE_DEADLINE = "spec.template.spec.activeDeadlineSeconds"


def _template_generation(obj: JSONObject) -> int:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


def _set_template_generation(obj: JSONObject, generation: int) -> None:
    meta = obj.setdefault("metadata", {})
    annotations = child_object(meta, "annotations")
    annotations[TEMPLATE_GENERATION_ANNOTATION] = str(generation)


def _percent(value: Any) -> int | None:
    if isinstance(value, str) and PERCENT_RE.match(value):
        return int(value[:-1])
    return None


def _int_or_percent_value(value: Any) -> int:
    """getIntOrPercentValue: the percentage's number, or the integer (0 for anything else)."""
    percent = _percent(value)
    if percent is not None:
        return percent
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def go_update_strategy(strategy: JSONObject) -> GoValue:
    rolling = "(*apps.RollingUpdateDaemonSet)(nil)" if strategy.get("rollingUpdate") is None else "{...}"
    return GoValue(
        f'apps.DaemonSetUpdateStrategy{{Type:"{strategy.get("type", "")}", RollingUpdate:{rolling}}}'
    )


def validate_update_strategy(strategy: Any) -> list[FieldError]:
    """ValidateDaemonSetUpdateStrategy and ValidateRollingUpdateDaemonSet."""
    path = "spec.updateStrategy"
    strategy = strategy if isinstance(strategy, dict) else {}
    kind = strategy.get("type")
    if kind == "OnDelete":
        return []
    if kind != "RollingUpdate":
        return [not_supported(path, go_update_strategy(strategy), UPDATE_STRATEGIES)]
    rolling = strategy.get("rollingUpdate")
    if not isinstance(rolling, dict):
        return [required(f"{path}.rollingUpdate")]
    path = f"{path}.rollingUpdate"
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    errs = int_or_percent(f"{path}.maxUnavailable", unavailable) + int_or_percent(f"{path}.maxSurge", surge)
    errs += not_over_100_percent(f"{path}.maxUnavailable", unavailable)
    errs += not_over_100_percent(f"{path}.maxSurge", surge)
    has_unavailable = _int_or_percent_value(unavailable) != 0
    has_surge = _int_or_percent_value(surge) != 0
    if has_unavailable and has_surge:
        errs.append(
            invalid(f"{path}.maxSurge", GoValue(str(surge)), "may not be set when maxUnavailable is non-zero")
        )
    elif not has_unavailable and not has_surge:
        errs.append(required(f"{path}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    return errs


def node_selector_text(obj: JSONObject) -> str:
    """labels.FormatLabels of the template's nodeSelector: `k=v,...` sorted, `<none>` when empty."""
    selector = ((((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("nodeSelector")) or {}
    if not isinstance(selector, dict) or not selector:
        return "<none>"
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


class DaemonSetStrategy(ReplicatedStrategy):
    kind = "DaemonSet"
    patch_schema = "DaemonSet"
    empty_status: ClassVar[JSONObject] = EMPTY_STATUS
    columns: ClassVar[list[Column]] = [
        NAME_COLUMN,
        Column("Desired", type="integer", description=DESCRIPTIONS["desired"]),
        Column("Current", type="integer", description=DESCRIPTIONS["current"]),
        Column("Ready", type="integer", description=DESCRIPTIONS["ready"]),
        Column("Up-to-date", type="integer", description=DESCRIPTIONS["updated"]),
        Column("Available", type="integer", description=DESCRIPTIONS["available"]),
        Column("Node Selector", description=DESCRIPTIONS["nodeSelector"]),
        AGE_COLUMN,
        *WIDE_COLUMNS,
    ]

    def default(self, obj: JSONObject) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        ReplicatedStrategy.default(self, {"spec": {"replicas": 0, "template": spec.get("template")}})
        strategy = child_object(spec, "updateStrategy")
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
        if strategy["type"] == "RollingUpdate":
            rolling = child_object(strategy, "rollingUpdate")
            rolling.setdefault("maxUnavailable", 1)
            rolling.setdefault("maxSurge", 0)
        spec.setdefault("revisionHistoryLimit", 10)

    def prepare_for_create(self, obj: JSONObject) -> None:
        super().prepare_for_create(obj)
        _set_template_generation(obj, max(_template_generation(obj), 1))

    def prepare_for_update(self, new: JSONObject, old: JSONObject) -> None:
        super().prepare_for_update(new, old)
        generation = _template_generation(old)
        if (new.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template"):
            generation += 1
        _set_template_generation(new, generation)

    def validate_spec(self, obj: JSONObject) -> list[FieldError]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [required("spec")]
        labels = template_labels(obj)
        errs = validate_selector(spec.get("selector"), labels, "daemonset")
        if spec.get("selector") is None:
            errs.append(
                invalid(
                    "spec.template.metadata.labels", labels, "`selector` does not match template `labels`"
                )
            )
        for err in ReplicatedStrategy.validate_spec(self, obj):
            if err.field == ACTIVE_DEADLINE and err.type == CauseType.FORBIDDEN:
                err = forbidden(ACTIVE_DEADLINE, "activeDeadlineSeconds in DaemonSet is not Supported")
            errs.append(err)
        errs += validate_update_strategy(spec.get("updateStrategy"))
        errs += non_negative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
        return errs

    def validate_update(self, new: JSONObject, old: JSONObject) -> list[FieldError]:
        return self.validate(new) + immutable_selector(new, old)

    def fields(self, obj: JSONObject) -> dict[str, str]:
        return Strategy.fields(self, obj)

    def cells(self, obj: JSONObject, now: dt.datetime) -> list[Any]:
        status = obj.get("status") or {}
        counts = [
            int(status.get(name) or 0)
            for name in (
                "desiredNumberScheduled",
                "currentNumberScheduled",
                "numberReady",
                "updatedNumberScheduled",
                "numberAvailable",
            )
        ]
        return self.row(obj, now, [*counts, node_selector_text(obj)])
