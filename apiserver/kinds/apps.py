"""apps/v1 Deployments and ReplicaSets: Kubernetes' defaulting (RollingUpdate 25 %/25 %,
revisionHistoryLimit 10, progressDeadlineSeconds 600), validation with the real server's wording
(the selector must match the template and cannot change), and the `kubectl get deploy|rs`
columns. Pure.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from apiserver.errors import FieldError, GoValue, forbidden, invalid, not_supported
from apiserver.kinds.common import child_object
from apiserver.kinds.workload import (
    WIDE_COLUMNS,
    ReplicatedStrategy,
    go_label_selector,
    int_or_percent,
    is_zero,
    not_over_100_percent,
    template_labels,
    validate_selector,
)
from apiserver.meta import JSONObject
from apiserver.tables import AGE_COLUMN, NAME_COLUMN, Column
from apiserver.validation import non_negative

STRATEGY_TYPES = ["Recreate", "RollingUpdate"]


class ReplicaSetStrategy(ReplicatedStrategy):
    kind = "ReplicaSet"
    patch_schema = "ReplicaSet"
    empty_status: ClassVar[JSONObject] = {"replicas": 0}
    columns: ClassVar[list[Column]] = [
        NAME_COLUMN,
        Column("Desired", type="integer", description="Replicas is the number of desired pods."),
        Column(
            "Current", type="integer", description="Replicas is the most recently observed number of pods."
        ),
        Column(
            "Ready",
            type="integer",
            description="The number of pods targeted by this ReplicaSet with a Ready Condition.",
        ),
        AGE_COLUMN,
        *WIDE_COLUMNS,
    ]

    def validate_spec(self, obj: JSONObject) -> list[FieldError]:
        spec = obj.get("spec") or {}
        return super().validate_spec(obj) + validate_selector(
            spec.get("selector"), template_labels(obj), "replicaset"
        )

    def validate_update(self, new: JSONObject, old: JSONObject) -> list[FieldError]:
        errs = self.validate(new)
        return errs + immutable_selector(new, old)

    def cells(self, obj: JSONObject, now: dt.datetime) -> list[Any]:
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        desired, current = int(spec.get("replicas") or 0), int(status.get("replicas") or 0)
        return self.row(obj, now, [desired, current, int(status.get("readyReplicas") or 0)])


def immutable_selector(new: JSONObject, old: JSONObject) -> list[FieldError]:
    """A selector that never changes after create (apps/v1 kinds and Jobs)."""
    new_selector = (new.get("spec") or {}).get("selector")
    if new_selector != (old.get("spec") or {}).get("selector"):
        return [invalid("spec.selector", go_label_selector(new_selector), "field is immutable")]
    return []


class DeploymentStrategy(ReplicatedStrategy):
    kind = "Deployment"
    patch_schema = "Deployment"
    columns: ClassVar[list[Column]] = [
        NAME_COLUMN,
        Column("Ready", description="Number of the pod with ready state"),
        Column(
            "Up-to-date",
            description="Total number of non-terminated pods targeted by this deployment that have the "
            "desired template spec.",
        ),
        Column(
            "Available",
            description="Total number of available pods (ready for at least minReadySeconds) targeted by "
            "this deployment.",
        ),
        AGE_COLUMN,
        *WIDE_COLUMNS,
    ]

    def default(self, obj: JSONObject) -> None:
        super().default(obj)
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        strategy = child_object(spec, "strategy")
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = child_object(strategy, "rollingUpdate")
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)

    def validate_spec(self, obj: JSONObject) -> list[FieldError]:
        spec = obj.get("spec") or {}
        errs = super().validate_spec(obj)
        errs += validate_selector(spec.get("selector"), template_labels(obj), "deployment")
        errs += validate_strategy(spec.get("strategy"))
        errs += non_negative("spec.revisionHistoryLimit", spec.get("revisionHistoryLimit"))
        deadline = spec.get("progressDeadlineSeconds")
        errs += non_negative("spec.progressDeadlineSeconds", deadline)
        ready = spec.get("minReadySeconds") or 0
        if isinstance(deadline, int) and isinstance(ready, int) and deadline <= ready:
            errs.append(
                invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds")
            )
        return errs

    def validate_update(self, new: JSONObject, old: JSONObject) -> list[FieldError]:
        return self.validate(new) + immutable_selector(new, old)

    def fields(self, obj: JSONObject) -> dict[str, str]:
        out = super().fields(obj)
        out.pop("status.replicas", None)
        return out

    def cells(self, obj: JSONObject, now: dt.datetime) -> list[Any]:
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        ready = f"{int(status.get('readyReplicas') or 0)}/{int(spec.get('replicas') or 0)}"
        updated, available = (
            int(status.get("updatedReplicas") or 0),
            int(status.get("availableReplicas") or 0),
        )
        return self.row(obj, now, [ready, updated, available])


def validate_strategy(strategy: Any) -> list[FieldError]:
    """ValidateDeploymentStrategy and ValidateRollingUpdateDeployment."""
    if not isinstance(strategy, dict):
        return []
    errs: list[FieldError] = []
    kind = strategy.get("type")
    rolling = strategy.get("rollingUpdate")
    if kind not in STRATEGY_TYPES:
        errs.append(not_supported("spec.strategy.type", kind, STRATEGY_TYPES))
    if kind == "Recreate" and rolling is not None:
        errs.append(
            forbidden(
                "spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"
            )
        )
    if kind == "RollingUpdate" and isinstance(rolling, dict):
        path = "spec.strategy.rollingUpdate"
        unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        errs += int_or_percent(f"{path}.maxUnavailable", unavailable)
        errs += int_or_percent(f"{path}.maxSurge", surge)
        if is_zero(unavailable) and is_zero(surge):
            errs.append(
                invalid(
                    f"{path}.maxUnavailable", GoValue(str(unavailable)), "may not be 0 when `maxSurge` is 0"
                )
            )
        errs += not_over_100_percent(f"{path}.maxUnavailable", unavailable)
    return errs
