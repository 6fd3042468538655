"""The StatefulSet controller's sync against the shared fake API: ordered and parallel creation,
scale down from the highest ordinal, stable names, partitioned rolling updates, OnDelete, history
and status."""

from __future__ import annotations

import argparse
import copy

import pytest

from controller.statefulset import StatefulSetController
from kubelite.objects import controller_ref
from kubelite.resources import CONTROLLERREVISIONS, EVENTS, PODS, STATEFULSETS
from tests.fakeapi import FakeApi

KEY = "default/db"


def statefulset(replicas: int = 3, **spec) -> dict:
    return {
        "metadata": {"name": "db"},
        "spec": {
            "replicas": replicas,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "c", "image": "kubelite/whoami:1.0"}]},
            },
            **spec,
        },
    }


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def ssc(api: FakeApi) -> StatefulSetController:
    return StatefulSetController(api.context(argparse.Namespace()))


def names(api: FakeApi) -> list[str]:
    return sorted(p["metadata"]["name"] for p in api.live_pods())


def images(api: FakeApi) -> dict[str, str]:
    return {p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in api.live_pods()}


def settle(api: FakeApi, ssc: StatefulSetController, rounds: int = 20) -> None:
    """Sync, let the kubelet start and stop pods, until nothing changes."""
    for _ in range(rounds):
        before = api.store.rev
        api.run(ssc.sync(KEY))
        api.set_pods()
        api.finish_deletions()
        if api.store.rev == before:
            return
    raise AssertionError("the StatefulSet did not settle")


def set_image(api: FakeApi, image: str, **strategy) -> None:
    sts = api.get(STATEFULSETS, "db")
    sts["spec"]["template"]["spec"]["containers"][0]["image"] = image
    if strategy:
        sts["spec"]["updateStrategy"] = strategy
    api.run(api.client.update(STATEFULSETS, sts))


def test_ordered_ready_creates_each_pod_only_after_its_predecessor_is_ready(api, ssc):
    api.create(STATEFULSETS, statefulset())
    api.run(ssc.sync(KEY))
    api.run(ssc.sync(KEY))
    assert names(api) == ["db-0"], "db-1 must wait for db-0 to be Running and Ready"
    api.set_pods(ready=False)
    api.run(ssc.sync(KEY))
    assert names(api) == ["db-0"], "a Running but not Ready db-0 still blocks db-1"
    api.set_pods()
    api.run(ssc.sync(KEY))
    assert names(api) == ["db-0", "db-1"]
    settle(api, ssc)
    assert names(api) == ["db-0", "db-1", "db-2"]
    events = [e["message"] for e in api.items(EVENTS) if e["reason"] == "SuccessfulCreate"]
    assert "create Pod db-0 in StatefulSet db successful" in events


def test_pods_carry_the_stable_identity(api, ssc):
    sts = api.create(STATEFULSETS, statefulset(replicas=1))
    settle(api, ssc)
    pod = api.get(PODS, "db-0")
    assert pod["spec"]["hostname"] == "db-0" and pod["spec"]["subdomain"] == "db"
    labels = pod["metadata"]["labels"]
    assert labels["statefulset.kubernetes.io/pod-name"] == "db-0"
    assert labels["apps.kubernetes.io/pod-index"] == "0"
    revision = api.get(STATEFULSETS, "db")["status"]["updateRevision"]
    assert labels["controller-revision-hash"] == revision
    assert controller_ref(pod)["uid"] == sts["metadata"]["uid"]


def test_parallel_creates_every_pod_at_once_and_scales_down_at_once(api, ssc):
    api.create(STATEFULSETS, statefulset(replicas=4, podManagementPolicy="Parallel"))
    api.run(ssc.sync(KEY))
    assert names(api) == ["db-0", "db-1", "db-2", "db-3"]
    api.set_pods()
    sts = api.get(STATEFULSETS, "db")
    sts["spec"]["replicas"] = 1
    api.run(api.client.update(STATEFULSETS, sts))
    api.run(ssc.sync(KEY))
    assert names(api) == ["db-0"]


def test_scale_down_removes_the_highest_ordinal_first_one_at_a_time(api, ssc):
    api.create(STATEFULSETS, statefulset(replicas=3))
    settle(api, ssc)
    sts = api.get(STATEFULSETS, "db")
    sts["spec"]["replicas"] = 1
    api.run(api.client.update(STATEFULSETS, sts))
    api.run(ssc.sync(KEY))
    assert names(api) == ["db-0", "db-1"], "db-2 goes first"
    api.run(ssc.sync(KEY))
    assert names(api) == ["db-0", "db-1"], "db-1 waits until db-2 has terminated"
    api.finish_deletions()
    api.run(ssc.sync(KEY))
    assert names(api) == ["db-0"]


def test_a_deleted_or_failed_pod_comes_back_under_the_same_name(api, ssc):
    api.create(STATEFULSETS, statefulset(replicas=3))
    settle(api, ssc)
    uid = api.get(PODS, "db-1")["metadata"]["uid"]
    api.run(api.client.delete(PODS, "db-1", "default", grace_period_seconds=0))
    settle(api, ssc)
    assert names(api) == ["db-0", "db-1", "db-2"]
    assert api.get(PODS, "db-1")["metadata"]["uid"] != uid
    failed = api.get(PODS, "db-2")
    failed["status"]["phase"] = "Failed"
    api.run(api.client.update(PODS, failed, subresource="status"))
    api.run(ssc.sync(KEY))
    assert api.get(PODS, "db-2")["metadata"]["uid"] != failed["metadata"]["uid"]
    reasons = {e["reason"] for e in api.items(EVENTS)}
    assert "RecreatingFailedPod" in reasons


