"""core/v1 ReplicationControllers: the equality-selector ancestor of the ReplicaSet. The selector and
the object's labels default to the template's labels, the selector must match the template, and a
DELETE without a propagation policy orphans the pods, as v1 always did. Pure.
"""

from __future__ import annotations

from typing import ClassVar

from apiserver.errors import FieldError, invalid, required
from apiserver.kinds.apps import ReplicaSetStrategy
from apiserver.kinds.workload import template_labels
from apiserver.meta import JSONObject
from apiserver.validation import validate_labels
from kubelite.selectors import selector_from_labels


class ReplicationControllerStrategy(ReplicaSetStrategy):
    kind = "ReplicationController"
    patch_schema = "ReplicationController"
    default_gc_policy: ClassVar[str] = "Orphan"

    def default(self, obj: JSONObject) -> None:
        super().default(obj)
        spec = obj.get("spec")
        labels = template_labels(obj)
        if isinstance(spec, dict) and not spec.get("selector") and labels:
            spec["selector"] = dict(labels)
        meta = obj.get("metadata")
        if isinstance(meta, dict) and not meta.get("labels") and labels:
            meta["labels"] = dict(labels)

    def validate_spec(self, obj: JSONObject) -> list[FieldError]:
        spec = obj.get("spec") or {}
        errs = super(ReplicaSetStrategy, self).validate_spec(obj)
        selector = spec.get("selector")
        if not selector:
            return [*errs, required("spec.selector")]
        errs += validate_labels(selector, "spec.selector")
        labels = template_labels(obj)
        if isinstance(selector, dict) and not selector_from_labels(selector).matches(labels):
            errs.append(
                invalid(
                    "spec.template.metadata.labels", labels, "`selector` does not match template `labels`"
                )
            )
        return errs

    def validate_update(self, new: JSONObject, old: JSONObject) -> list[FieldError]:
        return self.validate(new)  # a v1 RC's selector may change

    def selector_text(self, obj: JSONObject) -> str:
        """An equality selector as `a=b,c=d`, `<none>` for none."""
        selector = (obj.get("spec") or {}).get("selector")
        return str(selector_from_labels(selector)) if isinstance(selector, dict) and selector else "<none>"
