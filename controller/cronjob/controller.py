"""The CronJob controller (Kubernetes' cronjob_controllerv2): at each scheduled time, a Job made
from the CronJob's template, named after that time.

A sync reconciles status.active with the Jobs the CronJob controls (finished ones leave it,
SawCompletedJob; vanished ones too, MissingJob), trims finished Jobs to the history limits, then,
unless suspended, finds the most recent unmet scheduled time: too late for
startingDeadlineSeconds is MissSchedule, Forbid with a Job still active is JobAlreadyActive,
Replace deletes the active Jobs first; otherwise it creates the Job (SuccessfulCreate) and records
it in status.active and lastScheduleTime. Every sync ends by asking the queue to come back at
the next scheduled time. Time comes from the context's clock, so tests drive it by hand.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from controller.cronjob.jobs import (
    finished_type,
    is_controlled_by,
    job_from_template,
    job_name,
    job_ref,
    oldest_beyond,
)
from controller.cronjob.schedule import (
    InvalidSchedule,
    Missed,
    most_recent_schedule_time,
    next_schedule_delay,
)
from controller.framework.context import ControllerContext, QueueController, settled_by_next_sync
from controller.framework.owners import owner_key
from kubelite.client import ApiError
from kubelite.cron import CronError, Schedule, load_location, parse_standard
from kubelite.objects import Object, controller_ref, key_of, parse_rfc3339, split_key
from kubelite.resources import CRONJOBS, JOBS

log = logging.getLogger(__name__)

# kube-controller-manager reads schedules without a timeZone in its own local zone; ours is UTC
CONTROLLER_LOCAL_ZONE: dt.tzinfo = dt.UTC
TOO_MANY_MISSED_MESSAGE = (
    "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew"
)


@dataclass
class Outcome:
    """What a sync decided: when to come back (seconds) and whether status must be written."""

    requeue_after: float | None = None
    update_status: bool = False


def remove_active(cronjob: Object, uid: str | None) -> None:
    status = cronjob.setdefault("status", {})
    status["active"] = [ref for ref in status.get("active") or [] if ref.get("uid") != uid]
    if not status["active"]:
        status.pop("active")


def in_active(cronjob: Object, uid: str | None) -> bool:
    return any(ref.get("uid") == uid for ref in (cronjob.get("status") or {}).get("active") or [])


def time_zone_of(cronjob: Object) -> dt.tzinfo:
    zone = (cronjob.get("spec") or {}).get("timeZone")
    return CONTROLLER_LOCAL_ZONE if zone is None else load_location(zone)


def schedule_of(cronjob: Object) -> Schedule:
    """The parsed schedule in the CronJob's zone (a legacy `TZ=` prefix in the schedule wins)."""
    return parse_standard(str((cronjob.get("spec") or {}).get("schedule") or ""), time_zone_of(cronjob))


