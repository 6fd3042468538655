"""The Job controller (kube-controller-manager's `job`): runs a Job's pods to completion.

Handlers only enqueue: a Job change at once, a pod change batched by a second as Kubernetes
does. `sync` claims the Job's pods (adopting matching orphans), asks `plan.plan_sync` what to do,
deletes and creates pods with expectations so a second sync never doubles them, then counts the
finished pods with the tracking finalizer (tracking.py: list them as uncounted, remove their
finalizers, count them), records the events and re-queues itself for the back-off or the active
deadline. Pods holding the finalizer whose Job is gone or finished are let go by an orphan sync
(queued as `orphan-pod:<namespace>/<name>`), so deleting a Job still deletes its pods.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import logging
from collections.abc import Callable

from controller.framework.context import ControllerContext, QueueController, settled_by_next_sync
from controller.framework.controllerref import RefManager
from controller.framework.expectations import Expectations
from controller.framework.owners import claim_candidates
from controller.framework.podcontrol import PodControl, pod_from_template
from controller.job.finalizers import RemovalExpectations, owner_keeps_finalizer, removal_patch
from controller.job.indexes import indexed_template
from controller.job.plan import Plan, finish, is_finished, plan_sync
from controller.job.tracking import has_finalizer, with_finalizer
from controller.replicaset import slow_start_batches
from kubelite.client import STRATEGIC_MERGE_PATCH, ApiError
from kubelite.objects import Object, controller_ref, is_terminating, key_of, owner_reference
from kubelite.resources import JOBS, PODS
from kubelite.selectors import SelectorError, label_selector_from_spec

log = logging.getLogger(__name__)

SYNC_JOB_BATCH_PERIOD = 1.0  # pod changes are gathered this long before a sync (syncJobBatchPeriod)
ORPHAN_POD = "orphan-pod:"  # queue keys of pods whose finalizer an orphan sync removes


class JobController(QueueController):
    name = "job"

    def __init__(self, ctx: ControllerContext):
        super().__init__()
        self.client = ctx.client
        self.clock: Callable[[], dt.datetime] = ctx.clock
        self.jobs = ctx.informer(JOBS)
        self.pods = ctx.informer(PODS)
        self.expectations = Expectations()
        self.removals = RemovalExpectations()  # finalizer removals sent, not yet observed
        self.recorder = ctx.recorder("job-controller")
        self.pod_control = PodControl(self.client, self.recorder)
        self.refs = RefManager(self.client, PODS, owner_resource=JOBS)
        self._batching: set[str] = set()  # keys with a batched sync pending (one timer each)
        self.jobs.add_handler(self._on_job)
        self.pods.add_handler(self._on_pod)

    # ------------------------------------------------------------------ handlers: enqueue only

    def _on_job(self, event_type: str, job: Object, old: Object | None) -> None:
        if event_type == "DELETED":
            self.expectations.forget(key_of(job))
            self.removals.forget(key_of(job))
        self.queue.add(key_of(job))

    def _job_key(self, pod: Object | None) -> str | None:
        ref = controller_ref(pod) if pod is not None else None
        if pod is None or ref is None or ref.get("kind") != "Job":
            return None
        key = f"{pod['metadata'].get('namespace')}/{ref.get('name')}"
        job = self.jobs.get(key)
        if job is None or job["metadata"].get("uid") != ref.get("uid"):
            return None
        return key

    def _enqueue_batched(self, key: str) -> None:
        """A sync a second from now, gathering the pod changes until then into one."""
        if key not in self._batching:
            self._batching.add(key)
            self.queue.add_after(key, SYNC_JOB_BATCH_PERIOD)

    def _on_pod(self, event_type: str, pod: Object, old: Object | None) -> None:
        key = self._job_key(pod)
        if event_type != "DELETED" and has_finalizer(pod):
            job = self.jobs.get(key) if key is not None else None
            if job is None or is_finished(job):
                self.queue.add(ORPHAN_POD + key_of(pod))
        if key is None:
            if controller_ref(pod) is None:
                for job in self.jobs.list(pod["metadata"].get("namespace", "")):
                    if self._selects(job, pod):
                        self._enqueue_batched(key_of(job))
            old_key = self._job_key(old)
            if old_key:
                self._enqueue_batched(old_key)
            return
        pod_key = key_of(pod)
        if event_type == "DELETED" or not has_finalizer(pod):
            self.removals.observed(key, pod["metadata"].get("uid", ""))
        if event_type == "ADDED" and not is_terminating(pod):
            self.expectations.creation_observed(key)
        elif event_type == "DELETED" or is_terminating(pod):
            self.expectations.deletion_observed(key, pod_key)
        self._enqueue_batched(key)

    @staticmethod
    def _selects(job: Object, pod: Object) -> bool:
        try:
            selector = label_selector_from_spec((job.get("spec") or {}).get("selector"))
        except SelectorError:
            return False
        return selector.matches(pod["metadata"].get("labels"))

    # ------------------------------------------------------------------ sync

    async def sync(self, key: str) -> None:
        if key.startswith(ORPHAN_POD):
            await self._sync_orphan_pod(key[len(ORPHAN_POD) :])
            return
        self._batching.discard(key)
        job = self.jobs.get(key)
        if job is None:
            self.expectations.forget(key)
            return
        if is_finished(job):
            return
        mode = (job.get("spec") or {}).get("completionMode", "NonIndexed")
        if mode not in ("NonIndexed", "Indexed"):
            log.info("job %s has the unknown completionMode %r; skipping it", key, mode)
            return
        try:
            selector = label_selector_from_spec((job.get("spec") or {}).get("selector"))
        except SelectorError as exc:
            log.error("job %s has an invalid selector, not syncing it: %s", key, exc)
            return
        may_manage = self.expectations.satisfied(key) and not is_terminating(job)
        candidates = claim_candidates(self.pods, job)
        pods = await self.refs.claim(job, lambda p: selector.matches(p["metadata"].get("labels")), candidates)
        plan = plan_sync(job, pods, self.clock(), may_manage, self.removals.pending(key))
        failure: BaseException | None = None
        try:
            await self._delete(job, plan)
            created = await self._create(job, plan)
        except ApiError as exc:
            failure, created = exc, 0
        if created < plan.create:
            plan.status["active"] = max(int(plan.status.get("active") or 0) - (plan.create - created), 0)
            if not plan.status["active"]:
                plan.status.pop("active")
        written, error = await self._track(job, plan)
        failure = failure or error
        for event_type, reason, message in plan.events:
            await self.recorder.record(job, event_type, reason, message)
        if written is not None:
            await self._write_status(written, plan.status)
        if plan.requeue_after is not None:
            self.queue.add_after(key, plan.requeue_after)
        if failure is not None:
            raise failure

    async def _track(self, job: Object, plan: Plan) -> tuple[Object | None, BaseException | None]:
        """List the newly finished pods as uncounted (a status write), remove their finalizers,
        and count them in plan.status; the Job to write that status over (None: the first write
        lost a race, the next sync starts over) and the first failed removal, if any."""
        tracking = plan.tracking
        if tracking.flush:
            written = await self._write_status(job, plan.status)
            if written is None:
                return None, None
            job = written
        removed, error = await self._remove_finalizers(key_of(job), tracking.remove)
        finish(plan, removed, self.clock())
        return job, error

    async def _remove_finalizers(self, key: str, pods: list[Object]) -> tuple[set[str], BaseException | None]:
        """Remove the tracking finalizer from pods; the uids whose finalizer is gone (or whose pod
        is) and the first error. Unobserved removals are expected, so a sync on a stale cache does
        not count twice."""
        error: BaseException | None = None
        if not pods:
            return set(), None
        uids = [p["metadata"].get("uid", "") for p in pods]
        self.removals.expect(key, set(uids))
        results = await asyncio.gather(*(self._remove_finalizer(p) for p in pods), return_exceptions=True)
        removed: set[str] = set()
        for uid, result in zip(uids, results, strict=True):
            if result is True:
                removed.add(uid)
                continue
            self.removals.observed(key, uid)
            if result is None:  # the pod is gone: nothing holds it back from being counted
                removed.add(uid)
            elif isinstance(result, BaseException):
                log.info("job %s: removing the tracking finalizer of pod uid %s: %s", key, uid, result)
                error = error or result
        return removed, error

    async def _remove_finalizer(self, pod: Object) -> bool | None:
        """True: removed; None: the pod (with that uid) no longer exists."""
        m = pod["metadata"]
        try:
            await self.client.patch(
                PODS, m["name"], removal_patch(pod), m.get("namespace"), content_type=STRATEGIC_MERGE_PATCH
            )
        except ApiError as exc:
            if exc.not_found or exc.code in (409, 422):  # 409/422: uid precondition, a new pod
                return None
            raise
        return True

    async def _sync_orphan_pod(self, pod_key: str) -> None:
        """Let go of a pod whose Job is gone, finished or not its controller (syncOrphanPod)."""
        pod = self.pods.get(pod_key)
        if pod is None or not has_finalizer(pod):
            return
        ref = controller_ref(pod)
        job = None
        if ref is not None:
            job = self.jobs.get(f"{pod['metadata'].get('namespace')}/{ref.get('name')}")
        if owner_keeps_finalizer(pod, job):
            return
        await self._remove_finalizer(pod)

    async def _delete(self, job: Object, plan: Plan) -> None:
        if not plan.delete:
            return
        key = key_of(job)
        self.expectations.expect_deletions(key, [key_of(p) for p in plan.delete])
        results = await asyncio.gather(
            *(self.pod_control.delete(p, job) for p in plan.delete), return_exceptions=True
        )
        for pod, result in zip(plan.delete, results, strict=True):
            if result is not True:
                self.expectations.deletion_observed(key, key_of(pod))
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def _create(self, job: Object, plan: Plan) -> int:
        """Create the planned pods in slow-start batches; how many were made."""
        if plan.create <= 0:
            return 0
        key = key_of(job)
        self.expectations.expect_creations(key, plan.create)
        template = with_finalizer((job.get("spec") or {}).get("template") or {})
        ref = owner_reference(job)
        todo = list(plan.indexes) if plan.indexes else [None] * plan.create
        created = 0
        for batch in slow_start_batches(plan.create):
            chunk, todo = todo[:batch], todo[batch:]
            results = await asyncio.gather(
                *(self._create_pod(job, template, ref, index) for index in chunk), return_exceptions=True
            )
            made = sum(1 for r in results if isinstance(r, dict))
            created += made
            if made < len(chunk):
                self.expectations.lower_creations(key, plan.create - created)
                errors = [r for r in results if isinstance(r, BaseException)]
                if errors:
                    raise errors[0]
                break
        return created

    async def _create_pod(
        self, job: Object, template: Object, ref: Object, index: int | None
    ) -> Object | None:
        """One pod (PodControl's create, with an Indexed Job's `<job>-<index>-` name)."""
        name = job["metadata"]["name"]
        if index is None:
            return await self.pod_control.create(template, job, ref)
        pod = pod_from_template(indexed_template(template, name, index), job, ref)
        pod["metadata"]["generateName"] = f"{name}-{index}-"
        try:
            created = await self.client.create(PODS, pod)
        except ApiError as exc:
            await self.recorder.record(
                job, "Warning", "FailedCreate", f"Error creating: {exc.status.get('message', exc)}"
            )
            if exc.code in (403, 422):
                return None
            raise
        await self.recorder.record(
            job, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}"
        )
        return created

    async def _write_status(self, job: Object, status: dict) -> Object | None:
        """The Job as written (as it was when nothing changed); None if a newer Job is queued."""
        if (job.get("status") or {}) == status:
            return job
        try:
            body = {**job, "status": copy.deepcopy(status)}
            return await self.client.update(JOBS, body, subresource="status")
        except ApiError as exc:
            if not settled_by_next_sync(self.queue, "Job", key_of(job), exc):
                raise
        return None
