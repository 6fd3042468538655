"""The garbage collector: deletes objects whose owners are gone, and carries out the foreground and
orphan cascades the apiserver leaves to it (upstream's garbagecollector.go).

Its informers file every object in the dependency graph (`graph`) and enqueue the uids an event
concerns; `sync(uid)` examines one object against the graph and, before anything destructive, the
live API; `decide` says what to do. Touches: the API (GET, PATCH, DELETE of any served kind),
the shared informers, and the informers it starts itself for kinds only it watches (`monitors`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from controller.framework.context import ControllerContext, QueueController
from controller.framework.controllerref import remove_owner_refs_patch
from controller.garbagecollector import decide as d
from controller.garbagecollector.graph import (
    FOREGROUND_FINALIZER,
    ORPHAN_FINALIZER,
    DependencyGraph,
    Identity,
    Node,
    OwnerRef,
    OwnerState,
    is_deleting_dependents,
    owner_refs,
)
from controller.garbagecollector.monitors import Discover, Monitors
from kubelite.client import MERGE_PATCH, STRATEGIC_MERGE_PATCH, ApiError
from kubelite.objects import Object, is_terminating
from kubelite.resources import Resource
from kubelite.workqueue import run_workers

log = logging.getLogger(__name__)

RESYNC_SECONDS = 30.0  # how often discovery is read again (kube-controller-manager's period)
FINALIZER_ATTEMPTS = 3  # re-reads when removing a finalizer races with another writer

Sleep = Callable[[float], Awaitable[object]]


class GarbageCollector(QueueController):
    name = "garbagecollector"

    def __init__(
        self,
        ctx: ControllerContext,
        *,
        discover: Discover | None = None,
        resync_period: float = RESYNC_SECONDS,
        sleep: Sleep = asyncio.sleep,
    ):
        """`discover` returns the resources the apiserver serves (default: its discovery
        documents); `sleep` waits between two discoveries."""
        super().__init__()
        self.client = ctx.client
        self.graph = DependencyGraph()
        self.monitors = Monitors(ctx, discover, self._on_event, self._on_unwatched)
        self.resync_period = resync_period
        self.sleep = sleep
        self._unresolved: dict[tuple[str, str], set[str]] = {}  # owner kind not served -> dependents
        self._invalid: set[str] = set()  # cluster-scoped dependents of namespaced owners, logged

    # ------------------------------------------------------------------ running

    async def run(self, workers: int = 1) -> None:
        """Watch what discovery lists and wait for those caches, then collect with `workers`
        workers, reading discovery again every `resync_period`. Every task started here (informers
        included) belongs to one task group, cancelled and awaited when run is cancelled."""
        try:
            async with asyncio.TaskGroup() as group:
                self.monitors.start(group)
                await self.resync()
                await self.monitors.wait_synced()
                log.info("garbage collector: %d resources monitored and synced", len(self.monitors))
                group.create_task(run_workers(self.queue, self.sync, workers, name=self.name))
                while True:
                    await self.sleep(self.resync_period)
                    await self.resync()
        finally:
            self.monitors.start(None)
            self.queue.shutdown()

    async def resync(self) -> None:
        """Follow discovery: watch new kinds, stop watching kinds gone, and examine again the
        objects left alone because their owner's kind was not served, if it is now."""
        if not await self.monitors.resync():
            return
        for kind in [k for k in self._unresolved if self.monitors.resource_of(*k) is not None]:
            for uid in self._unresolved.pop(kind):
                self.queue.add(uid)

    def _on_event(self, resource: Resource, event_type: str, obj: Object) -> None:
        if event_type == "DELETED":
            dirty = self.graph.forget(resource, obj)
        else:
            dirty = self.graph.observe(resource, obj)
        for uid in dirty:
            self.queue.add(uid)

    def _on_unwatched(self, resource: Resource) -> None:
        for uid in self.graph.forget_resource(resource):
            self.queue.add(uid)

    # ------------------------------------------------------------------ one object

    async def sync(self, key: str) -> None:
        """Examine the object with this uid, as the graph holds it."""
        node = self.graph.node(key)
        if node is None:
            return  # deleted; its dependents were queued when it went
        if node.orphaning:
            await self._orphan_dependents(node)
        elif node.deleting_dependents:
            await self._delete_dependents(node)
        elif node.deleting or self.graph.vouched_for(node):
            return  # on its way out, or every owner is there as the cache shows it
        else:
            await self._attempt_to_delete(node)

    async def _attempt_to_delete(self, node: Node) -> None:
        """Some owner is not solid in the cache: ask the API about the object and each owner."""
        latest = await self._live(node.resource, node.identity)
        if latest is None or is_terminating(latest):
            return  # gone, replaced or being deleted: the informer will say so
        refs = owner_refs(latest)
        if not refs:
            return
        by_state: dict[OwnerState, list[OwnerRef]] = {s: [] for s in OwnerState}
        for ref in refs:
            state = await self._owner_state(node, ref)
            if state is None:
                return  # an owner the collector cannot look up: leave the object alone
            by_state[state].append(ref)
        owners = d.Owners(
            tuple(by_state[OwnerState.SOLID]),
            tuple(by_state[OwnerState.DANGLING]),
            tuple(by_state[OwnerState.WAITING]),
        )
        dependents = self.graph.dependents(node.uid)
        decision = d.decide(
            owners,
            latest["metadata"].get("finalizers") or [],
            has_dependents=bool(dependents),
            dependent_deleting_dependents=any(dep.deleting_dependents for dep in dependents),
        )
        if decision.verdict is d.Verdict.REMOVE_REFS:
            log.info("garbage collector: removing owners from %s: %s", node.identity, decision.reason)
            await self._patch(node, remove_owner_refs_patch(node.uid, decision.remove_uids))
        elif decision.verdict is d.Verdict.DELETE:
            assert decision.policy is not None
            if decision.unblock:
                await self._patch(node, d.unblock_patch(node.uid, refs))
            await self._delete(node, latest, decision.policy, decision.reason)

    async def _owner_state(self, node: Node, ref: OwnerRef) -> OwnerState | None:
        """What the API says of one owner, or None when it cannot be asked (logged once)."""
        resource = self.monitors.resource_of(ref.api_version, ref.kind)
        if resource is None:
            kind = (ref.api_version, ref.kind)
            if kind not in self._unresolved:
                log.warning(
                    "garbage collector: %s is not served; objects it owns, like %s, are left alone",
                    f"{ref.kind} ({ref.api_version})",
                    node.identity,
                )
            self._unresolved.setdefault(kind, set()).add(node.uid)
            return None
        if resource.namespaced and not node.identity.namespace:
            if node.uid not in self._invalid:
                self._invalid.add(node.uid)
                log.warning(
                    "garbage collector: %s is cluster-scoped but names a namespaced owner %s; left alone",
                    node.identity,
                    ref,
                )
            return None
        namespace = node.identity.namespace if resource.namespaced else ""
        owner_id = Identity(ref.api_version, ref.kind, namespace, ref.name, ref.uid)
        if owner_id in self.graph.absent:
            return OwnerState.DANGLING
        owner = await self._live(resource, owner_id)
        if owner is None:
            self.graph.absent.add(owner_id)
            return OwnerState.DANGLING
        return OwnerState.WAITING if is_deleting_dependents(owner) else OwnerState.SOLID

    async def _orphan_dependents(self, owner: Node) -> None:
        """Remove the owner from every dependent's ownerReferences, then its `orphan` finalizer."""
        dependents = self.graph.dependents(owner.uid)
        if dependents:
            log.info("garbage collector: orphaning %d dependents of %s", len(dependents), owner.identity)
        for dependent in dependents:
            await self._patch(dependent, remove_owner_refs_patch(dependent.uid, [owner.uid]))
        await self._remove_finalizer(owner, ORPHAN_FINALIZER)

    async def _delete_dependents(self, owner: Node) -> None:
        """A foreground deletion: have the dependents examined (each is deleted, as its owner is
        waiting), and free the owner once no dependent blocks it."""
        if not self.graph.blocking_dependents(owner.uid):
            await self._remove_finalizer(owner, FOREGROUND_FINALIZER)
            return
        for dependent in self.graph.dependents(owner.uid):
            if not dependent.deleting:
                self.queue.add(dependent.uid)

    # ------------------------------------------------------------------ API calls

    async def _live(self, resource: Resource, identity: Identity) -> Object | None:
        """The object as the API has it now, or None if there is no object of that uid there."""
        try:
            obj = await self.client.get(resource, identity.name, identity.namespace or None)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        return obj if obj.get("metadata", {}).get("uid") == identity.uid else None

    async def _patch(self, node: Node, patch: Object) -> None:
        """A strategic merge patch of the object; one that is gone or replaced needs none."""
        try:
            await self.client.patch(
                node.resource, node.identity.name, patch, node.identity.namespace or None,
                content_type=STRATEGIC_MERGE_PATCH,
            )  # fmt: skip
        except ApiError as exc:
            if not (exc.not_found or exc.code == 422):  # 422: the uid precondition failed
                raise

    async def _delete(self, node: Node, latest: Object, policy: str, reason: str) -> None:
        """Delete the object as it was read: the uid and resourceVersion are preconditions. If only
        its resourceVersion moved (a status write) and its owners are the same, delete it anyway."""
        meta = latest["metadata"]
        log.info("garbage collector: deleting %s (%s): %s", node.identity, policy, reason)
        name, namespace = node.identity.name, node.identity.namespace or None
        preconditions = {"uid": node.uid, "resourceVersion": meta.get("resourceVersion", "")}
        for attempt in range(2):
            try:
                await self.client.delete(
                    node.resource, name, namespace, propagation_policy=policy, preconditions=preconditions
                )
                return
            except ApiError as exc:
                if exc.not_found:
                    return
                if not exc.conflict or attempt:
                    raise
            again = await self._live(node.resource, node.identity)
            if again is None or again["metadata"].get("ownerReferences") != meta.get("ownerReferences"):
                log.info("garbage collector: %s changed owners meanwhile; not deleted", node.identity)
                return  # its change reaches the graph, which queues it again if need be
            preconditions = {"uid": node.uid}

    async def _remove_finalizer(self, node: Node, finalizer: str) -> None:
        """Remove one finalizer from the live object, pinned to the version read; the apiserver
        deletes the object once it has no finalizers left."""
        for _attempt in range(FINALIZER_ATTEMPTS):
            latest = await self._live(node.resource, node.identity)
            if latest is None or finalizer not in (latest["metadata"].get("finalizers") or []):
                return
            try:
                await self.client.patch(
                    node.resource, node.identity.name, d.without_finalizer_patch(latest, finalizer),
                    node.identity.namespace or None, content_type=MERGE_PATCH,
                )  # fmt: skip
            except ApiError as exc:
                if exc.not_found:
                    return
                if exc.conflict:
                    continue
                raise
            log.info("garbage collector: removed the %s finalizer of %s", finalizer, node.identity)
            return
        raise RuntimeError(f"{node.identity} kept changing while its {finalizer} finalizer was removed")
