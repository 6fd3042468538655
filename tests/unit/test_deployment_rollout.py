"""Rollouts other than a plain rolling update: Recreate, pause and resume, `kubectl rollout restart`,
and rollbacks (`kubectl rollout undo`, with and without --to-revision, and the deprecated
rollback annotation)."""

from __future__ import annotations

from kubelite.client import STRATEGIC_MERGE_PATCH
from kubelite.resources import PODS, REPLICASETS
from tests.unit.test_deployment_harness import Cluster, deployment

REVISION = "deployment.kubernetes.io/revision"
HISTORY = "deployment.kubernetes.io/revision-history"
CAUSE = "kubernetes.io/change-cause"


def annotations(rs):
    return rs["metadata"].get("annotations") or {}


def test_recreate_removes_every_old_pod_before_the_new_replica_set_is_made():
    c = Cluster()
    c.create(deployment(replicas=3, strategy={"type": "Recreate"}))
    c.roll()
    [old] = c.replicasets()
    old_hash = old["metadata"]["labels"]["pod-template-hash"]
    assert annotations(old)["deployment.kubernetes.io/max-replicas"] == "3"  # no surge with Recreate

    c.set_image("nginx:1.26")
    c.sync()
    assert [rs["spec"]["replicas"] for rs in c.replicasets()] == [0]  # scaled down, nothing new yet
    c.sync_replicasets()  # the old pods are being deleted (they have a node: graceful)
    assert c.pods(app="web") == []
    c.sync()
    assert len(c.replicasets()) == 1  # a pod being deleted may still run: keep waiting
    assert c.status_line()[0].endswith("0 out of 3 new replicas have been updated...")

    c.queued()
    c.api.finish_deletions()
    assert c.queued() == {"default/web"}  # an old pod gone wakes the rollout
    c.sync_replicasets()  # and the old ReplicaSet's status says it has none
    c.sync()
    old, new = c.replicasets()
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 3)  # all at once

    def never_together():
        hashes = {p["metadata"]["labels"]["pod-template-hash"] for p in c.api.items(PODS)}
        assert not (old_hash in hashes and len(hashes) > 1), f"old and new pods at once: {hashes}"

    c.roll(never_together)
    assert {p["spec"]["containers"][0]["image"] for p in c.pods(app="web")} == {"nginx:1.26"}
    assert c.events("ScalingReplicaSet")[-2:] == [
        f"Scaled down replica set {old['metadata']['name']} from 3 to 0",
        f"Scaled up replica set {new['metadata']['name']} from 0 to 3",
    ]


def test_a_paused_deployment_scales_but_does_not_roll_out_until_resumed():
    c = Cluster()
    c.create(deployment(replicas=3))
    c.roll()
    c.patch({"spec": {"paused": True}}, content_type=STRATEGIC_MERGE_PATCH)  # kubectl rollout pause
    c.sync()
    progressing = c.condition("Progressing")
    assert (progressing["status"], progressing["reason"], progressing["message"]) == (
        "Unknown",
        "DeploymentPaused",
        "Deployment is paused",
    )

    c.set_image("nginx:1.26")
    for _ in range(3):
        c.step()
    assert len(c.replicasets()) == 1  # no rollout while paused
    assert c.get()["status"]["observedGeneration"] == c.get()["metadata"]["generation"]
    assert c.status_line()[0].endswith("0 out of 3 new replicas have been updated...")

    c.scale(5)  # scaling still happens
    c.step()
    c.step()
    assert [rs["spec"]["replicas"] for rs in c.replicasets()] == [5]
    assert len(c.pods(app="web")) == 5

    c.patch({"spec": {"paused": None}}, content_type=STRATEGIC_MERGE_PATCH)  # kubectl rollout resume
    c.sync()
    assert len(c.replicasets()) == 2
    assert c.condition("Progressing")["reason"] == "NewReplicaSetCreated"
    c.roll()
    old, new = c.replicasets()
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 5)


def test_resuming_without_a_pending_change_says_resumed():
    c = Cluster()
    c.create(deployment(replicas=1, progressDeadlineSeconds=30))
    c.sync()
    c.patch({"spec": {"paused": True}}, content_type=STRATEGIC_MERGE_PATCH)
    c.sync()
    c.api.clock.advance(300)  # paused far longer than the deadline
    c.patch({"spec": {"paused": None}}, content_type=STRATEGIC_MERGE_PATCH)
    c.sync()
    progressing = c.condition("Progressing")
    assert (progressing["status"], progressing["reason"], progressing["message"]) == (
        "Unknown",
        "DeploymentResumed",
        "Deployment is resumed",
    )
    c.roll()  # and the pause does not count against the deadline
    assert c.condition("Progressing")["reason"] == "NewReplicaSetAvailable"


