"""What the eviction subresource and the disruption controller both know about a PodDisruptionBudget
(Kubernetes' component-helpers/apps/poddisruptionbudget): which pods it covers, and its
DisruptionAllowed condition. Pure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from kubelite.objects import Object, rfc3339
from kubelite.selectors import LabelSelector, SelectorError, label_selector_from_spec

DISRUPTION_ALLOWED = "DisruptionAllowed"
SUFFICIENT_PODS = "SufficientPods"
INSUFFICIENT_PODS = "InsufficientPods"
SYNC_FAILED = "SyncFailed"
ALWAYS_ALLOW = "AlwaysAllow"
IF_HEALTHY_BUDGET = "IfHealthyBudget"


def budget_selector(pdb: Object) -> LabelSelector:
    """policy/v1: a null selector matches no pod, an empty one ({}) every pod of the namespace; an
    invalid one matches nothing."""
    try:
        return label_selector_from_spec((pdb.get("spec") or {}).get("selector"))
    except SelectorError:
        return LabelSelector.match_nothing()


def covers(pdb: Object, pod: Object) -> bool:
    """The budget guards the pod: same namespace, and its selector matches the pod's labels."""
    pod_meta: Mapping[str, Any] = pod.get("metadata") or {}
    if (pdb.get("metadata") or {}).get("namespace") != pod_meta.get("namespace"):
        return False
    return budget_selector(pdb).matches(pod_meta.get("labels") or {})


def set_status_condition(conditions: list[dict[str, Any]], new: dict[str, Any], now: dt.datetime) -> None:
    """apimeta.SetStatusCondition: replace the condition of the same type, keeping its
    lastTransitionTime unless the status changed."""
    for index, old in enumerate(conditions):
        if old.get("type") == new["type"]:
            since = old.get("lastTransitionTime") if old.get("status") == new["status"] else None
            conditions[index] = {**new, "lastTransitionTime": since or rfc3339(now)}
            return
    conditions.append({**new, "lastTransitionTime": rfc3339(now)})


def disruption_allowed_condition(status: Object) -> dict[str, Any]:
    """The DisruptionAllowed condition that status's disruptionsAllowed calls for."""
    allowed = int(status.get("disruptionsAllowed") or 0) > 0
    return {
        "type": DISRUPTION_ALLOWED,
        "status": "True" if allowed else "False",
        "observedGeneration": int(status.get("observedGeneration") or 0),
        "reason": SUFFICIENT_PODS if allowed else INSUFFICIENT_PODS,
        "message": "",
    }


def update_disruption_allowed_condition(status: Object, now: dt.datetime) -> None:
    """UpdateDisruptionAllowedCondition: set the condition in status (changed in place)."""
    conditions = list(status.get("conditions") or [])
    set_status_condition(conditions, disruption_allowed_condition(status), now)
    status["conditions"] = conditions


def conditions_are_up_to_date(pdb: Object) -> bool:
    """ConditionsAreUpToDate: the condition exists, is for this generation, and agrees with
    disruptionsAllowed."""
    status = pdb.get("status") or {}
    cond = next((c for c in status.get("conditions") or [] if c.get("type") == DISRUPTION_ALLOWED), None)
    if cond is None:
        return False
    if int(status.get("observedGeneration") or 0) != int((pdb.get("metadata") or {}).get("generation") or 0):
        return False
    wanted = disruption_allowed_condition(status)
    return bool(cond.get("status") == wanted["status"] and cond.get("reason") == wanted["reason"])
