"""The DaemonSet controller (Kubernetes' pkg/controller/daemon): one daemon pod on every eligible
node, following nodes as they join, change and leave, with the pod template's history kept in
ControllerRevisions and updates rolled out node by node.

Each sync claims the DaemonSet's pods (adopting matching orphans, releasing its own that stopped
matching), records the current template as a ControllerRevision (`controller-revision-hash` on the
pods names it), creates the missing pods (never binding them: their node affinity names the node and
the scheduler binds them), deletes pods on nodes no longer eligible and failed pods (with back-off),
takes one RollingUpdate step when nothing is in flight, trims old revisions to
revisionHistoryLimit, and always writes status. The decisions are the pure functions of
`placement`, `rolling` and `status`; this module does the IO.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from controller.daemonset.backoff import FailedPodBackoff, failed_pods_backoff_key
from controller.daemonset.placement import (
    Eligibility,
    node_should_run,
    plan_node,
    pod_template_for,
    template_generation,
)
from controller.daemonset.rolling import allows_surge, rolling_update
from controller.daemonset.status import daemon_status
from controller.framework import history
from controller.framework.context import ControllerContext, QueueController, settled_by_next_sync
from controller.framework.controllerref import RefManager
from controller.framework.expectations import Expectations
from controller.framework.history import History
from controller.framework.owners import claim_candidates, enqueue_pod_owners, owner_key, selecting_owners
from controller.framework.podcontrol import PodControl
from controller.replicaset import slow_start_batches
from kubelite.client import ApiError
from kubelite.informer import CONTROLLER_INDEX
from kubelite.objects import (
    Object,
    is_pod_available,
    is_pod_finished,
    is_terminating,
    key_of,
    owner_reference,
    split_key,
)
from kubelite.resources import DAEMONSETS, NODES, PODS
from kubelite.scheduling import target_node_name
from kubelite.selectors import LabelSelector, SelectorError, label_selector_from_spec

log = logging.getLogger(__name__)

BURST_REPLICAS = 250  # creates or deletes per sync, as the DaemonSet controller's burstReplicas
KIND = "DaemonSet"


class DaemonExpectations(Expectations):
    def expect(self, key: str, adds: int, deletes: list[str]) -> None:
        """SetExpectations: creations and deletions in flight at once."""
        self.expect_deletions(key, deletes)
        self.lower_creations(key, -adds)


def node_conditions(node: Object) -> dict[str, str]:
    return {c.get("type", ""): c.get("status", "") for c in node.get("status", {}).get("conditions") or []}


def node_changed(old: Object, new: Object) -> bool:
    """Whether a node update can change where daemon pods belong (shouldIgnoreNodeUpdate's opposite):
    its labels, its spec (taints, unschedulable) or the status of a condition; not heartbeats."""
    return (
        old.get("metadata", {}).get("labels") != new.get("metadata", {}).get("labels")
        or old.get("spec") != new.get("spec")
        or node_conditions(old) != node_conditions(new)
    )


def min_ready_seconds(ds: Object) -> int:
    return int(ds.get("spec", {}).get("minReadySeconds") or 0)


class DaemonSetController(QueueController):
    name = "daemonset"

    def __init__(self, ctx: ControllerContext):
        super().__init__()
        self.client = ctx.client
        self.clock = ctx.clock
        self.daemonsets = ctx.informer(DAEMONSETS)
        self.pods = ctx.informer(PODS)
        self.nodes = ctx.informer(NODES)
        self.history = History(ctx, DAEMONSETS)
        self.expectations = DaemonExpectations(clock=self._seconds)
        self.backoff = FailedPodBackoff()
        self.recorder = ctx.recorder("daemonset-controller")
        self.pod_control = PodControl(self.client, self.recorder)
        self.refs = RefManager(self.client, PODS, owner_resource=DAEMONSETS)
        self.daemonsets.add_handler(self._on_daemonset)
        self.pods.add_handler(self._on_pod)
        self.nodes.add_handler(self._on_node)
        self.history.informer.add_handler(self._on_revision)

    def _seconds(self) -> float:
        return self.clock().timestamp()

    # ------------------------------------------------------------------ event handlers: enqueue only

    def _on_daemonset(self, event_type: str, ds: Object, old: Object | None) -> None:
        if event_type == "DELETED":
            self.expectations.forget(key_of(ds))
            self.backoff.forget_prefix(f"{ds['metadata'].get('uid')}/")
        self.queue.add(key_of(ds))

    def _enqueue_all(self) -> None:
        for ds in self.daemonsets.list():
            self.queue.add(key_of(ds))

    def _on_node(self, event_type: str, node: Object, old: Object | None) -> None:
        if event_type == "MODIFIED" and old is not None and not node_changed(old, node):
            return
        self._enqueue_all()

    def _owner_key(self, obj: Object) -> str | None:
        return owner_key(self.daemonsets, KIND, obj)

    def _selecting(self, pod: Object) -> list[str]:
        return selecting_owners(
            self.daemonsets,
            pod,
            lambda ds, p: label_selector_from_spec(ds.get("spec", {}).get("selector")).matches(
                p["metadata"].get("labels")
            ),
        )

    def _on_pod(self, event_type: str, pod: Object, old: Object | None) -> None:
        key = self._owner_key(pod)
        if event_type == "ADDED" and key and not is_terminating(pod):
            self.expectations.creation_observed(key)
        elif key and (event_type == "DELETED" or is_terminating(pod)):
            self.expectations.deletion_observed(key, key_of(pod))
        old_key = self._owner_key(old) if old is not None else None
        enqueue_pod_owners(self.queue, event_type, pod, key, old_key, self._selecting)

    def _on_revision(self, event_type: str, revision: Object, old: Object | None) -> None:
        key = self._owner_key(revision)
        if key:
            self.queue.add(key)

    # ------------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        namespace, _name = split_key(key)
        ds = self.daemonsets.get(key)
        if ds is None:
            self.expectations.forget(key)
            return
        spec_selector = ds.get("spec", {}).get("selector")
        if spec_selector == {}:
            await self.recorder.record(
                ds,
                "Warning",
                "SelectingAll",
                "This daemon set is selecting all pods. A non-empty selector is required.",
            )
            return
        try:
            selector = label_selector_from_spec(spec_selector)
        except SelectorError as exc:
            log.error("DaemonSet %s has an invalid selector, not syncing it: %s", key, exc)
            return
        if is_terminating(ds):
            return  # its revisions may be going: roll nothing out (as Kubernetes)
        current, old, collisions = await self.construct_history(ds, selector)
        hash_ = (current["metadata"].get("labels") or {}).get(history.POD_REVISION_LABEL, "")
        pods = await self.claim_pods(ds, selector, namespace or "")
        nodes = {n["metadata"]["name"]: n for n in self.nodes.list()}
        eligibility = {name: node_should_run(node, ds) for name, node in nodes.items()}
        node_pods = group_by_node(pods)
        failure: ApiError | None = None
        acted = self.expectations.satisfied(key)
        if acted:
            try:
                await self.manage(ds, nodes, eligibility, node_pods, hash_)
                if self.expectations.satisfied(key) and strategy_type(ds) == "RollingUpdate":
                    await self.rolling_update(ds, eligibility, node_pods, hash_)
                await self.cleanup_history(ds, old, pods)
            except ApiError as exc:
                failure = exc
        if acted:  # what was just created or deleted, as far as the cache has seen it
            owned = self.pods.by_index(CONTROLLER_INDEX, ds["metadata"].get("uid", ""))
            node_pods = group_by_node([p for p in owned if selector.matches(p["metadata"].get("labels"))])
        await self.update_status(ds, eligibility, node_pods, hash_, collisions, observe=acted)
        if failure is not None:
            raise failure

    async def claim_pods(self, ds: Object, selector: LabelSelector, namespace: str) -> list[Object]:
        candidates = claim_candidates(self.pods, ds)
        return await self.refs.claim(ds, lambda p: selector.matches(p["metadata"].get("labels")), candidates)

    # ------------------------------------------------------------------ history

    async def construct_history(
        self, ds: Object, selector: LabelSelector
    ) -> tuple[Object, list[Object], int | None]:
        """The current revision (created, or renumbered to be the newest), the old ones, and the
        collision count to record when creating it had to step around a name."""
        revisions = await self.history.claim(ds, selector.matches)
        data = history.revision_data(ds)
        current = [r for r in revisions if history.equal_data(r.get("data"), data)]
        old = [r for r in revisions if r not in current]
        number = history.next_revision_number(old)
        collision = (ds.get("status") or {}).get("collisionCount")
        if not current:
            revision = history.new_revision(
                ds, data, number, collision, hash_label=history.POD_REVISION_LABEL
            )
            annotations = ds.get("metadata", {}).get("annotations")
            if annotations:
                revision["metadata"]["annotations"] = dict(annotations)
            created, count = await self.history.create(
                ds, revision, int(collision or 0), hash_label=history.POD_REVISION_LABEL
            )
            return created, old, (count if count != int(collision or 0) else None)
        keep = history.sort_revisions(current)[-1]
        for duplicate in [r for r in current if r is not keep]:
            await self.history.delete(duplicate)
        if history.revision_number(keep) < number:
            keep = await self.history.update_revision(keep, number)
        return keep, old, None

    async def cleanup_history(self, ds: Object, old: list[Object], pods: list[Object]) -> None:
        limit = int(ds.get("spec", {}).get("revisionHistoryLimit", 10) or 0)
        live = {(p["metadata"].get("labels") or {}).get(history.POD_REVISION_LABEL, "") for p in pods} - {""}
        for revision in history.revisions_to_truncate(old, live, limit):
            await self.history.delete(revision)

    # ------------------------------------------------------------------ pods

    async def manage(
        self,
        ds: Object,
        nodes: dict[str, Object],
        eligibility: dict[str, Eligibility],
        node_pods: dict[str, list[Object]],
        hash_: str,
    ) -> None:
        """Create the missing daemon pods and delete the ones that should not be where they are."""
        surge = allows_surge(ds)
        available = self._available_map(ds, node_pods)
        create_on: list[str] = []
        delete: list[Object] = []
        for name in sorted(nodes):
            plan = plan_node(eligibility[name], node_pods.get(name, []), hash_, surge, available)
            if plan.create:
                create_on.append(name)
            delete += plan.delete
            delete += await self._failed_to_delete(ds, name, plan.failed)
        for name, pods in node_pods.items():
            if name not in nodes:  # never scheduled, and its node is gone: nothing else will delete it
                delete += [p for p in pods if not p.get("spec", {}).get("nodeName") and not is_terminating(p)]
        await self.sync_nodes(ds, delete, create_on, hash_)

    async def _failed_to_delete(self, ds: Object, node: str, failed: list[Object]) -> list[Object]:
        """The failed pods to delete now; while in back-off, none (and a sync comes back later)."""
        out = []
        for pod in failed:
            backoff_key = failed_pods_backoff_key(ds, node)
            now = self._seconds()
            if self.backoff.in_backoff(backoff_key, now):
                self.queue.add_after(key_of(ds), self.backoff.delay(backoff_key))
                continue
            self.backoff.next(backoff_key, now)
            m = pod["metadata"]
            where = f"{m.get('namespace')}/{m['name']} on node {node}"
            message = f"Found failed daemon pod {where}, will try to kill it"
            await self.recorder.record(ds, "Warning", "FailedDaemonPod", message)
            out.append(pod)
        return out

    async def rolling_update(
        self,
        ds: Object,
        eligibility: dict[str, Eligibility],
        node_pods: dict[str, list[Object]],
        hash_: str,
    ) -> None:
        desired = sum(1 for e in eligibility.values() if e.should_run)
        pods_by_node = {n: p for n, p in node_pods.items() if n in eligibility}
        for name, e in eligibility.items():
            if e.should_run:
                pods_by_node.setdefault(name, [])
        step = rolling_update(
            ds,
            pods_by_node,
            hash_,
            template_generation(ds),
            self._is_available(ds),
            lambda n: eligibility.get(n, Eligibility(False, False)).should_run,
            desired,
        )
        if step.delete or step.create_on:
            await self.sync_nodes(ds, step.delete, step.create_on, hash_)

    async def sync_nodes(self, ds: Object, delete: list[Object], create_on: list[str], hash_: str) -> None:
        """syncNodes: expect, then create (in slow-start batches) and delete."""
        key = key_of(ds)
        create_on = create_on[:BURST_REPLICAS]
        delete = list({p["metadata"]["name"]: p for p in delete}.values())[:BURST_REPLICAS]
        if not create_on and not delete:
            return
        self.expectations.expect(key, len(create_on), [key_of(p) for p in delete])
        ref = owner_reference(ds)
        errors: list[BaseException] = []
        pending = list(create_on)
        for batch in slow_start_batches(len(create_on)):
            nodes, pending = pending[:batch], pending[batch:]
            results = await asyncio.gather(
                *(self.pod_control.create(pod_template_for(ds, n, hash_), ds, ref) for n in nodes),
                return_exceptions=True,
            )
            failed = sum(1 for r in results if not isinstance(r, dict))
            errors += [r for r in results if isinstance(r, BaseException)]
            if failed:
                self.expectations.lower_creations(key, failed + len(pending))  # never to be observed
                break
        if create_on:
            log.info("DaemonSet %s: creating pods for %d node(s)", key, len(create_on))
        deleted = await asyncio.gather(
            *(self.pod_control.delete(p, ds) for p in delete), return_exceptions=True
        )
        for pod, result in zip(delete, deleted, strict=True):
            if result is not True:
                self.expectations.deletion_observed(key, key_of(pod))
        errors += [r for r in deleted if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    # ------------------------------------------------------------------ status

    def _is_available(self, ds: Object) -> Callable[[Object], bool]:
        """IsPodAvailable now, with the DaemonSet's minReadySeconds."""
        min_ready = min_ready_seconds(ds)
        now = self.clock()
        return lambda p: is_pod_available(p, min_ready, now)

    def _available_map(self, ds: Object, node_pods: dict[str, list[Object]]) -> dict[str, bool]:
        available = self._is_available(ds)
        return {p["metadata"]["name"]: available(p) for pods in node_pods.values() for p in pods}

    async def update_status(
        self,
        ds: Object,
        eligibility: dict[str, Eligibility],
        node_pods: dict[str, list[Object]],
        hash_: str,
        collisions: int | None,
        observe: bool,
    ) -> None:
        status: dict[str, Any] = daemon_status(
            ds,
            {name: e.should_run for name, e in eligibility.items()},
            node_pods,
            hash_,
            template_generation(ds),
            self._is_available(ds),
            observe,
        )
        if collisions is not None:
            status["collisionCount"] = collisions
        min_ready = min_ready_seconds(ds)
        if min_ready and status["numberReady"] != status.get("numberAvailable", 0):
            self.queue.add_after(key_of(ds), float(min_ready))
        if ds.get("status") == status:
            return
        try:
            await self.client.update(DAEMONSETS, {**ds, "status": status}, subresource="status")
        except ApiError as exc:
            if not settled_by_next_sync(self.queue, KIND, key_of(ds), exc):
                raise


def strategy_type(ds: Object) -> str:
    return str((ds.get("spec", {}).get("updateStrategy") or {}).get("type") or "RollingUpdate")


def group_by_node(pods: list[Object]) -> dict[str, list[Object]]:
    """The daemon pods by the node they are on or are meant for, leaving out pods that have finished
    and are being deleted (nothing is left to do with them)."""
    out: dict[str, list[Object]] = {}
    for pod in pods:
        if is_pod_finished(pod) and is_terminating(pod):
            continue
        node = target_node_name(pod)
        if node is not None:
            out.setdefault(node, []).append(pod)
    return out
