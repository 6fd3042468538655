"""batch/v1 Jobs: Kubernetes' defaulting (SetDefaults_Job), the generated selector and pod labels
(`batch.kubernetes.io/controller-uid=<uid>`), validation with the real server's wording, the
immutable fields, and the `kubectl get jobs` columns (NAME STATUS COMPLETIONS DURATION AGE). Pure.

`default_job_spec` and `validate_job_spec` take any JobSpec at any path, so a CronJob's
`spec.jobTemplate.spec` is defaulted and checked by the same code (`validate_job_template_spec`
adds what a template may not carry).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from apiserver import tables
from apiserver.errors import CauseType, FieldError, GoValue, invalid, not_supported, required
from apiserver.kinds.apps import immutable_selector
from apiserver.kinds.common import child_object
from apiserver.kinds.podspec import RESTART_POLICIES, default_pod_template, validate_pod_template
from apiserver.kinds.workload import (
    WIDE_COLUMNS,
    StatusStrategy,
    containers_and_images,
    format_label_selector,
    go_label_selector,
    go_string,
)
from apiserver.meta import JSONObject, generate_name, new_uid, parse_time
from apiserver.tables import AGE_COLUMN, NAME_COLUMN, Column
from apiserver.validation import non_negative
from kubelite.selectors import SelectorError, label_selector_from_spec

CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
COMPLETION_MODES = ["NonIndexed", "Indexed"]
POD_REPLACEMENT_POLICIES = ["TerminatingOrFailed", "Failed"]
JOB_RESTART_POLICIES = ["OnFailure", "Never"]
MAX_PARALLELISM_FOR_INDEXED_JOB = 100000
NON_NEGATIVE_FIELDS = (
    "parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished",
    "backoffLimitPerIndex", "maxFailedIndexes",
)  # fmt: skip
# what a suspended Job that never started may still change in its template (scheduling directives)
MUTABLE_SCHEDULING_FIELDS = ("nodeSelector", "affinity", "tolerations", "schedulingGates")


def _spec(obj: JSONObject) -> JSONObject:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


# ------------------------------------------------------------------------------ defaulting


def default_job_spec(spec: Any) -> None:
    """SetDefaults_Job on a JobSpec: completions and parallelism 1 when both are unset (a nil
    completions with a parallelism set means "any pod's success"), backoffLimit 6, NonIndexed,
    not suspended, manualSelector false, and the pod template's own defaults."""
    if not isinstance(spec, dict):
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("manualSelector") is None:
        spec["manualSelector"] = False
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed"
    default_pod_template(spec.get("template"))


