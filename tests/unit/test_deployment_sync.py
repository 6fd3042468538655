"""The Deployment controller's sync against the fake API: the ReplicaSet it makes, the status
`kubectl rollout status` reads at each stage, scaling, adoption and release, history cleanup, hash
collisions, and what its informer handlers enqueue."""

from __future__ import annotations

import copy

import pytest

from controller.deployment.hashing import compute_hash
from kubelite.client import ApiError
from kubelite.resources import DEPLOYMENTS, PODS, REPLICASETS
from tests.unit.test_deployment_harness import Cluster, deployment

T0 = "2026-01-01T00:00:00Z"


def test_a_fresh_deployment_creates_its_replica_set_as_kubernetes_names_and_labels_it():
    c = Cluster()
    d = c.create(
        deployment(
            replicas=3,
            annotations={
                "kubernetes.io/change-cause": "kubectl create deployment web --image=nginx:1.25",
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
            },
        )
    )
    c.sync()
    [rs] = c.api.items(REPLICASETS)
    pod_hash = compute_hash(d["spec"]["template"], None)
    assert rs["metadata"]["name"] == f"web-{pod_hash}"
    assert rs["metadata"]["labels"] == {"app": "web", "pod-template-hash": pod_hash}
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "web", "pod-template-hash": pod_hash}}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", "pod-template-hash": pod_hash}
    assert rs["spec"]["template"]["spec"] == d["spec"]["template"]["spec"]
    assert rs["spec"]["replicas"] == 3
    assert rs["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "web",
            "uid": d["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert rs["metadata"]["annotations"] == {
        "kubernetes.io/change-cause": "kubectl create deployment web --image=nginx:1.25",
        "deployment.kubernetes.io/revision": "1",
        "deployment.kubernetes.io/desired-replicas": "3",
        "deployment.kubernetes.io/max-replicas": "4",  # 3 + 25% rounded up
    }
    assert c.revision() == "1"
    assert c.events("ScalingReplicaSet") == [f"Scaled up replica set web-{pod_hash} from 0 to 3"]


def test_status_and_conditions_at_each_stage_as_kubectl_rollout_status_reads_them():
    c = Cluster()
    c.create(deployment(replicas=3))
    c.sync()
    rs_name = c.api.items(REPLICASETS)[0]["metadata"]["name"]
    status = c.get()["status"]
    assert status == {
        "observedGeneration": 1,
        "unavailableReplicas": 3,
        "conditions": [
            {
                "type": "Progressing",
                "status": "True",
                "lastUpdateTime": T0,
                "lastTransitionTime": T0,
                "reason": "NewReplicaSetCreated",
                "message": f'Created new replica set "{rs_name}"',
            },
            {
                "type": "Available",
                "status": "False",
                "lastUpdateTime": T0,
                "lastTransitionTime": T0,
                "reason": "MinimumReplicasUnavailable",
                "message": "Deployment does not have minimum availability.",
            },
        ],
    }
    assert (
        c.status_line()[0]
        == 'Waiting for deployment "web" rollout to finish: 0 out of 3 new replicas have been updated...'
    )

    c.sync_replicasets()  # three pods, none ready
    c.sync_replicasets()  # and the ReplicaSet's status says so
    c.api.clock.advance(2)
    c.sync()
    status = c.get()["status"]
    assert {k: status.get(k) for k in ("replicas", "updatedReplicas", "unavailableReplicas")} == {
        "replicas": 3,
        "updatedReplicas": 3,
        "unavailableReplicas": 3,
    }
    assert "availableReplicas" not in status and "readyReplicas" not in status  # omitted when zero
    progressing = c.condition("Progressing")
    assert (progressing["reason"], progressing["message"]) == (
        "ReplicaSetUpdated",
        f'ReplicaSet "{rs_name}" is progressing.',
    )
    assert (progressing["lastUpdateTime"], progressing["lastTransitionTime"]) == ("2026-01-01T00:00:02Z", T0)
    assert (
        c.status_line()[0]
        == 'Waiting for deployment "web" rollout to finish: 0 of 3 updated replicas are available...'
    )

    c.api.set_pods()
    c.sync_replicasets()
    c.api.clock.advance(2)
    c.sync()
    status = c.get()["status"]
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 1,
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
    }
    assert [(x["type"], x["status"], x["reason"]) for x in status["conditions"]] == [
        ("Available", "True", "MinimumReplicasAvailable"),
        ("Progressing", "True", "NewReplicaSetAvailable"),
    ]
    assert c.condition("Available")["message"] == "Deployment has minimum availability."
    assert c.condition("Progressing")["message"] == f'ReplicaSet "{rs_name}" has successfully progressed.'
    assert c.status_line() == ('deployment "web" successfully rolled out', True)

    c.set_image("nginx:1.26")
    assert c.status_line()[0] == "Waiting for deployment spec update to be observed..."
    c.sync()
    assert c.get()["status"]["observedGeneration"] == 2
    assert [rs["spec"]["replicas"] for rs in c.replicasets()] == [3, 1]  # a surge of 1
    assert c.status_line()[0].endswith("0 out of 3 new replicas have been updated...")  # no pod yet
    c.step()
    c.sync()
    assert c.status_line()[0].endswith("1 out of 3 new replicas have been updated...")
    c.roll()
    assert c.status_line()[1]


