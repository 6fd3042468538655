"""The ReplicaSet controller, and the ReplicationController manager it also is (Kubernetes runs the
same code for both): exactly `spec.replicas` pods that match the selector.

It adopts matching orphan pods, releases pods that stop matching, creates missing pods in
slow-start batches (1, 2, 4, ...) and deletes surplus pods unscheduled, pending, not-ready and
newest first, with expectations so that a sync never doubles a create or a delete still in flight.
Every sync writes status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas (ready
for minReadySeconds) and observedGeneration. `pods_to_delete`, `replica_status` and
`slow_start_batches` are the pure decisions.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from controller.framework.context import ControllerContext, QueueController, settled_by_next_sync
from controller.framework.controllerref import RefManager
from controller.framework.expectations import Expectations
from controller.framework.owners import claim_candidates, owner_key, selecting_owners
from controller.framework.podcontrol import PodControl
from kubelite.client import ApiError
from kubelite.objects import (
    Object,
    controller_ref,
    get_condition,
    is_pod_available,
    is_pod_finished,
    is_pod_ready,
    is_terminating,
    key_of,
    owner_reference,
    parse_rfc3339,
)
from kubelite.resources import PODS, REPLICASETS, REPLICATIONCONTROLLERS, Resource
from kubelite.selectors import LabelSelector, SelectorError, label_selector_from_spec, selector_from_labels

log = logging.getLogger(__name__)

BURST_REPLICAS = 500  # at most this many creates or deletes per sync, as kube-controller-manager
SLOW_START_INITIAL_BATCH = 1
PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def is_active(pod: Object) -> bool:
    """Not finished and not being deleted (controller.FilterActivePods)."""
    return not is_pod_finished(pod) and not is_terminating(pod)


def slow_start_batches(count: int, initial: int = SLOW_START_INITIAL_BATCH) -> list[int]:
    """1, 2, 4, ... summing to count: a controller whose creates all fail stops after the first."""
    batches, size = [], initial
    while count > 0:
        batches.append(min(size, count))
        count -= batches[-1]
        size *= 2
    return batches


def _restarts(pod: Object) -> int:
    return sum(
        int(cs.get("restartCount") or 0) for cs in pod.get("status", {}).get("containerStatuses") or []
    )


def _ready_since(pod: Object) -> dt.datetime | None:
    cond = get_condition(pod, "Ready")
    if cond and cond.get("status") == "True" and cond.get("lastTransitionTime"):
        return parse_rfc3339(cond["lastTransitionTime"])
    return None


def deletion_rank(pod: Object) -> tuple[Any, ...]:
    """Sort key of ActivePods: the first pods in this order are the first to delete."""
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    created = pod.get("metadata", {}).get("creationTimestamp")
    created_at = parse_rfc3339(created) if created else far
    ready_since = _ready_since(pod)
    return (
        bool(pod.get("spec", {}).get("nodeName")),  # unscheduled first
        PHASE_RANK.get(pod.get("status", {}).get("phase", "Pending"), 0),  # pending, unknown, running
        is_pod_ready(pod),  # not ready first
        -(ready_since or far).timestamp(),  # ready for less time first
        -_restarts(pod),  # more restarts first
        -created_at.timestamp(),  # newer first
        pod.get("metadata", {}).get("name", ""),
    )


def pods_to_delete(pods: list[Object], count: int) -> list[Object]:
    return sorted(pods, key=deletion_rank)[:count]


def replica_status(
    obj: Object, pods: list[Object], template_labels: dict[str, str], now: dt.datetime
) -> dict[str, Any]:
    """The status a ReplicaSet or ReplicationController should carry for its active pods."""
    min_ready = int(obj.get("spec", {}).get("minReadySeconds") or 0)
    status: dict[str, Any] = {
        "replicas": len(pods),
        "fullyLabeledReplicas": sum(
            1
            for p in pods
            if all(p["metadata"].get("labels", {}).get(k) == v for k, v in template_labels.items())
        ),
        "readyReplicas": sum(1 for p in pods if is_pod_ready(p)),
        "availableReplicas": sum(1 for p in pods if is_pod_available(p, min_ready, now)),
        "observedGeneration": int(obj.get("metadata", {}).get("generation") or 0),
    }
    # Kubernetes omits zero counts (omitempty) but always writes replicas.
    status = {k: v for k, v in status.items() if v or k == "replicas"}
    conditions = [
        c for c in obj.get("status", {}).get("conditions") or [] if c.get("type") == "ReplicaFailure"
    ]
    if conditions:
        status["conditions"] = conditions
    return status


class ReplicaSetController(QueueController):
    name = "replicaset"
    resource: Resource = REPLICASETS

    def __init__(self, ctx: ControllerContext):
        super().__init__()
        self.ctx = ctx
        self.client = ctx.client
        self.clock: Callable[[], dt.datetime] = ctx.clock
        self.owners = ctx.informer(self.resource)
        self.pods = ctx.informer(PODS)
        self.expectations = Expectations()
        self.recorder = ctx.recorder(f"{self.name}-controller")
        self.pod_control = PodControl(self.client, self.recorder)
        self.refs = RefManager(self.client, PODS, owner_resource=self.resource)
        self.owners.add_handler(self._on_owner)
        self.pods.add_handler(self._on_pod)

    # ------------------------------------------------------------------ what a selector is

    def selector(self, obj: Object) -> LabelSelector:
        return label_selector_from_spec(obj.get("spec", {}).get("selector"))

    def template_labels(self, obj: Object) -> dict[str, str]:
        return dict(obj.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {})

    # ------------------------------------------------------------------ event handlers: enqueue only

    def _on_owner(self, event_type: str, obj: Object, old: Object | None) -> None:
        if event_type == "DELETED":
            self.expectations.forget(key_of(obj))
        self.queue.add(key_of(obj))

    def _owner_key(self, pod: Object) -> str | None:
        """The key of the owner (of this kind) that controls pod, if it still exists in the cache."""
        return owner_key(self.owners, self.resource.kind, pod)

    def _selecting(self, pod: Object) -> list[str]:
        """Keys of the owners whose selector matches an orphan pod (candidates to adopt it)."""
        return selecting_owners(
            self.owners, pod, lambda owner, p: self.selector(owner).matches(p["metadata"].get("labels"))
        )

    def _on_pod(self, event_type: str, pod: Object, old: Object | None) -> None:
        key = self._owner_key(pod)
        pod_key = key_of(pod)
        if event_type == "ADDED":
            if is_terminating(pod):
                if key:
                    self.expectations.deletion_observed(key, pod_key)
                    self.queue.add(key)
                return
            if key:
                self.expectations.creation_observed(key)
                self.queue.add(key)
            elif controller_ref(pod) is None:
                for owner_key in self._selecting(pod):
                    self.queue.add(owner_key)
            return
        if event_type == "DELETED":
            if key:
                self.expectations.deletion_observed(key, pod_key)
                self.queue.add(key)
            return
        # MODIFIED
        if is_terminating(pod) and key:
            self.expectations.deletion_observed(key, pod_key)
        old_key = self._owner_key(old) if old is not None else None
        if old_key and old_key != key:
            self.queue.add(old_key)
        if key:
            self.queue.add(key)  # its sync re-checks every second while pods are becoming available
        elif controller_ref(pod) is None:
            labels_changed = old is None or old["metadata"].get("labels") != pod["metadata"].get("labels")
            if labels_changed or (old is not None and controller_ref(old) is not None):
                for owner_key in self._selecting(pod):
                    self.queue.add(owner_key)

    # ------------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        owner = self.owners.get(key)
        if owner is None:
            self.expectations.forget(key)
            return
        try:
            selector = self.selector(owner)
        except SelectorError as exc:
            log.error("%s %s has an invalid selector, not syncing it: %s", self.resource.kind, key, exc)
            return
        needs_sync = self.expectations.satisfied(key) and not is_terminating(owner)
        # its own pods and the namespace's orphans: every other pod has another controller
        candidates = [p for p in claim_candidates(self.pods, owner) if is_active(p)]
        pods = await self.refs.claim(
            owner, lambda p: selector.matches(p["metadata"].get("labels")), candidates
        )
        failure: ApiError | None = None
        if needs_sync:
            try:
                await self.manage_replicas(owner, pods)
            except ApiError as exc:
                failure = exc
        await self.update_status(owner, [p for p in pods if is_active(p)])
        if failure is not None:
            raise failure

    async def manage_replicas(self, owner: Object, pods: list[Object]) -> None:
        key = key_of(owner)
        wanted = int(owner.get("spec", {}).get("replicas") or 0)
        diff = len(pods) - wanted
        if diff < 0:
            count = min(-diff, BURST_REPLICAS)
            self.expectations.expect_creations(key, count)
            template = owner.get("spec", {}).get("template") or {}
            ref = owner_reference(owner)
            created = 0
            for batch in slow_start_batches(count):
                results = await asyncio.gather(
                    *(self.pod_control.create(template, owner, ref) for _ in range(batch)),
                    return_exceptions=True,
                )
                made = sum(1 for r in results if isinstance(r, dict))
                created += made
                if made < batch:
                    self.expectations.lower_creations(key, count - created)  # never to be observed
                    errors = [r for r in results if isinstance(r, BaseException)]
                    if errors:
                        raise errors[0]
                    return
            log.info("%s %s: created %d pod(s)", self.resource.kind, key, created)
        elif diff > 0:
            doomed = pods_to_delete(pods, min(diff, BURST_REPLICAS))
            self.expectations.expect_deletions(key, [key_of(p) for p in doomed])
            results = await asyncio.gather(
                *(self.pod_control.delete(p, owner) for p in doomed), return_exceptions=True
            )
            for pod, result in zip(doomed, results, strict=True):
                if result is not True:
                    self.expectations.deletion_observed(key, key_of(pod))  # gone already, or failed
            errors = [r for r in results if isinstance(r, BaseException)]
            log.info("%s %s: deleted %d pod(s)", self.resource.kind, key, len(doomed) - len(errors))
            if errors:
                raise errors[0]

    async def update_status(self, owner: Object, pods: list[Object]) -> None:
        status = replica_status(owner, pods, self.template_labels(owner), self.clock())
        min_ready = int(owner.get("spec", {}).get("minReadySeconds") or 0)
        if min_ready and status.get("readyReplicas", 0) != status.get("availableReplicas", 0):
            self.queue.add_after(key_of(owner), 1.0)  # pods still becoming available
        if owner.get("status") == status:
            return
        try:
            await self.client.update(self.resource, {**owner, "status": status}, subresource="status")
        except ApiError as exc:
            if not settled_by_next_sync(self.queue, self.resource.kind, key_of(owner), exc):
                raise


class ReplicationManager(ReplicaSetController):
    """The ReplicationController manager: a ReplicaSet controller with an equality selector."""

    name = "replicationcontroller"
    resource = REPLICATIONCONTROLLERS

    def selector(self, obj: Object) -> LabelSelector:
        selector = obj.get("spec", {}).get("selector")
        if not selector:
            return LabelSelector.match_nothing()
        return selector_from_labels(selector)
