"""The StatefulSet controller (Kubernetes' stateful_set.go and stateful_pod_control.go): handlers
that map a StatefulSet or pod to the set's key, and `sync(key)`, which claims the set's
ControllerRevisions and pods (only pods whose name says they belong to it), settles its update
revision, carries out plan.py's plan with the events Kubernetes records ("create Pod db-0 in
StatefulSet db successful"), writes status and trims the revision history.

Names are fixed, so a create that meets an existing pod is simply waited for (the informer is
behind); no expectations are needed. volumeClaimTemplates are not served yet: each claim becomes an
emptyDir volume of its name (identity.claim_volumes), logged once per set.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from controller.framework.context import ControllerContext, QueueController, settled_by_next_sync
from controller.framework.controllerref import RefManager
from controller.framework.history import History
from controller.framework.owners import claim_candidates, enqueue_pod_owners, owner_key, selecting_owners
from controller.statefulset.identity import identity_labels, is_member_of, ordinal_of, pod_revision
from controller.statefulset.plan import Action, plan_sync, wire_status
from controller.statefulset.revisions import as_revision, resolve_revisions, revisions_to_delete
from kubelite.client import MERGE_PATCH, ApiError
from kubelite.objects import Object, key_of
from kubelite.resources import PODS, STATEFULSETS
from kubelite.selectors import LabelSelector, SelectorError, label_selector_from_spec

log = logging.getLogger(__name__)


class StatefulSetController(QueueController):
    name = "statefulset"

    def __init__(self, ctx: ControllerContext):
        super().__init__()
        self.client = ctx.client
        self.clock: Callable[[], dt.datetime] = ctx.clock
        self.sets = ctx.informer(STATEFULSETS)
        self.pods = ctx.informer(PODS)
        self.history = History(ctx, STATEFULSETS)
        self.recorder = ctx.recorder("statefulset-controller")
        self.refs = RefManager(self.client, PODS, owner_resource=STATEFULSETS)
        self.claims_logged: set[str] = set()  # uids of sets whose volumeClaimTemplates were logged
        self.sets.add_handler(self._on_set)
        self.pods.add_handler(self._on_pod)

    # ------------------------------------------------------------------ event handlers: enqueue only

    def _on_set(self, event_type: str, sts: Object, old: Object | None) -> None:
        self.queue.add(key_of(sts))

    def _owner_key(self, pod: Object) -> str | None:
        return owner_key(self.sets, "StatefulSet", pod)

    def _selecting(self, pod: Object) -> list[str]:
        """Sets that could adopt an orphan pod: their selector matches and the name is theirs."""
        return selecting_owners(
            self.sets,
            pod,
            lambda sts, p: is_member_of(sts, p) and selector_of(sts).matches(p["metadata"].get("labels")),
        )

    def _on_pod(self, event_type: str, pod: Object, old: Object | None) -> None:
        key = self._owner_key(pod)
        old_key = self._owner_key(old) if old is not None else None
        enqueue_pod_owners(self.queue, event_type, pod, key, old_key, self._selecting)

    # ------------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        sts = self.sets.get(key)
        if sts is None:
            return
        try:
            selector = selector_of(sts)
        except SelectorError as exc:
            log.error("StatefulSet %s has an invalid selector, not syncing it: %s", key, exc)
            return
        self._log_claims(sts)
        revisions = await self.history.claim(sts, selector.matches)
        candidates = claim_candidates(self.pods, sts)
        pods = await self.refs.claim(
            sts, lambda p: selector.matches(p["metadata"].get("labels")) and is_member_of(sts, p), candidates
        )
        current, update, collision_count = await resolve_revisions(self.history, sts, revisions)
        now = self.clock()
        plan = plan_sync(sts, pods, as_revision(current), as_revision(update), collision_count, now)
        failure: ApiError | None = None
        try:
            for step in plan.steps:
                if not await self._run_step(sts, step):
                    break
        except ApiError as exc:
            failure = exc
        if plan.waiting:
            log.debug("StatefulSet %s is waiting for %s", key, plan.waiting)
        await self._write_status(sts, wire_status(plan.status))
        live = {current["metadata"]["name"], update["metadata"]["name"]} | {pod_revision(p) for p in pods}
        limit = int(sts.get("spec", {}).get("revisionHistoryLimit", 10) or 0)
        for revision in revisions_to_delete(revisions, live, limit):
            await self.history.delete(revision)
        min_ready = int(sts.get("spec", {}).get("minReadySeconds") or 0)
        if min_ready and plan.status.get("availableReplicas", 0) != int(sts["spec"].get("replicas") or 0):
            self.queue.add_after(key, float(min_ready))
        if failure is not None:
            raise failure

    async def _run_step(self, sts: Object, step: list[Action]) -> bool:
        """Run a step's actions together; False when one could not be done (stop the sync there)."""
        results = await asyncio.gather(*(self._act(sts, a) for a in step), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        return all(results)

    async def _act(self, sts: Object, action: Action) -> bool:
        if action.verb == "create":
            return await self.create_pod(sts, action.pod)
        if action.verb == "delete":
            return await self.delete_pod(sts, action.pod, action.reason)
        return await self.update_identity(sts, action.pod)

    # ------------------------------------------------------------------ StatefulPodControl

    async def create_pod(self, sts: Object, pod: Object) -> bool:
        name = pod["metadata"]["name"]
        try:
            await self.client.create(PODS, pod)
        except ApiError as exc:
            if exc.already_exists:
                log.info("pod %s of StatefulSet %s exists already; waiting for the cache", name, key_of(sts))
                return False
            await self._event(sts, "create", name, exc)
            if exc.code in (403, 422):
                return False  # a terminating namespace or an invalid template: retrying cannot help
            raise
        await self._event(sts, "create", name)
        return True

    async def delete_pod(self, sts: Object, pod: Object, reason: str) -> bool:
        m = pod["metadata"]
        owner = f"{m.get('namespace')}/{sts['metadata']['name']}"
        if reason == "RecreatingFailedPod":
            message = f"StatefulSet {owner} is recreating failed Pod {m['name']}"
            await self.recorder.record(sts, "Warning", reason, message)
        elif reason == "RecreatingTerminatedPod":
            message = f"StatefulSet {owner} is recreating terminated Pod {m['name']}"
            await self.recorder.record(sts, "Normal", reason, message)
        else:
            log.info("StatefulSet %s: deleting pod %s for %s", key_of(sts), m["name"], reason)
        try:
            await self.client.delete(
                PODS, m["name"], m.get("namespace"), preconditions={"uid": m.get("uid", "")}
            )
        except ApiError as exc:
            if exc.not_found or exc.conflict:
                return True  # gone already: what we wanted
            await self._event(sts, "delete", m["name"], exc)
            raise
        await self._event(sts, "delete", m["name"])
        return True

    async def update_identity(self, sts: Object, pod: Object) -> bool:
        m = pod["metadata"]
        patch = {"metadata": {"labels": identity_labels(sts, ordinal_of(pod))}}
        try:
            await self.client.patch(PODS, m["name"], patch, m.get("namespace"), content_type=MERGE_PATCH)
        except ApiError as exc:
            if exc.not_found or exc.conflict:
                return False
            await self._event(sts, "update", m["name"], exc)
            raise
        await self._event(sts, "update", m["name"])
        return True

    async def _event(self, sts: Object, verb: str, pod_name: str, error: ApiError | None = None) -> None:
        """recordPodEvent: SuccessfulCreate "create Pod db-0 in StatefulSet db successful", and so on."""
        name = sts["metadata"]["name"]
        if error is None:
            await self.recorder.record(
                sts,
                "Normal",
                f"Successful{verb.title()}",
                f"{verb} Pod {pod_name} in StatefulSet {name} successful",
            )
        else:
            message = error.status.get("message", str(error))
            await self.recorder.record(
                sts,
                "Warning",
                f"Failed{verb.title()}",
                f"{verb} Pod {pod_name} in StatefulSet {name} failed error: {message}",
            )

    async def _write_status(self, sts: Object, status: Object) -> None:
        if sts.get("status") == status:
            return
        try:
            await self.client.update(STATEFULSETS, {**sts, "status": status}, subresource="status")
        except ApiError as exc:
            if not settled_by_next_sync(self.queue, "StatefulSet", key_of(sts), exc):
                raise

    def _log_claims(self, sts: Object) -> None:
        uid = sts["metadata"].get("uid", "")
        if sts.get("spec", {}).get("volumeClaimTemplates") and uid not in self.claims_logged:
            self.claims_logged.add(uid)
            log.warning(
                "StatefulSet %s has volumeClaimTemplates; PersistentVolumeClaims are not served yet, "
                "so its pods get emptyDir volumes of those names",
                key_of(sts),
            )


def selector_of(sts: Object) -> LabelSelector:
    return label_selector_from_spec(sts.get("spec", {}).get("selector"))
