"""The Deployment controller (Kubernetes' deployment_controller.go): the informer handlers, which
only map a Deployment, ReplicaSet or pod to the key of the Deployment concerned, and `sync(key)`,
which claims the Deployment's ReplicaSets and hands it to one path, in upstream's order: a
Deployment being deleted only gets its status; a paused one is only scaled; a rollback annotation
is honoured; a changed spec.replicas is a scaling event; otherwise the strategy rolls out
(rolling.py, recreate.py). Every path ends by writing status.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from controller.deployment.recreate import RecreateMixin
from controller.deployment.rollback import RollbackMixin, rollback_to
from controller.deployment.rolling import RollingMixin
from controller.deployment.status import paused_condition, set_condition
from controller.deployment.sync import ReplicaSets
from controller.deployment.util import RECREATE, ROLLING_UPDATE, is_scaling_event, strategy_type
from controller.framework.context import ControllerContext, QueueController
from controller.framework.controllerref import RefManager
from controller.framework.owners import resolve_controller_ref
from kubelite.informer import CONTROLLER_INDEX
from kubelite.objects import Object, controller_ref, is_terminating, key_of
from kubelite.resources import DEPLOYMENTS, PODS, REPLICASETS
from kubelite.selectors import LabelSelector, SelectorError, label_selector_from_spec

log = logging.getLogger(__name__)

SELECTING_ALL = "This deployment is selecting all pods. A non-empty selector is required."


def selects_everything(selector: Any) -> bool:
    """An empty selector `{}`: Kubernetes refuses to act on a Deployment that would own every pod."""
    return (
        isinstance(selector, dict)
        and not selector.get("matchLabels")
        and not selector.get("matchExpressions")
    )


class DeploymentController(RollingMixin, RecreateMixin, RollbackMixin, QueueController):
    name = "deployment"

    def __init__(self, ctx: ControllerContext):
        super().__init__()
        self.ctx = ctx
        self.client = ctx.client
        self.clock: Callable[[], dt.datetime] = ctx.clock
        self.recorder = ctx.recorder("deployment-controller")
        self.deployments = ctx.informer(DEPLOYMENTS)
        self.replicasets = ctx.informer(REPLICASETS)
        self.pods = ctx.informer(PODS)
        self.rs_refs = RefManager(self.client, REPLICASETS, owner_resource=DEPLOYMENTS)
        self.deployments.add_handler(self._on_deployment)
        self.replicasets.add_handler(self._on_replica_set)
        self.pods.add_handler(self._on_pod)

    # ------------------------------------------------------------------ event handlers: enqueue only

    def _on_deployment(self, event_type: str, d: Object, old: Object | None) -> None:
        self.queue.add(key_of(d))

    def _resolve(self, namespace: str | None, ref: dict[str, Any] | None) -> str | None:
        """The key of the Deployment a controller reference names, if the cache has that very one."""
        return resolve_controller_ref(self.deployments, "Deployment", namespace, ref)

    def _selecting(self, rs: Object) -> list[str]:
        """Keys of the Deployments whose selector matches an orphan ReplicaSet (it may be adopted)."""
        labels = rs["metadata"].get("labels") or {}
        keys = []
        for d in self.deployments.list(rs["metadata"].get("namespace", "")):
            selector = d.get("spec", {}).get("selector")
            if selector is None or selects_everything(selector):
                continue
            try:
                if label_selector_from_spec(selector).matches(labels):
                    keys.append(key_of(d))
            except SelectorError:
                continue
        return keys

    def _enqueue(self, key: str | None) -> None:
        if key is not None:
            self.queue.add(key)

    def _on_replica_set(self, event_type: str, rs: Object, old: Object | None) -> None:
        namespace = rs["metadata"].get("namespace")
        ref = controller_ref(rs)
        if event_type == "DELETED" or (event_type == "ADDED" and is_terminating(rs)):
            self._enqueue(self._resolve(namespace, ref))
            return
        ref_changed = False
        if event_type == "MODIFIED" and old is not None:
            if old["metadata"].get("resourceVersion") == rs["metadata"].get("resourceVersion"):
                return
            old_ref = controller_ref(old)
            ref_changed = old_ref != ref
            if ref_changed:
                self._enqueue(self._resolve(namespace, old_ref))
        if ref is not None:
            self._enqueue(self._resolve(namespace, ref))
            return
        labels_changed = old is None or old["metadata"].get("labels") != rs["metadata"].get("labels")
        if event_type == "ADDED" or labels_changed or ref_changed:
            for key in self._selecting(rs):
                self.queue.add(key)

    def _on_pod(self, event_type: str, pod: Object, old: Object | None) -> None:
        """A Recreate rollout waits for the old pods to be gone: each one gone is a reason to look."""
        if event_type != "DELETED":
            return
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        namespace = pod["metadata"].get("namespace")
        rs = self.replicasets.get(f"{namespace}/{ref.get('name')}")
        if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
            return
        key = self._resolve(namespace, controller_ref(rs))
        d = self.deployments.get(key) if key else None
        if d is not None and strategy_type(d) == RECREATE:
            self.queue.add(key_of(d))

    # ------------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        cached = self.deployments.get(key)
        if cached is None:
            log.debug("deployment %s has been deleted", key)
            return
        d = copy.deepcopy(cached)  # the sync's working copy; the cache stays as the API sent it
        if selects_everything(d["spec"].get("selector")):
            await self.event(d, "Warning", "SelectingAll", SELECTING_ALL)
            status = dict(d.get("status") or {})
            generation = int(d["metadata"].get("generation") or 0)
            if int(status.get("observedGeneration") or 0) < generation:
                await self.persist_status(d, {**status, "observedGeneration": generation})
            return
        try:
            selector = label_selector_from_spec(d["spec"].get("selector"))
        except SelectorError as exc:
            log.error("deployment %s has an invalid selector, not syncing it: %s", key, exc)
            return
        rs_list = await self.get_replica_sets_for_deployment(d, selector)
        if is_terminating(d):
            new_rs, old_rss = await self.get_all_replica_sets_and_sync_revision(d, rs_list, create=False)
            await self.sync_deployment_status([*old_rss, new_rs], new_rs, d)
            return
        condition = paused_condition(d, self.clock())
        if condition is not None:
            set_condition(d.setdefault("status", {}), condition)
        if d["spec"].get("paused"):
            new_rs, old_rss = await self.get_all_replica_sets_and_sync_revision(d, rs_list, create=False)
            await self.sync_paused_or_scaled(d, new_rs, old_rss)
            return
        if rollback_to(d) is not None:
            await self.rollback(d, rs_list)
            return
        new_rs, old_rss = await self.get_all_replica_sets_and_sync_revision(d, rs_list, create=False)
        if is_scaling_event(d, [*old_rss, new_rs]):
            await self.sync_paused_or_scaled(d, new_rs, old_rss)
            return
        kind = strategy_type(d)
        if kind == RECREATE:
            pods = self.pods_by_replica_set(d, selector, rs_list)
            await self.rollout_recreate(d, new_rs, old_rss, pods)
        elif kind == ROLLING_UPDATE:
            await self.rollout_rolling(d, new_rs, old_rss)
        else:
            log.error("deployment %s: unexpected deployment strategy type: %s", key, kind)

    async def get_replica_sets_for_deployment(self, d: Object, selector: LabelSelector) -> ReplicaSets:
        """The ReplicaSets the Deployment controls, after adopting matching orphans and releasing its
        own that no longer match."""
        candidates = self.replicasets.list(d["metadata"].get("namespace", ""))
        return await self.rs_refs.claim(
            d, lambda rs: selector.matches(rs["metadata"].get("labels")), candidates
        )

    def pods_by_replica_set(
        self, d: Object, selector: LabelSelector, rs_list: ReplicaSets
    ) -> dict[str, list[Object]]:
        """The Deployment's pods (by its selector) grouped by the uid of the ReplicaSet controlling them."""
        out: dict[str, list[Object]] = {}
        for rs in rs_list:
            uid = rs["metadata"].get("uid", "")
            pods = self.pods.by_index(CONTROLLER_INDEX, uid)
            out[uid] = [p for p in pods if selector.matches(p["metadata"].get("labels"))]
        return out
