"""Where a pod may run, as both the scheduler and the DaemonSet controller must agree on it
(Kubernetes' component-helpers/scheduling/corev1): the pod's nodeSelector and its required node
affinity (`nodeSelectorTerms`, ORed; within a term `matchExpressions` on labels and `matchFields` on
`metadata.name`, ANDed), and taints against tolerations (one toleration against one taint is
also how the taint manager decides which NoExecute taints a pod outlasts). Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubelite.objects import Object

NODE_NAME_FIELD = "metadata.name"


def _int(value: str) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def requirement_matches(req: Object, values_of: Callable[[str], str | None]) -> bool:
    """One NodeSelectorRequirement against a node's labels (or fields); an invalid one matches nothing."""
    key, op, values = req.get("key") or "", req.get("operator"), list(req.get("values") or [])
    have = values_of(key)
    if op == "In":
        return have is not None and have in values
    if op == "NotIn":
        return have is None or have not in values
    if op == "Exists":
        return have is not None and not values
    if op == "DoesNotExist":
        return have is None and not values
    if op in ("Gt", "Lt"):
        bound = _int(values[0]) if len(values) == 1 else None
        number = _int(have) if have is not None else None
        if bound is None or number is None:
            return False
        return number > bound if op == "Gt" else number < bound
    return False


def term_matches(term: Object, node: Object) -> bool:
    """A NodeSelectorTerm: every expression and every field requirement holds; an empty term matches
    no node."""
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    labels = node.get("metadata", {}).get("labels") or {}
    name = node.get("metadata", {}).get("name")

    def field_value(key: str) -> str | None:
        return name if key == NODE_NAME_FIELD else None

    for req in fields:
        # only metadata.name, with In or NotIn and exactly one value, is a valid field requirement
        if req.get("key") != NODE_NAME_FIELD or req.get("operator") not in ("In", "NotIn"):
            return False
        if len(req.get("values") or []) != 1:
            return False
    return all(requirement_matches(r, labels.get) for r in expressions) and all(
        requirement_matches(r, field_value) for r in fields
    )


def required_node_selector(pod_spec: Object) -> Object | None:
    """The pod's requiredDuringSchedulingIgnoredDuringExecution node selector, if it has one."""
    affinity = (pod_spec.get("affinity") or {}).get("nodeAffinity") or {}
    selector = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    return selector if isinstance(selector, dict) else None


def node_selector_matches(selector: Object, node: Object) -> bool:
    """A NodeSelector: any of its terms (none: no node)."""
    return any(term_matches(t, node) for t in selector.get("nodeSelectorTerms") or [] if isinstance(t, dict))


def matches_node_affinity(pod_spec: Object, node: Object) -> bool:
    """GetRequiredNodeAffinity(pod).Match(node): the nodeSelector's labels and the required affinity."""
    labels = node.get("metadata", {}).get("labels") or {}
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    selector = required_node_selector(pod_spec)
    return selector is None or node_selector_matches(selector, node)


def target_node_names(pod_spec: Object) -> set[str] | None:
    """The only nodes the pod's required affinity allows, when every term names nodes by
    `metadata.name In` (the NodeAffinity PreFilter): the scheduler need look at no other node.
    None when the affinity does not narrow the nodes that way."""
    selector = required_node_selector(pod_spec)
    if selector is None:
        return None
    names: set[str] = set()
    for term in selector.get("nodeSelectorTerms") or []:
        found: set[str] | None = None
        for req in (term or {}).get("matchFields") or []:
            if req.get("key") == NODE_NAME_FIELD and req.get("operator") == "In":
                values = set(req.get("values") or [])
                found = values if found is None else found & values
        if found is None:
            return None  # a term that does not name nodes could match any node
        names |= found
    return names


def target_node_name(pod: Object) -> str | None:
    """The node a pod is bound to, or the single node its affinity names (util.GetTargetNodeName)."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    names = target_node_names(spec)
    if names is not None and len(names) == 1:
        return next(iter(names))
    return None


def tolerates(toleration: Object, taint: Object) -> bool:
    """Toleration.ToleratesTaint: an empty effect matches every effect, an empty key every key;
    Exists ignores the value, Equal (or no operator) compares it."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated_taint(
    taints: list[Object], tolerations: list[Object], effects: tuple[str, ...] = ("NoSchedule", "NoExecute")
) -> Object | None:
    """FindMatchingUntoleratedTaint: the first taint of the given effects no toleration tolerates."""
    for taint in taints:
        if taint.get("effect") in effects and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def add_toleration(tolerations: list[Any], toleration: Object) -> list[Any]:
    """AddOrUpdateTolerationInPodSpec: a toleration matching this one (MatchToleration: same key,
    operator, value and effect) is replaced by it, whatever its tolerationSeconds, unless it is
    identical; with none matching, this one is appended."""

    def field(t: Object, name: str) -> Any:
        return t.get(name) if t.get(name) not in ("", None) else None

    def matches(t: Object) -> bool:
        return all(field(t, f) == field(toleration, f) for f in ("key", "operator", "value", "effect"))

    if any(isinstance(t, dict) and matches(t) and field(t, "tolerationSeconds") ==
           field(toleration, "tolerationSeconds") for t in tolerations):  # fmt: skip
        return tolerations
    out = [toleration if isinstance(t, dict) and matches(t) else t for t in tolerations]
    return out if any(t is toleration for t in out) else [*out, toleration]
