"""The Jobs of a CronJob, purely: the Job made for a scheduled time (its deterministic name is the
lock that stops a second controller, or a retry, from running the same time twice), whether a Job
has finished and how, the order history is trimmed in, and the references kept in status.active.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from kubelite.objects import Object, get_condition, owner_reference, parse_rfc3339

SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def job_name(cronjob: Object, scheduled: dt.datetime) -> str:
    """`<cronjob>-<scheduled time in minutes since the epoch>`: the controller's granularity is a minute."""
    return f"{cronjob['metadata']['name']}-{int(scheduled.timestamp()) // 60}"


def go_rfc3339(moment: dt.datetime) -> str:
    """time.RFC3339 as Go writes it: `Z` for a zero offset, `+01:00` otherwise."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S%z")
    if moment.utcoffset() == dt.timedelta(0):
        return text[:-5] + "Z"
    return f"{text[:-2]}:{text[-2:]}"


def job_from_template(cronjob: Object, scheduled: dt.datetime, zone: dt.tzinfo) -> Object:
    """getJobFromTemplate2: the template's labels, annotations and spec, the scheduled time as an
    annotation (in the CronJob's zone), and the CronJob as controller."""
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    meta = template.get("metadata") or {}
    annotations = dict(meta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP_ANNOTATION] = go_rfc3339(scheduled.astimezone(zone))
    job_meta: Object = {
        "name": job_name(cronjob, scheduled),
        "namespace": cronjob["metadata"].get("namespace"),
        "annotations": annotations,
        "ownerReferences": [owner_reference(cronjob)],
    }
    if meta.get("labels"):
        job_meta["labels"] = dict(meta["labels"])
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": job_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def finished_type(job: Object) -> str | None:
    """`Complete` or `Failed` once the Job has that condition True, else None."""
    for kind in ("Complete", "Failed"):
        cond = get_condition(job, kind)
        if cond and cond.get("status") == "True":
            return kind
    return None


def job_ref(job: Object) -> Object:
    """The ObjectReference kept in status.active (what ref.GetReference makes of a Job)."""
    meta = job["metadata"]
    return {
        "kind": "Job",
        "namespace": meta.get("namespace"),
        "name": meta["name"],
        "uid": meta.get("uid"),
        "apiVersion": "batch/v1",
        "resourceVersion": meta.get("resourceVersion"),
    }


def by_start_time(job: Object) -> tuple[Any, ...]:
    """byJobStartTime: started Jobs oldest first, then those not started; names break ties."""
    started = (job.get("status") or {}).get("startTime")
    moment = parse_rfc3339(started).timestamp() if started else 0.0
    return (started is None, moment, job["metadata"]["name"])


def oldest_beyond(jobs: list[Object], limit: int) -> list[Object]:
    """The finished Jobs a history limit removes: all but the `limit` newest."""
    extra = len(jobs) - limit
    return sorted(jobs, key=by_start_time)[:extra] if extra > 0 else []


def is_controlled_by(job: Object, cronjob: Object) -> bool:
    uid = cronjob["metadata"].get("uid")
    return any(
        ref.get("controller") and ref.get("uid") == uid
        for ref in job["metadata"].get("ownerReferences") or []
    )
