"""A Deployment's status as `kubectl rollout status` reads it: the counts summed over its
ReplicaSets, the Available and Progressing conditions and the predicates over them (complete,
progressing, timed out), after Kubernetes' calculateStatus and deploymentutil. Pure; the time is an
argument.

Counts are omitted when zero and conditions keep their order, as the real controller's JSON does:
SetCondition leaves an unchanged condition where it is and appends a changed one at the end.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Sequence
from typing import Any

from controller.deployment.util import (
    actual_replica_count,
    available_replica_count,
    has_progress_deadline,
    max_unavailable,
    ready_replica_count,
    replica_count,
    spec_replicas,
    status_count,
)
from kubelite.objects import Object, parse_rfc3339, rfc3339

AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"

# Progressing reasons
REPLICA_SET_UPDATED = "ReplicaSetUpdated"
FAILED_RS_CREATE = "ReplicaSetCreateError"
NEW_REPLICA_SET_CREATED = "NewReplicaSetCreated"
FOUND_NEW_REPLICA_SET = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
# Available reasons
MINIMUM_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
MINIMUM_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable"

COUNT_FIELDS = (
    "observedGeneration",
    "replicas",
    "updatedReplicas",
    "readyReplicas",
    "availableReplicas",
    "unavailableReplicas",
)


def new_condition(type_: str, status: str, reason: str, message: str, now: dt.datetime) -> dict[str, Any]:
    stamp = rfc3339(now)
    return {
        "type": type_,
        "status": status,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def get_condition(status: Object, type_: str) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == type_), None)


def set_condition(status: Object, condition: dict[str, Any]) -> None:
    """Add or replace a condition; one with the same status and reason is left as it is, and a change
    of reason alone keeps lastTransitionTime."""
    current = get_condition(status, condition["type"])
    if (
        current
        and current.get("status") == condition["status"]
        and current.get("reason") == condition["reason"]
    ):
        return
    condition = dict(condition)
    if current and current.get("status") == condition["status"]:
        condition["lastTransitionTime"] = current.get("lastTransitionTime")
    remove_condition(status, condition["type"])
    status["conditions"] = [*(status.get("conditions") or []), condition]


def remove_condition(status: Object, type_: str) -> None:
    kept = [c for c in status.get("conditions") or [] if c.get("type") != type_]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


def omit_empty(status: Object) -> Object:
    """The status as Go's omitempty writes it: no zero counts, no empty condition list."""
    out: Object = {k: status[k] for k in COUNT_FIELDS if status.get(k)}
    if status.get("conditions"):
        out["conditions"] = status["conditions"]
    if status.get("collisionCount") is not None:
        out["collisionCount"] = status["collisionCount"]
    return out


def calculate_status(
    all_rss: Sequence[Object | None], new_rs: Object | None, d: Object, now: dt.datetime
) -> Object:
    """The status the Deployment should carry for its ReplicaSets, its conditions carried over and
    Available set from the availability maxUnavailable allows."""
    available = available_replica_count(all_rss)
    old = d.get("status") or {}
    status: Object = {
        "observedGeneration": int((d.get("metadata") or {}).get("generation") or 0),
        "replicas": actual_replica_count(all_rss),
        "updatedReplicas": actual_replica_count([new_rs]),
        "readyReplicas": ready_replica_count(all_rss),
        "availableReplicas": available,
        "unavailableReplicas": max(replica_count(all_rss) - available, 0),
        "conditions": copy.deepcopy(old.get("conditions") or []),
    }
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if available >= spec_replicas(d) - max_unavailable(d):
        cond = new_condition(
            AVAILABLE, "True", MINIMUM_REPLICAS_AVAILABLE, "Deployment has minimum availability.", now
        )
    else:
        cond = new_condition(
            AVAILABLE,
            "False",
            MINIMUM_REPLICAS_UNAVAILABLE,
            "Deployment does not have minimum availability.",
            now,
        )
    set_condition(status, cond)
    return omit_empty(status)


def deployment_complete(d: Object, status: Object) -> bool:
    """Every replica updated and available, no old one left, and the latest spec observed."""
    replicas = spec_replicas(d)
    return (
        status_count({"status": status}, "updatedReplicas") == replicas
        and status_count({"status": status}, "replicas") == replicas
        and status_count({"status": status}, "availableReplicas") == replicas
        and int(status.get("observedGeneration") or 0) >= int(d["metadata"].get("generation") or 0)
    )


def deployment_progressing(d: Object, status: Object) -> bool:
    """Progress since the Deployment's last status: more pods updated, ready or available, or fewer
    old ones."""
    old = d.get("status") or {}

    def count(s: Object, field: str) -> int:
        return int(s.get(field) or 0)

    old_olds = count(old, "replicas") - count(old, "updatedReplicas")
    new_olds = count(status, "replicas") - count(status, "updatedReplicas")
    return (
        count(status, "updatedReplicas") > count(old, "updatedReplicas")
        or new_olds < old_olds
        or count(status, "readyReplicas") > count(old, "readyReplicas")
        or count(status, "availableReplicas") > count(old, "availableReplicas")
    )


def deployment_timed_out(d: Object, status: Object, now: dt.datetime) -> bool:
    """No progress reported for longer than progressDeadlineSeconds (strictly)."""
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = cond.get("lastUpdateTime")
    if not since:
        return False
    deadline = parse_rfc3339(since) + dt.timedelta(seconds=int(d["spec"]["progressDeadlineSeconds"]))
    return deadline < now


def paused_condition(d: Object, now: dt.datetime) -> dict[str, Any] | None:
    """The Progressing condition that pausing or resuming calls for, if it is not there yet: it keeps a
    Deployment that was paused longer than its deadline from being reported as stuck once resumed.
    A timed-out rollout keeps saying so."""
    if not has_progress_deadline(d):
        return None
    cond = get_condition(d.get("status") or {}, PROGRESSING)
    if cond is not None and cond.get("reason") == TIMED_OUT:
        return None
    paused_now = cond is not None and cond.get("reason") == PAUSED
    if (d.get("spec") or {}).get("paused") and not paused_now:
        return new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused", now)
    if not (d.get("spec") or {}).get("paused") and paused_now:
        return new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed", now)
    return None