def test_rollout_restart_makes_a_new_replica_set_with_the_restart_annotation():
    c = Cluster()
    c.create(deployment(replicas=2))
    c.roll()
    restarted = {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:10:00Z"}
    c.patch(
        {"spec": {"template": {"metadata": {"annotations": restarted}}}}, content_type=STRATEGIC_MERGE_PATCH
    )
    c.roll()
    old, new = c.replicasets()
    assert new["spec"]["template"]["metadata"]["annotations"] == restarted
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 2)
    assert annotations(new)[REVISION] == "2"
    assert all(p["metadata"].get("annotations") == restarted for p in c.pods(app="web"))


def test_rollout_undo_brings_back_the_old_replica_set_under_a_new_revision():
    c = Cluster()
    c.create(deployment(replicas=3, annotations={CAUSE: "create"}))
    c.roll()
    c.patch({"metadata": {"annotations": {CAUSE: "set image 1.26"}}})
    c.set_image("nginx:1.26")
    c.roll()
    first, second = c.replicasets()
    assert (annotations(first)[CAUSE], annotations(second)[CAUSE]) == ("create", "set image 1.26")
    names = {rs["metadata"]["name"] for rs in c.replicasets()}

    c.undo()
    c.roll()
    assert {rs["metadata"]["name"] for rs in c.replicasets()} == names  # no new ReplicaSet
    second, first_again = c.replicasets()
    assert first_again["metadata"]["name"] == first["metadata"]["name"]
    assert annotations(first_again)[REVISION] == "3"
    assert annotations(first_again)[HISTORY] == "1"
    assert annotations(first_again)[CAUSE] == "create"  # kubectl rollout history shows the old cause
    assert (second["spec"]["replicas"], first_again["spec"]["replicas"]) == (0, 3)
    assert c.revision() == "3"
    assert {p["spec"]["containers"][0]["image"] for p in c.pods(app="web")} == {"nginx:1.25"}


def test_rollout_undo_to_a_revision_and_back_again_keeps_the_revision_history():
    c = Cluster()
    c.create(deployment(replicas=2))
    c.roll()
    for image in ("nginx:1.26", "nginx:1.27"):
        c.set_image(image)
        c.roll()
    rs1 = c.rs(1)["metadata"]["name"]
    rs3 = c.rs(3)["metadata"]["name"]

    c.undo(to_revision=1)
    c.roll()
    assert c.rs(4)["metadata"]["name"] == rs1
    assert annotations(c.rs(4))[HISTORY] == "1"
    c.undo()  # the previous revision: 3
    c.roll()
    assert c.rs(5)["metadata"]["name"] == rs3
    assert annotations(c.rs(5))[HISTORY] == "3"
    c.undo()  # and back to 4 again
    c.roll()
    assert c.rs(6)["metadata"]["name"] == rs1
    assert annotations(c.rs(6))[HISTORY] == "1,4"
    assert len(c.api.items(REPLICASETS)) == 3
    assert c.revision() == "6"


def test_the_deprecated_rollback_annotation_rolls_back_through_the_controller():
    c = Cluster()
    c.create(deployment(replicas=2, annotations={CAUSE: "create"}))
    c.roll()
    c.patch({"metadata": {"annotations": {CAUSE: "update"}}})
    c.set_image("nginx:1.26")
    c.roll()
    c.patch({"metadata": {"annotations": {"deprecated.deployment.rollback.to": "0"}}})
    c.sync()
    d = c.get()
    assert "deprecated.deployment.rollback.to" not in d["metadata"]["annotations"]
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    assert d["metadata"]["annotations"][CAUSE] == "create"
    assert c.events("DeploymentRollback") == ['Rolled back deployment "web" to revision 1']
    c.roll()
    assert annotations(c.rs(3))[HISTORY] == "1"
    assert len(c.replicasets()) == 2

    c.patch({"metadata": {"annotations": {"deprecated.deployment.rollback.to": "3"}}})
    c.sync()
    assert c.events("DeploymentRollbackTemplateUnchanged") == [
        'The rollback revision contains the same template as current deployment "web"'
    ]
    c.patch({"metadata": {"annotations": {"deprecated.deployment.rollback.to": "9"}}})
    c.sync()
    assert c.events("DeploymentRollbackRevisionNotFound") == ["Unable to find the revision to rollback to."]
    assert "deprecated.deployment.rollback.to" not in c.get()["metadata"]["annotations"]
