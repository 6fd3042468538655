"""Which owner an informer event concerns (the event handlers of Kubernetes' workload controllers):
the owner a controller reference names, if the cache holds that very object (same uid), and for an
orphan the owners whose selector would adopt it. Handlers only map objects to keys and enqueue.
"""

from __future__ import annotations

from collections.abc import Callable

from kubelite.informer import CONTROLLER_INDEX, Informer, orphans_in
from kubelite.objects import Object, controller_ref, key_of
from kubelite.selectors import SelectorError
from kubelite.workqueue import WorkQueue


def resolve_controller_ref(
    owners: Informer, kind: str, namespace: str | None, ref: Object | None
) -> str | None:
    """resolveControllerRef: the key of the owner of this kind that `ref` names, None when the
    cache has no owner by that name or a namesake with another uid."""
    if ref is None or ref.get("kind") != kind:
        return None
    key = f"{namespace}/{ref.get('name')}"
    owner = owners.get(key)
    return key if owner is not None and owner["metadata"].get("uid") == ref.get("uid") else None


def claim_candidates(informer: Informer, owner: Object) -> list[Object]:
    """What an owner may claim: the objects it controls and the orphans of its namespace (every
    other object has another controller), both from the informer's controller index."""
    meta = owner.get("metadata") or {}
    namespace = meta.get("namespace") or ""
    found = informer.by_index(CONTROLLER_INDEX, meta.get("uid", "")) + informer.by_index(
        CONTROLLER_INDEX, orphans_in(namespace)
    )
    return [o for o in found if o["metadata"].get("namespace") == namespace]


def owner_key(owners: Informer, kind: str, obj: Object) -> str | None:
    """The key of the owner of this kind that controls `obj`, if it is still in the cache."""
    return resolve_controller_ref(owners, kind, obj["metadata"].get("namespace"), controller_ref(obj))


def selecting_owners(owners: Informer, obj: Object, matches: Callable[[Object, Object], bool]) -> list[str]:
    """Keys of the owners in the object's namespace that could adopt it (`matches(owner, obj)`);
    an owner whose selector does not parse adopts nothing."""
    out = []
    for owner in owners.list(obj["metadata"].get("namespace", "")):
        try:
            if matches(owner, obj):
                out.append(key_of(owner))
        except SelectorError:
            continue
    return out


def enqueue_pod_owners(
    queue: WorkQueue,
    event_type: str,
    pod: Object,
    key: str | None,
    old_key: str | None,
    selecting: Callable[[Object], list[str]],
) -> None:
    """Queue the pod's owner, the owner it had before if that changed, and, for a live orphan, every
    owner that could adopt it."""
    if old_key and old_key != key:
        queue.add(old_key)
    if key:
        queue.add(key)
    elif controller_ref(pod) is None and event_type != "DELETED":
        for candidate in selecting(pod):
            queue.add(candidate)
