"""The node lifecycle controller on the fake API and clock: a silent node goes Ready=Unknown and
gets the unreachable taints after --node-monitor-grace-period (not before), a kubelet reporting
Ready=False gets the not-ready taints, a node back to Ready loses them, and the pods of a lost node
are marked not Ready."""

from __future__ import annotations

import argparse

import pytest

from controller.nodelifecycle import NodeLifecycleController
from controller.nodelifecycle.health import desired_taints, reconciled_taints
from kubelite.objects import get_condition, rfc3339
from kubelite.resources import EVENTS, LEASES, NODES, PODS
from tests.fakeapi import FakeApi

GRACE = 40


@pytest.fixture
def api() -> FakeApi:
    return FakeApi(namespaces=("default", "kube-node-lease"))


@pytest.fixture
def nlc(api: FakeApi) -> NodeLifecycleController:
    options = argparse.Namespace(node_monitor_grace_period=GRACE, node_monitor_period=5)
    return NodeLifecycleController(api.context(options))


def post_status(api: FakeApi, name: str, ready: str = "True", **conditions: str) -> None:
    """Play the kubelet: post node status with a heartbeat of now, and renew the lease."""
    now = rfc3339(api.clock.now())
    conds = [{"type": t, "status": s, "lastHeartbeatTime": now, "lastTransitionTime": now}
             for t, s in {"Ready": ready, **conditions}.items()]  # fmt: skip
    node = api.get(NODES, name, None)
    node["status"] = {"conditions": conds}
    api.run(api.client.update(NODES, node, subresource="status"))
    lease = {"metadata": {"name": name, "namespace": "kube-node-lease"},
             "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now}}  # fmt: skip
    try:
        current = api.get(LEASES, name, "kube-node-lease")
        current["spec"] = lease["spec"]
        api.run(api.client.update(LEASES, current))
    except Exception:
        api.create(LEASES, lease, "kube-node-lease")


def add_node(api: FakeApi, name: str = "node-1", **spec) -> None:
    api.create(NODES, {"metadata": {"name": name}, "spec": spec}, None)
    post_status(api, name)


def taints(api: FakeApi, name: str = "node-1") -> list[tuple[str, str]]:
    return [(t["key"], t["effect"]) for t in api.get(NODES, name, None)["spec"].get("taints") or []]


def ready(api: FakeApi, name: str = "node-1") -> str:
    return get_condition(api.get(NODES, name, None), "Ready")["status"]


UNREACHABLE = [
    ("node.kubernetes.io/unreachable", "NoSchedule"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
]
NOT_READY = [("node.kubernetes.io/not-ready", "NoSchedule"), ("node.kubernetes.io/not-ready", "NoExecute")]


def test_a_silent_node_is_unreachable_and_tainted_only_after_the_grace_period(api, nlc):
    add_node(api)
    api.clock.advance(GRACE - 1)
    api.run(nlc.check())
    assert ready(api) == "True" and taints(api) == []
    api.clock.advance(2)
    api.run(nlc.check())
    node = api.get(NODES, "node-1", None)
    cond = get_condition(node, "Ready")
    assert (cond["status"], cond["reason"], cond["message"]) == (
        "Unknown",
        "NodeStatusUnknown",
        "Kubelet stopped posting node status.",
    )
    assert sorted(taints(api)) == sorted(UNREACHABLE)
    stamped = {t["timeAdded"] for t in node["spec"]["taints"]}
    assert stamped == {rfc3339(api.clock.now())}
    events = [(e["reason"], e["message"]) for e in api.items(EVENTS)]
    assert ("NodeNotReady", "Node node-1 status is now: NodeNotReady") in events


def test_taints_keep_their_time_added_across_passes(api, nlc):
    add_node(api)
    api.clock.advance(GRACE + 1)
    api.run(nlc.check())
    first = api.get(NODES, "node-1", None)["spec"]["taints"]
    api.clock.advance(30)
    api.run(nlc.check())
    assert api.get(NODES, "node-1", None)["spec"]["taints"] == first


def test_a_returning_node_is_cleared(api, nlc):
    add_node(api, taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
    api.clock.advance(GRACE + 1)
    api.run(nlc.check())
    assert ("node.kubernetes.io/unreachable", "NoExecute") in taints(api)
    post_status(api, "node-1")
    api.run(nlc.check())
    assert ready(api) == "True"
    assert taints(api) == [("dedicated", "NoSchedule")], "only the user's own taint is left"


def test_a_kubelet_reporting_not_ready_gets_the_not_ready_taints_and_they_swap_with_unreachable(api, nlc):
    add_node(api)
    post_status(api, "node-1", ready="False")
    api.run(nlc.check())
    assert sorted(taints(api)) == sorted(NOT_READY)
    api.clock.advance(GRACE + 1)
    api.run(nlc.check())
    assert sorted(taints(api)) == sorted(UNREACHABLE), "unreachable replaces not-ready: they mirror Ready"


def test_pressure_conditions_and_cordon_give_no_schedule_taints():
    node = {
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "True"}]
        },
    }
    assert desired_taints(node) == [
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ]
    node["spec"]["taints"] = [
        {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": "t0"},
        {"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule", "timeAdded": "t0"},
    ]
    assert reconciled_taints(node, "t1") is None, "nothing to change: no write"
    node["spec"]["unschedulable"] = False
    assert reconciled_taints(node, "t1") == [
        {"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule", "timeAdded": "t0"}
    ]


def test_the_pods_of_a_lost_node_are_marked_not_ready(api, nlc):
    add_node(api)
    add_node(api, "node-2")
    for name, node in (("a", "node-1"), ("b", "node-2")):
        api.create(PODS, {"metadata": {"name": name, "labels": {"n": node}},
                          "spec": {"containers": [{"name": "c", "image": "x"}]}})  # fmt: skip
        api.set_pods(node=node, n=node)
    api.run(nlc.check())
    api.clock.advance(GRACE + 1)
    post_status(api, "node-2")
    api.run(nlc.check())
    assert get_condition(api.get(PODS, "a"), "Ready")["status"] == "False"
    assert get_condition(api.get(PODS, "b"), "Ready")["status"] == "True"
    assert any(
        e["reason"] == "NodeNotReady" and e["involvedObject"]["name"] == "a" for e in api.items(EVENTS)
    )


def test_a_node_that_changed_meanwhile_is_read_again_and_tainted(api, nlc):
    add_node(api)
    post_status(api, "node-1", ready="False")
    api.hold_events()  # the informer lags behind the kubelet's next status post
    api.clock.advance(1)
    post_status(api, "node-1", ready="False")
    api.client.calls.clear()
    api.run(nlc.check())
    api.deliver(force=True)
    assert sorted(taints(api)) == sorted(NOT_READY)
    assert api.client.calls.count(("update", "nodes", "node-1")) == 2, "a conflict, then the retry"


def test_the_monitor_survives_an_unreachable_or_slow_apiserver_and_checks_again_next_period(api, nlc):
    """wait.Until: a connection error or a timeout fails one pass, not the controller-manager."""
    import asyncio

    import aiohttp

    add_node(api)
    api.clock.advance(GRACE + 1)
    api.failures[("patch", "nodes")] = aiohttp.ClientConnectionError("Cannot connect to host")  # type: ignore[assignment]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 1:
            api.failures[("patch", "nodes")] = TimeoutError()  # type: ignore[assignment]
        elif len(slept) == 2:
            api.failures.clear()
        else:
            raise asyncio.CancelledError

    nlc.sleep = sleep
    with pytest.raises(asyncio.CancelledError):
        api.run(nlc.monitor())
    assert slept == [5, 5, 5], "two failed passes, each followed by the next period"
    assert ready(api) == "Unknown" and sorted(taints(api)) == sorted(UNREACHABLE)
