"""The ReplicaSet controller and the ReplicationController manager against the shared fake API:
exact replica counts, expectations, adoption and release, deletion order, status."""

from __future__ import annotations

import argparse

import pytest

from controller.replicaset import (
    ReplicaSetController,
    ReplicationManager,
    deletion_rank,
    pods_to_delete,
    slow_start_batches,
)
from kubelite.objects import controller_ref
from kubelite.resources import EVENTS, NAMESPACES, PODS, REPLICASETS, REPLICATIONCONTROLLERS
from tests.fakeapi import FakeApi

TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}


def replicaset(name: str = "web", replicas: int = 3, **spec) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": TEMPLATE,
            **spec,
        },
    }


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def rsc(api: FakeApi) -> ReplicaSetController:
    return ReplicaSetController(api.context(argparse.Namespace()))


def test_slow_start_batches_double_until_the_count():
    assert slow_start_batches(0) == []
    assert slow_start_batches(1) == [1]
    assert slow_start_batches(10) == [1, 2, 4, 3]
    assert sum(slow_start_batches(500)) == 500


def test_a_new_replicaset_gets_exactly_its_pods_owned_and_labelled(api, rsc):
    rs = api.create(REPLICASETS, replicaset())
    api.run(rsc.sync("default/web"))
    pods = api.live_pods()
    assert len(pods) == 3
    for pod in pods:
        assert pod["metadata"]["name"].startswith("web-") and len(pod["metadata"]["name"]) == 9
        assert pod["metadata"]["labels"] == {"app": "web"}
        ref = controller_ref(pod)
        assert ref == {
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": rs["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True,
        }  # fmt: skip
    events = [(e["reason"], e["involvedObject"]["name"]) for e in api.items(EVENTS)]
    assert events.count(("SuccessfulCreate", "web")) == 3
    api.run(rsc.sync("default/web"))
    assert len(api.live_pods()) == 3, "a second sync creates nothing"


def test_expectations_stop_a_second_sync_from_doubling_creates_the_cache_has_not_seen(api, rsc):
    api.create(REPLICASETS, replicaset(replicas=4))
    api.hold_events()  # the pod informer lags behind the creates
    api.run(rsc.sync("default/web"))
    api.run(rsc.sync("default/web"))
    assert len(api.live_pods()) == 4
    assert rsc.expectations.pending("default/web") == (4, 0)
    api.deliver(force=True)
    assert rsc.expectations.satisfied("default/web")
    api.run(rsc.sync("default/web"))
    assert len(api.live_pods()) == 4


def test_scaling_down_deletes_unscheduled_then_not_ready_then_newest(api, rsc):
    api.create(REPLICASETS, replicaset(replicas=4))
    api.run(rsc.sync("default/web"))
    api.set_pods()
    pods = {p["metadata"]["name"]: p for p in api.live_pods()}
    names = sorted(pods)
    unscheduled, not_ready = names[3], names[2]
    pods[unscheduled]["spec"].pop("nodeName")
    pods[unscheduled]["status"]["phase"] = "Pending"
    pods[not_ready]["status"]["conditions"][0]["status"] = "False"
    ranked = [p["metadata"]["name"] for p in pods_to_delete(list(pods.values()), 2)]
    assert ranked == [unscheduled, not_ready]


