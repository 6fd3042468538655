"""A DaemonSet's status, counted node by node as Kubernetes' updateDaemonSetStatus does, which is
what `kubectl get ds` and `kubectl rollout status ds/x` read. Pure.

On a node that should run the daemon pod, its oldest pod counts: scheduled, ready, available
(ready for minReadySeconds) and updated (of the current revision). A node that has a daemon pod but
should not run one is misscheduled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controller.daemonset.placement import creation_order, is_pod_updated
from kubelite.objects import Object, is_pod_ready


def daemon_status(
    ds: Object,
    eligible: dict[str, bool],
    node_pods: dict[str, list[Object]],
    hash_: str,
    generation: str | None,
    available: Callable[[Object], bool],
    observe_generation: bool,
) -> dict[str, Any]:
    """The status for the nodes (name -> should run a daemon pod) and the daemon pods by node.
    `observe_generation` is False while creations or deletions are still expected: the controller
    has not yet acted on this generation, so observedGeneration stays where it was."""
    desired = current = misscheduled = ready = updated = available_count = 0
    for node, should_run in sorted(eligible.items()):
        pods = sorted(node_pods.get(node) or [], key=creation_order)
        if not should_run:
            misscheduled += 1 if pods else 0
            continue
        desired += 1
        if not pods:
            continue
        current += 1
        pod = pods[0]
        if is_pod_ready(pod):
            ready += 1
            if available(pod):
                available_count += 1
        if is_pod_updated(pod, hash_, generation):
            updated += 1
    old = ds.get("status") or {}
    status: dict[str, Any] = {
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "desiredNumberScheduled": desired,
        "numberReady": ready,
    }
    generation_seen = int(ds.get("metadata", {}).get("generation") or 0)
    observed = generation_seen if observe_generation else int(old.get("observedGeneration") or 0)
    optional = {
        "observedGeneration": observed,
        "updatedNumberScheduled": updated,
        "numberAvailable": available_count,
        "numberUnavailable": desired - available_count,
    }
    status.update({k: v for k, v in optional.items() if v})  # omitempty, as apps/v1 writes them
    for kept in ("collisionCount", "conditions"):
        if old.get(kept) is not None:
            status[kept] = old[kept]
    return status