def rfc1123z(moment: dt.datetime) -> str:
    """Go's time.RFC1123Z in UTC, as the MissSchedule event prints the missed time."""
    return moment.astimezone(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


class CronJobController(QueueController):
    name = "cronjob"

    def __init__(self, ctx: ControllerContext):
        super().__init__()
        self.client = ctx.client
        self.clock: Callable[[], dt.datetime] = ctx.clock
        self.cronjobs = ctx.informer(CRONJOBS)
        self.jobs = ctx.informer(JOBS)
        self.recorder = ctx.recorder("cronjob-controller")
        self.cronjobs.add_handler(self._on_cronjob)
        self.jobs.add_handler(self._on_job)

    # ------------------------------------------------------------------ event handlers: enqueue only

    def _on_cronjob(self, event_type: str, obj: Object, old: Object | None) -> None:
        key = key_of(obj)
        if event_type != "MODIFIED" or old is None:
            self.queue.add(key)
            return
        spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
        if (spec.get("schedule"), spec.get("timeZone")) == (
            old_spec.get("schedule"),
            old_spec.get("timeZone"),
        ):
            self.queue.add(key)
            return
        # a new schedule: come back at its next time (an earlier wake-up than the old one wins)
        try:
            delay = next_schedule_delay(obj, self.clock(), schedule_of(obj))
        except CronError:
            self.queue.add(key)  # the sync reports the unparseable schedule
            return
        if delay is not None:
            self.queue.add_after(key, delay)

    def _on_job(self, event_type: str, job: Object, old: Object | None) -> None:
        keys = {owner_key(self.cronjobs, "CronJob", job)}
        if old is not None:
            keys.add(owner_key(self.cronjobs, "CronJob", old))
        for key in keys - {None}:
            self.queue.add(str(key))

    # ------------------------------------------------------------------ sync

    def controlled_jobs(self, cronjob: Object) -> list[Object]:
        """Every Job whose controller is this CronJob, whatever its labels say now."""
        name = cronjob["metadata"]["name"]
        out = []
        for job in self.jobs.list(cronjob["metadata"].get("namespace")):
            ref = controller_ref(job)
            if ref is not None and ref.get("kind") == "CronJob" and ref.get("name") == name:
                out.append(job)
        return out

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        cached = self.cronjobs.get(key)
        if cached is None:
            return
        cronjob = copy.deepcopy(cached)
        cronjob.setdefault("apiVersion", "batch/v1")
        cronjob.setdefault("kind", "CronJob")
        jobs = self.controlled_jobs(cronjob)
        trimmed = await self.cleanup_finished_jobs(cronjob, jobs)
        outcome = await self.sync_cronjob(cronjob, jobs)
        if trimmed or outcome.update_status:
            try:
                await self.client.update(CRONJOBS, cronjob, subresource="status")
            except ApiError as exc:
                if settled_by_next_sync(self.queue, "cronjob", key, exc):
                    return
                raise
        if outcome.requeue_after is not None:
            self.queue.add_after(key, outcome.requeue_after)
        log.debug("synced cronjob %s/%s", namespace, name)

    async def sync_cronjob(self, cronjob: Object, jobs: list[Object]) -> Outcome:
        """syncCronJob: status from the Jobs, then at most one new Job for the most recent due time."""
        now = self.clock()
        outcome = Outcome()
        await self._reconcile_active(cronjob, jobs, outcome)
        meta, spec = cronjob["metadata"], cronjob.get("spec") or {}
        if meta.get("deletionTimestamp"):
            return outcome
        try:
            zone = time_zone_of(cronjob)
        except CronError as err:
            zone_name = spec.get("timeZone")
            await self._event(
                cronjob, "Warning", "UnknownTimeZone", f'invalid timeZone: "{zone_name}": {err}'
            )
            return outcome
        if spec.get("suspend"):
            return outcome
        try:
            schedule = schedule_of(cronjob)
        except CronError as err:
            await self._event(
                cronjob,
                "Warning",
                "UnparseableSchedule",
                f'unparseable schedule: "{spec.get("schedule")}" : {err}',
            )
            return outcome
        try:
            due = most_recent_schedule_time(cronjob, now, schedule, include_starting_deadline=True)
        except InvalidSchedule as err:
            await self._event(
                cronjob, "Warning", "InvalidSchedule", f"invalid schedule: {spec.get('schedule')} : {err}"
            )
            return outcome
        scheduled = due.most_recent
        if scheduled is None or scheduled > now:
            outcome.requeue_after = next_schedule_delay(cronjob, now, schedule)
            return outcome
        if due.missed is Missed.MANY:
            await self._event(cronjob, "Warning", "TooManyMissedTimes", TOO_MANY_MISSED_MESSAGE)
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and scheduled + dt.timedelta(seconds=int(deadline)) < now:
            await self._event(
                cronjob,
                "Warning",
                "MissSchedule",
                f"Missed scheduled time to start a job: {rfc1123z(scheduled)}",
            )
            outcome.requeue_after = next_schedule_delay(cronjob, now, schedule)
            return outcome
        status = cronjob.setdefault("status", {})
        name = job_name(cronjob, scheduled)
        last = status.get("lastScheduleTime")
        if any(ref.get("name") == name for ref in status.get("active") or []) or (
            last and parse_rfc3339(last) == scheduled
        ):
            outcome.requeue_after = next_schedule_delay(cronjob, now, schedule)
            return outcome
        policy = spec.get("concurrencyPolicy")
        if policy == "Forbid" and status.get("active"):
            await self._event(
                cronjob, "Normal", "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
            )  # fmt: skip
            outcome.requeue_after = next_schedule_delay(cronjob, now, schedule)
            return outcome
        if policy == "Replace":
            for ref in list(status.get("active") or []):
                try:
                    job = await self.client.get(JOBS, ref["name"], ref.get("namespace"))
                except ApiError as exc:
                    await self._event(
                        cronjob, "Warning", "FailedGet", f"Get job: {exc.status.get('message', exc)}"
                    )
                    raise
                if not await self._delete_job(cronjob, job):
                    raise RuntimeError(f"could not replace job {ref.get('namespace')}/{ref['name']}")
                outcome.update_status = True
        created = await self._create_job(cronjob, job_from_template(cronjob, scheduled, zone))
        if created is None:
            return outcome
        status = cronjob.setdefault("status", {})
        status["active"] = [*(status.get("active") or []), job_ref(created)]
        status["lastScheduleTime"] = scheduled.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        outcome.update_status = True
        outcome.requeue_after = next_schedule_delay(cronjob, now, schedule)
        return outcome

    async def _reconcile_active(self, cronjob: Object, jobs: list[Object], outcome: Outcome) -> None:
        """status.active and lastSuccessfulTime from the Jobs the informer holds (and, for an
        active Job the informer lacks, from the apiserver: it may only be late)."""
        status = cronjob.setdefault("status", {})
        children = set()
        for job in jobs:
            uid = job["metadata"].get("uid")
            children.add(uid)
            finished = finished_type(job)
            listed = in_active(cronjob, uid)
            if not listed and finished is None:
                fresh = await self.client.get(
                    CRONJOBS, cronjob["metadata"]["name"], cronjob["metadata"].get("namespace")
                )
                if in_active(fresh, uid):
                    status["active"] = (fresh.get("status") or {}).get("active")
                    continue
                await self._event(
                    cronjob, "Warning", "UnexpectedJob",
                    f"Saw a job that the controller did not create or forgot: {job['metadata']['name']}",
                )  # fmt: skip
            elif listed and finished is not None:
                remove_active(cronjob, uid)
                await self._event(
                    cronjob, "Normal", "SawCompletedJob",
                    f"Saw completed job: {job['metadata']['name']}, status: {finished}",
                )  # fmt: skip
                outcome.update_status = True
            elif finished == "Complete":
                completed = (job.get("status") or {}).get("completionTime")
                last = status.get("lastSuccessfulTime")
                if completed and (not last or parse_rfc3339(completed) > parse_rfc3339(last)):
                    status["lastSuccessfulTime"] = completed
                    outcome.update_status = True
        for ref in list(status.get("active") or []):
            if ref.get("uid") in children:
                continue
            try:
                await self.client.get(JOBS, ref["name"], ref.get("namespace"))
            except ApiError as exc:
                if not exc.not_found:
                    raise
                await self._event(cronjob, "Normal", "MissingJob", f"Active job went missing: {ref['name']}")
                remove_active(cronjob, ref.get("uid"))
                outcome.update_status = True

    async def cleanup_finished_jobs(self, cronjob: Object, jobs: list[Object]) -> bool:
        """Delete the oldest finished Jobs beyond successfulJobsHistoryLimit / failedJobsHistoryLimit."""
        spec = cronjob.get("spec") or {}
        changed = False
        for kind, limit in (("Complete", spec.get("successfulJobsHistoryLimit")),
                            ("Failed", spec.get("failedJobsHistoryLimit"))):  # fmt: skip
            if limit is None:
                continue
            for job in oldest_beyond([j for j in jobs if finished_type(j) == kind], int(limit)):
                changed = await self._delete_job(cronjob, job) or changed
        return changed

    async def _create_job(self, cronjob: Object, job: Object) -> Object | None:
        """Create the Job; one that already exists is ours only if we control it and it is not
        yet in status.active (we created it but failed to record it)."""
        try:
            created = await self.client.create(JOBS, job)
        except ApiError as exc:
            if not exc.already_exists:
                await self._event(
                    cronjob,
                    "Warning",
                    "FailedCreate",
                    f"Error creating job: {exc.status.get('message', exc)}",
                )
                raise
            existing = await self.client.get(JOBS, job["metadata"]["name"], job["metadata"].get("namespace"))
            if not is_controlled_by(existing, cronjob) or in_active(cronjob, existing["metadata"].get("uid")):
                return None
            log.info("job %s already exists for cronjob %s", job["metadata"]["name"], key_of(cronjob))
            return existing
        await self._event(cronjob, "Normal", "SuccessfulCreate", f"Created job {created['metadata']['name']}")
        return created

    async def _delete_job(self, cronjob: Object, job: Object) -> bool:
        """Delete a Job with its pods in the background; drop it from status.active."""
        meta = job["metadata"]
        try:
            await self.client.delete(
                JOBS, meta["name"], meta.get("namespace"), propagation_policy="Background"
            )
        except ApiError as exc:
            if not exc.not_found:
                await self._event(
                    cronjob, "Warning", "FailedDelete", f"Deleted job: {exc.status.get('message', exc)}"
                )
                return False
        remove_active(cronjob, meta.get("uid"))
        await self._event(cronjob, "Normal", "SuccessfulDelete", f"Deleted job {meta['name']}")
        return True

    async def _event(self, cronjob: Object, event_type: str, reason: str, message: str) -> None:
        await self.recorder.record(cronjob, event_type, reason, message)