def test_deletion_rank_prefers_newer_pods_among_equals():
    old = {"metadata": {"name": "a", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {}, "status": {}}
    new = {"metadata": {"name": "b", "creationTimestamp": "2026-01-01T00:01:00Z"}, "spec": {}, "status": {}}
    assert sorted([old, new], key=deletion_rank)[0] is new


def test_scale_down_then_a_deleted_pod_is_replaced(api, rsc):
    api.create(REPLICASETS, replicaset(replicas=3))
    api.run(rsc.sync("default/web"))
    api.set_pods()
    rs = api.get(REPLICASETS, "web")
    rs["spec"]["replicas"] = 1
    api.run(api.client.update(REPLICASETS, rs))
    api.run(rsc.sync("default/web"))
    assert len(api.live_pods()) == 1
    deleted = [e["message"] for e in api.items(EVENTS) if e["reason"] == "SuccessfulDelete"]
    assert len(deleted) == 2 and all(m.startswith("Deleted pod: web-") for m in deleted), deleted
    api.finish_deletions()
    [survivor] = api.live_pods()
    api.run(api.client.delete(PODS, survivor["metadata"]["name"], "default"))
    api.finish_deletions()
    api.run(rsc.sync("default/web"))
    [replacement] = api.live_pods()
    assert replacement["metadata"]["name"] != survivor["metadata"]["name"]


def test_orphans_are_adopted_mismatching_pods_released_others_pods_left_alone(api, rsc):
    orphan = api.create(
        PODS, {"metadata": {"name": "orphan", "labels": {"app": "web"}}, "spec": TEMPLATE["spec"]}
    )
    other_owner = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "other",
        "uid": "u-other",
        "controller": True,
    }
    theirs = {"name": "theirs", "labels": {"app": "web"}, "ownerReferences": [other_owner]}
    api.create(PODS, {"metadata": theirs, "spec": TEMPLATE["spec"]})
    rs = api.create(REPLICASETS, replicaset(replicas=2))
    api.run(rsc.sync("default/web"))
    adopted = api.get(PODS, "orphan")
    assert controller_ref(adopted)["uid"] == rs["metadata"]["uid"]
    assert adopted["metadata"]["uid"] == orphan["metadata"]["uid"]
    assert controller_ref(api.get(PODS, "theirs"))["uid"] == "u-other"
    mine = [p for p in api.live_pods() if (controller_ref(p) or {}).get("uid") == rs["metadata"]["uid"]]
    assert len(mine) == 2, "the adopted pod counts toward the replicas"
    # relabel the adopted pod: it is released and replaced
    pod = api.get(PODS, "orphan")
    pod["metadata"]["labels"] = {"app": "debug"}
    api.run(api.client.update(PODS, pod))
    api.run(rsc.sync("default/web"))
    assert controller_ref(api.get(PODS, "orphan")) is None
    mine = [p for p in api.live_pods() if (controller_ref(p) or {}).get("uid") == rs["metadata"]["uid"]]
    assert len(mine) == 2


def test_status_counts_ready_and_available_after_min_ready_seconds(api, rsc):
    api.create(REPLICASETS, replicaset(replicas=2, minReadySeconds=10))
    api.run(rsc.sync("default/web"))
    api.run(rsc.sync("default/web"))
    status = api.get(REPLICASETS, "web")["status"]
    assert status == {"replicas": 2, "fullyLabeledReplicas": 2, "observedGeneration": 1}
    api.set_pods()
    api.run(rsc.sync("default/web"))
    status = api.get(REPLICASETS, "web")["status"]
    assert status["readyReplicas"] == 2 and "availableReplicas" not in status
    api.clock.advance(10)
    api.run(rsc.sync("default/web"))
    assert api.get(REPLICASETS, "web")["status"]["availableReplicas"] == 2


def test_a_replicationcontroller_selects_by_equality_and_defaults_its_selector(api):
    rcm = ReplicationManager(api.context(argparse.Namespace()))
    rc = api.create(
        REPLICATIONCONTROLLERS,
        {"metadata": {"name": "legacy"}, "spec": {"replicas": 2, "template": TEMPLATE}},
    )
    assert rc["spec"]["selector"] == {"app": "web"} and rc["metadata"]["labels"] == {"app": "web"}
    assert rc["status"] == {"replicas": 0}
    api.run(rcm.sync("default/legacy"))
    pods = api.live_pods()
    assert len(pods) == 2
    assert {controller_ref(p)["kind"] for p in pods} == {"ReplicationController"}
    api.run(rcm.sync("default/legacy"))
    assert api.get(REPLICATIONCONTROLLERS, "legacy")["status"]["replicas"] == 2


def test_creates_refused_by_the_apiserver_stop_after_the_first_batch():
    api = FakeApi(namespaces=("team",))
    rsc = ReplicaSetController(api.context(argparse.Namespace()))
    api.create(REPLICASETS, replicaset(replicas=5), namespace="team")
    # the namespace starts terminating after the ReplicaSet exists: every pod create is refused
    api.run(api.client.delete(NAMESPACES, "team"))
    api.run(rsc.sync("team/web"))
    assert api.items(PODS, "team") == []
    attempts = [call for call in api.client.calls if call[:2] == ("create", "pods")]
    assert len(attempts) == 1, "slow start: one refused create, not five"
    assert rsc.expectations.satisfied("team/web"), "refused creates are never expected to be observed"
