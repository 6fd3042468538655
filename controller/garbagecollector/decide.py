"""What the garbage collector does with one object once it knows the state of each of its owners
(upstream's attemptToDeleteItem), and the patches it sends. Pure.

- An object with at least one solid owner is kept; the references to owners that are gone, or
  that are deleting in the foreground, are removed, so neither keeps a reference that can no
  longer protect it nor blocks a foreground deletion it is not part of.
- An object none of whose owners is solid is deleted. If an owner is deleting in the foreground
  and the object has dependents of its own, it is deleted in the foreground too, so the cascade
  is recursive; otherwise with the policy its own finalizers ask for, or Background.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from controller.garbagecollector.graph import FOREGROUND_FINALIZER, ORPHAN_FINALIZER, OwnerRef
from kubelite.objects import Object

BACKGROUND, FOREGROUND, ORPHAN = "Background", "Foreground", "Orphan"


@dataclass(frozen=True)
class Owners:
    """An object's owners, sorted by what the API said of each."""

    solid: tuple[OwnerRef, ...] = ()
    dangling: tuple[OwnerRef, ...] = ()
    waiting: tuple[OwnerRef, ...] = ()  # being deleted in the foreground


class Verdict(enum.Enum):
    KEEP = "keep"
    REMOVE_REFS = "remove owner references"
    DELETE = "delete"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    policy: str | None = None  # DELETE: the propagation policy
    remove_uids: tuple[str, ...] = ()  # REMOVE_REFS: the owners to drop
    unblock: bool = False  # DELETE: make its references non-blocking first (a cycle is possible)


def _names(refs: Iterable[OwnerRef]) -> str:
    return ", ".join(str(ref) for ref in refs)


def _owners_are(refs: tuple[OwnerRef, ...], state: str) -> str:
    """`its owner X is gone`, `its owners X, Y are gone`."""
    if len(refs) == 1:
        return f"its owner {refs[0]} is {state}"
    return f"its owners {_names(refs)} are {state}"


def _why(owners: Owners) -> str:
    parts = []
    if owners.dangling:
        parts.append(_owners_are(owners.dangling, "gone"))
    if owners.waiting:
        parts.append(_owners_are(owners.waiting, "deleting in the foreground"))
    return " and ".join(parts)


def decide(
    owners: Owners, finalizers: Iterable[str], *, has_dependents: bool, dependent_deleting_dependents: bool
) -> Decision:
    """The verdict on an object with at least one owner. `dependent_deleting_dependents`: one of
    its own dependents is deleting in the foreground, which may wait for this very object (a
    cycle), so its references must stop blocking before it is deleted in the foreground."""
    if owners.solid:
        stale = owners.dangling + owners.waiting
        if not stale:
            return Decision(Verdict.KEEP, f"owned by {_names(owners.solid)}")
        return Decision(
            Verdict.REMOVE_REFS,
            f"{_why(owners)}, while {_names(owners.solid)} still owns it",
            remove_uids=tuple(ref.uid for ref in stale),
        )
    if owners.waiting and has_dependents:
        return Decision(
            Verdict.DELETE,
            f"{_owners_are(owners.waiting, 'deleting in the foreground')} and it has dependents",
            policy=FOREGROUND,
            unblock=dependent_deleting_dependents,
        )
    present = set(finalizers)
    policy = BACKGROUND
    if ORPHAN_FINALIZER in present:
        policy = ORPHAN
    elif FOREGROUND_FINALIZER in present:
        policy = FOREGROUND
    return Decision(Verdict.DELETE, _why(owners), policy=policy)


def unblock_patch(uid: str, refs: Iterable[OwnerRef]) -> Object:
    """A strategic merge patch that makes every blocking ownerReference non-blocking."""
    changed = [{"uid": ref.uid, "blockOwnerDeletion": False} for ref in refs if ref.block_owner_deletion]
    return {"metadata": {"ownerReferences": changed, "uid": uid}}


def without_finalizer_patch(obj: Object, finalizer: str) -> Object:
    """A merge patch that removes one finalizer, pinned to the resourceVersion it was computed from
    (another finalizer added meanwhile must not be lost)."""
    meta = obj.get("metadata", {})
    kept = [f for f in meta.get("finalizers") or [] if f != finalizer]
    return {"metadata": {"resourceVersion": meta.get("resourceVersion"), "finalizers": kept}}
