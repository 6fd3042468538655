"""Taints and tolerations, as the taint manager weighs them (Kubernetes' v1helper and
tainteviction): which NoExecute taints a pod tolerates, for how long, and when it is due to be
evicted; one toleration against one taint is kubelite.scheduling's, as the scheduler weighs it. Pure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from kubelite.objects import Object, parse_rfc3339
from kubelite.scheduling import tolerates

NO_EXECUTE = "NoExecute"


def no_execute_taints(node: Object) -> list[Object]:
    return [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == NO_EXECUTE]


def matching_tolerations(taints: list[Object], tolerations: list[Object]) -> tuple[bool, list[Object]]:
    """(every taint tolerated, the tolerations that did it): GetMatchingTolerations."""
    used: list[Object] = []
    for taint in taints:
        match = next((t for t in tolerations if tolerates(t, taint)), None)
        if match is None:
            return False, []
        used.append(match)
    return True, used


def min_toleration_seconds(used: list[Object]) -> float | None:
    """The shortest tolerationSeconds among the used tolerations; None when all tolerate forever.
    A negative or zero tolerationSeconds means at once (0)."""
    seconds = [t["tolerationSeconds"] for t in used if t.get("tolerationSeconds") is not None]
    if not used:
        return 0.0
    if not seconds:
        return None
    return float(max(0, min(int(s) for s in seconds)))


@dataclass(frozen=True)
class EvictionDecision:
    """What the taint manager does with one pod: nothing (`due` None, `evict` False), evict at once,
    or come back at `due`."""

    evict: bool = False
    due: dt.datetime | None = None
    reason: str = ""


def bound_at(pod: Object) -> dt.datetime | None:
    """When the pod was bound to its node: its PodScheduled condition's lastTransitionTime."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "True"
            and cond.get("lastTransitionTime")
        ):
            return parse_rfc3339(cond["lastTransitionTime"])
    return None


def tainted_since(
    taints: list[Object], tolerations: list[Object], first_seen: dt.datetime, bound: dt.datetime | None = None
) -> dt.datetime:
    """When the toleration clock started for this pod (Kubernetes starts it when the taint manager
    first processes the pod on the tainted node): the timeAdded of the taints whose time-limited
    tolerations set the shortest tolerationSeconds (else `first_seen`, when this controller first saw
    the node's taints), so a new leader does not restart the clock; but never before the pod was
    bound to the node, and never because of another taint the pod tolerates longer or forever."""
    _, used = matching_tolerations(taints, tolerations)
    limited = [
        (taint, t) for taint, t in zip(taints, used, strict=False) if t.get("tolerationSeconds") is not None
    ]
    shortest = min((int(t["tolerationSeconds"]) for _, t in limited), default=None)
    added = [
        parse_rfc3339(taint["timeAdded"]) if taint.get("timeAdded") else first_seen
        for taint, t in limited
        if int(t["tolerationSeconds"]) == shortest
    ]
    since = min(added) if added else first_seen
    return max(since, bound) if bound is not None else since


def eviction_decision(
    pod: Object, taints: list[Object], now: dt.datetime, since: dt.datetime
) -> EvictionDecision:
    """processPodOnNode: untolerated NoExecute taint → evict now; tolerated with tolerationSeconds →
    evict once the shortest has passed since `since`; tolerated forever (or no taints) → keep."""
    if not taints:
        return EvictionDecision()
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    all_tolerated, used = matching_tolerations(taints, tolerations)
    if not all_tolerated:
        return EvictionDecision(evict=True, reason="not all NoExecute taints are tolerated")
    seconds = min_toleration_seconds(used)
    if seconds is None:
        return EvictionDecision()
    due = since + dt.timedelta(seconds=seconds)
    if now >= due:
        return EvictionDecision(evict=True, due=due, reason=f"tolerationSeconds ({seconds:.0f}s) ran out")
    return EvictionDecision(due=due)
