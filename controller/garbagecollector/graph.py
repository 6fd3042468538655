"""The garbage collector's dependency graph (upstream's GraphBuilder and its uidToNode): each object
the collector's informers hold, filed by uid with its ownerReferences, and the reverse index from an
owner's uid to its dependents, kept whether or not the owner is still there.

`observe` and `forget` take one informer event and return the uids the event may concern: the
objects the collector must examine again. The graph also remembers owners known to be gone
(`AbsentOwners`), so a hundred dependents of one deleted owner cost no hundred GETs.
Pure: memory only, no IO, no clock.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass

from kubelite.objects import Object, key_of
from kubelite.resources import Resource

FOREGROUND_FINALIZER = "foregroundDeletion"
ORPHAN_FINALIZER = "orphan"


@dataclass(frozen=True)
class Identity:
    """Where an object is and which one it is; `namespace` is "" for a cluster-scoped object."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"


@dataclass(frozen=True)
class OwnerRef:
    """One ownerReference, as the collector reads it."""

    api_version: str
    kind: str
    name: str
    uid: str
    block_owner_deletion: bool = False

    def __str__(self) -> str:
        return f"{self.kind} {self.name} ({self.uid})"


def owner_refs(obj: Object) -> tuple[OwnerRef, ...]:
    """The object's ownerReferences (those without a uid name nothing the collector can match)."""
    out = []
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("uid"):
            out.append(
                OwnerRef(
                    str(ref.get("apiVersion", "")),
                    str(ref.get("kind", "")),
                    str(ref.get("name", "")),
                    str(ref["uid"]),
                    bool(ref.get("blockOwnerDeletion")),
                )
            )
    return tuple(out)


def is_deleting_dependents(obj: Object) -> bool:
    """Deleted in the foreground: kept until the collector has deleted its blocking dependents."""
    meta = obj.get("metadata", {})
    return bool(meta.get("deletionTimestamp")) and FOREGROUND_FINALIZER in (meta.get("finalizers") or [])


@dataclass(frozen=True)
class Node:
    resource: Resource
    identity: Identity
    key: str  # the informer key, namespace/name
    owners: tuple[OwnerRef, ...]
    deleting: bool
    finalizers: frozenset[str]

    @property
    def uid(self) -> str:
        return self.identity.uid

    @property
    def deleting_dependents(self) -> bool:
        return self.deleting and FOREGROUND_FINALIZER in self.finalizers

    @property
    def orphaning(self) -> bool:
        return self.deleting and ORPHAN_FINALIZER in self.finalizers

    def owner_ref(self, uid: str) -> OwnerRef | None:
        return next((ref for ref in self.owners if ref.uid == uid), None)


def node_of(resource: Resource, obj: Object) -> Node:
    meta = obj.get("metadata", {})
    identity = Identity(
        resource.api_version,
        resource.kind,
        (meta.get("namespace") or "") if resource.namespaced else "",
        meta.get("name", ""),
        meta.get("uid", ""),
    )
    return Node(
        resource,
        identity,
        key_of(obj),
        owner_refs(obj),
        bool(meta.get("deletionTimestamp")),
        frozenset(meta.get("finalizers") or ()),
    )


class OwnerState(enum.Enum):
    SOLID = "solid"  # exists, and is not waiting for its dependents to go
    WAITING = "waiting"  # exists, being deleted in the foreground
    DANGLING = "dangling"  # verified gone (or replaced by another object of that name)
    UNKNOWN = "unknown"  # the cache cannot vouch for it: ask the API


class AbsentOwners:
    """Owners verified gone, by identity, least recently used forgotten first (upstream's
    absentOwnerCache). A uid never comes back, so an entry never goes stale."""

    def __init__(self, capacity: int = 500):
        self.capacity = capacity
        self._entries: OrderedDict[Identity, None] = OrderedDict()

    def add(self, identity: Identity) -> None:
        self._entries[identity] = None
        self._entries.move_to_end(identity)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def __contains__(self, identity: Identity) -> bool:
        if identity in self._entries:
            self._entries.move_to_end(identity)
            return True
        return False

    def __len__(self) -> int:
        return len(self._entries)


