"""Validation of where a pod may run: its tolerations and its node affinity, with the real
server's wording (ValidateTolerations, ValidateNodeSelector, ValidatePreferredSchedulingTerms).

The scheduler and the DaemonSet controller act on these fields; a wrong operator or a missing
value is refused at create time rather than silently matching nothing. Pure.
"""

from __future__ import annotations

from typing import Any

from apiserver.errors import FieldError, forbidden, invalid, not_supported, required

TOLERATION_OPERATORS = ["Equal", "Exists"]
TAINT_EFFECTS = ["NoExecute", "NoSchedule", "PreferNoSchedule"]
NODE_FIELD_KEYS = ["metadata.name"]


def validate_tolerations(tolerations: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, tol in enumerate(tolerations if isinstance(tolerations, list) else []):
        tpath = f"{path}[{i}]"
        if not isinstance(tol, dict):
            errs.append(invalid(tpath, tol, "must be an object"))
            continue
        key, operator, value = tol.get("key") or "", tol.get("operator") or "Equal", tol.get("value") or ""
        if not key and operator != "Exists":
            errs.append(
                invalid(
                    f"{tpath}.operator", tol.get("operator") or "",
                    "operator must be Exists when `key` is empty, which means "
                    '"match all values and all keys"',
                )
            )  # fmt: skip
        if tol.get("tolerationSeconds") is not None and tol.get("effect") != "NoExecute":
            errs.append(
                invalid(
                    f"{tpath}.effect", tol.get("effect") or "",
                    "effect must be 'NoExecute' when `tolerationSeconds` is set",
                )
            )  # fmt: skip
        if operator not in TOLERATION_OPERATORS:
            errs.append(not_supported(f"{tpath}.operator", operator, TOLERATION_OPERATORS))
        elif operator == "Exists" and value:
            errs.append(
                invalid(f"{tpath}.operator", value, "value must be empty when `operator` is 'Exists'")
            )
        effect = tol.get("effect")
        if effect and effect not in TAINT_EFFECTS:
            errs.append(not_supported(f"{tpath}.effect", effect, TAINT_EFFECTS))
    return errs


def _requirement(req: Any, path: str, field: bool) -> list[FieldError]:
    """ValidateNodeSelectorRequirement (labels) or ValidateNodeFieldSelectorRequirement (fields)."""
    if not isinstance(req, dict):
        return [invalid(path, req, "must be an object")]
    operator, values = req.get("operator"), req.get("values") or []
    if field:
        errs: list[FieldError] = []
        if operator not in ("In", "NotIn"):
            errs.append(invalid(f"{path}.operator", str(operator), "not a valid selector operator"))
        elif len(values) != 1:
            errs.append(
                required(
                    f"{path}.values",
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                )
            )
        if req.get("key") not in NODE_FIELD_KEYS:
            errs.append(invalid(f"{path}.key", str(req.get("key")), "not a valid field selector key"))
        return errs
    if operator in ("In", "NotIn"):
        if not values:
            return [required(f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'")]
    elif operator in ("Exists", "DoesNotExist"):
        if values:
            return [
                forbidden(
                    f"{path}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                )
            ]
    elif operator in ("Gt", "Lt"):
        if len(values) != 1:
            return [
                required(f"{path}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'")
            ]
    else:
        return [invalid(f"{path}.operator", str(operator), "not a valid selector operator")]
    return []


def _term(term: Any, path: str) -> list[FieldError]:
    term = term if isinstance(term, dict) else {}
    errs: list[FieldError] = []
    for key, field in (("matchExpressions", False), ("matchFields", True)):
        for j, req in enumerate(term.get(key) or []):
            errs += _requirement(req, f"{path}.{key}[{j}]", field)
    return errs


def validate_affinity(affinity: Any, path: str) -> list[FieldError]:
    """The node affinity of a pod spec (pod affinity and anti-affinity are stored, not checked)."""
    node = (affinity or {}).get("nodeAffinity") if isinstance(affinity, dict) else None
    if not isinstance(node, dict):
        return []
    errs: list[FieldError] = []
    required_path = f"{path}.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    selector = node.get("requiredDuringSchedulingIgnoredDuringExecution")
    if isinstance(selector, dict):
        terms = selector.get("nodeSelectorTerms") or []
        if not terms:
            errs.append(
                required(f"{required_path}.nodeSelectorTerms", "must have at least one node selector term")
            )
        for i, term in enumerate(terms):
            errs += _term(term, f"{required_path}.nodeSelectorTerms[{i}]")
    preferred_path = f"{path}.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution"
    for i, pref in enumerate(node.get("preferredDuringSchedulingIgnoredDuringExecution") or []):
        pref = pref if isinstance(pref, dict) else {}
        weight = pref.get("weight")
        if not isinstance(weight, int) or not 1 <= weight <= 100:
            errs.append(invalid(f"{preferred_path}[{i}].weight", weight, "must be in the range 1-100"))
        errs += _term(pref.get("preference"), f"{preferred_path}[{i}].preference")
    return errs