def test_rolling_update_goes_from_the_highest_ordinal_down_to_the_partition(api, ssc):
    api.create(STATEFULSETS, statefulset(replicas=3))
    settle(api, ssc)
    first = api.get(STATEFULSETS, "db")["status"]["currentRevision"]
    set_image(api, "kubelite/whoami:2.0", type="RollingUpdate", rollingUpdate={"partition": 1})
    api.run(ssc.sync(KEY))
    assert names(api) == ["db-0", "db-1"], "db-2 is deleted first"
    api.run(ssc.sync(KEY))
    assert "db-1" in names(api), "db-1 waits while db-2 is being replaced"
    api.finish_deletions()
    api.run(ssc.sync(KEY))
    assert images(api)["db-2"] == "kubelite/whoami:2.0"
    assert images(api)["db-1"] == "kubelite/whoami:1.0", "db-1 waits for db-2 to be Ready"
    settle(api, ssc)
    assert images(api) == {
        "db-0": "kubelite/whoami:1.0",
        "db-1": "kubelite/whoami:2.0",
        "db-2": "kubelite/whoami:2.0",
    }
    status = api.get(STATEFULSETS, "db")["status"]
    assert status["currentRevision"] == first and status["updateRevision"] != first
    assert status["updatedReplicas"] == 2 and status["currentReplicas"] == 1
    # lowering the partition to 0 finishes the rollout and makes the update revision current
    sts = api.get(STATEFULSETS, "db")
    sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = 0
    api.run(api.client.update(STATEFULSETS, sts))
    settle(api, ssc)
    assert set(images(api).values()) == {"kubelite/whoami:2.0"}
    status = api.get(STATEFULSETS, "db")["status"]
    assert status["currentRevision"] == status["updateRevision"]
    assert status["currentReplicas"] == status["updatedReplicas"] == 3
    assert status["observedGeneration"] == api.get(STATEFULSETS, "db")["metadata"]["generation"]


def test_on_delete_updates_a_pod_only_when_it_is_deleted(api, ssc):
    api.create(STATEFULSETS, statefulset(replicas=2, updateStrategy={"type": "OnDelete"}))
    settle(api, ssc)
    set_image(api, "kubelite/whoami:2.0")
    settle(api, ssc)
    assert set(images(api).values()) == {"kubelite/whoami:1.0"}
    api.run(api.client.delete(PODS, "db-0", "default", grace_period_seconds=0))
    settle(api, ssc)
    assert images(api) == {"db-0": "kubelite/whoami:2.0", "db-1": "kubelite/whoami:1.0"}


def test_rollback_renumbers_the_old_revision_and_history_is_trimmed(api, ssc):
    api.create(STATEFULSETS, statefulset(replicas=1, revisionHistoryLimit=1))
    settle(api, ssc)
    for image in ("kubelite/whoami:2.0", "kubelite/whoami:3.0", "kubelite/whoami:1.0"):
        set_image(api, image)
        settle(api, ssc)
    revisions = sorted(api.items(CONTROLLERREVISIONS), key=lambda r: r["revision"])
    # 1.0 is live again as revision 4, 3.0 is the one kept beyond the live one; 2.0 was trimmed
    assert [r["revision"] for r in revisions] == [3, 4]
    assert (
        revisions[-1]["data"]["spec"]["template"]["spec"]["containers"][0]["image"] == "kubelite/whoami:1.0"
    )
    assert revisions[-1]["data"]["spec"]["template"]["$patch"] == "replace"
    assert images(api) == {"db-0": "kubelite/whoami:1.0"}


def test_orphan_pods_with_the_sets_name_are_adopted_others_are_not(api, ssc):
    template = statefulset()["spec"]["template"]
    for name in ("db-0", "stray"):
        api.create(
            PODS,
            {"metadata": {"name": name, "labels": {"app": "db"}}, "spec": copy.deepcopy(template["spec"])},
        )
    sts = api.create(STATEFULSETS, statefulset(replicas=1))
    api.run(ssc.sync(KEY))
    assert controller_ref(api.get(PODS, "db-0"))["uid"] == sts["metadata"]["uid"]
    assert controller_ref(api.get(PODS, "stray")) is None


def test_volume_claim_templates_become_empty_dirs_instead_of_failing(api, ssc):
    sts = statefulset(replicas=1)
    sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "data", "mountPath": "/data"}
    ]
    sts["spec"]["volumeClaimTemplates"] = [
        {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}
    ]
    api.create(STATEFULSETS, sts)
    api.run(ssc.sync(KEY))
    assert {"name": "data", "emptyDir": {}} in api.get(PODS, "db-0")["spec"]["volumes"]


def test_a_lagging_informer_does_not_double_a_create(api, ssc):
    api.create(STATEFULSETS, statefulset(replicas=2, podManagementPolicy="Parallel"))
    api.hold_events()
    api.run(ssc.sync(KEY))
    api.run(ssc.sync(KEY))  # the cache has not seen db-0 and db-1 yet: their creates meet AlreadyExists
    api.deliver(force=True)
    assert names(api) == ["db-0", "db-1"]
    creates = [e for e in api.items(EVENTS) if e["reason"] == "SuccessfulCreate"]
    assert len(creates) == 2 and not [e for e in api.items(EVENTS) if e["reason"] == "FailedCreate"]


def test_a_pod_that_lost_its_identity_label_gets_it_back(api, ssc):
    api.create(STATEFULSETS, statefulset(replicas=1))
    settle(api, ssc)
    pod = api.get(PODS, "db-0")
    del pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"]
    api.run(api.client.update(PODS, pod))
    settle(api, ssc)
    assert api.get(PODS, "db-0")["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "db-0"
    assert "update Pod db-0 in StatefulSet db successful" in [e["message"] for e in api.items(EVENTS)]
