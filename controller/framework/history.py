"""Controller history (Kubernetes' pkg/controller/history): the ControllerRevisions a DaemonSet or a
StatefulSet keeps, one per distinct pod template it has had.

A revision's `data` is the strategic merge patch that puts its template back,
`{"spec":{"template":{..., "$patch":"replace"}}}`: exactly what `kubectl rollout history` prints and
`kubectl rollout undo` applies. Its name is `<owner>-<hash>`, the hash taken over the data and the
owner's `status.collisionCount`, so when a name is taken by a revision with other data the owner
bumps its collision count and tries the next name (HashControllerRevision: fnv32a written with
rand.SafeEncodeString's alphabet; the letters differ from Kubernetes', the shape and stability do not).

The pure functions decide; `History` does the writes and reads the owner's revisions from a shared
informer on controllerrevisions, indexed by the uid of each revision's controller.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from typing import Any

from controller.deployment.hashing import fnv32a, safe_encode, semantic
from controller.framework.context import ControllerContext
from controller.framework.controllerref import RefManager
from controller.framework.owners import claim_candidates
from kubelite.client import MERGE_PATCH, ApiError
from kubelite.informer import CONTROLLER_INDEX
from kubelite.objects import Object, owner_reference, parse_rfc3339
from kubelite.resources import CONTROLLERREVISIONS, Resource

log = logging.getLogger(__name__)

# The label a generic revision carries with its hash (history.ControllerRevisionHashLabel).
CONTROLLER_REVISION_HASH_LABEL = "controller.kubernetes.io/hash"
# The label DaemonSet and StatefulSet pods carry, naming their revision (apps.ControllerRevisionHashLabelKey).
POD_REVISION_LABEL = "controller-revision-hash"
MAX_PREFIX = 223  # a revision name is at most 253 characters: the owner's name is cut here


def revision_data(owner: Object) -> Object:
    """The owner's pod template as the patch that restores it (daemonset/statefulset getPatch)."""
    template = copy.deepcopy(owner.get("spec", {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def template_of(data: Object) -> Object:
    """The pod template a revision's data restores."""
    template = copy.deepcopy((data.get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return dict(template)


def canonical(data: Any) -> str:
    """The form in which two revisions' data are compared and hashed: sorted keys, no empty values
    (Go decodes null, {} and [] alike, so the API may hand back either)."""
    return json.dumps(semantic(data), sort_keys=True, separators=(",", ":"))


def hash_of(data: Any, collision_count: int | None = None) -> str:
    """HashControllerRevision: the data, then the collision count (when set) in decimal."""
    h = fnv32a(canonical(data).encode())
    if collision_count is not None:
        h = fnv32a(str(collision_count).encode(), h)
    return safe_encode(str(h))


def revision_name(owner_name: str, hash_: str) -> str:
    return f"{owner_name[:MAX_PREFIX]}-{hash_}"


def new_revision(
    owner: Object,
    data: Object,
    revision: int,
    collision_count: int | None = None,
    hash_label: str = CONTROLLER_REVISION_HASH_LABEL,
) -> Object:
    """A ControllerRevision for the owner (NewControllerRevision): the template's labels plus the hash
    label, the owner as controller, named `<owner>-<hash>`. DaemonSets pass `controller-revision-hash`
    as the hash label, as their controller does, and also copy the owner's annotations."""
    meta = owner.get("metadata", {})
    hash_ = hash_of(data, collision_count)
    labels = dict((owner.get("spec", {}).get("template") or {}).get("metadata", {}).get("labels") or {})
    labels[hash_label] = hash_
    ref = owner_reference(owner)
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": revision_name(meta.get("name", ""), hash_),
            "namespace": meta.get("namespace"),
            "labels": labels,
            "ownerReferences": [ref],
        },
        "data": copy.deepcopy(data),
        "revision": int(revision),
    }


def revision_number(revision: Object) -> int:
    return int(revision.get("revision") or 0)


def equal_data(a: Any, b: Any) -> bool:
    return canonical(a) == canonical(b)


def equal_revision(revisions: list[Object], data: Object) -> list[Object]:
    """FindEqualRevisions: the revisions whose data is the given data, in revision order."""
    return sort_revisions([r for r in revisions if equal_data(r.get("data"), data)])


def sort_revisions(revisions: list[Object]) -> list[Object]:
    """Oldest first: by revision number, then creation time, then name (history.SortControllerRevisions)."""

    def key(r: Object) -> tuple[int, float, str]:
        created = r.get("metadata", {}).get("creationTimestamp")
        return (
            revision_number(r),
            parse_rfc3339(created).timestamp() if created else 0.0,
            r["metadata"]["name"],
        )

    return sorted(revisions, key=key)


def next_revision_number(revisions: list[Object]) -> int:
    """One above the highest revision number, 1 when there is none."""
    return max((revision_number(r) for r in revisions), default=0) + 1


def revisions_to_truncate(revisions: list[Object], live: set[str], limit: int) -> list[Object]:
    """The oldest revisions beyond the history limit, never one that live pods still run. `live`
    holds the pods' `controller-revision-hash` labels: a revision's name (StatefulSet pods) or its
    hash (DaemonSet pods)."""

    def in_use(r: Object) -> bool:
        labels = r.get("metadata", {}).get("labels") or {}
        names = {
            r["metadata"]["name"],
            labels.get(POD_REVISION_LABEL),
            labels.get(CONTROLLER_REVISION_HASH_LABEL),
        }
        return bool(names & live)

    candidates = [r for r in sort_revisions(revisions) if not in_use(r)]
    excess = len(revisions) - max(limit, 0)
    return candidates[: max(excess, 0)]


class History:
    """The controller revisions of one owner kind: read from a shared informer, written through the API."""

    def __init__(self, ctx: ControllerContext, owner_resource: Resource):
        self.client = ctx.client
        self.informer = ctx.informer(CONTROLLERREVISIONS)
        self.refs = RefManager(ctx.client, CONTROLLERREVISIONS, owner_resource=owner_resource)

    def owned(self, owner: Object) -> list[Object]:
        """The revisions the owner controls, as the cache has them, oldest first."""
        uid = owner.get("metadata", {}).get("uid", "")
        return sort_revisions(self.informer.by_index(CONTROLLER_INDEX, uid))

    async def claim(self, owner: Object, matches: Callable[[Object], bool]) -> list[Object]:
        """The owner's revisions after adopting orphans its selector matches and releasing its own
        that no longer match (ClaimControllerRevisions), oldest first. `matches` takes a revision's
        labels (a LabelSelector's `matches` will do)."""
        candidates = claim_candidates(self.informer, owner)
        claimed = await self.refs.claim(
            owner, lambda r: matches(r["metadata"].get("labels") or {}), candidates
        )
        return sort_revisions(claimed)

    async def create(
        self,
        owner: Object,
        revision: Object,
        collision_count: int,
        hash_label: str = CONTROLLER_REVISION_HASH_LABEL,
    ) -> tuple[Object, int]:
        """Create a revision (CreateControllerRevision). A name taken by a revision with the same data
        is that revision; one taken by other data bumps the collision count and names again. Returns
        the revision and the collision count the owner must now record in its status."""
        data = revision.get("data") or {}
        count = collision_count
        while True:
            hash_ = hash_of(data, count)
            body = copy.deepcopy(revision)
            body["metadata"]["name"] = revision_name(owner["metadata"]["name"], hash_)
            body["metadata"].setdefault("labels", {})[hash_label] = hash_
            try:
                created: Object = await self.client.create(CONTROLLERREVISIONS, body)
                return created, count
            except ApiError as exc:
                if not exc.already_exists:
                    raise
            existing: Object = await self.client.get(
                CONTROLLERREVISIONS, body["metadata"]["name"], owner["metadata"].get("namespace")
            )
            if equal_data(existing.get("data"), data):
                return existing, count
            log.info(
                "controller revision %s exists with other data; collision count %d",
                body["metadata"]["name"],
                count + 1,
            )
            count += 1

    async def update_revision(self, revision: Object, number: int) -> Object:
        """Give a revision a new number (a rollback makes an old template the newest again)."""
        if revision_number(revision) == number:
            return revision
        m = revision["metadata"]
        updated: Object = await self.client.patch(
            CONTROLLERREVISIONS, m["name"], {"revision": number}, m.get("namespace"), content_type=MERGE_PATCH
        )
        return updated

    async def delete(self, revision: Object) -> None:
        m = revision["metadata"]
        try:
            await self.client.delete(
                CONTROLLERREVISIONS, m["name"], m.get("namespace"), preconditions={"uid": m.get("uid", "")}
            )
        except ApiError as exc:
            if not (exc.not_found or exc.conflict):
                raise
