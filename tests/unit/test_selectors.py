"""Label and field selectors: grammar, matching, and properties against a plain model."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubelite.selectors import (
    LabelSelector,
    Operator,
    Requirement,
    SelectorError,
    escape_field_value,
    label_selector_from_spec,
    parse_field_selector,
    parse_label_selector,
    selector_from_labels,
)


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "web"}, True),
        ("app=web", {"app": "db"}, False),
        ("app!=web", {"app": "db"}, True),
        ("app!=web", {}, True),
        ("app in (web, db)", {"app": "db"}, True),
        ("app in (web,db)", {"app": "x"}, False),
        ("app notin (web)", {}, True),
        ("app notin (web)", {"app": "web"}, False),
        ("app", {"app": ""}, True),
        ("!app", {"app": "x"}, False),
        ("!app", {}, True),
        ("app=web,tier!=db", {"app": "web", "tier": "fe"}, True),
        ("app=web, tier", {"app": "web"}, False),
        ("n>3", {"n": "4"}, True),
        ("n<3", {"n": "4"}, False),
        ("example.com/app=x", {"example.com/app": "x"}, True),
        ("app=", {"app": ""}, True),
        ("", {"anything": "x"}, True),
    ],
)
def test_label_selector_matching(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


@pytest.mark.parametrize(
    "text", ["app=web,", "app in web", "app in (a", "=x", "a b", "app=a b", "n>x", "bad key=1"]
)
def test_label_selector_rejects_bad_syntax(text: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(text)


def test_selector_from_spec() -> None:
    sel = label_selector_from_spec(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["fe", "be"]},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        }
    )
    assert sel.matches({"app": "web", "tier": "fe"})
    assert not sel.matches({"app": "web", "tier": "fe", "canary": "1"})
    assert not sel.matches({"app": "web"})
    assert str(sel) == "app=web,!canary,tier in (be,fe)"
    assert label_selector_from_spec({}).matches({"x": "y"})
    assert not label_selector_from_spec(None).matches({})
    with pytest.raises(SelectorError):
        label_selector_from_spec({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})
    with pytest.raises(SelectorError):
        label_selector_from_spec({"matchExpressions": [{"key": "a", "operator": "Maybe"}]})


def test_selector_from_labels_is_everything_when_empty() -> None:
    assert selector_from_labels({}).empty
    assert selector_from_labels({"a": "b"}).matches({"a": "b", "c": "d"})


def test_field_selector() -> None:
    sel = parse_field_selector("spec.nodeName=n1,status.phase!=Failed")
    assert sel.fields() == {"spec.nodeName", "status.phase"}
    assert sel.matches({"spec.nodeName": "n1", "status.phase": "Running"})
    assert not sel.matches({"spec.nodeName": "n1", "status.phase": "Failed"})
    assert parse_field_selector("involvedObject.namespace=").matches({"involvedObject.namespace": ""})
    escaped = parse_field_selector(r"metadata.name=a\,b\=c")
    assert escaped.matches(lambda f: "a,b=c")
    assert parse_field_selector("").empty
    with pytest.raises(SelectorError):
        parse_field_selector("metadata.name")
    with pytest.raises(SelectorError):
        parse_field_selector(r"metadata.name=a\q")


# `in` and `notin` are keywords of the grammar, as in Kubernetes: not usable as bare keys.
keys = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True).filter(
    lambda k: k not in ("in", "notin")
)
values = st.from_regex(r"([A-Za-z0-9]([A-Za-z0-9_.-]{0,8}[A-Za-z0-9])?)?", fullmatch=True)
label_maps = st.dictionaries(keys, values, max_size=5)


@st.composite
def requirements(draw: st.DrawFn) -> Requirement:
    op = draw(st.sampled_from([o for o in Operator if o not in (Operator.GREATER_THAN, Operator.LESS_THAN)]))
    key = draw(keys)
    if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        return Requirement(key, op)
    if op in (Operator.IN, Operator.NOT_IN):
        vals = draw(st.lists(values.filter(bool), min_size=1, max_size=3, unique=True))
        return Requirement(key, op, tuple(sorted(vals)))
    return Requirement(key, op, (draw(values),))


def model_matches(req: Requirement, labels: dict[str, str]) -> bool:
    """The semantics written out plainly, independent of the implementation's branches."""
    has = req.key in labels
    value = labels.get(req.key)
    first = req.values[0] if req.values else None
    return {
        Operator.EQUALS: has and value == first,
        Operator.DOUBLE_EQUALS: has and value == first,
        Operator.NOT_EQUALS: not has or value != first,
        Operator.IN: has and value in req.values,
        Operator.NOT_IN: not has or value not in req.values,
        Operator.EXISTS: has,
        Operator.DOES_NOT_EXIST: not has,
    }[req.operator]


@given(st.lists(requirements(), max_size=4), label_maps)
def test_label_selector_string_round_trip_keeps_meaning(
    reqs: list[Requirement], labels: dict[str, str]
) -> None:
    selector = LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))
    reparsed = parse_label_selector(str(selector))
    expected = all(model_matches(r, labels) for r in reqs)
    assert selector.matches(labels) is expected
    assert reparsed.matches(labels) is expected


@given(label_maps)
def test_selector_from_own_labels_matches(labels: dict[str, str]) -> None:
    assert selector_from_labels(labels).matches(labels)
    assert parse_label_selector(str(selector_from_labels(labels))).matches(labels)


@given(st.dictionaries(st.sampled_from(["a.b", "c", "d.e.f"]), st.text(max_size=6), min_size=1))
def test_field_selector_escaping_round_trip(fields: dict[str, str]) -> None:
    text = ",".join(f"{k}={escape_field_value(v)}" for k, v in fields.items())
    assert parse_field_selector(text).matches(fields)
