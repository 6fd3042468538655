"""The DefaultTolerationSeconds admission plug-in, through the real pod strategy on the fake API
and alone: every created pod tolerates not-ready and unreachable for 300 s (or the apiserver's
flags), unless it already tolerates them."""

from __future__ import annotations

from apiserver.admission import DefaultTolerationSeconds, admit_default_toleration_seconds
from apiserver.app import parse_args
from kubelite.resources import PODS
from tests.fakeapi import FakeApi

DEFAULTS = [
    {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
    {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300,
    },
]


def created(tolerations: list | None = None) -> list:
    api = FakeApi()
    spec: dict = {"containers": [{"name": "c", "image": "x"}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    return api.create(PODS, {"metadata": {"name": "p"}, "spec": spec})["spec"].get("tolerations")


def test_every_pod_gets_both_default_tolerations():
    assert created() == DEFAULTS


def test_a_pod_that_tolerates_them_keeps_its_own():
    forever = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}]
    assert created(forever) == forever + DEFAULTS[:1]
    own = [{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]  # seconds need effect NoExecute
    assert created(own) == own + DEFAULTS[1:], "no effect means every effect, NoExecute too"


def test_a_toleration_of_everything_needs_no_defaults():
    assert created([{"operator": "Exists"}]) == [{"operator": "Exists"}]


def test_other_tolerations_are_kept_and_the_defaults_added():
    other = [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]
    assert created(other) == other + DEFAULTS
    noschedule = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoSchedule"}]
    assert created(noschedule) == noschedule + DEFAULTS, "a NoSchedule toleration does not cover NoExecute"


def test_the_seconds_come_from_the_apiserver_flags():
    options = parse_args(["--default-unreachable-toleration-seconds", "5"])
    assert (options.default_not_ready_toleration_seconds, options.default_unreachable_toleration_seconds) == (
        300,
        5,
    )
    pod = {"spec": {}}
    admit_default_toleration_seconds(pod, DefaultTolerationSeconds(not_ready=7, unreachable=5))
    assert [t["tolerationSeconds"] for t in pod["spec"]["tolerations"]] == [7, 5]
