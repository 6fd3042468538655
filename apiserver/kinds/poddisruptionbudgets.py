"""policy/v1 PodDisruptionBudgets: status reset on create and kept on update, Kubernetes' validation
(pkg/apis/policy/validation, word for word: minAvailable and maxUnavailable exclusive, each an
int or a percentage up to 100 %, a valid selector, a known unhealthyPodEvictionPolicy; a status
write keeps its counts non-negative) and the `kubectl get pdb` columns. Pure.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, ClassVar

from apiserver import tables
from apiserver.errors import FieldError, GoValue, forbidden, invalid, not_supported, required
from apiserver.kinds.workload import StatusStrategy, int_or_percent, not_over_100_percent
from apiserver.meta import JSONObject
from apiserver.tables import AGE_COLUMN, NAME_COLUMN, Column
from apiserver.validation import label_value, non_negative, qualified_name, validate_labels
from kubelite.disruptionbudget import ALWAYS_ALLOW, IF_HEALTHY_BUDGET

UNHEALTHY_POD_EVICTION_POLICIES = [ALWAYS_ALLOW, IF_HEALTHY_BUDGET]
SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
STATUS_COUNTS = ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods")


def _go_pointer(what: str, value: Any, seed: str) -> str:
    """A Go pointer as %#v prints it: `(*T)(nil)`, or the type and an address (any address will do)."""
    if value is None:
        return f"(*{what})(nil)"
    address = int(hashlib.sha1(f"{seed}{what}".encode()).hexdigest()[:6], 16) * 8
    return f"(*{what})(0xc000{address:06x})"


def go_spec(spec: JSONObject) -> GoValue:
    """The internal PodDisruptionBudgetSpec as field.Invalid prints it (%#v: pointers as addresses)."""
    seed = repr(sorted(spec.items(), key=str))
    parts = [
        f"MinAvailable:{_go_pointer('intstr.IntOrString', spec.get('minAvailable'), seed)}",
        f"Selector:{_go_pointer('v1.LabelSelector', spec.get('selector'), seed)}",
        f"MaxUnavailable:{_go_pointer('intstr.IntOrString', spec.get('maxUnavailable'), seed)}",
        "UnhealthyPodEvictionPolicy:"
        + _go_pointer("policy.UnhealthyPodEvictionPolicyType", spec.get("unhealthyPodEvictionPolicy"), seed),
    ]
    return GoValue("policy.PodDisruptionBudgetSpec{" + ", ".join(parts) + "}")


def validate_label_selector(selector: Any, path: str) -> list[FieldError]:
    """metav1 ValidateLabelSelector: valid matchLabels, known operators, values as the operator needs."""
    if selector is None:
        return []
    if not isinstance(selector, dict):
        return [invalid(path, selector, "must be a label selector")]
    errs = validate_labels(selector.get("matchLabels"), f"{path}.matchLabels")
    for index, requirement in enumerate(selector.get("matchExpressions") or []):
        at = f"{path}.matchExpressions[{index}]"
        if not isinstance(requirement, dict):
            errs.append(invalid(at, requirement, "must be a label selector requirement"))
            continue
        operator, values = requirement.get("operator"), requirement.get("values") or []
        if operator in ("In", "NotIn") and not values:
            errs.append(required(f"{at}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif operator in ("Exists", "DoesNotExist") and values:
            errs.append(
                forbidden(
                    f"{at}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                )
            )
        elif operator not in SELECTOR_OPERATORS:
            errs.append(invalid(f"{at}.operator", operator, "not a valid selector operator"))
        key = str(requirement.get("key") or "")
        errs += [invalid(f"{at}.key", key, msg) for msg in qualified_name(key)]
        for value in values:
            errs += [invalid(f"{at}.values", value, msg) for msg in label_value(str(value))]
    return errs


def validate_spec(spec: Any) -> list[FieldError]:
    """ValidatePodDisruptionBudgetSpec."""
    if not isinstance(spec, dict):
        return []
    errs: list[FieldError] = []
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    if min_available is not None and max_unavailable is not None:
        errs.append(invalid("spec", go_spec(spec), "minAvailable and maxUnavailable cannot be both set"))
    for name, value in (("minAvailable", min_available), ("maxUnavailable", max_unavailable)):
        if value is not None:
            errs += int_or_percent(f"spec.{name}", value) + not_over_100_percent(f"spec.{name}", value)
    errs += validate_label_selector(spec.get("selector"), "spec.selector")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in UNHEALTHY_POD_EVICTION_POLICIES:
        errs.append(not_supported("spec.unhealthyPodEvictionPolicy", policy, UNHEALTHY_POD_EVICTION_POLICIES))
    return errs


def int_or_string_text(value: Any) -> str:
    """intstr.String(), or N/A for an unset field (printPodDisruptionBudget)."""
    return "N/A" if value is None else str(value)


class PodDisruptionBudgetStrategy(StatusStrategy):
    kind = "PodDisruptionBudget"
    patch_schema = "PodDisruptionBudget"
    # a fresh status as the real server writes it: the four counts are not omitempty in policy/v1
    empty_status: ClassVar[JSONObject] = dict.fromkeys(STATUS_COUNTS, 0)
    columns: ClassVar[list[Column]] = [
        NAME_COLUMN,
        Column("Min Available", description="The minimum number of pods that must be available."),
        Column("Max Unavailable", description="The maximum number of pods that may be unavailable."),
        Column(
            "Allowed Disruptions",
            type="integer",
            description="Calculated number of pods that may be disrupted at this time.",
        ),
        AGE_COLUMN,
    ]

    def validate(self, obj: JSONObject) -> list[FieldError]:
        return super().validate(obj) + validate_spec(obj.get("spec"))

    def validate_update(self, new: JSONObject, old: JSONObject) -> list[FieldError]:
        errs = self.validate(new)
        status = new.get("status") or {}
        for name in STATUS_COUNTS:  # ValidatePodDisruptionBudgetStatusUpdate (policy/v1)
            errs += non_negative(f"status.{name}", status.get(name))
        return errs

    def cells(self, obj: JSONObject, now: dt.datetime) -> list[Any]:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        allowed = int((obj.get("status") or {}).get("disruptionsAllowed") or 0)
        return [
            meta.get("name", ""),
            int_or_string_text(spec.get("minAvailable")),
            int_or_string_text(spec.get("maxUnavailable")),
            allowed,
            tables.age(meta.get("creationTimestamp"), now),
        ]