def test_a_sync_on_a_cache_that_is_behind_makes_nothing_twice():
    c = Cluster()
    c.create(deployment(replicas=2))
    c.api.hold_events()  # the informers do not see the first sync's writes
    c.sync()
    c.sync()  # the ReplicaSet exists already: it is ours, not a collision
    c.api.deliver(force=True)
    assert len(c.api.items(REPLICASETS)) == 1
    assert len(c.events("ScalingReplicaSet")) == 1
    assert "collisionCount" not in c.get()["status"]
    c.roll()
    assert len(c.pods(app="web")) == 2


def test_a_sync_that_changes_nothing_writes_nothing():
    c = Cluster()
    c.create(deployment(replicas=2))
    c.roll()
    writes = len(c.api.client.calls)
    c.sync()
    assert [call for call in c.api.client.calls[writes:] if call[0] != "get"] == []


def test_scaling_resizes_the_one_replica_set_with_its_annotations_and_events():
    c = Cluster()
    c.create(deployment(replicas=3))
    c.roll()
    [rs] = c.replicasets()
    name = rs["metadata"]["name"]
    c.scale(5)
    c.sync()
    [rs] = c.replicasets()
    assert rs["spec"]["replicas"] == 5
    annotations = rs["metadata"]["annotations"]
    assert (
        annotations["deployment.kubernetes.io/desired-replicas"],
        annotations["deployment.kubernetes.io/max-replicas"],
    ) == (
        "5",
        "7",
    )
    c.roll()
    assert len(c.pods(app="web")) == 5
    c.scale(1)
    c.roll()
    assert len(c.pods(app="web")) == 1
    assert c.events("ScalingReplicaSet")[-2:] == [
        f"Scaled up replica set {name} from 3 to 5",
        f"Scaled down replica set {name} from 5 to 1",
    ]
    assert len(c.replicasets()) == 1  # scaling is no rollout
    assert c.revision() == "1"


def test_a_stale_desired_replicas_annotation_does_not_block_the_next_rollout():
    c = Cluster()
    c.create(deployment(replicas=2))
    c.roll()
    [rs] = c.replicasets()
    stale = {"metadata": {"annotations": {"deployment.kubernetes.io/desired-replicas": "7"}}}
    c.api.run(c.api.client.patch(REPLICASETS, rs["metadata"]["name"], stale, "default"))
    c.set_image("nginx:1.26")
    c.roll()
    old, new = c.replicasets()
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 2)


def test_an_orphan_replica_set_with_the_deployments_template_is_adopted_as_the_new_one():
    c = Cluster()
    d = deployment(replicas=2)
    orphan = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web-by-hand", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": copy.deepcopy(d["spec"]["selector"]),
            "template": copy.deepcopy(d["spec"]["template"]),
        },
    }
    c.create(orphan)
    created = c.create(d)
    c.roll()
    [rs] = c.replicasets()
    assert rs["metadata"]["name"] == "web-by-hand"
    assert rs["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert c.revision() == "1"


def test_an_adopted_replica_set_of_another_template_is_rolled_away_and_released_once_it_stops_matching():
    c = Cluster()
    d = deployment(replicas=2)
    old_template = copy.deepcopy(d["spec"]["template"])
    old_template["spec"]["containers"][0]["image"] = "nginx:1.24"
    c.create(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "web-old", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": old_template},
        }
    )
    c.sync_replicasets()
    c.kubelet()
    c.create(d)
    c.roll()
    old, new = sorted(c.replicasets(), key=lambda rs: rs["metadata"]["name"] != "web-old")
    assert old["metadata"]["ownerReferences"][0]["name"] == "web"
    assert old["spec"]["replicas"] == 0
    assert new["spec"]["replicas"] == 2
    assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"  # the orphan had none

    c.api.run(
        c.api.client.patch(REPLICASETS, "web-old", {"metadata": {"labels": {"app": "legacy"}}}, "default")
    )
    c.sync()
    assert not c.api.get(REPLICASETS, "web-old")["metadata"].get("ownerReferences")


