"""Job tracking with finalizers (Kubernetes' trackJobStatusAndRemoveFinalizers): each pod the Job
controller creates carries `batch.kubernetes.io/job-tracking`, so a finished pod cannot vanish
before the Job has counted it. Pure.

A pod is counted in three steps, each safe to repeat after a crash or a leader change:
1. its uid goes into `status.uncountedTerminatedPods.succeeded/failed` (a status write);
2. the finalizer is removed from the pod;
3. uids in uncountedTerminatedPods whose pod no longer carries the finalizer (and whose removal
   is not still unobserved) move into `status.succeeded/failed` (a status write).
A pod whose finalizer is gone is never looked at again, so each pod is counted exactly once.
Indexed Jobs count by index instead: a succeeded pod's index goes straight into
`completedIndexes` in step 1, so its uid is never listed as uncounted.

A pod that is deleted before it finished counts as failed (it may never reach the Failed phase);
with podReplacementPolicy Failed or a podFailurePolicy only the Failed phase counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controller.job.indexes import format_indexes, parse_indexes, valid_index
from kubelite.objects import Object

FINALIZER = "batch.kubernetes.io/job-tracking"
MAX_UNCOUNTED_PODS = 500  # uids listed per status write (MaxUncountedPods)


def has_finalizer(pod: Object) -> bool:
    return FINALIZER in ((pod.get("metadata") or {}).get("finalizers") or [])


def with_finalizer(template: Object) -> Object:
    """The pod template with the tracking finalizer added to its metadata (once)."""
    meta = dict(template.get("metadata") or {})
    finalizers = list(meta.get("finalizers") or [])
    if FINALIZER not in finalizers:
        finalizers.append(FINALIZER)
    meta["finalizers"] = finalizers
    return {**template, "metadata": meta}


def _phase(pod: Object) -> str | None:
    return (pod.get("status") or {}).get("phase")


def _uid(pod: Object) -> str:
    return str((pod.get("metadata") or {}).get("uid") or "")


def only_replaces_failed(job: Object) -> bool:
    spec = job.get("spec") or {}
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def is_pod_failed(pod: Object, job: Object) -> bool:
    """Failed, or deleted before it finished (Kubernetes' isPodFailed)."""
    phase = _phase(pod)
    meta = pod.get("metadata") or {}
    if only_replaces_failed(job):
        # kubelite's kubelet does not write the Failed phase of a pod it stops for a deletion:
        # its final delete (grace period 0) stands for it.
        return phase == "Failed" or (
            bool(meta.get("deletionTimestamp"))
            and phase != "Succeeded"
            and int(meta.get("deletionGracePeriodSeconds") or 0) == 0
        )
    if phase == "Failed":
        return True
    return bool(meta.get("deletionTimestamp")) and phase != "Succeeded"


def _uncounted(status: dict[str, Any]) -> tuple[list[str], list[str]]:
    u = status.get("uncountedTerminatedPods") or {}
    return list(u.get("succeeded") or []), list(u.get("failed") or [])


def _countable(pod: Object, job: Object, seen: set[str], expected_removals: set[str]) -> bool:
    """A pod not yet counted: it carries the finalizer, is not listed, no removal is in flight;
    for Indexed Jobs it has a valid index."""
    uid = _uid(pod)
    if not has_finalizer(pod) or uid in seen or uid in expected_removals:
        return False
    spec = job.get("spec") or {}
    if spec.get("completionMode") == "Indexed":
        return valid_index(pod, int(spec.get("completions") or 0)) is not None
    return True


@dataclass
class Counts:
    """What a sync decides with: counted + uncounted + newly finished pods."""

    succeeded: int
    failed: int
    done: set[int] = field(default_factory=set)  # Indexed: completed indexes, new ones included


def count(job: Object, pods: list[Object], expected_removals: set[str]) -> Counts:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    uncounted_ok, uncounted_failed = _uncounted(status)
    listed_failed = set(uncounted_failed)
    new_failed = sum(
        1 for p in pods if _countable(p, job, listed_failed, expected_removals) and is_pod_failed(p, job)
    )
    failed = int(status.get("failed") or 0) + len(uncounted_failed) + new_failed
    if spec.get("completionMode") == "Indexed":
        total = int(spec.get("completions") or 0)
        done = parse_indexes(status.get("completedIndexes"), total)
        done |= {
            i for p in pods
            if _phase(p) == "Succeeded" and has_finalizer(p) and (i := valid_index(p, total)) is not None
        }  # fmt: skip
        return Counts(len(done), failed, done)
    listed_ok = set(uncounted_ok)
    new_ok = sum(
        1 for p in pods if _countable(p, job, listed_ok, expected_removals) and _phase(p) == "Succeeded"
    )
    return Counts(int(status.get("succeeded") or 0) + len(uncounted_ok) + new_ok, failed)


@dataclass
class Tracking:
    remove: list[Object] = field(default_factory=list)  # pods whose finalizer to remove now
    with_finalizer: set[str] = field(default_factory=set)  # uids still holding (or removing) it
    flush: bool = False  # the uncounted lists or completedIndexes changed: write before removing


def move_uncounted(status: dict[str, Any], with_finalizer_uids: set[str]) -> bool:
    """Step 3: uids whose pod no longer holds the finalizer move into the counters."""
    changed = False
    u = status.setdefault("uncountedTerminatedPods", {})
    for key in ("succeeded", "failed"):
        listed = list(u.get(key) or [])
        kept = [uid for uid in listed if uid in with_finalizer_uids]
        if len(kept) == len(listed):
            continue
        changed = True
        total = int(status.get(key) or 0) + len(listed) - len(kept)
        if total:
            status[key] = total
        else:
            status.pop(key, None)
        if kept:
            u[key] = kept
        else:
            u.pop(key, None)
    return changed


def track(
    job: Object, pods: list[Object], status: dict[str, Any], expected_removals: set[str], finishing: bool
) -> Tracking:
    """Steps 1 and 3 on `status` (in place) and the pods for step 2. `finishing`: the Job met its
    success or failure criteria, so every unfinished pod counts as failed; a Job being deleted
    lets go of all its pods, counting only the finished ones (canRemoveFinalizer)."""
    deleting = bool((job.get("metadata") or {}).get("deletionTimestamp"))
    spec = job.get("spec") or {}
    indexed = spec.get("completionMode") == "Indexed"
    total = int(spec.get("completions") or 0)
    out = Tracking()
    out.with_finalizer = {_uid(p) for p in pods if has_finalizer(p) or _uid(p) in expected_removals}
    out.flush = move_uncounted(status, out.with_finalizer)
    listed_ok, listed_failed = _uncounted(status)
    prev_done = parse_indexes(status.get("completedIndexes"), total) if indexed else set()
    done = set(prev_done)
    new_ok: list[str] = []
    new_failed: list[str] = []
    for pod in pods:
        uid = _uid(pod)
        if not has_finalizer(pod) or uid in expected_removals:
            continue
        phase = _phase(pod)
        failed = is_pod_failed(pod, job)
        if not (finishing or deleting or phase == "Succeeded" or failed):
            continue
        out.remove.append(pod)
        index = valid_index(pod, total) if indexed else None
        if phase == "Succeeded" and uid not in listed_failed:
            if indexed:
                if index is not None:
                    done.add(index)
            elif uid not in listed_ok:
                new_ok.append(uid)
        elif (
            (failed or (finishing and phase != "Succeeded"))  # finishing: the rest are being deleted
            and uid not in listed_failed
            and (not indexed or index is not None)
        ):
            new_failed.append(uid)
        if len(new_ok) + len(new_failed) + len(done - prev_done) >= MAX_UNCOUNTED_PODS:
            break
    u = status.setdefault("uncountedTerminatedPods", {})
    if new_ok:
        u["succeeded"] = listed_ok + new_ok
    if new_failed:
        u["failed"] = listed_failed + new_failed
    out.flush = out.flush or bool(new_ok or new_failed)
    if indexed:
        text = format_indexes(done)
        if text != (status.get("completedIndexes") or ""):
            out.flush = True
        if text:
            status["completedIndexes"] = text
        else:
            status.pop("completedIndexes", None)
        if done:
            status["succeeded"] = len(done)
        else:
            status.pop("succeeded", None)
    return out


def uncounted_empty(status: dict[str, Any]) -> bool:
    ok, failed = _uncounted(status)
    return not ok and not failed
