"""The disruption controller's sync against the shared fake API: a budget's status follows its pods
(ready, unready, deleted, evicted), percentages follow the Deployment's replicas, an eviction
recorded in disruptedPods expires after two minutes, and a budget over pods without a scale allows
nothing."""

from __future__ import annotations

import argparse

import pytest

from controller.disruption import DisruptionController
from controller.replicaset import ReplicaSetController
from kubelite.objects import rfc3339
from kubelite.resources import DAEMONSETS, DEPLOYMENTS, EVENTS, PODDISRUPTIONBUDGETS, PODS, REPLICASETS
from tests.fakeapi import FakeApi

TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
SELECTOR = {"matchLabels": {"app": "web"}}


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def dc(api: FakeApi) -> DisruptionController:
    controller = api.controller(DisruptionController)
    controller.stale_pods = api.work_queue()
    return controller


def web_pods(api: FakeApi, replicas: int, owner: dict | None = None) -> None:
    """A ReplicaSet (owned by `owner` if given) whose controller makes its pods, all Ready."""
    meta: dict = {"name": "web-1"}
    if owner is not None:
        meta["ownerReferences"] = [{
            "apiVersion": "apps/v1", "kind": "Deployment", "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True,
        }]  # fmt: skip
    api.create(
        REPLICASETS,
        {"metadata": meta, "spec": {"replicas": replicas, "selector": SELECTOR, "template": TEMPLATE}},
    )
    api.run(ReplicaSetController(api.context(argparse.Namespace())).sync("default/web-1"))
    api.set_pods()


def pdb(**spec) -> dict:
    return {"metadata": {"name": "web"}, "spec": {"selector": SELECTOR, **spec}}


def status(api: FakeApi) -> dict:
    return api.get(PODDISRUPTIONBUDGETS, "web")["status"]


def counts(api: FakeApi) -> tuple[int, int, int, int]:
    s = status(api)
    return s["currentHealthy"], s["desiredHealthy"], s["expectedPods"], s["disruptionsAllowed"]


def test_min_available_status_follows_pods_turning_unready_and_going(api, dc):
    web_pods(api, 3)
    api.create(PODDISRUPTIONBUDGETS, pdb(minAvailable=2))
    api.run(dc.sync("default/web"))
    assert counts(api) == (3, 2, 3, 1)
    s = status(api)
    assert s["observedGeneration"] == 1
    assert [(c["type"], c["status"], c["reason"]) for c in s["conditions"]] == [
        ("DisruptionAllowed", "True", "SufficientPods")
    ]
    assert len(dc.queue) == 1, "writing status enqueued the budget again (its informer saw it)"
    rv = api.get(PODDISRUPTIONBUDGETS, "web")["metadata"]["resourceVersion"]
    api.run(dc.sync("default/web"))
    assert api.get(PODDISRUPTIONBUDGETS, "web")["metadata"]["resourceVersion"] == rv, (
        "an unchanged status is not written"
    )

    name = api.live_pods()[0]["metadata"]["name"]
    api.set_pods(ready=False)  # every pod unready
    api.run(dc.sync("default/web"))
    assert counts(api) == (0, 2, 3, 0)
    assert status(api)["conditions"][0]["reason"] == "InsufficientPods"
    api.set_pods(ready=True)
    api.run(api.client.delete(PODS, name, "default"))
    api.run(dc.sync("default/web"))
    assert counts(api) == (2, 2, 3, 0), "a terminating pod is not healthy"


def test_percentages_follow_the_deployments_replicas(api, dc):
    deployment = api.create(DEPLOYMENTS, {
        "metadata": {"name": "web"},
        "spec": {"replicas": 4, "selector": SELECTOR, "template": TEMPLATE},
    })  # fmt: skip
    web_pods(api, 4, owner=deployment)
    api.create(PODDISRUPTIONBUDGETS, pdb(minAvailable="50%"))
    api.run(dc.sync("default/web"))
    assert counts(api) == (4, 2, 4, 2)
    deployment["spec"]["replicas"] = 6  # the Deployment grows before its pods exist
    api.run(api.client.update(DEPLOYMENTS, deployment))
    api.run(dc.sync("default/web"))
    assert counts(api) == (4, 3, 6, 1)


