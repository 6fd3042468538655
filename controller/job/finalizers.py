"""Removing the `batch.kubernetes.io/job-tracking` finalizer: the patch, the expectations that stop
a pod from being counted twice while the informer has not yet seen its finalizer go (Kubernetes'
uidTrackingExpectations), and which orphaned pods to let go (syncOrphanPod). Pure.
"""

from __future__ import annotations

from typing import Any

from controller.job.plan import is_finished
from controller.job.tracking import FINALIZER
from kubelite.objects import Object, controller_ref


def removal_patch(pod: Object) -> dict[str, Any]:
    """A strategic merge patch dropping only our finalizer (others' are kept whatever their order),
    pinned to the pod's uid so that a new pod of the same name is never touched."""
    meta = pod.get("metadata") or {}
    return {"metadata": {"uid": meta.get("uid"), "$deleteFromPrimitiveList/finalizers": [FINALIZER]}}


def owner_keeps_finalizer(pod: Object, job: Object | None) -> bool:
    """Whether an orphan cleanup must leave the pod alone: it is controlled by something other than
    a batch/v1 Job, or by a live Job that has not finished (which counts it itself)."""
    ref = controller_ref(pod)
    if ref is None:
        return False
    if ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1":
        return True
    if job is None or (job.get("metadata") or {}).get("uid") != ref.get("uid"):
        return False
    return not is_finished(job)


class RemovalExpectations:
    """Per Job, the uids whose finalizer removal was sent but not yet observed."""

    def __init__(self) -> None:
        self._by_key: dict[str, set[str]] = {}

    def expect(self, key: str, uids: set[str]) -> None:
        if uids:
            self._by_key.setdefault(key, set()).update(uids)

    def observed(self, key: str, uid: str) -> None:
        pending = self._by_key.get(key)
        if pending is not None:
            pending.discard(uid)
            if not pending:
                del self._by_key[key]

    def pending(self, key: str) -> set[str]:
        return set(self._by_key.get(key) or ())

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)