def generate_selector(obj: JSONObject) -> None:
    """The strategy's generateSelector: template labels naming the Job (new and legacy keys) and a
    selector on the uid label, unless the user asked for `manualSelector`."""
    spec = obj.setdefault("spec", {})
    meta = obj.setdefault("metadata", {})
    template = spec.get("template")
    if not isinstance(template, dict):
        return
    tmeta = child_object(template, "metadata")
    labels = child_object(tmeta, "labels")
    for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        labels.setdefault(key, meta.get("name", ""))
    for key in (LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
        labels.setdefault(key, meta.get("uid", ""))
    selector = child_object(spec, "selector")
    match = child_object(selector, "matchLabels")
    match.setdefault(CONTROLLER_UID_LABEL, meta.get("uid", ""))


# ------------------------------------------------------------------------------ validation


def _validate_template(template: Any, path: str) -> list[FieldError]:
    """ValidatePodTemplateSpec (a Job's pods may carry activeDeadlineSeconds) and the Job's own
    restartPolicy rule."""
    errs = [
        e
        for e in validate_pod_template(template, path, RESTART_POLICIES)
        if not e.field.endswith(".spec.activeDeadlineSeconds") or e.type is not CauseType.FORBIDDEN
    ]
    pod_spec = template.get("spec") if isinstance(template, dict) else None
    policy = pod_spec.get("restartPolicy") if isinstance(pod_spec, dict) else None
    if policy not in JOB_RESTART_POLICIES:
        errs.append(required(f"{path}.spec.restartPolicy", 'valid values: "OnFailure", "Never"'))
    return errs


def validate_job_spec(spec: Any, path: str = "spec") -> list[FieldError]:
    """validateJobSpec: what every JobSpec must satisfy, a Job's or a CronJob's jobTemplate's
    (`validate_job_spec(spec, "spec.jobTemplate.spec")`). The selector rules are the Job's own."""
    if not isinstance(spec, dict):
        return [required(path)]
    errs: list[FieldError] = []
    for name in NON_NEGATIVE_FIELDS:
        errs += non_negative(f"{path}.{name}", spec.get(name))
    mode = spec.get("completionMode")
    if mode is not None and mode not in COMPLETION_MODES:
        errs.append(not_supported(f"{path}.completionMode", mode, COMPLETION_MODES))
    if mode == "Indexed":
        if spec.get("completions") is None:
            errs.append(required(f"{path}.completions", "when completion mode is Indexed"))
        parallelism = spec.get("parallelism")
        if isinstance(parallelism, int) and parallelism > MAX_PARALLELISM_FOR_INDEXED_JOB:
            errs.append(
                invalid(
                    f"{path}.parallelism",
                    parallelism,
                    f"must be less than or equal to {MAX_PARALLELISM_FOR_INDEXED_JOB} "
                    "when completion mode is Indexed",
                )
            )
    elif spec.get("backoffLimitPerIndex") is not None:
        errs.append(required(f"{path}.completionMode", "when backoffLimitPerIndex is specified, "
                             "completionMode must be Indexed"))  # fmt: skip
    replacement = spec.get("podReplacementPolicy")
    if replacement is not None and replacement not in POD_REPLACEMENT_POLICIES:
        errs.append(not_supported(f"{path}.podReplacementPolicy", replacement, POD_REPLACEMENT_POLICIES))
    errs += _validate_template(spec.get("template"), f"{path}.template")
    return errs


def validate_job_template_spec(spec: Any, path: str) -> list[FieldError]:
    """ValidateJobTemplateSpec (a CronJob's jobTemplate.spec): a JobSpec whose selector is always
    generated."""
    errs = validate_job_spec(spec, path)
    if isinstance(spec, dict):
        if spec.get("selector") is not None:
            errs.append(
                invalid(
                    f"{path}.selector",
                    go_label_selector(spec["selector"]),
                    "`selector` will be auto-generated",
                )
            )
        if spec.get("manualSelector") is True:
            errs.append(not_supported(f"{path}.manualSelector", True, ["nil", "false"]))
    return errs


def _has_label(labels: dict[str, str], key: str, expected: str) -> list[FieldError]:
    """ValidateHasLabel."""
    path = f"spec.template.metadata.labels[{key}]"
    if key not in labels:
        return [required(path, expected)]
    if labels[key] != expected:
        return [invalid(path, labels, f"must be '{expected}'")]
    return []


def _selector_errors(obj: JSONObject) -> list[FieldError]:
    """ValidateGeneratedSelector and ValidateJobSpec's selector part."""
    spec = _spec(obj)
    meta = obj.get("metadata") or {}
    selector = spec.get("selector")
    labels = dict((((spec.get("template") or {}).get("metadata") or {}).get("labels")) or {})
    if selector is None:
        return [required("spec.selector")]
    errs: list[FieldError] = []
    try:
        parsed = label_selector_from_spec(selector)
    except SelectorError as err:
        return [invalid("spec.selector", go_label_selector(selector), str(err))]
    if spec.get("manualSelector") is not True:
        uid, name = str(meta.get("uid", "")), str(meta.get("name", ""))
        errs += _has_label(labels, LEGACY_CONTROLLER_UID_LABEL, uid)
        errs += _has_label(labels, LEGACY_JOB_NAME_LABEL, name)
        errs += _has_label(labels, CONTROLLER_UID_LABEL, uid)
        errs += _has_label(labels, JOB_NAME_LABEL, name)
        expected = {LEGACY_CONTROLLER_UID_LABEL: uid, LEGACY_JOB_NAME_LABEL: name,
                    CONTROLLER_UID_LABEL: uid, JOB_NAME_LABEL: name}  # fmt: skip
        if not parsed.matches(expected):
            errs.append(
                invalid("spec.selector", go_label_selector(selector), "`selector` not auto-generated")
            )
    if not parsed.matches(labels):
        errs.append(
            invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
        )
    return errs


def _template_value(template: Any) -> GoValue:
    """The template as the immutable-field error names it (Go prints the whole struct; this is its head)."""
    name = ((template or {}).get("metadata") or {}).get("name", "") if isinstance(template, dict) else ""
    return GoValue(f"core.PodTemplateSpec{{ObjectMeta:v1.ObjectMeta{{Name:{go_string(name)}, ...}}, ...}}")


def _scheduling_only_change(new: Any, old: Any) -> bool:
    """Whether two templates differ only in labels, annotations and scheduling directives."""
    if not isinstance(new, dict) or not isinstance(old, dict):
        return False

    def strip(template: JSONObject) -> JSONObject:
        meta = {
            k: v for k, v in (template.get("metadata") or {}).items() if k not in ("labels", "annotations")
        }
        spec = {k: v for k, v in (template.get("spec") or {}).items() if k not in MUTABLE_SCHEDULING_FIELDS}
        return {**template, "metadata": meta, "spec": spec}

    return strip(new) == strip(old)


def immutable_job_fields(new: JSONObject, old: JSONObject) -> list[FieldError]:
    """ValidateJobSpecUpdate's immutable fields: completions (unless an Indexed Job scales
    completions with parallelism), selector, template (a suspended Job that never started may
    change its scheduling directives), completionMode."""
    spec, old_spec = _spec(new), _spec(old)
    errs: list[FieldError] = []
    completions, old_completions = spec.get("completions"), old_spec.get("completions")
    if completions != old_completions:
        elastic = (
            spec.get("completionMode") == "Indexed"
            and completions is not None
            and completions == spec.get("parallelism")
            and old_completions == old_spec.get("parallelism")
        )
        if not elastic:
            errs.append(invalid("spec.completions", completions, "field is immutable"))
    errs += immutable_selector(new, old)
    template, old_template = spec.get("template"), old_spec.get("template")
    if template != old_template:
        never_started = not (old.get("status") or {}).get("startTime")
        if not (
            old_spec.get("suspend") and never_started and _scheduling_only_change(template, old_template)
        ):
            errs.append(invalid("spec.template", _template_value(template), "field is immutable"))
    if spec.get("completionMode") != old_spec.get("completionMode"):
        errs.append(invalid("spec.completionMode", spec.get("completionMode"), "field is immutable"))
    for name in ("podFailurePolicy", "backoffLimitPerIndex"):
        if spec.get(name) != old_spec.get(name):
            errs.append(invalid(f"spec.{name}", GoValue(str(spec.get(name))), "field is immutable"))
    return errs


# ------------------------------------------------------------------------------ printing


def _has_condition(obj: JSONObject, kind: str) -> bool:
    return any(
        isinstance(c, dict) and c.get("type") == kind and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


def job_status_text(obj: JSONObject) -> str:
    """The STATUS column of recent kubectl."""
    if _has_condition(obj, "Complete"):
        return "Complete"
    if _has_condition(obj, "Failed"):
        return "Failed"
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    if _has_condition(obj, "Suspended"):
        return "Suspended"
    if _has_condition(obj, "FailureTarget"):
        return "FailureTarget"
    if _has_condition(obj, "SuccessCriteriaMet"):
        return "SuccessCriteriaMet"
    return "Running"


def completions_text(obj: JSONObject) -> str:
    spec, status = _spec(obj), obj.get("status") or {}
    succeeded = int(status.get("succeeded") or 0)
    if spec.get("completions") is not None:
        return f"{succeeded}/{int(spec['completions'])}"
    parallelism = int(spec.get("parallelism") or 0)
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def duration_text(obj: JSONObject, now: dt.datetime) -> str:
    status = obj.get("status") or {}
    start = parse_time(status.get("startTime"))
    if start is None:
        return ""
    end = parse_time(status.get("completionTime")) or now
    return tables.human_duration((end - start).total_seconds())


class JobStrategy(StatusStrategy):
    kind = "Job"
    patch_schema = "Job"
    columns: ClassVar[list[Column]] = [
        NAME_COLUMN,
        Column("Status", description="Status of the job."),
        Column(
            "Completions",
            description="The number of pods which reached phase Succeeded. The value increases monotonically "
            "for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.",
        ),
        Column("Duration", description="Time required to complete the job."),
        AGE_COLUMN,
        *WIDE_COLUMNS,
    ]

    def default(self, obj: JSONObject) -> None:
        default_job_spec(obj.get("spec"))

    def prepare_for_create(self, obj: JSONObject) -> None:
        super().prepare_for_create(obj)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = generate_name(meta["generateName"])  # the labels name the Job
        meta["uid"] = meta.get("uid") or new_uid()
        if _spec(obj).get("manualSelector") is not True:
            generate_selector(obj)
        labels = ((_spec(obj).get("template") or {}).get("metadata") or {}).get("labels")
        if labels and not meta.get("labels"):
            meta["labels"] = dict(labels)  # SetDefaults_Job, which the server applies on every read

    def validate(self, obj: JSONObject) -> list[FieldError]:
        return super().validate(obj) + _selector_errors(obj) + validate_job_spec(obj.get("spec"), "spec")

    def validate_update(self, new: JSONObject, old: JSONObject) -> list[FieldError]:
        return self.validate(new) + immutable_job_fields(new, old)

    def fields(self, obj: JSONObject) -> dict[str, str]:
        out = super().fields(obj)
        out["status.successful"] = str(int((obj.get("status") or {}).get("succeeded") or 0))
        return out

    def selector_text(self, obj: JSONObject) -> str:
        return format_label_selector(_spec(obj).get("selector"))

    def cells(self, obj: JSONObject, now: dt.datetime) -> list[Any]:
        meta = obj.get("metadata") or {}
        containers, images = containers_and_images(obj)
        return [
            meta.get("name", ""),
            job_status_text(obj),
            completions_text(obj),
            duration_text(obj, now),
            tables.age(meta.get("creationTimestamp"), now),
            containers,
            images,
            self.selector_text(obj),
        ]
