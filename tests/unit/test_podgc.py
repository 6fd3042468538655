"""Pod GC on the fake API and clock: terminated pods above the threshold go oldest first (evicted
ones before), pods of a deleted node go after the quarantine, unscheduled terminating pods go, and
terminating pods on an unreachable node go once their grace period is over (StatefulSet pods and
pods on healthy nodes stay)."""

from __future__ import annotations

import argparse

import pytest

from controller.podgc import PodGCController, terminated_to_delete
from kubelite.objects import rfc3339
from kubelite.resources import NODES, PODS
from tests.fakeapi import FakeApi

CONTAINERS = [{"name": "c", "image": "x"}]


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


def gc(api: FakeApi, threshold: int = 12500) -> PodGCController:
    return PodGCController(api.context(argparse.Namespace(terminated_pod_gc_threshold=threshold)))


def node(api: FakeApi, name: str, ready: str = "True", taints: list | None = None) -> None:
    api.create(NODES, {"metadata": {"name": name}, "spec": {"taints": taints} if taints else {}}, None)
    n = api.get(NODES, name, None)
    n["status"] = {"conditions": [{"type": "Ready", "status": ready}]}
    api.run(api.client.update(NODES, n, subresource="status"))


def pod(api: FakeApi, name: str, node_name: str = "node-1", phase: str = "Running", **meta) -> None:
    api.create(
        PODS, {"metadata": {"name": name, "labels": {"p": name}, **meta}, "spec": {"containers": CONTAINERS}}
    )
    api.set_pods(node=node_name, p=name)
    if phase != "Running":
        api.run(api.client.patch(PODS, name, {"status": {"phase": phase}}, "default", subresource="status"))


def names(api: FakeApi) -> list[str]:
    return sorted(p["metadata"]["name"] for p in api.items(PODS))


def test_terminated_pods_above_the_threshold_go_oldest_first(api):
    node(api, "node-1")
    for i in range(4):
        pod(api, f"done-{i}", phase="Succeeded")
        api.clock.advance(1)
    pod(api, "running")
    api.run(gc(api, threshold=2).gc())
    assert names(api) == ["done-2", "done-3", "running"]
    api.run(gc(api, threshold=0).gc())
    assert names(api) == ["done-2", "done-3", "running"], "threshold 0 turns the rule off"


def test_evicted_pods_go_before_older_ones():
    old = {
        "metadata": {"name": "old", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "status": {"phase": "Failed"},
    }
    evicted = {"metadata": {"name": "ev", "creationTimestamp": "2026-01-02T00:00:00Z"},
               "status": {"phase": "Failed", "reason": "Evicted"}}  # fmt: skip
    assert terminated_to_delete([old, evicted], 1) == [evicted]


def test_pods_of_a_node_that_no_longer_exists_go_after_the_quarantine(api):
    node(api, "node-1")
    pod(api, "orphan", node_name="gone")
    pod(api, "kept")
    controller = gc(api)
    api.run(controller.gc())
    api.clock.advance(39)
    api.run(controller.gc())
    assert names(api) == ["kept", "orphan"], "still in quarantine"
    api.clock.advance(1)
    api.run(controller.gc())
    assert names(api) == ["kept"]


def test_a_node_that_shows_up_during_quarantine_keeps_its_pods(api):
    pod(api, "early", node_name="late-node")
    controller = gc(api)
    api.run(controller.gc())
    node(api, "late-node")
    api.clock.advance(60)
    api.run(controller.gc())
    assert names(api) == ["early"]


def test_unscheduled_terminating_pods_are_failed_and_force_deleted(api):
    """A pod no node took, held by a finalizer while being deleted: GC marks it Failed and deletes
    it with grace 0 (it goes when the finalizer does); an unscheduled pod not being deleted stays."""
    api.create(
        PODS,
        {
            "metadata": {"name": "stuck", "finalizers": ["example.com/hold"]},
            "spec": {"containers": CONTAINERS},
        },
    )
    api.run(api.client.delete(PODS, "stuck", "default"))
    api.create(PODS, {"metadata": {"name": "pending"}, "spec": {"containers": CONTAINERS}})
    api.run(gc(api).gc())
    assert api.get(PODS, "stuck")["status"]["phase"] == "Failed"
    assert api.get(PODS, "pending")["status"]["phase"] == "Pending"
    assert ("delete", "pods", "stuck") in api.client.calls and (
        "delete",
        "pods",
        "pending",
    ) not in api.client.calls


def test_terminating_pods_on_an_unreachable_node_go_once_their_grace_period_is_over(api):
    unreachable = [
        {
            "key": "node.kubernetes.io/unreachable",
            "effect": "NoExecute",
            "timeAdded": rfc3339(api.clock.now()),
        }
    ]
    node(api, "dead", ready="Unknown", taints=unreachable)
    node(api, "node-1")
    pod(api, "evicted", node_name="dead")
    sts_ref = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "u1", "controller": True}
    pod(api, "db-0", node_name="dead", ownerReferences=[sts_ref])
    pod(api, "healthy")
    for name in ("evicted", "db-0", "healthy"):
        api.run(api.client.delete(PODS, name, "default"))  # graceful: 30 s
    controller = gc(api)
    api.run(controller.gc())
    assert names(api) == ["db-0", "evicted", "healthy"], (
        "within the grace period the kubelet may still finish"
    )
    api.clock.advance(30)
    api.run(controller.gc())
    assert names(api) == ["db-0", "healthy"], (
        "a dead kubelet never will; StatefulSet pods wait as in Kubernetes"
    )


def test_out_of_service_nodes_release_every_terminating_pod(api):
    oos = [{"key": "node.kubernetes.io/out-of-service", "effect": "NoExecute"}]
    node(api, "dead", ready="False", taints=oos)
    sts_ref = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "u1", "controller": True}
    pod(api, "db-0", node_name="dead", ownerReferences=[sts_ref])
    api.run(api.client.delete(PODS, "db-0", "default"))
    api.run(gc(api).gc())
    assert names(api) == []


def test_the_controller_manager_flags_have_kubernetes_defaults():
    from controller.__main__ import parse_args

    args = parse_args([])
    assert (args.node_monitor_period, args.node_monitor_grace_period) == (5.0, 40.0)
    assert (args.pod_eviction_timeout, args.terminated_pod_gc_threshold) == (300.0, 12500)
    assert "podgc" in args.controllers and "nodelifecycle" in args.controllers
    args = parse_args(["--node-monitor-period", "1s", "--terminated-pod-gc-threshold", "10"])
    assert (args.node_monitor_period, args.terminated_pod_gc_threshold) == (1.0, 10)


def test_a_pass_that_cannot_reach_the_apiserver_is_retried_next_period(api):
    """wait.Until: a connection error fails one pass, it does not end the controller."""
    import asyncio

    import aiohttp

    node(api, "node-1")
    for i in range(2):
        pod(api, f"done-{i}", phase="Succeeded")
        api.clock.advance(1)
    controller = gc(api, threshold=1)
    api.failures[("delete", "pods")] = aiohttp.ClientConnectionError("Cannot connect to host")  # type: ignore[assignment]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 1:
            api.failures.clear()
        else:
            raise asyncio.CancelledError

    controller.sleep = sleep
    with pytest.raises(asyncio.CancelledError):
        api.run(controller.run())
    assert slept == [20, 20]
    assert names(api) == ["done-1"], "the second pass deleted the oldest terminated pod"
