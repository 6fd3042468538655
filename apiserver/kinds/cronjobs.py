"""batch/v1 CronJobs: Kubernetes' defaulting (concurrencyPolicy Allow, suspend false, history
limits 3 and 1, the job template's pod defaults), validation with the real server's wording (the
schedule parsed by the same robfig/cron rules the controller runs, an IANA timeZone, no `TZ=` in
the schedule, the job template validated as a Job's spec, names of at most 52 characters so that
`<name>-<minutes>` fits a Job name) and the `kubectl get cronjob` columns. Pure.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, ClassVar

from apiserver import tables
from apiserver.errors import FieldError, invalid, not_supported, required
from apiserver.kinds.jobs import validate_job_template_spec
from apiserver.kinds.podspec import default_pod_template
from apiserver.kinds.workload import StatusStrategy, containers_and_images, format_label_selector
from apiserver.meta import JSONObject
from apiserver.tables import AGE_COLUMN, NAME_COLUMN, Column
from apiserver.validation import non_negative, validate_annotations, validate_labels
from kubelite.cron import CronError, load_location, parse_standard

CONCURRENCY_POLICIES = ["Allow", "Forbid", "Replace"]
# the controller appends `-<minutes since epoch>` (11 characters) to make a Job name of at most 63
MAX_NAME_LENGTH = 63 - 11
# IANA naming rules per path component, with the digits and `+` of legacy names tolerated
TIME_ZONE_PART = re.compile(r"^[A-Za-z.\-_0-9+]{1,14}$")


def default_cronjob_spec(spec: JSONObject) -> None:
    """SetDefaults_CronJob, plus the pod defaults inside the job template (the job template's
    own JobSpec gets no Job defaults: those come when a Job is made from it)."""
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    job_template = spec.get("jobTemplate")
    if isinstance(job_template, dict) and isinstance(job_template.get("spec"), dict):
        default_pod_template(job_template["spec"].get("template"))


def validate_schedule(schedule: Any, time_zone: Any, allow_tz: bool, path: str) -> list[FieldError]:
    """validateScheduleFormat: robfig's parse error as the detail, and `TZ=` only where an old
    object already had it."""
    if not isinstance(schedule, str) or not schedule:
        return [required(path)]
    errs = []
    try:
        parse_standard(schedule)
    except CronError as err:
        errs.append(invalid(path, schedule, str(err)))
    if "TZ" in schedule:
        if not allow_tz:
            errs.append(
                invalid(path, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
            )
        elif time_zone is not None:
            errs.append(
                invalid(path, schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule")
            )
    return errs


def validate_time_zone(time_zone: Any, path: str) -> list[FieldError]:
    if time_zone is None:
        return []
    if not isinstance(time_zone, str) or not time_zone:
        return [invalid(path, time_zone, "timeZone must be nil or non-empty string")]
    for part in time_zone.split("/"):
        if part in (".", "..") or part.startswith("-") or not TIME_ZONE_PART.match(part):
            return [invalid(path, time_zone, f"unknown time zone {time_zone}")]
    errs = []
    if time_zone.lower() == "local":
        errs.append(
            invalid(
                path,
                time_zone,
                "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
            )
        )
    try:
        load_location(time_zone)
    except CronError as err:
        errs.append(invalid(path, time_zone, str(err)))
    return errs


def validate_job_template(job_template: Any, path: str) -> list[FieldError]:
    """The job template's metadata, then its spec as ValidateJobTemplateSpec checks it (a Job's
    spec whose selector is always generated)."""
    if not isinstance(job_template, dict):
        return [required(f"{path}.spec.template.spec.containers")]
    meta = job_template.get("metadata") or {}
    errs = validate_labels(meta.get("labels"), f"{path}.metadata.labels")
    errs += validate_annotations(meta.get("annotations"), f"{path}.metadata.annotations")
    return errs + validate_job_template_spec(job_template.get("spec") or {}, f"{path}.spec")


class CronJobStrategy(StatusStrategy):
    kind = "CronJob"
    patch_schema = "CronJob"
    columns: ClassVar[list[Column]] = [
        NAME_COLUMN,
        Column(
            "Schedule", description="The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."
        ),
        Column("Timezone", description="The time zone name for the given schedule."),
        Column(
            "Suspend",
            type="boolean",
            description="This flag tells the controller to suspend subsequent "
            "executions, it does not apply to already started executions.",
        ),
        Column("Active", type="integer", description="A list of pointers to currently running jobs."),
        Column(
            "Last Schedule",
            description="Information when was the last time the job was successfully scheduled.",
        ),
        AGE_COLUMN,
        Column("Containers", priority=1, description="Names of each container in the template."),
        Column("Images", priority=1, description="Images referenced by each container in the template."),
        Column(
            "Selector", priority=1, description="A label query over pods that should match the pod count."
        ),
    ]

    def default(self, obj: JSONObject) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict):
            default_cronjob_spec(spec)

    def validate_spec(self, spec: Any, old_spec: JSONObject | None) -> list[FieldError]:
        """validateCronJobSpec, in the real order of its checks."""
        if not isinstance(spec, dict):
            return [required("spec.schedule"), required("spec.jobTemplate.spec.template.spec.containers")]
        allow_tz = old_spec is not None and "TZ" in str(old_spec.get("schedule") or "")
        errs = validate_schedule(spec.get("schedule"), spec.get("timeZone"), allow_tz, "spec.schedule")
        errs += non_negative("spec.startingDeadlineSeconds", spec.get("startingDeadlineSeconds"))
        if old_spec is None or old_spec.get("timeZone") != spec.get("timeZone"):
            errs += validate_time_zone(spec.get("timeZone"), "spec.timeZone")
        policy = spec.get("concurrencyPolicy")
        if not policy:
            errs.append(required("spec.concurrencyPolicy"))
        elif policy not in CONCURRENCY_POLICIES:
            errs.append(not_supported("spec.concurrencyPolicy", policy, CONCURRENCY_POLICIES))
        errs += validate_job_template(spec.get("jobTemplate"), "spec.jobTemplate")
        errs += non_negative("spec.successfulJobsHistoryLimit", spec.get("successfulJobsHistoryLimit"))
        errs += non_negative("spec.failedJobsHistoryLimit", spec.get("failedJobsHistoryLimit"))
        return errs

    def validate(self, obj: JSONObject) -> list[FieldError]:
        errs = super().validate(obj) + self.validate_spec(obj.get("spec"), None)
        name = (obj.get("metadata") or {}).get("name") or ""
        if len(name) > MAX_NAME_LENGTH:
            errs.append(invalid("metadata.name", name, f"must be no more than {MAX_NAME_LENGTH} characters"))
        return errs

    def validate_update(self, new: JSONObject, old: JSONObject) -> list[FieldError]:
        """No name-length check: older CronJobs with longer names must stay editable."""
        old_spec = old.get("spec") if isinstance(old.get("spec"), dict) else {}
        return super().validate(new) + self.validate_spec(new.get("spec"), old_spec)

    def cells(self, obj: JSONObject, now: dt.datetime) -> list[Any]:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        suspend = spec.get("suspend")
        last = status.get("lastScheduleTime")
        job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
        containers, images = containers_and_images({"spec": job_spec})
        return [
            meta.get("name", ""),
            spec.get("schedule", ""),
            spec.get("timeZone") if spec.get("timeZone") is not None else "<none>",
            "<unset>" if suspend is None else ("True" if suspend else "False"),
            len(status.get("active") or []),
            tables.age(last, now) if last else "<none>",
            tables.age(meta.get("creationTimestamp"), now),
            containers,
            images,
            format_label_selector(job_spec.get("selector")),
        ]
