"""What the workload kinds that keep replicas of a pod template share (ReplicaSet,
ReplicationController, Deployment): status reset on create and kept on update, the replicas and
selector checks, and the CONTAINERS/IMAGES/SELECTOR cells of `kubectl get -o wide`. Pure.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, ClassVar

from apiserver import tables
from apiserver.errors import FieldError, GoValue, invalid, required
from apiserver.kinds.podspec import default_pod_template, validate_pod_template
from apiserver.meta import JSONObject
from apiserver.strategy import Strategy
from apiserver.tables import Column
from apiserver.validation import non_negative
from kubelite.selectors import SelectorError, label_selector_from_spec

PERCENT_RE = re.compile(r"^[0-9]+%$")
PERCENT_ERR = (
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', "
    "regex used for validation is '[0-9]+%')"
)

WIDE_COLUMNS = [
    Column("Containers", priority=1, description="Names of each container in the template."),
    Column("Images", priority=1, description="Images referenced by each container in the template."),
    Column("Selector", priority=1, description="Label selector of the pods this object manages."),
]


def go_string(value: Any) -> str:
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def go_label_selector(selector: Any) -> GoValue:
    """A LabelSelector as Go's %#v prints it in a validation error."""
    selector = selector if isinstance(selector, dict) else {}
    labels = selector.get("matchLabels")
    if labels:
        labels_text = (
            "map[string]string{"
            + ", ".join(f"{go_string(k)}:{go_string(v)}" for k, v in sorted(labels.items()))
            + "}"
        )
    else:
        labels_text = "map[string]string(nil)"
    expressions = selector.get("matchExpressions")
    if expressions:
        items = []
        for e in expressions:
            e = e if isinstance(e, dict) else {}
            values = e.get("values")
            values_text = (
                "[]string{" + ", ".join(go_string(v) for v in values) + "}" if values else "[]string(nil)"
            )
            items.append(
                f"v1.LabelSelectorRequirement{{Key:{go_string(e.get('key', ''))}, "
                f"Operator:{go_string(e.get('operator', ''))}, Values:{values_text}}}"
            )
        expr_text = "[]v1.LabelSelectorRequirement{" + ", ".join(items) + "}"
    else:
        expr_text = "[]v1.LabelSelectorRequirement(nil)"
    return GoValue(f"v1.LabelSelector{{MatchLabels:{labels_text}, MatchExpressions:{expr_text}}}")


def template_labels(obj: JSONObject) -> dict[str, str]:
    return dict(((((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")) or {})


def validate_selector(selector: Any, labels: dict[str, str], what: str) -> list[FieldError]:
    """spec.selector of a Deployment or ReplicaSet: present, not empty, valid, and matching the
    template's labels."""
    if selector is None:
        return [required("spec.selector")]
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        return [
            invalid("spec.selector", go_label_selector(selector), f"empty selector is invalid for {what}")
        ]
    try:
        parsed = label_selector_from_spec(selector)
    except SelectorError as err:
        return [invalid("spec.selector", go_label_selector(selector), str(err))]
    if not parsed.matches(labels):
        return [
            invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
        ]
    return []


def int_or_percent(path: str, value: Any) -> list[FieldError]:
    """ValidatePositiveIntOrPercent."""
    if isinstance(value, bool) or value is None:
        return [invalid(path, value, "must be an integer or percentage (e.g '5%')")]
    if isinstance(value, int):
        return non_negative(path, value)
    if isinstance(value, str):
        return [] if PERCENT_RE.match(value) else [invalid(path, GoValue(value), PERCENT_ERR)]
    return [invalid(path, value, "must be an integer or percentage (e.g '5%')")]


def not_over_100_percent(path: str, value: Any) -> list[FieldError]:
    """IsNotMoreThan100Percent."""
    if isinstance(value, str) and PERCENT_RE.match(value) and int(value[:-1]) > 100:
        return [invalid(path, GoValue(value), "must not be greater than 100%")]
    return []


def is_zero(value: Any) -> bool:
    return value == 0 or (
        isinstance(value, str) and PERCENT_RE.match(value) is not None and int(value[:-1]) == 0
    )


def containers_and_images(obj: JSONObject) -> tuple[str, str]:
    containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    names = ",".join(str(c.get("name", "")) for c in containers if isinstance(c, dict))
    images = ",".join(str(c.get("image", "")) for c in containers if isinstance(c, dict))
    return names, images


def format_label_selector(selector: Any) -> str:
    """metav1.FormatLabelSelector: `app=web`, `<none>` for none, `<error>` for a broken one."""
    if not isinstance(selector, dict):
        return "<none>"
    try:
        text = str(label_selector_from_spec(selector))
    except SelectorError:
        return "<error>"
    return text or "<none>"


class StatusStrategy(Strategy):
    """A kind with a status subresource: status starts empty on create, and a main-resource update
    keeps the stored one (the real strategies' PrepareForCreate and PrepareForUpdate)."""

    # fields of status that a fresh object carries (the Python client needs `replicas` on RS and RC)
    empty_status: ClassVar[JSONObject] = {}

    def prepare_for_create(self, obj: JSONObject) -> None:
        obj["status"] = dict(self.empty_status)

    def prepare_for_update(self, new: JSONObject, old: JSONObject) -> None:
        new["status"] = old.get("status") or dict(self.empty_status)


class ReplicatedStrategy(StatusStrategy):
    """The part of the three replica-keeping kinds that is the same for all of them."""

    restart_policies: ClassVar[list[str]] = ["Always"]

    def default(self, obj: JSONObject) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict):
            spec.setdefault("replicas", 1)
            default_pod_template(spec.get("template"))

    def validate_spec(self, obj: JSONObject) -> list[FieldError]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [required("spec")]
        errs = non_negative("spec.replicas", spec.get("replicas"))
        errs += non_negative("spec.minReadySeconds", spec.get("minReadySeconds"))
        errs += validate_pod_template(spec.get("template"), "spec.template", self.restart_policies)
        return errs

    def validate(self, obj: JSONObject) -> list[FieldError]:
        return super().validate(obj) + self.validate_spec(obj)

    def selector_text(self, obj: JSONObject) -> str:
        return format_label_selector((obj.get("spec") or {}).get("selector"))

    def scale_selector(self, obj: JSONObject) -> str:
        text = self.selector_text(obj)
        return "" if text.startswith("<") else text

    def row(self, obj: JSONObject, now: dt.datetime, counts: list[Any]) -> list[Any]:
        """A `kubectl get` row: NAME, the kind's counts, AGE and the wide CONTAINERS/IMAGES/SELECTOR."""
        meta = obj.get("metadata") or {}
        containers, images = containers_and_images(obj)
        age = tables.age(meta.get("creationTimestamp"), now)
        return [meta.get("name", ""), *counts, age, containers, images, self.selector_text(obj)]

    def fields(self, obj: JSONObject) -> dict[str, str]:
        out = super().fields(obj)
        out["status.replicas"] = str(int((obj.get("status") or {}).get("replicas") or 0))
        return out
