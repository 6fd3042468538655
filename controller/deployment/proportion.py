"""Proportional scaling: when a Deployment is scaled in the middle of a rollout (or while paused),
the replicas added or removed are shared among its active ReplicaSets in proportion to their size,
so scaling neither hastens nor reverts the rollout (Kubernetes' DeploymentController.scale and
deploymentutil.GetProportion). Each ReplicaSet remembers, in max-replicas, the Deployment's
replicas + maxSurge when it was last sized; its share is its size scaled by the new maximum over
that. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.deployment.util import (
    MAX_REPLICAS_ANNOTATION,
    by_size_newer,
    by_size_older,
    filter_active,
    int_annotation,
    max_surge,
    replica_count,
    spec_replicas,
    status_count,
)
from kubelite.objects import Object


def round_half_away(value: float) -> int:
    """integer.RoundToInt32: halves away from zero."""
    return int(value + 0.5) if value >= 0 else int(value - 0.5)


def replica_set_fraction(rs: Object, d: Object) -> int:
    """How many replicas rs should gain (or lose, negative) for the Deployment's new size."""
    replicas = spec_replicas(d)
    if replicas == 0:
        return -spec_replicas(rs)  # scaling to zero takes everything
    deployment_max = replicas + max_surge(d)
    annotated = int_annotation(rs, MAX_REPLICAS_ANNOTATION)
    if annotated is None:
        annotated = status_count(d, "replicas")  # a guess: the Deployment's size before the change
    if annotated == 0:
        return 0
    return round_half_away(spec_replicas(rs) * deployment_max / annotated) - spec_replicas(rs)


def get_proportion(rs: Object | None, d: Object, to_add: int, added: int) -> int:
    """rs's share of to_add, given that added has been handed out already; never beyond what is left."""
    if rs is None or spec_replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = replica_set_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def proportional_sizes(d: Object, rss: Sequence[Object | None]) -> list[tuple[Object, int]]:
    """The new size of every active ReplicaSet, in the order to scale them: replicas + maxSurge
    (or none for a Deployment scaled to 0) shared out largest first (newest first when scaling up,
    oldest first when scaling down), the rounding leftovers going to the first."""
    active = filter_active(rss)
    allowed = spec_replicas(d) + max_surge(d) if spec_replicas(d) > 0 else 0
    to_add = allowed - replica_count(active)
    if to_add > 0:
        active = by_size_newer(active)
    elif to_add < 0:
        active = by_size_older(active)
    sizes: list[tuple[Object, int]] = []
    added = 0
    for rs in active:
        share = get_proportion(rs, d, to_add, added)
        sizes.append((rs, spec_replicas(rs) + share))
        added += share
    if sizes and to_add != 0:
        first, size = sizes[0]
        sizes[0] = (first, max(size + to_add - added, 0))
    return sizes
