"""Claiming objects through their controller ownerReference (client-go's ControllerRefManager).

An object belongs to the controller named by its ownerReference with `controller: true`. A
controller adopts the orphans its selector matches and releases the objects it owns that its
selector no longer matches; it never touches another controller's objects, and neither adopts
nor releases while it, or the object, is being deleted. `plan_claims` decides (pure);
`RefManager` does the patches, with the object's uid as a precondition, as Kubernetes does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kubelite.client import STRATEGIC_MERGE_PATCH, ApiClient, ApiError
from kubelite.objects import Object, controller_ref, is_terminating, owner_reference
from kubelite.resources import Resource

log = logging.getLogger(__name__)


@dataclass
class Claims:
    owned: list[Object] = field(default_factory=list)  # ours, and still matching
    adopt: list[Object] = field(default_factory=list)  # orphans that match
    release: list[Object] = field(default_factory=list)  # ours, no longer matching


def plan_claims(owner: Object, matches: Callable[[Object], bool], candidates: list[Object]) -> Claims:
    """Which candidates the owner keeps, adopts and releases. Pure."""
    uid = owner.get("metadata", {}).get("uid")
    owner_deleting = is_terminating(owner)
    claims = Claims()
    for obj in candidates:
        ref = controller_ref(obj)
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if matches(obj):
                claims.owned.append(obj)
            elif not is_terminating(obj) and not owner_deleting:
                claims.release.append(obj)
            continue
        if matches(obj) and not is_terminating(obj) and not owner_deleting:
            claims.adopt.append(obj)
    return claims


def remove_owner_refs_patch(uid: str, owner_uids: Iterable[str]) -> Object:
    """A strategic merge patch that drops ownerReferences by uid; the object's uid in the patch is
    a precondition (the apiserver refuses to change it), so a namesake is never touched."""
    refs = [{"$patch": "delete", "uid": owner} for owner in owner_uids]
    return {"metadata": {"ownerReferences": refs, "uid": uid}}


class RefManager:
    """Adopts and releases objects of one resource for one kind of owner. With `owner_resource`,
    the owner is re-read before the first adoption, so a controller never adopts on behalf of an
    owner that was deleted meanwhile (its cache may be behind)."""

    def __init__(self, client: ApiClient, resource: Resource, owner_resource: Resource | None = None):
        self.client = client
        self.resource = resource
        self.owner_resource = owner_resource

    async def claim(
        self, owner: Object, matches: Callable[[Object], bool], candidates: list[Object]
    ) -> list[Object]:
        """Adopt and release as planned; the objects the owner controls afterwards."""
        claims = plan_claims(owner, matches, candidates)
        owned = list(claims.owned)
        if claims.adopt and self.owner_resource is not None:
            current = await self._fresh(self.owner_resource, owner)
            if current is None or current.get("metadata", {}).get("uid") != owner["metadata"]["uid"]:
                return owned
            if is_terminating(current):
                claims.adopt = []
        for obj in claims.adopt:
            m = obj["metadata"]
            adopted = await self._patch_refs(
                obj, {"metadata": {"ownerReferences": [owner_reference(owner)], "uid": m.get("uid")}}
            )
            if adopted is not None:
                owned.append(adopted)
        for obj in claims.release:
            await self._patch_refs(
                obj, remove_owner_refs_patch(obj["metadata"].get("uid"), [owner["metadata"]["uid"]])
            )
        return owned

    async def _fresh(self, resource: Resource, owner: Object) -> Object | None:
        """The owner as the apiserver has it now, None if it is gone."""
        meta = owner["metadata"]
        try:
            fresh: Object = await self.client.get(resource, meta["name"], meta.get("namespace"))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        return fresh

    async def _patch_refs(self, obj: Object, patch: Object) -> Object | None:
        m = obj["metadata"]
        try:
            return await self.client.patch(
                self.resource, m["name"], patch, m.get("namespace"), content_type=STRATEGIC_MERGE_PATCH
            )
        except ApiError as exc:
            if exc.not_found or exc.code == 422 or exc.conflict:
                log.info(
                    "%s %s/%s changed meanwhile: %s", self.resource.kind, m.get("namespace"), m["name"], exc
                )
                return None
            raise
