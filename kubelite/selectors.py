"""Label and field selectors: parsing and matching, as Kubernetes defines them.

Pure logic shared by the apiserver (list/watch filtering), controllers (Service and
ReplicaSet selectors) and the scheduler. Touches nothing but its arguments.

Label selector grammar (labels.Parse): requirements joined by commas, each one of
`k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` (exists), `!k` (does not exist),
`k>n`, `k<n`. Field selectors (fields.ParseSelector): `f=v`, `f==v`, `f!=v` joined by commas,
with `\\`, `\\,` and `\\=` escapes in values.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Operator",
    "Requirement",
    "SelectorError",
    "label_selector_from_spec",
    "parse_field_selector",
    "parse_label_selector",
]


class SelectorError(ValueError):
    """A selector string or spec that Kubernetes would reject."""


class Operator(enum.Enum):
    """Label requirement operators, spelled as in selection.Operator."""

    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_NAME_PART_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _check_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN_RE.match(prefix)):
        raise SelectorError(f"invalid label key {key!r}: prefix part must be a lowercase RFC 1123 subdomain")
    if not name or len(name) > 63 or not _NAME_PART_RE.match(name):
        raise SelectorError(
            f"invalid label key {key!r}: name part must consist of alphanumeric characters, '-', '_' "
            "or '.', and must start and end with an alphanumeric character, at most 63 characters"
        )


def _check_value(value: str) -> None:
    if len(value) > 63 or not _LABEL_VALUE_RE.match(value):
        raise SelectorError(
            f"invalid label value: {value!r}: a valid label must be an empty string or consist of "
            "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
            "character, at most 63 characters"
        )


@dataclass(frozen=True)
class Requirement:
    """One `key op values` term of a label selector."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        present = self.key in labels
        if op in (Operator.IN, Operator.EQUALS, Operator.DOUBLE_EQUALS):
            return present and labels[self.key] in self.values
        if op in (Operator.NOT_IN, Operator.NOT_EQUALS):
            return not present or labels[self.key] not in self.values
        if op is Operator.EXISTS:
            return present
        if op is Operator.DOES_NOT_EXIST:
            return not present
        if not present:
            return False
        try:
            have, want = int(labels[self.key]), int(self.values[0])
        except ValueError:
            return False
        return have > want if op is Operator.GREATER_THAN else have < want

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return "!" + self.key
        if op in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {op.value} ({','.join(sorted(self.values))})"
        if op is Operator.GREATER_THAN:
            return f"{self.key}>{self.values[0]}"
        if op is Operator.LESS_THAN:
            return f"{self.key}<{self.values[0]}"
        return f"{self.key}{op.value}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of requirements; `nothing=True` is the selector that matches nothing
    (what a nil LabelSelector spec means for a controller)."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def match_nothing(cls) -> LabelSelector:
        return cls(nothing=True)

    @property
    def empty(self) -> bool:
        """True when the selector matches every object."""
        return not self.nothing and not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


# ---------------------------------------------------------------------------------- lexer

_SPECIAL = "=!(),<>"


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in _SPECIAL:
            two = text[i : i + 2]
            if two in ("==", "!="):
                tokens.append(two)
                i += 2
            else:
                tokens.append(ch)
                i += 1
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in _SPECIAL:
                j += 1
            tokens.append(text[i:j])
            i = j
    return tokens


