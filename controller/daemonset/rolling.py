"""A DaemonSet's RollingUpdate, node by node (Kubernetes' daemon/update.go rollingUpdate). Pure.

Without surge (maxSurge 0), old pods are deleted, unavailable ones first, only as far as
maxUnavailable allows counting every node whose pod is missing, not yet available or being
replaced; the manage step then creates the new pods. With surge (maxUnavailable 0), a new pod is
started beside an available old one on at most maxSurge nodes at a time, and the old pod is deleted
once the new one is available; an unavailable old pod is replaced at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from controller.daemonset.placement import is_pod_updated
from controller.deployment.util import scaled_value
from kubelite.objects import Object, is_terminating


def surge_and_unavailable(ds: Object, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as pod counts for `desired` nodes; a DaemonSet that allows neither
    is given maxUnavailable 1, as Kubernetes does, so that a rollout cannot stall."""
    rolling = ((ds.get("spec", {}).get("updateStrategy") or {}).get("rollingUpdate")) or {}
    surge = scaled_value(rolling.get("maxSurge", 0), desired, round_up=True)
    unavailable = scaled_value(rolling.get("maxUnavailable", 1), desired, round_up=True)
    if desired > 0 and surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def allows_surge(ds: Object) -> bool:
    rolling = ((ds.get("spec", {}).get("updateStrategy") or {}).get("rollingUpdate")) or {}
    return scaled_value(rolling.get("maxSurge", 0), 1, round_up=True) != 0


def updated_pods_on_node(
    pods: list[Object], hash_: str, generation: str | None
) -> tuple[Object | None, Object | None, bool]:
    """findUpdatedPodsOnNode: (new pod, old pod, ok); not ok when a node has two of either kind."""
    new: Object | None = None
    old: Object | None = None
    for pod in pods:
        if is_terminating(pod):
            continue
        if is_pod_updated(pod, hash_, generation):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


@dataclass
class RolloutStep:
    delete: list[Object] = field(default_factory=list)
    create_on: list[str] = field(default_factory=list)


def rolling_update(
    ds: Object,
    node_pods: dict[str, list[Object]],
    hash_: str,
    generation: str | None,
    available: Callable[[Object], bool],
    should_run: Callable[[str], bool],
    desired: int,
) -> RolloutStep:
    """The deletes (and, when surging, the creates) of one rolling-update step. `node_pods` holds
    every node that has daemon pods or should run one (then with an empty list)."""
    max_surge, max_unavailable = surge_and_unavailable(ds, desired)
    step = RolloutStep()
    if max_surge == 0:
        unavailable = 0
        replacements: list[Object] = []
        candidates: list[Object] = []
        for _node, pods in sorted(node_pods.items()):
            new, old, ok = updated_pods_on_node(pods, hash_, generation)
            if not ok or (new is None) == (old is None):
                unavailable += 1  # manage() creates or deletes here
            elif new is not None:
                if not available(new):
                    unavailable += 1
            elif old is not None:
                if not available(old):
                    replacements.append(old)
                    unavailable += 1
                elif unavailable < max_unavailable:
                    candidates.append(old)
        room = min(max(max_unavailable - unavailable, 0), len(candidates))
        step.delete = replacements + candidates[:room]
        return step

    surge = 0
    available_count = 0
    sunset: list[Object] = []  # old pods on nodes that should no longer run one
    surge_candidates: list[str] = []
    for node, pods in sorted(node_pods.items()):
        new, old, ok = updated_pods_on_node(pods, hash_, generation)
        if not ok:
            surge += 1
            continue
        counted = old if old is not None else new
        if counted is not None and available(counted):
            available_count += 1
        if old is None:
            continue
        if new is None:
            if not available(old):
                if should_run(node):
                    step.create_on.append(node)
                else:
                    step.delete.append(old)
            elif not should_run(node):
                sunset.append(old)
            elif surge < max_surge:
                surge_candidates.append(node)
        elif not available(new):
            surge += 1
        else:
            step.delete.append(old)
    deletable = min(max(available_count - desired, 0), len(sunset))
    step.delete += sunset[:deletable]
    room = min(max(max_surge - surge, 0), len(surge_candidates))
    step.create_on += surge_candidates[:room]
    return step
