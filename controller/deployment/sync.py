"""The parts of a Deployment sync every path shares (Kubernetes' pkg/controller/deployment/sync.go):
finding or creating the new ReplicaSet and keeping revisions in step, scaling a ReplicaSet with its
ScalingReplicaSet event, proportional scaling for a scaling event or a paused Deployment, deleting
old ReplicaSets beyond revisionHistoryLimit, and writing the Deployment's status.

A sync works on a copy of the cached Deployment: the new revision and the conditions it decides on
change that copy, and `persist_status` writes them once at the end (Kubernetes writes status at
several points of one sync, from a copy whose resourceVersion it does not refresh, so the last write
of such a sync often fails with a conflict and is retried). The revision annotation is written with
a patch of its own because kubelite's status endpoint, unlike Kubernetes' for Deployments, keeps
metadata as stored. Writes go to ReplicaSets and to the Deployment's status and revision annotation;
never to its spec, except rollback.py's.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any

from controller.deployment.hashing import POD_TEMPLATE_HASH_LABEL, compute_hash, equal_ignore_hash
from controller.deployment.proportion import proportional_sizes
from controller.deployment.status import (
    FAILED_RS_CREATE,
    FOUND_NEW_REPLICA_SET,
    NEW_REPLICA_SET_CREATED,
    PROGRESSING,
    calculate_status,
    get_condition,
    new_condition,
    set_condition,
)
from controller.deployment.util import (
    REVISION_ANNOTATION,
    all_but,
    by_revision,
    filter_active,
    find_active_or_latest,
    find_new_replica_set,
    has_progress_deadline,
    has_revision_history_limit,
    is_rolling_update,
    is_saturated,
    max_revision,
    max_surge,
    new_rs_new_replicas,
    replace_by_uid,
    replicas_annotations_need_update,
    set_deployment_revision,
    set_new_replica_set_annotations,
    set_replicas_annotations,
    spec_replicas,
    status_count,
)
from controller.framework.context import settled_by_next_sync
from kubelite.client import MERGE_PATCH, ApiError
from kubelite.events import EventRecorder
from kubelite.informer import Informer
from kubelite.objects import Object, controller_ref, is_terminating, key_of, owner_reference
from kubelite.resources import DEPLOYMENTS, REPLICASETS
from kubelite.workqueue import WorkQueue

log = logging.getLogger(__name__)

ReplicaSets = list[Object]


def cleanable_replica_sets(old_rss: Sequence[Object], d: Object) -> list[Object]:
    """The old ReplicaSets beyond revisionHistoryLimit to delete, lowest revision first: only those
    scaled to zero, with no pods left, whose ReplicaSet controller has seen that."""
    if not has_revision_history_limit(d):
        return []
    alive = [rs for rs in old_rss if not is_terminating(rs)]
    excess = len(alive) - int(d["spec"]["revisionHistoryLimit"])
    if excess <= 0:
        return []
    out = []
    for rs in by_revision(alive)[:excess]:
        generation = int(rs["metadata"].get("generation") or 0)
        if (
            status_count(rs, "replicas") != 0
            or spec_replicas(rs) != 0
            or generation > status_count(rs, "observedGeneration")
        ):
            continue
        out.append(rs)
    return out


def namespace_terminating(exc: ApiError) -> bool:
    causes = (exc.status.get("details") or {}).get("causes") or []
    if any(c.get("reason") == "NamespaceTerminating" for c in causes):
        return True
    return exc.code == 403 and "is being terminated" in str(exc.status.get("message", ""))


class SyncMixin:
    """DeploymentController's shared steps; the controller provides these attributes."""

    client: Any  # kubelite.client.ApiClient, or the fake API's client in tests
    recorder: EventRecorder
    clock: Callable[[], dt.datetime]
    queue: WorkQueue
    deployments: Informer
    replicasets: Informer

    async def event(self, d: Object, type_: str, reason: str, message: str) -> None:
        await self.recorder.record(d, type_, reason, message)

    # ------------------------------------------------------------------ the new ReplicaSet and revisions

    async def get_all_replica_sets_and_sync_revision(
        self, d: Object, rs_list: ReplicaSets, create: bool
    ) -> tuple[Object | None, ReplicaSets]:
        """(the new ReplicaSet, created if asked and missing; every old one), with the new one's
        revision made the highest and copied to the Deployment."""
        existing = find_new_replica_set(d, rs_list)
        old_rss = all_but(rs_list, existing)
        if existing is None:
            return (await self.create_new_replica_set(d, old_rss) if create else None), old_rss
        return await self.sync_new_replica_set(d, existing, old_rss), old_rss

    async def sync_new_replica_set(self, d: Object, existing: Object, old_rss: ReplicaSets) -> Object:
        """The existing new ReplicaSet with its revision annotations and minReadySeconds brought up
        to date, its revision copied to the Deployment."""
        new_revision = str(max_revision(old_rss) + 1)
        rs = copy.deepcopy(existing)
        changed = set_new_replica_set_annotations(d, rs, new_revision, exists=True)
        min_ready = int(d["spec"].get("minReadySeconds") or 0)
        if changed or int(rs["spec"].get("minReadySeconds") or 0) != min_ready:
            _set_min_ready(rs, min_ready)
            existing = await self.client.update(REPLICASETS, rs)
        rs_revision = (existing["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION)
        if rs_revision is not None:
            set_deployment_revision(d, rs_revision)
        status = d.setdefault("status", {})
        if has_progress_deadline(d) and get_condition(status, PROGRESSING) is None:
            message = f'Found new replica set "{existing["metadata"]["name"]}"'
            set_condition(
                status, new_condition(PROGRESSING, "True", FOUND_NEW_REPLICA_SET, message, self.clock())
            )
        return existing

    def new_replica_set(self, d: Object, old_rss: ReplicaSets, new_revision: str) -> Object:
        """The ReplicaSet for the Deployment's template: named and labelled by its hash, owned by the
        Deployment, as large as the strategy allows now."""
        template = copy.deepcopy(d["spec"]["template"])
        pod_hash = compute_hash(template, (d.get("status") or {}).get("collisionCount"))
        labels = {
            **((template.setdefault("metadata", {})).get("labels") or {}),
            POD_TEMPLATE_HASH_LABEL: pod_hash,
        }
        template["metadata"]["labels"] = labels
        selector = copy.deepcopy(d["spec"]["selector"])
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), POD_TEMPLATE_HASH_LABEL: pod_hash}
        meta = d["metadata"]
        rs: Object = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{pod_hash}",
                "namespace": meta.get("namespace"),
                "labels": dict(labels),
                "ownerReferences": [{**owner_reference(d), "apiVersion": "apps/v1", "kind": "Deployment"}],
            },
            "spec": {"replicas": 0, "selector": selector, "template": template},
        }
        _set_min_ready(rs, int(d["spec"].get("minReadySeconds") or 0))
        rs["spec"]["replicas"] = new_rs_new_replicas(d, [*old_rss, rs], rs)
        set_new_replica_set_annotations(d, rs, new_revision, exists=False)
        return rs

    async def create_new_replica_set(self, d: Object, old_rss: ReplicaSets) -> Object:
        """Create the ReplicaSet for the Deployment's template, one revision above the old ones."""
        new_revision = str(max_revision(old_rss) + 1)
        rs = self.new_replica_set(d, old_rss, new_revision)
        name, namespace = rs["metadata"]["name"], rs["metadata"]["namespace"]
        status = d.setdefault("status", {})
        already_exists = False
        try:
            created = await self.client.create(REPLICASETS, rs)
        except ApiError as exc:
            if namespace_terminating(exc):
                raise
            if not exc.already_exists:
                message = f'Failed to create new replica set "{name}": {exc.status.get("message", exc)}'
                if has_progress_deadline(d):
                    set_condition(
                        status, new_condition(PROGRESSING, "False", FAILED_RS_CREATE, message, self.clock())
                    )
                    await self.persist_status(d, status)
                await self.event(d, "Warning", FAILED_RS_CREATE, message)
                raise
            found = self.replicasets.get(f"{namespace}/{name}") or await self.client.get(
                REPLICASETS, name, namespace
            )
            ref = controller_ref(found)
            if not (
                ref is not None
                and ref.get("uid") == d["metadata"].get("uid")
                and equal_ignore_hash(d["spec"]["template"], found["spec"].get("template"))
            ):
                # Another template took this name: a new hash needs another collision count.
                before = status.get("collisionCount")
                status["collisionCount"] = (before or 0) + 1
                after = status["collisionCount"]
                log.info(
                    "deployment %s: hash collision on %s, collisionCount %s -> %s",
                    key_of(d),
                    name,
                    before,
                    after,
                )
                await self.persist_status(d, status)
                raise
            created, already_exists = found, True
        replicas = spec_replicas(rs)
        if not already_exists and replicas > 0:
            await self.event(
                d, "Normal", "ScalingReplicaSet", f"Scaled up replica set {name} from 0 to {replicas}"
            )
        set_deployment_revision(d, new_revision)
        if not already_exists and has_progress_deadline(d):
            message = f'Created new replica set "{name}"'
            set_condition(
                status, new_condition(PROGRESSING, "True", NEW_REPLICA_SET_CREATED, message, self.clock())
            )
        return created

    # ------------------------------------------------------------------ scaling

    async def scale_replica_set(self, rs: Object, new_scale: int, d: Object) -> tuple[bool, Object]:
        """Set rs's replicas (and desired/max-replicas) if they differ: (whether it was resized, rs)."""
        replicas = spec_replicas(d)
        maximum = replicas + max_surge(d)
        old_scale = spec_replicas(rs)
        size_changes = old_scale != new_scale
        if not size_changes and not replicas_annotations_need_update(rs, replicas, maximum):
            return False, rs
        rs = copy.deepcopy(rs)
        rs["spec"]["replicas"] = new_scale
        set_replicas_annotations(rs, replicas, maximum)
        rs = await self.client.update(REPLICASETS, rs)
        if size_changes:
            direction = "up" if old_scale < new_scale else "down"
            message = (
                f"Scaled {direction} replica set {rs['metadata']['name']} from {old_scale} to {new_scale}"
            )
            await self.event(d, "Normal", "ScalingReplicaSet", message)
        return size_changes, rs

    async def scale_replica_set_and_record_event(
        self, rs: Object, new_scale: int, d: Object
    ) -> tuple[bool, Object]:
        if spec_replicas(rs) == new_scale:
            return False, rs
        return await self.scale_replica_set(rs, new_scale, d)

    async def scale(
        self, d: Object, new_rs: Object | None, old_rss: ReplicaSets
    ) -> tuple[Object | None, ReplicaSets]:
        """Scale for a changed spec.replicas without rolling anything out: the one active ReplicaSet
        takes it all; with several, a saturated new one makes the old ones go, otherwise a rolling
        Deployment shares the change proportionally. Returns the ReplicaSets as they are now.

        Unlike Kubernetes, the one active ReplicaSet has its desired-replicas brought up to date even
        when its size is right already: a stale one would make every later sync a scaling event, and
        the Deployment would never roll out again."""
        target = find_active_or_latest(new_rs, old_rss)
        if target is not None:
            _, updated = await self.scale_replica_set(target, spec_replicas(d), d)
            return _swap(new_rs, old_rss, updated)
        if is_saturated(d, new_rs):
            for old in filter_active(old_rss):
                _, updated = await self.scale_replica_set_and_record_event(old, 0, d)
                new_rs, old_rss = _swap(new_rs, old_rss, updated)
            return new_rs, old_rss
        if is_rolling_update(d):
            for rs, size in proportional_sizes(d, [*old_rss, new_rs]):
                _, updated = await self.scale_replica_set(rs, size, d)
                new_rs, old_rss = _swap(new_rs, old_rss, updated)
        return new_rs, old_rss

    # ------------------------------------------------------------------ history and status

    async def cleanup_deployment(self, old_rss: ReplicaSets, d: Object) -> None:
        """Delete the old ReplicaSets beyond revisionHistoryLimit."""
        for rs in cleanable_replica_sets(old_rss, d):
            meta = rs["metadata"]
            log.info("deployment %s: deleting old replica set %s", key_of(d), meta["name"])
            try:
                uid = {"uid": meta.get("uid", "")}
                await self.client.delete(REPLICASETS, meta["name"], meta.get("namespace"), preconditions=uid)
            except ApiError as exc:
                if not exc.not_found and not exc.conflict:
                    raise

    async def sync_deployment_status(
        self, all_rss: Sequence[Object | None], new_rs: Object | None, d: Object
    ) -> None:
        await self.persist_status(d, calculate_status(all_rss, new_rs, d, self.clock()))

    async def sync_paused_or_scaled(self, d: Object, new_rs: Object | None, old_rss: ReplicaSets) -> None:
        """A paused Deployment or a scaling event: scale, never roll out (Kubernetes' sync)."""
        new_rs, old_rss = await self.scale(d, new_rs, old_rss)
        if d["spec"].get("paused"):
            await self.cleanup_deployment(old_rss, d)
        await self.sync_deployment_status([*old_rss, new_rs], new_rs, d)

    async def persist_status(self, d: Object, status: Object) -> bool:
        """Write the Deployment's revision annotation and status where they differ from what the API
        holds (as far as the cache knows); whether anything was written. A status written from a
        stale copy is refused (409), and the sync is then simply queued again."""
        meta = d["metadata"]
        current = self.deployments.get(key_of(d)) or d
        d["status"] = status
        wanted = (meta.get("annotations") or {}).get(REVISION_ANNOTATION)
        stored = (current["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION)
        try:
            written = False
            if wanted is not None and wanted != stored:
                rv = meta.get("resourceVersion")
                patch = {"metadata": {"resourceVersion": rv, "annotations": {REVISION_ANNOTATION: wanted}}}
                patched = await self.client.patch(
                    DEPLOYMENTS, meta["name"], patch, meta.get("namespace"), content_type=MERGE_PATCH
                )
                meta["resourceVersion"] = patched["metadata"]["resourceVersion"]
                written = True
            if status != (current.get("status") or {}):
                stored_obj = await self.client.update(DEPLOYMENTS, d, subresource="status")
                meta["resourceVersion"] = stored_obj["metadata"]["resourceVersion"]
                written = True
            return written
        except ApiError as exc:
            if settled_by_next_sync(self.queue, "deployment", key_of(d), exc):
                return False
            raise


def _set_min_ready(rs: Object, seconds: int) -> None:
    if seconds:
        rs["spec"]["minReadySeconds"] = seconds
    else:
        rs["spec"].pop("minReadySeconds", None)


def _swap(new_rs: Object | None, old_rss: ReplicaSets, updated: Object) -> tuple[Object | None, ReplicaSets]:
    """(new_rs, old_rss) with updated in place of the ReplicaSet it is a newer copy of."""
    if new_rs is not None and new_rs["metadata"].get("uid") == updated["metadata"].get("uid"):
        return updated, old_rss
    return new_rs, replace_by_uid(old_rss, updated)
