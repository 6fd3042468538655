"""The pure decisions of the StatefulSet controller: pod identity, which revision a new pod gets,
the plan of one sync, status, and the revision history."""

from __future__ import annotations

import datetime as dt

from controller.statefulset.identity import identity_matches, is_member_of, new_pod, parent_and_ordinal
from controller.statefulset.plan import Revision, plan_sync, revision_for
from controller.statefulset.revisions import (
    decide_update_revision,
    revisions_to_delete,
    statefulset_revision,
)

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
OLD = Revision(
    "db-old", {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "v1"}]}}
)
NEW = Revision(
    "db-new", {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "v2"}]}}
)


def sts(replicas: int = 3, **spec) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "default", "uid": "u1", "generation": 2},
        "spec": {
            "replicas": replicas,
            "serviceName": "db",
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "template": NEW.template,
            **spec,
        },
        "status": {},
    }


def pod(ordinal: int, revision: Revision = NEW, ready: bool = True, phase: str = "Running", **meta) -> dict:
    p = new_pod(sts(), revision.template, ordinal, revision.name)
    p["metadata"].update(meta)
    p["metadata"]["uid"] = f"uid-{ordinal}"
    p["status"] = {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    return p


def verbs(plan) -> list[list[tuple[str, str]]]:
    return [[(a.verb, a.pod["metadata"]["name"]) for a in step] for step in plan.steps]


def test_names_and_ordinals():
    assert parent_and_ordinal({"metadata": {"name": "my-db-12"}}) == ("my-db", 12)
    assert parent_and_ordinal({"metadata": {"name": "db"}}) == ("", -1)
    assert is_member_of(sts(), pod(4)) and not is_member_of(sts(), {"metadata": {"name": "dbx-0"}})
    p = pod(0)
    assert identity_matches(sts(), p)
    del p["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"]
    assert not identity_matches(sts(), p)


def test_below_the_partition_new_pods_get_the_current_revision():
    s = sts(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    assert [revision_for(s, o, OLD, NEW).name for o in range(4)] == ["db-old", "db-old", "db-new", "db-new"]
    on_delete = sts(updateStrategy={"type": "OnDelete"})
    assert revision_for(on_delete, 0, OLD, NEW) is NEW


def test_ordered_ready_stops_at_the_first_pod_that_is_not_ready():
    plan = plan_sync(sts(), [pod(0), pod(1, ready=False)], OLD, NEW, 0, NOW)
    assert plan.steps == [] and "db-1" in plan.waiting
    plan = plan_sync(sts(), [pod(0), pod(1)], OLD, NEW, 0, NOW)
    assert verbs(plan) == [[("create", "db-2")]]


def test_parallel_creates_all_missing_and_deletes_all_condemned():
    s = sts(replicas=3, podManagementPolicy="Parallel")
    plan = plan_sync(s, [pod(1, ready=False), pod(4), pod(5)], OLD, NEW, 0, NOW)
    assert verbs(plan) == [[("create", "db-0"), ("create", "db-2")], [("delete", "db-5"), ("delete", "db-4")]]


def test_scale_down_waits_for_unhealthy_replicas_and_goes_highest_first():
    plan = plan_sync(sts(replicas=1), [pod(0), pod(1), pod(2)], OLD, NEW, 0, NOW)
    assert verbs(plan) == [[("delete", "db-2")]]
    plan = plan_sync(sts(replicas=1), [pod(0, ready=False), pod(1), pod(2)], OLD, NEW, 0, NOW)
    assert plan.steps == []


def test_a_failed_pod_is_deleted_then_made_again():
    plan = plan_sync(sts(), [pod(0), pod(1, phase="Failed")], OLD, NEW, 0, NOW)
    assert verbs(plan) == [[("delete", "db-1")], [("create", "db-1")]]
    assert plan.steps[0][0].reason == "RecreatingFailedPod"


def test_rolling_update_deletes_the_highest_outdated_pod_at_or_above_the_partition():
    s = sts(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}})
    pods = [pod(0, OLD), pod(1, OLD), pod(2, OLD)]
    plan = plan_sync(s, pods, OLD, NEW, 0, NOW)
    assert verbs(plan) == [[("delete", "db-2")]]
    assert plan.status["currentReplicas"] == 2
    plan = plan_sync(s, [pod(0, OLD), pod(1, OLD), pod(2, NEW, ready=False)], OLD, NEW, 0, NOW)
    assert plan.steps == [] and "db-2" in plan.waiting
    plan = plan_sync(s, [pod(0, OLD), pod(1, NEW), pod(2, NEW)], OLD, NEW, 0, NOW)
    assert plan.steps == []
    assert plan.status["currentRevision"] == "db-old" and plan.status["updatedReplicas"] == 2


def test_status_completes_the_rollout_when_every_pod_is_updated_and_ready():
    plan = plan_sync(sts(), [pod(0), pod(1), pod(2)], OLD, NEW, 1, NOW)
    assert plan.status == {
        "observedGeneration": 2,
        "replicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "currentReplicas": 3,
        "updatedReplicas": 3,
        "currentRevision": "db-new",
        "updateRevision": "db-new",
        "collisionCount": 1,
    }


def test_on_delete_never_deletes_for_an_update():
    plan = plan_sync(
        sts(updateStrategy={"type": "OnDelete"}), [pod(0, OLD), pod(1, OLD), pod(2, OLD)], OLD, NEW, 0, NOW
    )
    assert plan.steps == []


def test_update_revision_is_reused_created_or_renumbered():
    s = sts()
    first = statefulset_revision(s, 1, 0)
    first["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    assert decide_update_revision(s, [first], 0).revision is first
    changed = sts(template=OLD.template)
    decision = decide_update_revision(changed, [first], 0)
    assert decision.create and decision.revision["revision"] == 2
    second = decision.revision
    second["metadata"]["creationTimestamp"] = "2026-01-01T00:00:01Z"
    back = decide_update_revision(s, [first, second], 0)
    assert back.revision is first and back.renumber == 3


def test_history_keeps_the_live_revisions_and_the_limit_of_the_others():
    revisions = [{"metadata": {"name": f"r{i}"}, "revision": i} for i in range(1, 6)]
    doomed = revisions_to_delete(revisions, {"r1", "r5"}, 2)
    assert [r["metadata"]["name"] for r in doomed] == ["r2"]
