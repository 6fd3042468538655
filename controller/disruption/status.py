"""The status a PodDisruptionBudget should carry, decided from the pods it selects and the scale of
their controllers (Kubernetes' pkg/controller/disruption, its pure half). Pure.

expectedPods is the number of pods the budget counts: the pods themselves for an integer
minAvailable, otherwise the summed spec.replicas of the top-level controllers of those pods (a
percentage needs a whole to be a percentage of). desiredHealthy follows from minAvailable or
maxUnavailable, currentHealthy counts ready pods that are neither terminating nor recently evicted,
and disruptionsAllowed is their difference (never below 0, and 0 while nothing is expected).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubelite.disruptionbudget import (
    DISRUPTION_ALLOWED,
    SYNC_FAILED,
    conditions_are_up_to_date,
    set_status_condition,
    update_disruption_allowed_condition,
)
from kubelite.objects import (
    Object,
    controller_ref,
    get_condition,
    is_pod_ready,
    is_terminating,
    parse_rfc3339,
    rfc3339,
)

# how long an evicted pod, recorded in status.disruptedPods, may take to be marked for deletion
DELETION_TIMEOUT = dt.timedelta(minutes=2)
# how long a pod may carry DisruptionTarget=True without being deleted before the condition is reset
STALE_POD_DISRUPTION_TIMEOUT = dt.timedelta(minutes=2)

# (controllerRef, namespace) -> (the top-level controller's uid, its spec.replicas), or None when the
# ref names no controller this finder knows; raises ScaleError when the scale cannot be had
ControllerFinder = Callable[[dict[str, Any], str], tuple[str, int] | None]


class ScaleError(Exception):
    """The number of expected pods cannot be computed: the budget allows no disruption."""


def scaled_value(value: Any, total: int, round_up: bool = True) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an int as is, `N%` of total (rounded up or down)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value)
    if not text.endswith("%") or not text[:-1].isdigit():
        raise ScaleError(
            f'invalid value for IntOrString: invalid value "{text}": must be an integer or percentage'
        )
    share = int(text[:-1]) * total / 100
    return math.ceil(share) if round_up else math.floor(share)


def expected_scale(pods: list[Object], find: ControllerFinder) -> tuple[int, list[str]]:
    """getExpectedScale: the summed scale of the pods' controllers (each counted once), and the
    names of the pods that have no controller."""
    scales: dict[str, int] = {}
    unmanaged: list[str] = []
    seen: set[str] = set()
    for pod in pods:
        ref = controller_ref(pod)
        name = pod["metadata"].get("name", "")
        if ref is None:
            unmanaged.append(name)
            continue
        if ref.get("uid") in seen:
            continue
        found = find(ref, pod["metadata"].get("namespace", ""))
        if found is None:
            raise ScaleError(f'found no controllers for pod "{name}"')
        seen.add(str(ref.get("uid")))
        scales[found[0]] = found[1]
    return sum(scales.values()), unmanaged


@dataclass
class ExpectedCounts:
    expected: int = 0
    desired_healthy: int = 0
    unmanaged: list[str] = field(default_factory=list)


def expected_counts(pdb: Object, pods: list[Object], find: ControllerFinder) -> ExpectedCounts:
    """getExpectedPodCount: expectedPods and desiredHealthy from minAvailable or maxUnavailable."""
    spec = pdb.get("spec") or {}
    max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
    if max_unavailable is not None:
        expected, unmanaged = expected_scale(pods, find)
        desired = max(0, expected - scaled_value(max_unavailable, expected))
        return ExpectedCounts(expected, desired, unmanaged)
    if isinstance(min_available, int) and not isinstance(min_available, bool):
        return ExpectedCounts(len(pods), min_available)
    if min_available is not None:
        expected, unmanaged = expected_scale(pods, find)
        return ExpectedCounts(expected, scaled_value(min_available, expected), unmanaged)
    return ExpectedCounts()


def _disrupted_until(stamp: Any) -> dt.datetime | None:
    try:
        return parse_rfc3339(str(stamp)) + DELETION_TIMEOUT
    except ValueError:
        return None


@dataclass
class DisruptedPods:
    """buildDisruptedPodMap: the entries still awaiting their pod's deletion, when to look again,
    and the pods that were never deleted in time."""

    pods: dict[str, str] = field(default_factory=dict)
    recheck_at: dt.datetime | None = None
    not_deleted: list[str] = field(default_factory=list)


def disrupted_pods(pods: list[Object], pdb: Object, now: dt.datetime) -> DisruptedPods:
    recorded = (pdb.get("status") or {}).get("disruptedPods") or {}
    out = DisruptedPods()
    for pod in pods:
        name = pod["metadata"].get("name", "")
        if is_terminating(pod) or name not in recorded:
            continue  # deleted as expected, or never evicted
        until = _disrupted_until(recorded[name])
        if until is None or until < now:
            out.not_deleted.append(name)
            continue
        out.pods[name] = recorded[name]
        if out.recheck_at is None or until < out.recheck_at:
            out.recheck_at = until
    return out


def count_healthy(pods: list[Object], disrupted: dict[str, str], now: dt.datetime) -> int:
    """countHealthyPods: ready, not terminating, and not evicted within the deletion timeout."""
    healthy = 0
    for pod in pods:
        if is_terminating(pod):
            continue
        evicted = disrupted.get(pod["metadata"].get("name", ""))
        until = _disrupted_until(evicted) if evicted else None
        if until is not None and until > now:
            continue
        if is_pod_ready(pod):
            healthy += 1
    return healthy


def budget_status(
    pdb: Object, current: int, counts: ExpectedCounts, disrupted: dict[str, str], now: dt.datetime
) -> Object | None:
    """updatePdbStatus: the status to write, or None when the stored one is already it."""
    allowed = current - counts.desired_healthy
    if counts.expected <= 0 or allowed <= 0:
        allowed = 0
    status = pdb.get("status") or {}
    generation = int((pdb.get("metadata") or {}).get("generation") or 0)
    if (
        int(status.get("currentHealthy") or 0) == current
        and int(status.get("desiredHealthy") or 0) == counts.desired_healthy
        and int(status.get("expectedPods") or 0) == counts.expected
        and int(status.get("disruptionsAllowed") or 0) == allowed
        and (status.get("disruptedPods") or {}) == disrupted
        and int(status.get("observedGeneration") or 0) == generation
        and conditions_are_up_to_date(pdb)
    ):
        return None
    new: Object = {"observedGeneration": generation} if generation else {}
    if disrupted:
        new["disruptedPods"] = dict(disrupted)
    new.update(
        disruptionsAllowed=allowed, currentHealthy=current, desiredHealthy=counts.desired_healthy,
        expectedPods=counts.expected,
    )  # fmt: skip
    if status.get("conditions"):
        new["conditions"] = [dict(c) for c in status["conditions"]]
    update_disruption_allowed_condition(new, now)
    return new


def fail_safe_status(pdb: Object, why: str, now: dt.datetime) -> Object:
    """failSafe: when the counts cannot be computed, allow no disruption and say why."""
    status = dict(pdb.get("status") or {})
    status["disruptionsAllowed"] = 0
    conditions = [dict(c) for c in status.get("conditions") or []]
    failed = {
        "type": DISRUPTION_ALLOWED, "status": "False",
        "observedGeneration": int(status.get("observedGeneration") or 0),
        "reason": SYNC_FAILED, "message": why,
    }  # fmt: skip
    set_status_condition(conditions, failed, now)
    status["conditions"] = conditions
    return status


def stale_disruption_wait(pod: Object, now: dt.datetime) -> float | None:
    """nonTerminatingPodHasStaleDisruptionCondition: seconds until the pod's DisruptionTarget=True
    condition counts as stale (0: now), or None when it has none that can go stale (the pod is
    being deleted or finished, or the kubelet set it)."""
    if is_terminating(pod) or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return None
    cond = get_condition(pod, "DisruptionTarget")
    if cond is None or cond.get("status") != "True" or cond.get("reason") == "TerminationByKubelet":
        return None
    try:
        since = parse_rfc3339(str(cond.get("lastTransitionTime")))
    except ValueError:
        return 0.0
    return max(0.0, (since + STALE_POD_DISRUPTION_TIMEOUT - now).total_seconds())


def without_stale_disruption(pod: Object, now: dt.datetime) -> Object:
    """The pod with its DisruptionTarget condition reset to False (apipod.UpdatePodCondition)."""
    status = pod.setdefault("status", {})
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
    conditions.append({"type": "DisruptionTarget", "status": "False", "lastProbeTime": None,
                       "lastTransitionTime": rfc3339(now)})  # fmt: skip
    status["conditions"] = conditions
    return pod