def test_old_replica_sets_beyond_the_revision_history_limit_are_deleted_oldest_first():
    c = Cluster()
    c.create(deployment(replicas=2, revisionHistoryLimit=2))
    c.roll()
    for image in ("nginx:1.26", "nginx:1.27", "nginx:1.28"):
        c.set_image(image)
        c.roll()
    revisions = [rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for rs in c.replicasets()]
    assert revisions == ["2", "3", "4"]  # revision 1 went; two old ones are kept besides the new one
    assert [rs["spec"]["replicas"] for rs in c.replicasets()] == [0, 0, 2]


def test_a_hash_collision_bumps_collision_count_and_the_next_sync_uses_another_name():
    c = Cluster()
    d = c.create(deployment(replicas=1))
    pod_hash = compute_hash(d["spec"]["template"], None)
    squatter_template = copy.deepcopy(d["spec"]["template"])
    squatter_template["metadata"]["labels"] = {"app": "other"}
    c.create(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": f"web-{pod_hash}", "namespace": "default", "labels": {"app": "other"}},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "other"}},
                "template": squatter_template,
            },
        }
    )
    with pytest.raises(ApiError) as failed:
        c.sync()
    assert failed.value.already_exists
    assert c.get()["status"]["collisionCount"] == 1
    c.sync()
    names = {rs["metadata"]["name"] for rs in c.replicasets()}
    expected = f"web-{compute_hash(d['spec']['template'], 1)}"
    assert names == {f"web-{pod_hash}", expected}
    c.roll()
    assert c.get()["status"]["collisionCount"] == 1


def test_a_deployment_with_an_empty_selector_does_nothing_but_say_so():
    c = Cluster()
    c.create(deployment())
    cached = copy.deepcopy(c.dc.deployments.get("default/web"))
    cached["spec"]["selector"] = {}  # the apiserver refuses this; an old object could still have it
    c.dc.deployments.apply("MODIFIED", cached)
    c.sync()
    assert c.api.items(REPLICASETS) == []
    assert c.events("SelectingAll") == [
        "This deployment is selecting all pods. A non-empty selector is required."
    ]
    assert c.get()["status"] == {"observedGeneration": 1}


def test_a_deployment_being_deleted_only_gets_its_status():
    c = Cluster()
    c.create(deployment())
    c.api.run(c.api.client.delete(DEPLOYMENTS, "web", "default", propagation_policy="Foreground"))
    assert c.get()["metadata"].get("deletionTimestamp")
    c.sync()
    assert c.api.items(REPLICASETS) == []
    assert c.get()["status"]["observedGeneration"] == c.get()["metadata"]["generation"]


def test_handlers_enqueue_the_deployment_concerned():
    c = Cluster()
    c.create(deployment(replicas=1, strategy={"type": "Recreate"}))
    c.create(deployment("api", replicas=1))
    assert c.queued() == {"default/web", "default/api"}
    c.roll()
    c.roll(name="api")
    c.queued()

    [rs] = [rs for rs in c.api.items(REPLICASETS) if rs["metadata"]["labels"]["app"] == "web"]
    c.api.run(
        c.api.client.patch(
            REPLICASETS, rs["metadata"]["name"], {"metadata": {"labels": {"x": "y"}}}, "default"
        )
    )
    assert c.queued() == {"default/web"}  # its owner

    orphan = copy.deepcopy(rs)
    orphan["metadata"] = {"name": "api-orphan", "namespace": "default", "labels": {"app": "api"}}
    orphan["spec"]["replicas"] = 0
    orphan["spec"]["selector"] = {"matchLabels": {"app": "api"}}
    orphan["spec"]["template"]["metadata"]["labels"] = {"app": "api"}
    c.create(orphan)
    assert c.queued() == {"default/api"}  # every Deployment that may adopt it

    [pod] = c.pods(app="web")
    c.api.run(c.api.client.delete(PODS, pod["metadata"]["name"], "default", grace_period_seconds=0))
    assert c.queued() == {"default/web"}  # a Recreate rollout may be waiting for it
    [pod] = [p for p in c.pods(app="api")]
    c.api.run(c.api.client.delete(PODS, pod["metadata"]["name"], "default", grace_period_seconds=0))
    assert c.queued() == set()  # a rolling one is not
