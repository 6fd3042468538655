"""Rollback through the `deprecated.deployment.rollback.to` annotation (Kubernetes' rollback.go), the
way apps/v1 keeps extensions/v1beta1's spec.rollbackTo: the controller copies the template of the
ReplicaSet with that revision (0: the previous one) into the Deployment, takes that ReplicaSet's
annotations, and clears the annotation.

`kubectl rollout undo` does not need this: it patches the template itself, and the ordinary sync
then finds the old ReplicaSet as the new one and gives it the next revision (sync.py). Either way
no ReplicaSet is created. `rollback_target` is the pure decision.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from controller.deployment.hashing import equal_ignore_hash, without_hash_label
from controller.deployment.sync import ReplicaSets, SyncMixin
from controller.deployment.util import (
    ROLLBACK_TO_ANNOTATION,
    last_revision,
    revision,
    set_deployment_annotations_to,
)
from controller.framework.context import settled_by_next_sync
from kubelite.client import ApiError
from kubelite.objects import Object, key_of
from kubelite.resources import DEPLOYMENTS

ROLLBACK_REVISION_NOT_FOUND = "DeploymentRollbackRevisionNotFound"
ROLLBACK_TEMPLATE_UNCHANGED = "DeploymentRollbackTemplateUnchanged"
ROLLBACK_DONE = "DeploymentRollback"


def rollback_to(d: Object) -> int | None:
    """The revision the annotation asks for; None when there is none or it is not a number."""
    value = ((d.get("metadata") or {}).get("annotations") or {}).get(ROLLBACK_TO_ANNOTATION)
    try:
        return int(value) if value else None
    except ValueError:
        return None


def rollback_target(all_rss: Sequence[Object | None], wanted: int) -> tuple[int, Object | None]:
    """(the revision meant, the ReplicaSet that has it or None); wanted 0 means the previous one."""
    rss = [rs for rs in all_rss if rs is not None]
    target = wanted or last_revision(rss)
    if target == 0:
        return 0, None
    for rs in rss:
        try:
            if revision(rs) == target:
                return target, rs
        except ValueError:
            continue
    return target, None


class RollbackMixin(SyncMixin):
    async def rollback(self, d: Object, rs_list: ReplicaSets) -> None:
        new_rs, old_rss = await self.get_all_replica_sets_and_sync_revision(d, rs_list, create=True)
        await self.persist_status(d, d.get("status") or {})  # what finding the new ReplicaSet decided
        target, rs = rollback_target([*old_rss, new_rs], rollback_to(d) or 0)
        if rs is None:
            message = (
                "Unable to find last revision."
                if target == 0
                else "Unable to find the revision to rollback to."
            )
            await self.event(d, "Warning", ROLLBACK_REVISION_NOT_FOUND, message)
            await self.update_and_clear_rollback_to(d)
            return
        if equal_ignore_hash(d["spec"]["template"], rs["spec"].get("template")):
            name = d["metadata"]["name"]
            message = f'The rollback revision contains the same template as current deployment "{name}"'
            await self.event(d, "Warning", ROLLBACK_TEMPLATE_UNCHANGED, message)
            await self.update_and_clear_rollback_to(d)
            return
        d["spec"]["template"] = without_hash_label(copy.deepcopy(rs["spec"]["template"]))
        # The Deployment takes the old ReplicaSet's annotations (its change-cause), or the ReplicaSet
        # would be given the Deployment's current ones when it becomes the new one again.
        set_deployment_annotations_to(d, rs)
        if await self.update_and_clear_rollback_to(d):
            await self.event(
                d,
                "Normal",
                ROLLBACK_DONE,
                f'Rolled back deployment "{d["metadata"]["name"]}" to revision {target}',
            )

    async def update_and_clear_rollback_to(self, d: Object) -> bool:
        """Write the Deployment without the rollback annotation; whether it was written."""
        (d["metadata"].get("annotations") or {}).pop(ROLLBACK_TO_ANNOTATION, None)
        try:
            await self.client.update(DEPLOYMENTS, d)
        except ApiError as exc:
            if settled_by_next_sync(self.queue, "deployment", key_of(d), exc):
                return False
            raise
        return True