class DependencyGraph:
    def __init__(self, absent_capacity: int = 500):
        self.nodes: dict[str, Node] = {}
        self.absent = AbsentOwners(absent_capacity)
        self._dependents: dict[str, set[str]] = {}  # owner uid -> uids of observed dependents

    def node(self, uid: str) -> Node | None:
        return self.nodes.get(uid)

    def dependents(self, uid: str) -> list[Node]:
        """The observed objects whose ownerReferences name this uid, in a stable order."""
        found = (self.nodes[d] for d in self._dependents.get(uid, ()) if d in self.nodes)
        return sorted(found, key=lambda n: (n.identity.kind, n.identity.namespace, n.identity.name))

    def blocking_dependents(self, uid: str) -> list[Node]:
        """The dependents that keep a foreground deletion of this owner waiting."""
        return [d for d in self.dependents(uid) if (ref := d.owner_ref(uid)) and ref.block_owner_deletion]

    def cached_state(self, dependent: Node, ref: OwnerRef) -> OwnerState:
        """What the cache says of one owner. Only SOLID and WAITING are trusted as they are: an owner
        the cache does not hold as the reference names it may simply not have been seen yet."""
        owner = self.nodes.get(ref.uid)
        if owner is None:
            return OwnerState.UNKNOWN
        seen = owner.identity
        if (seen.api_version, seen.kind, seen.name) != (ref.api_version, ref.kind, ref.name):
            return OwnerState.UNKNOWN
        if seen.namespace and seen.namespace != dependent.identity.namespace:
            # a namespaced owner is only ever looked up in its dependent's namespace
            return OwnerState.UNKNOWN
        return OwnerState.WAITING if owner.deleting_dependents else OwnerState.SOLID

    def vouched_for(self, node: Node) -> bool:
        """Every owner of the object is solid in the cache: nothing to examine."""
        return all(self.cached_state(node, ref) is OwnerState.SOLID for ref in node.owners)

    # ------------------------------------------------------------------ events

    def _link(self, node: Node, refs: tuple[OwnerRef, ...]) -> None:
        for ref in refs:
            self._dependents.setdefault(ref.uid, set()).add(node.uid)

    def _unlink(self, node: Node, refs: tuple[OwnerRef, ...]) -> None:
        for ref in refs:
            dependents = self._dependents.get(ref.uid)
            if dependents is not None:
                dependents.discard(node.uid)
                if not dependents:
                    del self._dependents[ref.uid]

    def observe(self, resource: Resource, obj: Object) -> set[str]:
        """An object added or changed: file it; the uids to examine because of it."""
        new = node_of(resource, obj)
        if not new.uid:
            return set()
        old = self.nodes.get(new.uid)
        self.nodes[new.uid] = new
        before = {ref.uid: ref for ref in old.owners} if old else {}
        after = {ref.uid: ref for ref in new.owners}
        self._unlink(new, tuple(ref for uid, ref in before.items() if uid not in after))
        self._link(new, tuple(ref for uid, ref in after.items() if uid not in before))
        dirty = set()
        # an owner waiting for this object may be free once the object no longer blocks it
        for uid, ref in before.items():
            still = after.get(uid)
            unblocked = ref.block_owner_deletion and (still is None or not still.block_owner_deletion)
            if unblocked and uid in self.nodes:
                dirty.add(uid)
        if new.orphaning or new.deleting_dependents or (not new.deleting and not self.vouched_for(new)):
            dirty.add(new.uid)
        return dirty

    def forget(self, resource: Resource, obj: Object) -> set[str]:
        """An object deleted: its dependents may be garbage now, and an owner deleting in the
        foreground may have been waiting for it. The object is remembered as absent."""
        gone = self.nodes.pop(obj.get("metadata", {}).get("uid", ""), None) or node_of(resource, obj)
        if not gone.uid:
            return set()
        self._unlink(gone, gone.owners)
        self.absent.add(gone.identity)
        return self._after_removal(gone)

    def forget_resource(self, resource: Resource) -> set[str]:
        """A resource no longer served: drop its objects (they may still exist, so none is marked
        absent); their dependents are to be examined again."""
        dirty: set[str] = set()
        for node in [n for n in self.nodes.values() if n.resource == resource]:
            del self.nodes[node.uid]
            self._unlink(node, node.owners)
            dirty |= self._after_removal(node)
        return dirty

    def _after_removal(self, gone: Node) -> set[str]:
        dirty = {d for d in self._dependents.get(gone.uid, ()) if d in self.nodes}
        for ref in gone.owners:
            owner = self.nodes.get(ref.uid)
            if owner is not None and owner.deleting_dependents:
                dirty.add(owner.uid)
        return dirty
