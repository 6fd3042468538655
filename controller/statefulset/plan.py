"""What one sync of a StatefulSet does (Kubernetes' updateStatefulSet in stateful_set_control.go),
decided purely from the set, its pods, its two revisions and the time.

The pods split into replicas (ordinals in [start, start+replicas)) and condemned (ordinals above).
OrderedReady ("monotonic") walks the replicas in order and stops at the first thing to wait for:
a pod to create, one terminating, one not yet Running and Ready (or not yet available); only
when every replica is healthy does it delete the highest condemned pod, one per sync. Parallel
acts on all of them at once. A failed or finished pod is deleted and made again under the same
name. Then RollingUpdate deletes the highest-ordinal pod at or above the partition whose revision
is not the update revision, one at a time, waiting for each to come back healthy; OnDelete stops
before that. The plan is a list of steps; the actions of a step run together and a failed step
ends the sync.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from controller.statefulset.identity import (
    identity_matches,
    new_pod,
    ordinal_of,
    pod_name,
    pod_revision,
    replica_count,
    start_ordinal,
)
from kubelite.objects import Object, is_pod_available, is_pod_finished, is_pod_ready, is_terminating

ORDERED_READY, PARALLEL = "OrderedReady", "Parallel"
ROLLING_UPDATE, ON_DELETE = "RollingUpdate", "OnDelete"


@dataclass(frozen=True)
class Revision:
    """A revision as the sync needs it: its name and the pod template it restores."""

    name: str
    template: Object


@dataclass
class Action:
    verb: str  # "create", "delete" or "update" (restore the pod's identity labels)
    pod: Object
    reason: str = ""  # why, for the log and the recreate events


@dataclass
class Plan:
    steps: list[list[Action]] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    waiting: str = ""  # what the sync stopped to wait for, if it did

    def actions(self) -> list[Action]:
        return [a for step in self.steps for a in step]


def phase(pod: Object) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_running_and_ready(pod: Object) -> bool:
    return phase(pod) == "Running" and is_pod_ready(pod)


def is_running_and_available(pod: Object, min_ready: int, now: dt.datetime) -> bool:
    return phase(pod) == "Running" and is_pod_available(pod, min_ready, now)


def is_healthy(pod: Object) -> bool:
    return is_running_and_ready(pod) and not is_terminating(pod)


def monotonic(sts: Object) -> bool:
    """OrderedReady: one pod at a time, in order (allowsBurst is false)."""
    return bool(sts.get("spec", {}).get("podManagementPolicy", ORDERED_READY) != PARALLEL)


def partition_of(sts: Object) -> int:
    rolling = (sts.get("spec", {}).get("updateStrategy") or {}).get("rollingUpdate")
    return int(rolling.get("partition") or 0) if isinstance(rolling, dict) else 0


def strategy_type(sts: Object) -> str:
    return str((sts.get("spec", {}).get("updateStrategy") or {}).get("type") or ROLLING_UPDATE)


def revision_for(sts: Object, ordinal: int, current: Revision, update: Revision) -> Revision:
    """newVersionedStatefulSetPod: below the partition a RollingUpdate set makes pods of the current
    revision (below currentReplicas when it has no rollingUpdate block); every other pod is made
    from the update revision."""
    if strategy_type(sts) == ROLLING_UPDATE:
        rolling = (sts.get("spec", {}).get("updateStrategy") or {}).get("rollingUpdate")
        bound = (
            partition_of(sts)
            if isinstance(rolling, dict)
            else int(sts.get("status", {}).get("currentReplicas") or 0)
        )
        if ordinal < start_ordinal(sts) + bound:
            return current
    return update


def replica_status(
    sts: Object,
    pods: list[Object],
    current: Revision,
    update: Revision,
    collision_count: int,
    now: dt.datetime,
) -> dict[str, Any]:
    """updateStatus/computeReplicaStatus over the pods that exist, then completeRollingUpdate."""
    min_ready = int(sts.get("spec", {}).get("minReadySeconds") or 0)
    counts = {
        "replicas": 0,
        "readyReplicas": 0,
        "availableReplicas": 0,
        "currentReplicas": 0,
        "updatedReplicas": 0,
    }
    for pod in pods:
        counts["replicas"] += 1
        if is_running_and_ready(pod):
            counts["readyReplicas"] += 1
            if is_running_and_available(pod, min_ready, now):
                counts["availableReplicas"] += 1
        if not is_terminating(pod):
            counts["currentReplicas"] += pod_revision(pod) == current.name
            counts["updatedReplicas"] += pod_revision(pod) == update.name
    status: dict[str, Any] = {
        "observedGeneration": int(sts.get("metadata", {}).get("generation") or 0),
        **counts,
        "currentRevision": current.name,
        "updateRevision": update.name,
        "collisionCount": collision_count,
    }
    conditions = sts.get("status", {}).get("conditions")
    if conditions:
        status["conditions"] = conditions
    return status


def complete_rolling_update(sts: Object, status: dict[str, Any]) -> None:
    """A RollingUpdate whose pods are all updated and ready makes the update revision current."""
    if (
        strategy_type(sts) == ROLLING_UPDATE
        and status["updatedReplicas"] == status["replicas"]
        and status["readyReplicas"] == status["replicas"]
    ):
        status["currentReplicas"] = status["updatedReplicas"]
        status["currentRevision"] = status["updateRevision"]


def wire_status(status: dict[str, Any]) -> dict[str, Any]:
    """As the API serialises StatefulSetStatus: zero counts and empty strings omitted, except
    replicas, availableReplicas and collisionCount (a pointer), which are always written."""
    return {k: v for k, v in status.items() if v or k in ("replicas", "availableReplicas", "collisionCount")}


@dataclass
class _Sync:
    """One sync's view: the set, its revisions, its pods split by ordinal, and the plan so far."""

    sts: Object
    current: Revision
    update: Revision
    now: dt.datetime
    replicas: dict[int, Object]  # ordinal -> pod, for ordinals in [start, start+replicas)
    condemned: list[Object]  # pods with higher (or lower) ordinals, highest first
    plan: Plan
    ordered: bool
    min_ready: int

    @property
    def ordinals(self) -> range:
        start = start_ordinal(self.sts)
        return range(start, start + replica_count(self.sts))

    def wait(self, what: str) -> bool:
        self.plan.waiting = what
        return False


