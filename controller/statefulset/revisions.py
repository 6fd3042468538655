"""A StatefulSet's ControllerRevisions (getStatefulSetRevisions and truncateHistory in
stateful_set_control.go), on top of controller/framework/history.py.

The update revision is the set's current template: the newest revision if it already holds that
template, an older equal one renumbered as the newest (a rollback), or a new revision. The current
revision is the one status.currentRevision names, or the update revision when there is none yet.
Revisions that neither those two nor any pod use are deleted beyond spec.revisionHistoryLimit,
oldest first. `decide_update_revision` and `revisions_to_delete` are the pure decisions.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.framework.history import (
    History,
    equal_revision,
    new_revision,
    next_revision_number,
    revision_data,
    sort_revisions,
    template_of,
)
from controller.statefulset.plan import Revision
from kubelite.objects import Object


@dataclass
class UpdateDecision:
    revision: Object  # the revision to use (create it when `create`; renumber it when `renumber`)
    create: bool = False
    renumber: int = 0


def statefulset_revision(sts: Object, number: int, collision_count: int) -> Object:
    """newRevision: the set's template as a revision, carrying the set's annotations too."""
    revision = new_revision(sts, revision_data(sts), number, collision_count)
    annotations = dict(sts.get("metadata", {}).get("annotations") or {})
    if annotations:
        revision["metadata"]["annotations"] = annotations
    return revision


def decide_update_revision(sts: Object, revisions: list[Object], collision_count: int) -> UpdateDecision:
    revisions = sort_revisions(revisions)
    wanted = statefulset_revision(sts, next_revision_number(revisions), collision_count)
    equal = equal_revision(revisions, wanted["data"])
    if equal and revisions[-1]["metadata"]["name"] == equal[-1]["metadata"]["name"]:
        return UpdateDecision(revisions[-1])
    if equal:
        return UpdateDecision(equal[-1], renumber=int(wanted["revision"]))
    return UpdateDecision(wanted, create=True)


def current_revision(sts: Object, revisions: list[Object], update: Object) -> Object:
    name = sts.get("status", {}).get("currentRevision")
    return next((r for r in revisions if r["metadata"]["name"] == name), update)


def revisions_to_delete(revisions: list[Object], live: set[str], limit: int) -> list[Object]:
    """truncateHistory: the oldest revisions that are not live, beyond the limit of non-live ones."""
    history = [r for r in sort_revisions(revisions) if r["metadata"]["name"] not in live]
    return history[: max(len(history) - max(limit, 0), 0)]


def as_revision(revision: Object) -> Revision:
    return Revision(revision["metadata"]["name"], template_of(revision.get("data") or {}))


async def resolve_revisions(
    history: History, sts: Object, revisions: list[Object]
) -> tuple[Object, Object, int]:
    """(current, update, collisionCount): the IO around decide_update_revision."""
    collision_count = int(sts.get("status", {}).get("collisionCount") or 0)
    decision = decide_update_revision(sts, revisions, collision_count)
    update = decision.revision
    if decision.create:
        update, collision_count = await history.create(sts, update, collision_count)
    elif decision.renumber:
        update = await history.update_revision(update, decision.renumber)
    return current_revision(sts, revisions, update), update, collision_count
