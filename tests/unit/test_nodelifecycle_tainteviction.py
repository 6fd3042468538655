"""The taint manager on the fake API and clock: a pod tolerating the unreachable taint for N
seconds is evicted exactly N seconds after the taint was added (not a second before), a pod that
does not tolerate it goes at once, a DaemonSet-style toleration keeps the pod, and a taint that
goes away cancels the eviction."""

from __future__ import annotations

import argparse

import pytest

from controller.nodelifecycle import TaintEvictionController
from controller.nodelifecycle.tolerations import (
    eviction_decision,
    matching_tolerations,
    min_toleration_seconds,
)
from kubelite.objects import get_condition, rfc3339
from kubelite.resources import EVENTS, NODES, PODS
from kubelite.scheduling import tolerates
from tests.fakeapi import FakeApi

UNREACHABLE = "node.kubernetes.io/unreachable"
FOREVER = [
    {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
]


@pytest.fixture
def api() -> FakeApi:
    api = FakeApi()
    api.create(NODES, {"metadata": {"name": "node-1"}}, None)
    return api


@pytest.fixture
def tm(api: FakeApi) -> TaintEvictionController:
    return TaintEvictionController(api.context(argparse.Namespace()), queue=api.work_queue())


def pod(api: FakeApi, name: str, tolerations: list | None = None) -> None:
    """A pod bound to node-1; the apiserver's admission adds the default 300 s tolerations unless
    the pod has its own."""
    spec = {"containers": [{"name": "c", "image": "x"}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    api.create(PODS, {"metadata": {"name": name, "labels": {"app": name}}, "spec": spec})
    api.set_pods(app=name)


def taint(api: FakeApi, *taints: dict) -> None:
    node = api.get(NODES, "node-1", None)
    spec = node.setdefault("spec", {})
    spec["taints"] = [{**t, "timeAdded": rfc3339(api.clock.now())} for t in taints]
    if not taints:
        spec.pop("taints")
    api.run(api.client.update(NODES, node))


def drain(api: FakeApi, tm: TaintEvictionController) -> list[str]:
    async def work() -> list[str]:
        synced = []
        while len(tm.queue):
            key = await tm.queue.get()
            assert key is not None
            try:
                await tm.sync(key)
            finally:
                tm.queue.done(key)
            synced.append(key)
        return synced

    return api.run(work())


def evicted(api: FakeApi, name: str) -> bool:
    return bool(api.get(PODS, name)["metadata"].get("deletionTimestamp"))


def eviction_events(api: FakeApi) -> list[str]:
    return [e["message"] for e in api.items(EVENTS) if e["reason"] == "TaintManagerEviction"]


def test_toleration_matching_follows_kubernetes():
    taint_ = {"key": UNREACHABLE, "effect": "NoExecute"}
    assert tolerates({"operator": "Exists"}, taint_), "empty key with Exists tolerates everything"
    assert tolerates({"key": UNREACHABLE, "operator": "Exists"}, taint_), "empty effect matches all effects"
    assert not tolerates({"key": UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}, taint_)
    assert tolerates(
        {"key": "k", "value": "v", "effect": "NoExecute"}, {"key": "k", "value": "v", "effect": "NoExecute"}
    )
    assert not tolerates({"key": "k", "value": "w"}, {"key": "k", "value": "v", "effect": "NoExecute"})
    used = [{"tolerationSeconds": 300}, {"tolerationSeconds": 60}, {}]
    assert min_toleration_seconds(used) == 60
    assert min_toleration_seconds([{}]) is None, "no seconds: tolerated forever"
    assert min_toleration_seconds([{"tolerationSeconds": -5}]) == 0
    assert matching_tolerations([taint_, {"key": "x", "effect": "NoExecute"}], FOREVER) == (False, [])


def test_eviction_decision_is_due_when_the_shortest_toleration_runs_out():
    import datetime as dt

    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    p = {"spec": {"tolerations": [{"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": 300}]}}
    taints = [{"key": UNREACHABLE, "effect": "NoExecute"}]
    assert eviction_decision(p, taints, t0 + dt.timedelta(seconds=299), t0).evict is False
    assert eviction_decision(p, taints, t0 + dt.timedelta(seconds=299), t0).due == t0 + dt.timedelta(
        seconds=300
    )
    assert eviction_decision(p, taints, t0 + dt.timedelta(seconds=300), t0).evict is True
    assert eviction_decision(p, [], t0, t0).evict is False


def test_a_pod_with_the_default_tolerations_is_evicted_exactly_when_they_run_out(api, tm):
    pod(api, "web")
    tolerations = api.get(PODS, "web")["spec"]["tolerations"]
    assert {(t["key"], t.get("tolerationSeconds")) for t in tolerations} >= {(UNREACHABLE, 300)}
    drain(api, tm)
    taint(api, {"key": UNREACHABLE, "effect": "NoExecute"})
    assert drain(api, tm) == ["default/web"], "the node's taint enqueues the pods on it"
    assert not evicted(api, "web")
    assert api.clock.pending()[-1] == 300
    api.clock.advance(299)
    assert drain(api, tm) == [] and not evicted(api, "web"), "not a second early"
    api.clock.advance(1)
    assert "default/web" in drain(api, tm)
    assert evicted(api, "web")
    assert eviction_events(api) == ["Marking for deletion Pod default/web"]
    cond = get_condition(api.get(PODS, "web"), "DisruptionTarget")
    assert (cond["status"], cond["reason"]) == ("True", "DeletionByTaintManager")


def test_the_toleration_counts_from_the_time_the_taint_was_added(api, tm):
    pod(
        api,
        "web",
        [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}],
    )
    taint(api, {"key": UNREACHABLE, "effect": "NoExecute"})
    tm.queue = api.work_queue()  # a controller that starts later (a new leader) ...
    api.clock.advance(45)
    assert drain(api, tm) == []
    tm.queue.add("default/web")
    drain(api, tm)
    assert not evicted(api, "web")
    assert api.clock.pending() == [15], "... still evicts 60 s after timeAdded, not 60 s after it looked"
    api.clock.advance(15)
    drain(api, tm)
    assert evicted(api, "web")


def test_a_pod_that_does_not_tolerate_the_taint_is_evicted_at_once(api, tm):
    pod(api, "plain", [])
    pod(api, "web")
    drain(api, tm)
    taint(api, {"key": "maintenance", "effect": "NoExecute"})
    drain(api, tm)
    assert evicted(api, "plain") and evicted(api, "web"), "the default tolerations do not cover other taints"


def test_daemonset_style_tolerations_keep_the_pod(api, tm):
    pod(api, "agent", FOREVER)
    assert api.get(PODS, "agent")["spec"]["tolerations"] == FOREVER, "admission leaves them alone"
    taint(api, {"key": UNREACHABLE, "effect": "NoExecute"})
    drain(api, tm)
    api.clock.advance(3600)
    drain(api, tm)
    assert not evicted(api, "agent")
    assert api.clock.pending() == [] and eviction_events(api) == []


def test_a_taint_removed_in_time_cancels_the_eviction(api, tm):
    pod(api, "web")
    taint(api, {"key": UNREACHABLE, "effect": "NoExecute"})
    drain(api, tm)
    api.clock.advance(100)
    taint(api)
    drain(api, tm)
    assert eviction_events(api) == ["Cancelling deletion of Pod default/web"]
    api.clock.advance(200)
    drain(api, tm)
    assert not evicted(api, "web")


def test_pods_on_other_nodes_and_unbound_pods_are_left_alone(api, tm):
    api.create(NODES, {"metadata": {"name": "node-2"}}, None)
    api.create(PODS, {"metadata": {"name": "other", "labels": {"app": "other"}},
                      "spec": {"containers": [{"name": "c", "image": "x"}], "tolerations": []}})  # fmt: skip
    api.set_pods(node="node-2", app="other")
    api.create(
        PODS,
        {
            "metadata": {"name": "pending"},
            "spec": {"containers": [{"name": "c", "image": "x"}], "tolerations": []},
        },
    )
    taint(api, {"key": "maintenance", "effect": "NoExecute"})
    drain(api, tm)
    tm.queue.add("default/pending")
    drain(api, tm)
    assert not evicted(api, "other") and not evicted(api, "pending")


def test_the_clock_starts_with_the_taint_the_shortest_toleration_is_for_and_not_before_binding():
    import datetime as dt

    from controller.nodelifecycle.tolerations import bound_at, tainted_since

    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    later = t0 + dt.timedelta(hours=1)
    old_taint = {"key": "dedicated", "effect": "NoExecute", "timeAdded": rfc3339(t0)}
    fresh = {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": rfc3339(later)}
    tolerations = [
        {"key": "dedicated", "operator": "Exists"},
        {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    ]
    seen = later + dt.timedelta(seconds=30)
    assert tainted_since([old_taint, fresh], tolerations, seen) == later, (
        "the forever-tolerated taint is no clock"
    )
    timed_too = [{**tolerations[0], "tolerationSeconds": 600}, tolerations[1]]
    assert tainted_since([old_taint, fresh], timed_too, seen) == later, "only the shortest sets the clock"
    same = [{**tolerations[0], "tolerationSeconds": 300}, tolerations[1]]
    assert tainted_since([old_taint, fresh], same, seen) == t0, "equally short: the earlier taint"
    assert tainted_since([{"key": UNREACHABLE, "effect": "NoExecute"}], tolerations, seen) == seen
    bound = later + dt.timedelta(seconds=100)
    assert tainted_since([fresh], tolerations, seen, bound) == bound, "bound after the taint: from binding"
    assert tainted_since([fresh], tolerations, seen, t0) == later
    scheduled = {"status": {"conditions": [{"type": "PodScheduled", "status": "True",
                                            "lastTransitionTime": rfc3339(bound)}]}}  # fmt: skip
    assert bound_at(scheduled) == bound and bound_at({}) is None


def test_a_long_standing_taint_tolerated_forever_does_not_hurry_a_fresh_eviction(api, tm):
    node = api.get(NODES, "node-1", None)
    node["spec"] = {
        "taints": [{"key": "dedicated", "effect": "NoExecute", "timeAdded": rfc3339(api.clock.now())}]
    }
    api.run(api.client.update(NODES, node))
    pod(api, "web", [
        {"key": "dedicated", "operator": "Exists"},
        {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    ])  # fmt: skip
    drain(api, tm)
    api.clock.advance(3600)
    node = api.get(NODES, "node-1", None)
    node["spec"]["taints"].append(
        {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": rfc3339(api.clock.now())}
    )
    api.run(api.client.update(NODES, node))
    drain(api, tm)
    assert not evicted(api, "web"), "an hour-old taint the pod tolerates forever is not the unreachable one"
    assert api.clock.pending() == [300]
    api.clock.advance(300)
    drain(api, tm)
    assert evicted(api, "web")


def test_a_pod_bound_after_the_taint_gets_its_whole_toleration(api, tm):
    from kubelite.client import STRATEGIC_MERGE_PATCH

    taint(api, {"key": UNREACHABLE, "effect": "NoExecute"})
    api.clock.advance(100)
    pod(
        api,
        "late",
        [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}],
    )
    scheduled = {"type": "PodScheduled", "status": "True", "lastTransitionTime": rfc3339(api.clock.now())}
    api.run(api.client.patch(PODS, "late", {"status": {"conditions": [scheduled]}}, "default",
                             subresource="status", content_type=STRATEGIC_MERGE_PATCH))  # fmt: skip
    drain(api, tm)
    assert not evicted(api, "late"), "not evicted at once for a taint older than its binding"
    assert api.clock.pending() == [60]
    api.clock.advance(60)
    drain(api, tm)
    assert evicted(api, "late")
