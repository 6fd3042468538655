"""The TTL-after-finished controller (kube-controller-manager's `ttl-after-finished`): deletes a
finished Job `ttlSecondsAfterFinished` after it finished, with propagation Background so the
garbage collector removes its pods. `expires_in` is the pure decision; the delete re-reads the
Job and carries its uid and resourceVersion as preconditions, so a Job changed meanwhile (its TTL
raised, say) is looked at again instead of being deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from controller.framework.context import ControllerContext, QueueController
from controller.job.plan import condition_true
from kubelite.client import ApiError
from kubelite.objects import Object, is_terminating, key_of, parse_rfc3339, split_key
from kubelite.resources import JOBS

log = logging.getLogger(__name__)


def finish_time(job: Object) -> dt.datetime | None:
    """When the Job became Complete or Failed (None while it runs)."""
    cond = condition_true(job, "Complete") or condition_true(job, "Failed")
    if cond is None or not cond.get("lastTransitionTime"):
        return None
    return parse_rfc3339(cond["lastTransitionTime"])


def expires_in(job: Object, now: dt.datetime) -> float | None:
    """Seconds until a finished Job with a TTL may be deleted (<= 0: now); None: never, or not yet
    finished, or already being deleted."""
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if ttl is None or is_terminating(job):
        return None
    finished = finish_time(job)
    if finished is None:
        return None
    return float(ttl) - (now - finished).total_seconds()


class TTLAfterFinishedController(QueueController):
    name = "ttl-after-finished"

    def __init__(self, ctx: ControllerContext):
        super().__init__()
        self.client = ctx.client
        self.clock: Callable[[], dt.datetime] = ctx.clock
        self.jobs = ctx.informer(JOBS)
        self.jobs.add_handler(self._on_job)

    def _on_job(self, event_type: str, job: Object, old: Object | None) -> None:
        if event_type != "DELETED" and expires_in(job, self.clock()) is not None:
            self.queue.add(key_of(job))

    def _not_due(self, key: str, job: Object) -> bool:
        """Whether the Job is not to be deleted now; when its time is still to come, come back then."""
        left = expires_in(job, self.clock())
        if left is not None and left > 0:
            self.queue.add_after(key, left)
        return left is None or left > 0

    async def sync(self, key: str) -> None:
        job = self.jobs.get(key)
        if job is None or self._not_due(key, job):
            return
        namespace, name = split_key(key)
        try:
            # the cache may be behind: judge the Job as the apiserver has it now (processJob)
            fresh = await self.client.get(JOBS, name, namespace)
            if self._not_due(key, fresh):
                return
            meta = fresh["metadata"]
            preconditions = {"uid": meta.get("uid", ""), "resourceVersion": meta.get("resourceVersion", "")}
            await self.client.delete(
                JOBS, name, namespace, propagation_policy="Background", preconditions=preconditions
            )
            log.info(
                "deleted job %s: finished more than %ss ago", key, fresh["spec"]["ttlSecondsAfterFinished"]
            )
        except ApiError as exc:
            if exc.not_found:
                return
            if exc.conflict:
                self.queue.add(key)
                return
            raise
