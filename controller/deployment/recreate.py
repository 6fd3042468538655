"""The Recreate strategy (Kubernetes' recreate.go): scale every old ReplicaSet to zero, wait until
none of their pods is left (a pod being deleted still counts: it may still be running), then create
the new ReplicaSet at full size. A Deployment is synced again when one of its pods is deleted, which
is how the wait ends. `old_pods_running` is the pure decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from controller.deployment.progress import ProgressMixin
from controller.deployment.status import deployment_complete
from controller.deployment.sync import ReplicaSets
from controller.deployment.util import actual_replica_count, spec_replicas
from kubelite.objects import Object, is_pod_finished


def old_pods_running(
    new_rs: Object | None, old_rss: Sequence[Object], pods_by_rs: Mapping[str, Sequence[Object]]
) -> bool:
    """Whether any pod of an old ReplicaSet may still be running: by the ReplicaSets' status, or a
    pod in the cache that has not finished (Succeeded or Failed)."""
    if actual_replica_count(old_rss) > 0:
        return True
    new_uid = new_rs["metadata"].get("uid") if new_rs is not None else None
    for rs_uid, pods in pods_by_rs.items():
        if rs_uid == new_uid:
            continue
        for pod in pods:
            if not is_pod_finished(pod):
                return True
    return False


class RecreateMixin(ProgressMixin):
    async def rollout_recreate(
        self,
        d: Object,
        new_rs: Object | None,
        old_rss: ReplicaSets,
        pods_by_rs: Mapping[str, Sequence[Object]],
    ) -> None:
        scaled_down = False
        old_rss = list(old_rss)
        for i, rs in enumerate(old_rss):
            if spec_replicas(rs) > 0:
                scaled, old_rss[i] = await self.scale_replica_set_and_record_event(rs, 0, d)
                scaled_down = scaled_down or scaled
        if scaled_down or old_pods_running(new_rs, old_rss, pods_by_rs):
            await self.sync_rollout_status([*old_rss, new_rs], new_rs, d)
            return
        if new_rs is None:
            new_rs = await self.create_new_replica_set(d, old_rss)
        assert new_rs is not None
        _, new_rs = await self.scale_replica_set_and_record_event(new_rs, spec_replicas(d), d)
        if deployment_complete(d, d.get("status") or {}):
            await self.cleanup_deployment(old_rss, d)
        await self.sync_rollout_status([*old_rss, new_rs], new_rs, d)