def _is_identifier(token: str | None) -> bool:
    return token is not None and token not in _SPECIAL and token not in ("==", "!=")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.pos += 1
        return token

    def fail(self, why: str) -> SelectorError:
        return SelectorError(f"unable to parse requirement: {why} in selector {self.text!r}")

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        if self.peek() is None:
            return requirements
        while True:
            requirements.append(self.requirement())
            token = self.take()
            if token is None:
                return requirements
            if token != ",":
                raise self.fail(f"found {token!r}, expected ','")
            if self.peek() is None:
                raise self.fail("found end of input, expected a requirement")

    def requirement(self) -> Requirement:
        negated = self.peek() == "!"
        if negated:
            self.take()
        key = self.take()
        if not _is_identifier(key) or key in ("in", "notin"):
            raise self.fail(f"found {key!r}, expected a label key")
        assert key is not None
        _check_key(key)
        if negated:
            return Requirement(key, Operator.DOES_NOT_EXIST)
        token = self.peek()
        if token is None or token == ",":
            return Requirement(key, Operator.EXISTS)
        self.take()
        if token in ("in", "notin"):
            values = self.value_set()
            return Requirement(key, Operator.IN if token == "in" else Operator.NOT_IN, values)
        ops = {
            "=": Operator.EQUALS,
            "==": Operator.DOUBLE_EQUALS,
            "!=": Operator.NOT_EQUALS,
            ">": Operator.GREATER_THAN,
            "<": Operator.LESS_THAN,
        }
        if token not in ops:
            raise self.fail(f"found {token!r}, expected one of '=', '==', '!=', 'in', 'notin'")
        op = ops[token]
        nxt = self.peek()
        value = ""
        if _is_identifier(nxt) and nxt is not None:
            value = nxt
            self.take()
        if op in (Operator.GREATER_THAN, Operator.LESS_THAN):
            try:
                int(value)
            except ValueError:
                raise self.fail(
                    f"for 'gt', 'lt' operators, the value must be an integer, got {value!r}"
                ) from None
        else:
            _check_value(value)
        return Requirement(key, op, (value,))

    def value_set(self) -> tuple[str, ...]:
        if self.take() != "(":
            raise self.fail("expected '(' after set operator")
        values: list[str] = []
        expect_value = True
        while True:
            token = self.take()
            if token is None:
                raise self.fail("found end of input, expected ')'")
            if token == ")":
                if expect_value:
                    values.append("")
                break
            if token == ",":
                if expect_value:
                    values.append("")
                expect_value = True
                continue
            if not _is_identifier(token) or not expect_value:
                raise self.fail(f"found {token!r}, expected a value")
            _check_value(token)
            values.append(token)
            expect_value = False
        return tuple(sorted(set(values)))


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse a `labelSelector` query value; empty or None selects everything."""
    if not text or not text.strip():
        return LabelSelector()
    requirements = _Parser(text).parse()
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))


def label_selector_from_spec(spec: Mapping[str, object] | None) -> LabelSelector:
    """Turn a metav1.LabelSelector (matchLabels/matchExpressions) into a selector.

    None matches nothing; `{}` matches everything, as LabelSelectorAsSelector does.
    """
    if spec is None:
        return LabelSelector.match_nothing()
    requirements: list[Requirement] = []
    match_labels = spec.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        raise SelectorError("matchLabels must be a map of strings")
    for key, value in match_labels.items():
        _check_key(str(key))
        _check_value(str(value))
        requirements.append(Requirement(str(key), Operator.EQUALS, (str(value),)))
    expressions = spec.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise SelectorError("matchExpressions must be a list")
    set_ops = {"In": Operator.IN, "NotIn": Operator.NOT_IN}
    unary_ops = {"Exists": Operator.EXISTS, "DoesNotExist": Operator.DOES_NOT_EXIST}
    for expr in expressions:
        if not isinstance(expr, Mapping):
            raise SelectorError("matchExpressions entries must be objects")
        key = str(expr.get("key", ""))
        operator = str(expr.get("operator", ""))
        values = [str(v) for v in (expr.get("values") or [])]
        _check_key(key)
        if operator in set_ops:
            if not values:
                raise SelectorError(f"for 'in', 'notin' operators, values set can't be empty (key {key!r})")
            for v in values:
                _check_value(v)
            requirements.append(Requirement(key, set_ops[operator], tuple(sorted(set(values)))))
        elif operator in unary_ops:
            if values:
                raise SelectorError(f"values set must be empty for exists and does not exist (key {key!r})")
            requirements.append(Requirement(key, unary_ops[operator]))
        else:
            raise SelectorError(f"{operator!r} is not a valid label selector operator")
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))


def selector_from_labels(labels: Mapping[str, str] | None) -> LabelSelector:
    """The selector `k1=v1,k2=v2` for a plain map (a Service's `spec.selector`).

    An empty or missing map selects everything, as labels.SelectorFromSet does.
    """
    reqs = [Requirement(k, Operator.EQUALS, (v,)) for k, v in (labels or {}).items()]
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


# ---------------------------------------------------------------------------------- fields


class FieldOperator(enum.Enum):
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: FieldOperator
    value: str

    def matches(self, actual: str | None) -> bool:
        equal = (actual or "") == self.value
        return not equal if self.operator is FieldOperator.NOT_EQUALS else equal

    def __str__(self) -> str:
        return f"{self.field}{self.operator.value}{escape_field_value(self.value)}"


@dataclass(frozen=True)
class FieldSelector:
    """A conjunction of field requirements. Matching takes a getter that maps a field path
    (e.g. `spec.nodeName`) to the object's value as a string."""

    requirements: tuple[FieldRequirement, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def fields(self) -> set[str]:
        return {r.field for r in self.requirements}

    def matches(self, get: Callable[[str], str | None] | Mapping[str, str]) -> bool:
        getter = get.get if isinstance(get, Mapping) else get
        return all(r.matches(getter(r.field)) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def escape_field_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            if i + 1 >= len(value) or value[i + 1] not in "\\,=":
                raise SelectorError(f"invalid field selector value: invalid escape sequence in {value!r}")
            out.append(value[i + 1])
            i += 2
            continue
        if ch in ",=":
            raise SelectorError(f"invalid field selector value: unescaped {ch!r} in {value!r}")
        out.append(ch)
        i += 1
    return "".join(out)


def _find_operator(term: str) -> tuple[int, FieldOperator] | None:
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        if term.startswith("!=", i):
            return i, FieldOperator.NOT_EQUALS
        if term.startswith("==", i):
            return i, FieldOperator.DOUBLE_EQUALS
        if term[i] == "=":
            return i, FieldOperator.EQUALS
        i += 1
    return None


def parse_field_selector(text: str | None) -> FieldSelector:
    """Parse a `fieldSelector` query value; empty or None selects everything."""
    if not text:
        return FieldSelector()
    requirements: list[FieldRequirement] = []
    for term in _split_unescaped(text, ","):
        if not term:
            continue
        found = _find_operator(term)
        if found is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        index, op = found
        name = term[:index].strip()
        if not name:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        value = _unescape(term[index + len(op.value) :])
        requirements.append(FieldRequirement(name, op, value))
    return FieldSelector(tuple(requirements))
