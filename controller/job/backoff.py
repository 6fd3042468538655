"""The delay before a Job replaces a failed pod: 10 s after the first failure since the last
success, doubling with each further one, capped at 10 minutes (DefaultJobPodFailureBackOff and
MaxJobPodFailureBackOff of pkg/controller/job; the documentation says six minutes, the code ten).

Kubernetes keeps a back-off record per Job in memory; here it is computed from the pods' finish
times on every sync, so a restarted controller-manager resumes the same back-off. Pure.
"""

from __future__ import annotations

import datetime as dt

from kubelite.objects import Object, get_condition, parse_rfc3339

DEFAULT_POD_FAILURE_BACKOFF = 10.0
MAX_POD_FAILURE_BACKOFF = 600.0


def finish_time(pod: Object) -> dt.datetime | None:
    """When a finished pod ended: its last container's finishedAt, else its Ready condition's change."""
    status = pod.get("status") or {}
    times = []
    for key in ("containerStatuses", "initContainerStatuses"):
        for cs in status.get(key) or []:
            finished = ((cs.get("state") or {}).get("terminated") or {}).get("finishedAt")
            if finished:
                times.append(parse_rfc3339(finished))
    if times:
        return max(times)
    ready = get_condition(pod, "Ready")
    if ready and ready.get("lastTransitionTime"):
        return parse_rfc3339(ready["lastTransitionTime"])
    created = (pod.get("metadata") or {}).get("creationTimestamp")
    return parse_rfc3339(created) if created else None


def failures_since_success(pods: list[Object]) -> tuple[int, dt.datetime | None]:
    """How many pods failed after the last pod that succeeded, and when the last one failed."""
    far_past = dt.datetime.min.replace(tzinfo=dt.UTC)
    phase = {id(p): (p.get("status") or {}).get("phase") for p in pods}
    successes = [finish_time(p) or far_past for p in pods if phase[id(p)] == "Succeeded"]
    last_success = max(successes, default=None)
    failures = [finish_time(p) or far_past for p in pods if phase[id(p)] == "Failed"]
    after = [t for t in failures if last_success is None or t > last_success]
    return len(after), max(after, default=None)


def backoff_delay(
    failures: int, base: float = DEFAULT_POD_FAILURE_BACKOFF, cap: float = MAX_POD_FAILURE_BACKOFF
) -> float:
    """The back-off after this many failures since the last success (0 for none)."""
    if failures <= 0:
        return 0.0
    return float(min(base * 2.0 ** (failures - 1), cap))


def remaining_backoff(pods: list[Object], now: dt.datetime) -> float:
    """Seconds until the Job may create a pod again (0: now)."""
    failures, last = failures_since_success(pods)
    if failures == 0 or last is None:
        return 0.0
    elapsed = (now - last).total_seconds()
    return max(backoff_delay(failures) - elapsed, 0.0)
