"""One sync of a Job, decided: from the Job and its pods at a moment, which pods to delete, how
many pods (or which indexes) to create, the status to write, the events to record and when to
look again. Kubernetes' syncJob and manageJob semantics; pure, so every rule is unit-tested.

- Failure first: more failed pods than `backoffLimit` (or, with restartPolicy OnFailure, as many
  container restarts in running pods) is BackoffLimitExceeded; running past
  `activeDeadlineSeconds` is DeadlineExceeded. The Job gets `FailureTarget` and its active pods
  are deleted; once none is left or terminating, `Failed` with the same reason.
- Success: `completions` succeeded pods (or indexes), or with nil completions one success and
  nothing running, gives `SuccessCriteriaMet` (reason CompletionsReached), then `Complete` with
  `completionTime` once no pod is left running or terminating.
- Otherwise keep `min(parallelism, completions - succeeded)` pods active (all of them while
  suspended: none), replacing failed pods only after the back-off (see backoff.py).

Succeeded and failed counts are tracked with the `batch.kubernetes.io/job-tracking` finalizer
(tracking.py): status counts plus the uncounted uids plus finished pods still holding the
finalizer. The plan's status is the first status write (new uncounted uids, completedIndexes);
the controller then removes the finalizers and `finish` moves the uids into the counters and,
once none is left uncounted, sets `Complete` or `Failed`.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from controller.job.backoff import remaining_backoff
from controller.job.indexes import pending_indexes, valid_index
from controller.job.tracking import Tracking, count, move_uncounted, track, uncounted_empty
from controller.replicaset import is_active, pods_to_delete
from kubelite.objects import Object, is_pod_finished, is_pod_ready, is_terminating, parse_rfc3339, rfc3339

MAX_POD_CREATE_DELETE_PER_SYNC = 500
BACKOFF_LIMIT_MESSAGE = "Job has reached the specified backoff limit"
DEADLINE_MESSAGE = "Job was active longer than specified deadline"
COMPLETIONS_MESSAGE = "Reached expected number of succeeded pods"
FINAL_OF = {"FailureTarget": "Failed", "SuccessCriteriaMet": "Complete"}


@dataclass
class Plan:
    status: dict[str, Any]
    delete: list[Object] = field(default_factory=list)
    create: int = 0
    indexes: list[int] = field(default_factory=list)  # Indexed Jobs: the index of each pod to create
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    requeue_after: float | None = None
    tracking: Tracking = field(default_factory=Tracking)  # finalizers to remove, uids holding one
    final: dict[str, Any] | None = None  # Complete/Failed, set once no pod is left uncounted

    def wait(self, seconds: float) -> None:
        if seconds > 0 and (self.requeue_after is None or seconds < self.requeue_after):
            self.requeue_after = seconds


def condition_true(job: Object, kind: str) -> dict[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def is_finished(job: Object) -> bool:
    """Complete or Failed: the controller leaves the Job alone from then on."""
    return condition_true(job, "Complete") is not None or condition_true(job, "Failed") is not None


def new_condition(kind: str, status: str, reason: str, message: str, now: dt.datetime) -> dict[str, Any]:
    stamp = rfc3339(now)
    return {
        "type": kind, "status": status, "lastProbeTime": stamp, "lastTransitionTime": stamp,
        "reason": reason, "message": message,
    }  # fmt: skip


def _set_condition(status: dict[str, Any], cond: dict[str, Any]) -> None:
    """Add or replace a condition, keeping lastTransitionTime when its status did not change."""
    conditions = status.setdefault("conditions", [])
    for i, old in enumerate(conditions):
        if old.get("type") == cond["type"]:
            if old.get("status") == cond["status"]:
                cond = {
                    **cond,
                    "lastTransitionTime": old.get("lastTransitionTime", cond["lastTransitionTime"]),
                }
            conditions[i] = cond
            return
    conditions.append(cond)


def _restarts(pod: Object) -> int:
    status = pod.get("status") or {}
    return sum(
        int(cs.get("restartCount") or 0)
        for key in ("initContainerStatuses", "containerStatuses")
        for cs in status.get(key) or []
    )


def past_backoff_limit_on_failure(spec: dict[str, Any], active: list[Object]) -> bool:
    """restartPolicy OnFailure: container restarts in running and pending pods count as failures."""
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    restarts = sum(
        _restarts(p) for p in active if (p.get("status") or {}).get("phase") in ("Running", "Pending")
    )
    limit = int(spec.get("backoffLimit") or 0)
    return restarts > 0 if limit == 0 else restarts >= limit


def deadline_remaining(job: Object, now: dt.datetime) -> float | None:
    """Seconds left before activeDeadlineSeconds (None: no deadline running)."""
    spec, status = job.get("spec") or {}, job.get("status") or {}
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is None or not status.get("startTime") or spec.get("suspend"):
        return None
    elapsed = (now - parse_rfc3339(status["startTime"])).total_seconds()
    return float(deadline) - elapsed


def _removals_indexed(active: list[Object], completions: int, done: set[int], want: int) -> list[Object]:
    """Pods of an Indexed Job to delete: no valid index, an index already done, a duplicate index;
    then the highest indexes while more than `want` are left."""
    doomed: list[Object] = []
    kept: dict[int, Object] = {}
    for pod in sorted(active, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or ""):
        index = valid_index(pod, completions)
        if index is None or index in done or index in kept:
            doomed.append(pod)
        else:
            kept[index] = pod
    extra = len(kept) - want
    if extra > 0:
        doomed += [kept[i] for i in sorted(kept, reverse=True)[:extra]]
    return doomed


def plan_sync(
    job: Object, pods: list[Object], now: dt.datetime, may_manage: bool = True,
    expected_removals: frozenset[str] | set[str] = frozenset(),
) -> Plan:  # fmt: skip
    """Decide one sync of an unfinished Job. `may_manage` is false while creates or deletes of an
    earlier sync are still unobserved (expectations): then no pod is created or deleted.
    `expected_removals`: uids whose finalizer removal the informer has not shown yet."""
    spec = job.get("spec") or {}
    status = copy.deepcopy(job.get("status") or {})
    plan = Plan(status)
    suspended = bool(spec.get("suspend"))
    indexed = spec.get("completionMode") == "Indexed"
    completions = spec.get("completions")
    active = [p for p in pods if is_active(p)]
    terminating = [p for p in pods if is_terminating(p) and not is_pod_finished(p)]
    counts = count(job, pods, set(expected_removals))
    succeeded, failed, done = counts.succeeded, counts.failed, counts.done

    # suspend and resume
    was_suspended = condition_true(job, "Suspended") is not None
    if suspended and not was_suspended and not _interim(job):
        _set_condition(status, new_condition("Suspended", "True", "JobSuspended", "Job suspended", now))
        plan.events.append(("Normal", "Suspended", "Job suspended"))
    elif not suspended and was_suspended:
        _set_condition(status, new_condition("Suspended", "False", "JobResumed", "Job resumed", now))
        plan.events.append(("Normal", "Resumed", "Job resumed"))
        status["startTime"] = rfc3339(now)
    if not suspended and not status.get("startTime"):
        status["startTime"] = rfc3339(now)

    # failure and success criteria
    interim = _interim(job)
    if interim is None:
        remaining = deadline_remaining({**job, "status": status}, now)
        if failed > int(spec.get("backoffLimit") or 0) or past_backoff_limit_on_failure(spec, active):
            interim = new_condition(
                "FailureTarget", "True", "BackoffLimitExceeded", BACKOFF_LIMIT_MESSAGE, now
            )
        elif remaining is not None and remaining <= 0:
            interim = new_condition("FailureTarget", "True", "DeadlineExceeded", DEADLINE_MESSAGE, now)
        elif remaining is not None:
            plan.wait(remaining)
        if interim is not None:
            _set_condition(status, interim)

    if interim is not None and interim["type"] == "FailureTarget":
        if may_manage:
            plan.delete = active[:MAX_POD_CREATE_DELETE_PER_SYNC]
    elif interim is None and may_manage:
        _manage(plan, spec, active, pods, succeeded, done, now, suspended, indexed, len(terminating))
    still_active = len(active) - len(plan.delete)

    if interim is None:
        complete = still_active == 0 and (
            succeeded > 0 if completions is None else succeeded >= int(completions) and plan.create == 0
        )
        if complete:
            interim = new_condition(
                "SuccessCriteriaMet", "True", "CompletionsReached", COMPLETIONS_MESSAGE, now
            )
            _set_condition(status, interim)

    if interim is not None and still_active == 0 and not terminating and not plan.delete:
        final = FINAL_OF[interim["type"]]
        plan.final = new_condition(final, "True", interim["reason"], interim["message"], now)
        plan.requeue_after = None

    _counts(status, active, plan, terminating)
    plan.tracking = track(job, pods, status, set(expected_removals), finishing=interim is not None)
    return plan


def finish(plan: Plan, removed: set[str], now: dt.datetime) -> None:
    """After the finalizers of `removed` (uids) are gone: count those pods, then set Complete or
    Failed if the Job is done and no pod is left uncounted (enactJobFinished)."""
    status = plan.status
    move_uncounted(status, plan.tracking.with_finalizer - removed)
    if plan.final is None or not uncounted_empty(status):
        return
    final = plan.final
    _set_condition(status, final)
    if final["type"] == "Complete":
        status["completionTime"] = rfc3339(now)
        plan.events.append(("Normal", "Completed", "Job completed"))
    else:
        plan.events.append(("Warning", final["reason"], final["message"]))


def _interim(job: Object) -> dict[str, Any] | None:
    """A FailureTarget or SuccessCriteriaMet condition already reached: the Job is finishing."""
    return condition_true(job, "FailureTarget") or condition_true(job, "SuccessCriteriaMet")


def _manage(
    plan: Plan, spec: dict[str, Any], active: list[Object], pods: list[Object], succeeded: int,
    done: set[int], now: dt.datetime, suspended: bool, indexed: bool, terminating: int,
) -> None:  # fmt: skip
    """manageJob: delete surplus pods, create missing ones once the back-off allows."""
    completions = spec.get("completions")
    parallelism = int(spec.get("parallelism") or 0)
    if suspended:
        plan.delete = active[:MAX_POD_CREATE_DELETE_PER_SYNC]
        return
    if completions is None:
        want = len(active) if succeeded > 0 else parallelism
    else:
        want = max(min(int(completions) - succeeded, parallelism), 0)
    if indexed:
        plan.delete = _removals_indexed(active, int(completions or 0), done, want)
    elif len(active) > want:
        plan.delete = pods_to_delete(active, len(active) - want)
    plan.delete = plan.delete[:MAX_POD_CREATE_DELETE_PER_SYNC]
    running = len(active) - len(plan.delete)
    if spec.get("podReplacementPolicy") == "Failed":
        running += terminating  # wait for terminating pods to end before replacing them
    missing = min(want - running, MAX_POD_CREATE_DELETE_PER_SYNC)
    if missing <= 0:
        return
    wait = remaining_backoff(pods, now)
    if wait > 0:
        plan.wait(wait)
        return
    if indexed:
        kept = {valid_index(p, int(completions or 0)) for p in active if p not in plan.delete}
        plan.indexes = pending_indexes(
            int(completions or 0), done, {i for i in kept if i is not None}, missing
        )
        plan.create = len(plan.indexes)
    else:
        plan.create = missing


def _counts(status: dict[str, Any], active: list[Object], plan: Plan, terminating: list[Object]) -> None:
    """The pod counters of JobStatus (`active` omitted when zero as Kubernetes' omitempty does;
    `ready` and `terminating` are pointers and always written). succeeded, failed and
    completedIndexes are tracking's."""
    remaining = [p for p in active if p not in plan.delete]
    if len(remaining) + plan.create:
        status["active"] = len(remaining) + plan.create
    else:
        status.pop("active", None)
    status["ready"] = sum(1 for p in remaining if is_pod_ready(p))
    status["terminating"] = len(terminating) + len(plan.delete)
    status.setdefault("uncountedTerminatedPods", {})
