"""The RollingUpdate strategy (Kubernetes' rolling.go): each sync either scales the new ReplicaSet
up, within replicas + maxSurge pods, or scales old ReplicaSets down, keeping replicas -
maxUnavailable pods available, then writes the rollout's status. Old ReplicaSets' unhealthy pods go
first, since removing them costs no availability. `max_scaled_down`, `unhealthy_cleanup` and
`old_scale_down` are the pure decisions; they count ReplicaSets' spec.replicas and
status.availableReplicas, as Kubernetes does, never pods.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from controller.deployment.progress import ProgressMixin
from controller.deployment.status import deployment_complete
from controller.deployment.sync import ReplicaSets
from controller.deployment.util import (
    available_replica_count,
    by_creation,
    filter_active,
    max_unavailable,
    new_rs_new_replicas,
    replace_by_uid,
    replica_count,
    spec_replicas,
    status_count,
)
from kubelite.objects import Object, key_of

log = logging.getLogger(__name__)


def max_scaled_down(d: Object, all_rss: Sequence[Object | None], new_rs: Object) -> int:
    """How many old pods may go now: all pods asked for, less the minimum available, less the new
    ReplicaSet's pods that are not available yet (they may never be, and must not let old pods go)."""
    min_available = spec_replicas(d) - max_unavailable(d)
    new_unavailable = spec_replicas(new_rs) - status_count(new_rs, "availableReplicas")
    return replica_count(all_rss) - min_available - new_unavailable


def unhealthy_cleanup(old_rss: Sequence[Object], limit: int) -> list[tuple[Object, int]]:
    """(old ReplicaSet, new size) that remove up to limit pods that are not available, oldest first."""
    plan: list[tuple[Object, int]] = []
    removed = 0
    for rs in sorted(old_rss, key=by_creation):
        if removed >= limit:
            break
        replicas = spec_replicas(rs)
        unhealthy = replicas - status_count(rs, "availableReplicas")
        if replicas == 0 or unhealthy <= 0:
            continue
        count = min(limit - removed, unhealthy)
        plan.append((rs, replicas - count))
        removed += count
    return plan


def old_scale_down(
    d: Object, all_rss: Sequence[Object | None], old_rss: Sequence[Object]
) -> list[tuple[Object, int]]:
    """(old ReplicaSet, new size) that remove the available pods beyond replicas - maxUnavailable,
    oldest ReplicaSet first."""
    min_available = spec_replicas(d) - max_unavailable(d)
    excess = available_replica_count(all_rss) - min_available
    plan: list[tuple[Object, int]] = []
    removed = 0
    for rs in sorted(old_rss, key=by_creation):
        if removed >= excess:
            break
        replicas = spec_replicas(rs)
        if replicas == 0:
            continue
        count = min(replicas, excess - removed)
        plan.append((rs, replicas - count))
        removed += count
    return plan


class RollingMixin(ProgressMixin):
    async def rollout_rolling(self, d: Object, new_rs: Object | None, old_rss: ReplicaSets) -> None:
        if new_rs is None:
            new_rs = await self.create_new_replica_set(d, old_rss)
        assert new_rs is not None
        all_rss: list[Object | None] = [*old_rss, new_rs]
        scaled_up, new_rs = await self.reconcile_new_replica_set(all_rss, new_rs, d)
        if scaled_up:
            await self.sync_rollout_status([*old_rss, new_rs], new_rs, d)
            return
        scaled_down, old_rss = await self.reconcile_old_replica_sets(all_rss, old_rss, new_rs, d)
        if scaled_down:
            await self.sync_rollout_status([*old_rss, new_rs], new_rs, d)
            return
        if deployment_complete(d, d.get("status") or {}):
            await self.cleanup_deployment(old_rss, d)
        await self.sync_rollout_status([*old_rss, new_rs], new_rs, d)

    async def reconcile_new_replica_set(
        self, all_rss: Sequence[Object | None], new_rs: Object, d: Object
    ) -> tuple[bool, Object]:
        replicas = spec_replicas(d)
        if spec_replicas(new_rs) == replicas:
            return False, new_rs
        if spec_replicas(new_rs) > replicas:
            return await self.scale_replica_set_and_record_event(new_rs, replicas, d)
        return await self.scale_replica_set_and_record_event(
            new_rs, new_rs_new_replicas(d, all_rss, new_rs), d
        )

    async def reconcile_old_replica_sets(
        self, all_rss: Sequence[Object | None], old_rss: ReplicaSets, new_rs: Object, d: Object
    ) -> tuple[bool, ReplicaSets]:
        """Scale old ReplicaSets down as far as availability allows: (whether any was, the old
        ReplicaSets as they are now)."""
        active = filter_active(old_rss)
        if replica_count(active) == 0:
            return False, old_rss
        limit = max_scaled_down(d, all_rss, new_rs)
        if limit <= 0:
            return False, old_rss
        removed = 0
        for rs, size in unhealthy_cleanup(active, limit):
            _, updated = await self.scale_replica_set_and_record_event(rs, size, d)
            removed += spec_replicas(rs) - size
            active = replace_by_uid(active, updated)
            old_rss = replace_by_uid(old_rss, updated)
        log.debug("deployment %s: cleaned up %d unhealthy old replicas", key_of(d), removed)
        for rs, size in old_scale_down(d, [*active, new_rs], active):
            _, updated = await self.scale_replica_set_and_record_event(rs, size, d)
            removed += spec_replicas(rs) - size
            old_rss = replace_by_uid(old_rss, updated)
        return removed > 0, old_rss