def test_max_unavailable_and_an_eviction_awaiting_deletion(api, dc):
    web_pods(api, 3)
    api.create(PODDISRUPTIONBUDGETS, pdb(maxUnavailable=1))
    api.run(dc.sync("default/web"))
    assert counts(api) == (3, 2, 3, 1)
    evicted = api.live_pods()[0]["metadata"]["name"]
    current = api.get(PODDISRUPTIONBUDGETS, "web")
    current["status"].update(disruptionsAllowed=0, disruptedPods={evicted: rfc3339(api.clock.now())})
    api.run(api.client.update(PODDISRUPTIONBUDGETS, current, subresource="status"))
    api.run(dc.sync("default/web"))
    assert counts(api) == (2, 2, 3, 0), "the evicted pod no longer counts though not yet deleted"
    assert status(api)["disruptedPods"] == {evicted: rfc3339(api.clock.now())}
    while len(dc.queue):  # drain what the status writes enqueued
        api.run(dc.queue.get())
        dc.queue.done("default/web")
    api.clock.advance(121)  # the eviction never led to a deletion: it expires, and the recheck fires
    assert len(dc.queue) == 1
    api.run(dc.sync("default/web"))
    assert counts(api) == (3, 2, 3, 1)
    assert "disruptedPods" not in status(api)
    warnings = [e["message"] for e in api.items(EVENTS) if e["reason"] == "NotDeleted"]
    assert warnings == ["Pod was expected by PDB default/web to be deleted but it wasn't"]


def test_pods_of_a_kind_without_scale_make_a_percentage_budget_allow_nothing(api, dc):
    ds = api.create(
        DAEMONSETS, {"metadata": {"name": "agent"}, "spec": {"selector": SELECTOR, "template": TEMPLATE}}
    )
    api.create(PODS, {
        "metadata": {"name": "agent-x", "labels": {"app": "web"}, "ownerReferences": [{
            "apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": ds["metadata"]["uid"],
            "controller": True}]},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
    })  # fmt: skip
    api.set_pods()
    api.create(PODDISRUPTIONBUDGETS, pdb(maxUnavailable="10%"))
    api.run(dc.sync("default/web"))
    s = status(api)
    assert s["disruptionsAllowed"] == 0
    cond = s["conditions"][0]
    assert (cond["status"], cond["reason"]) == ("False", "SyncFailed")
    assert cond["message"] == "daemonsets.apps does not implement the scale subresource"
    reasons = {e["reason"] for e in api.items(EVENTS)}
    assert "CalculateExpectedPodCountFailed" in reasons


def test_a_budget_with_no_pods_says_so_and_a_deleted_one_is_left_alone(api, dc):
    api.create(PODDISRUPTIONBUDGETS, pdb(minAvailable=1))
    api.run(dc.sync("default/web"))
    assert counts(api) == (0, 1, 0, 0)
    assert [e["message"] for e in api.items(EVENTS) if e["reason"] == "NoPods"] == ["No matching pods found"]
    api.run(api.client.delete(PODDISRUPTIONBUDGETS, "web", "default"))
    api.run(dc.sync("default/web"))  # gone: nothing to do, no error


def test_pod_changes_enqueue_the_budgets_that_select_them(api, dc):
    api.create(PODDISRUPTIONBUDGETS, pdb(minAvailable=1))
    api.create(
        PODDISRUPTIONBUDGETS,
        {"metadata": {"name": "other"}, "spec": {"selector": {"matchLabels": {"app": "db"}}}},
    )
    while len(dc.queue):
        key = api.run(dc.queue.get())
        dc.queue.done(key)
    web_pods(api, 1)
    assert len(dc.queue) == 1
    assert api.run(dc.queue.get()) == "default/web"


def test_a_disruption_target_no_deletion_followed_is_reset_after_two_minutes(api, dc):
    web_pods(api, 1)
    pod = api.live_pods()[0]
    name = pod["metadata"]["name"]
    pod["status"]["conditions"].append({
        "type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting", "lastTransitionTime": rfc3339(api.clock.now()),
    })  # fmt: skip
    api.run(api.client.update(PODS, pod, subresource="status"))
    assert len(dc.stale_pods) == 0, "not stale yet"
    api.clock.advance(119)
    assert len(dc.stale_pods) == 0
    api.clock.advance(2)
    key = api.run(dc.stale_pods.get())
    assert key == f"default/{name}"
    api.run(dc.sync_stale_pod(key))
    target = [c for c in api.get(PODS, name)["status"]["conditions"] if c["type"] == "DisruptionTarget"]
    assert [c["status"] for c in target] == ["False"]