def plan_sync(
    sts: Object,
    pods: list[Object],
    current: Revision,
    update: Revision,
    collision_count: int,
    now: dt.datetime,
) -> Plan:
    """Every decision of one sync: the steps to take and the status to write."""
    sync = _Sync(
        sts,
        current,
        update,
        now,
        {},
        [],
        Plan(),
        monotonic(sts),
        int(sts.get("spec", {}).get("minReadySeconds") or 0),
    )
    counted = [p for p in pods if ordinal_of(p) >= 0]  # a pod whose name has no ordinal is ignored
    for pod in counted:
        if ordinal_of(pod) in sync.ordinals:
            sync.replicas[ordinal_of(pod)] = pod
        else:
            sync.condemned.append(pod)
    sync.condemned.sort(key=ordinal_of, reverse=True)
    running = [p for p in counted if not (ordinal_of(p) in sync.ordinals and is_pod_finished(p))]
    sync.plan.status = replica_status(sts, running, current, update, collision_count, now)
    if (
        not is_terminating(sts)
        and _process_replicas(sync)
        and _process_condemned(sync)
        and strategy_type(sts) == ROLLING_UPDATE
    ):
        _rolling_update(sync)
    complete_rolling_update(sts, sync.plan.status)
    return sync.plan


def _process_replicas(sync: _Sync) -> bool:
    """Make missing pods and remake finished ones, lowest ordinal first; OrderedReady stops at the
    first pod it makes or must wait for. Whether the sync may go on."""
    sts, plan = sync.sts, sync.plan
    replaced: list[Action] = []  # Parallel: finished pods are deleted first, then all creates at once
    made: list[Action] = []
    for ordinal in sync.ordinals:
        pod: Object | None = sync.replicas.get(ordinal)
        if pod is not None and is_pod_finished(pod):
            reason = "RecreatingFailedPod" if phase(pod) == "Failed" else "RecreatingTerminatedPod"
            replaced.append(Action("delete", pod, reason))
            pod = None
        if pod is None:
            revision = revision_for(sts, ordinal, sync.current, sync.update)
            made.append(Action("create", new_pod(sts, revision.template, ordinal, revision.name)))
            if sync.ordered:
                plan.steps += [[a] for a in replaced + made]
                return sync.wait(f"pod {pod_name(sts, ordinal)} to be created")
            continue
        if sync.ordered:
            if is_terminating(pod):
                return sync.wait(f"pod {pod_name(sts, ordinal)} to terminate")
            if not is_running_and_ready(pod):
                return sync.wait(f"pod {pod_name(sts, ordinal)} to be Running and Ready")
            if not is_running_and_available(pod, sync.min_ready, sync.now):
                return sync.wait(f"pod {pod_name(sts, ordinal)} to be available")
        if not identity_matches(sts, pod):
            made.append(Action("update", pod))
            if sync.ordered:
                plan.steps.append([made.pop()])
    _add(plan, replaced)
    _add(plan, made)
    return True


def _process_condemned(sync: _Sync) -> bool:
    """Delete the pods above the replica count, highest ordinal first: OrderedReady one at a time,
    after the previous one has terminated and while every other pod is healthy."""
    replicas = [sync.replicas[o] for o in sync.ordinals if o in sync.replicas]
    first_unhealthy = next(
        (p for p in replicas if not is_healthy(p)),
        next((p for p in reversed(sync.condemned) if not is_healthy(p)), None),
    )
    doomed: list[Action] = []
    for pod in sync.condemned:
        name = pod["metadata"]["name"]
        if is_terminating(pod):
            if sync.ordered:
                return sync.wait(f"pod {name} to terminate")
            continue
        if (
            sync.ordered
            and pod is not first_unhealthy
            and not is_running_and_available(pod, sync.min_ready, sync.now)
        ):
            return sync.wait(f"pod {name} to be Running and Ready before scaling down")
        doomed.append(Action("delete", pod, "scale down"))
        if sync.ordered:
            sync.plan.steps.append(doomed)
            return sync.wait(f"pod {name} to terminate")
    _add(sync.plan, doomed)
    return True


def _rolling_update(sync: _Sync) -> None:
    """Delete the highest-ordinal pod at or above the partition whose revision is not the update
    revision; wait while any of those pods is not healthy."""
    sts = sync.sts
    for ordinal in reversed(range(sync.ordinals.start + partition_of(sts), sync.ordinals.stop)):
        pod = sync.replicas.get(ordinal)
        if pod is None or is_pod_finished(pod):
            sync.wait(f"pod {pod_name(sts, ordinal)} to be created")
            return
        if pod_revision(pod) != sync.update.name and not is_terminating(pod):
            sync.plan.steps.append([Action("delete", pod, "update")])
            sync.plan.status["currentReplicas"] -= 1
            sync.wait(f"pod {pod_name(sts, ordinal)} to be updated")
            return
        if not is_healthy(pod):
            sync.wait(f"pod {pod_name(sts, ordinal)} to update")
            return


def _add(plan: Plan, step: list[Action]) -> None:
    if step:
        plan.steps.append(step)
