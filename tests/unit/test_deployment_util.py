"""The Deployment controller's pure parts: the template hash, maxSurge/maxUnavailable, revision
arithmetic, annotations, proportional scaling, status and conditions, and the rolling, recreate,
rollback and history decisions."""

from __future__ import annotations

import datetime as dt

import pytest

from controller.deployment.hashing import compute_hash, equal_ignore_hash, fnv32a, safe_encode
from controller.deployment.progress import progress_check_after, rollout_status
from controller.deployment.proportion import get_proportion, proportional_sizes
from controller.deployment.recreate import old_pods_running
from controller.deployment.rollback import rollback_target, rollback_to
from controller.deployment.rolling import max_scaled_down, old_scale_down, unhealthy_cleanup
from controller.deployment.status import (
    calculate_status,
    deployment_progressing,
    deployment_timed_out,
    new_condition,
    paused_condition,
    set_condition,
)
from controller.deployment.sync import cleanable_replica_sets
from controller.deployment.util import (
    append_revision_history,
    copy_deployment_annotations,
    find_active_or_latest,
    find_new_replica_set,
    find_old_replica_sets,
    is_scaling_event,
    last_revision,
    max_revision,
    max_surge,
    max_unavailable,
    new_rs_new_replicas,
    resolve_fenceposts,
    scaled_value,
    set_deployment_annotations_to,
    set_new_replica_set_annotations,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
}


def dep(replicas=10, surge="25%", unavailable="25%", strategy="RollingUpdate", generation=1, status=None):
    spec = {
        "replicas": replicas,
        "template": TEMPLATE,
        "progressDeadlineSeconds": 600,
        "revisionHistoryLimit": 2,
    }
    spec["strategy"] = {"type": strategy}
    if strategy == "RollingUpdate":
        spec["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"metadata": {"name": "web", "generation": generation}, "spec": spec, "status": status or {}}


def rs(
    name, replicas, available=None, revision=None, created="2026-01-01T00:00:00Z", image="nginx:1", **extra
):
    annotations = dict(extra.pop("annotations", {}))
    if revision is not None:
        annotations["deployment.kubernetes.io/revision"] = str(revision)
    template = {
        "metadata": {"labels": {"app": "web", "pod-template-hash": name}},
        "spec": {"containers": [{"name": "c", "image": image}]},
    }
    status = {
        "replicas": extra.pop("actual", replicas),
        "availableReplicas": replicas if available is None else available,
    }
    status.update(extra.pop("status", {}))
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "creationTimestamp": created,
            "annotations": annotations,
            **extra,
        },
        "spec": {"replicas": replicas, "template": template},
        "status": status,
    }


# ---------------------------------------------------------------------------------- hash


def test_fnv32a_and_the_safe_encoding_are_kubernetes_own():
    assert fnv32a(b"") == 0x811C9DC5
    assert fnv32a(b"a") == 0xE40C292C
    assert safe_encode("0123456789") == "456789bcdf"  # digits only ever map to these


def test_the_hash_is_stable_ignores_its_own_label_and_changes_with_the_template_or_collisions():
    h = compute_hash(TEMPLATE, None)
    assert h == compute_hash({**TEMPLATE}, None)
    assert set(h) <= set("456789bcdf") and 1 <= len(h) <= 10
    labelled = {"metadata": {"labels": {"app": "web", "pod-template-hash": h}}, "spec": TEMPLATE["spec"]}
    assert compute_hash(labelled, None) == h
    other = {"metadata": TEMPLATE["metadata"], "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}
    assert compute_hash(other, None) != h
    assert len({h, compute_hash(TEMPLATE, 0), compute_hash(TEMPLATE, 1)}) == 3


def test_templates_are_equal_ignoring_the_hash_label_and_empty_fields():
    a = {
        "metadata": {"labels": {"app": "web", "pod-template-hash": "x"}, "creationTimestamp": None},
        "spec": {"containers": [{"name": "c", "resources": {}}]},
    }
    b = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}], "volumes": []}}
    assert equal_ignore_hash(a, b)
    assert not equal_ignore_hash(a, {"metadata": {"labels": {"app": "api"}}, "spec": b["spec"]})


# ---------------------------------------------------------------------------------- surge and unavailability


@pytest.mark.parametrize(
    ("surge", "unavailable", "desired", "expected"),
    [
        ("25%", "25%", 10, (3, 2)),  # surge rounds up, unavailable down
        ("25%", "25%", 1, (1, 0)),
        (2, 1, 10, (2, 1)),
        ("0%", "1%", 2, (0, 1)),  # both resolve to 0: unavailable becomes 1
        ("1%", "0%", 2, (1, 0)),
        (0, "100%", 4, (0, 4)),
        (None, None, 5, (0, 1)),
    ],
)
def test_fenceposts(surge, unavailable, desired, expected):
    assert resolve_fenceposts(surge, unavailable, desired) == expected


def test_max_surge_and_unavailable_of_a_deployment():
    assert (max_surge(dep(10)), max_unavailable(dep(10))) == (3, 2)
    assert max_unavailable(dep(3, unavailable=10)) == 3  # never more than replicas
    assert max_unavailable(dep(0)) == 0
    assert (max_surge(dep(4, strategy="Recreate")), max_unavailable(dep(4, strategy="Recreate"))) == (0, 0)
    with pytest.raises(ValueError, match="not a percentage"):
        scaled_value("5", 10, True)


# ---------------------------------------------------------------------------------- revisions and annotations


def test_revision_arithmetic():
    rss = [rs("a", 0, revision=1), rs("b", 0, revision=4), rs("c", 0, revision=2), rs("d", 0)]
    assert max_revision(rss) == 4
    assert last_revision(rss) == 2
    assert last_revision([rs("a", 0, revision=3)]) == 0
    assert max_revision([rs("x", 0, annotations={"deployment.kubernetes.io/revision": "junk"})]) == 0


def test_a_new_replica_set_gets_the_next_revision_and_the_replica_annotations():
    d = dep(10)
    d["metadata"]["annotations"] = {
        "kubernetes.io/change-cause": "why",
        "deployment.kubernetes.io/revision": "7",
    }
    new = rs("n", 0)
    assert set_new_replica_set_annotations(d, new, "3", exists=False)
    assert new["metadata"]["annotations"] == {
        "kubernetes.io/change-cause": "why",
        "deployment.kubernetes.io/revision": "3",
        "deployment.kubernetes.io/desired-replicas": "10",
        "deployment.kubernetes.io/max-replicas": "13",
    }


def test_an_old_replica_set_made_new_again_keeps_its_old_revisions_in_history():
    old = rs("o", 0, revision=1)
    assert set_new_replica_set_annotations(dep(), old, "3", exists=True)
    assert old["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert set_new_replica_set_annotations(dep(), old, "5", exists=True)
    assert old["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1,3"
    assert not set_new_replica_set_annotations(dep(), old, "4", exists=True)  # never lowered
    assert append_revision_history("1,2,3", "44", limit=7) == "2,3,44"  # the oldest go first
    assert append_revision_history("1", "123456", limit=4) is None


def test_annotations_copied_to_and_back_from_replica_sets_skip_the_controllers_own():
    d = dep()
    d["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        "deployment.kubernetes.io/revision": "2",
        "kubernetes.io/change-cause": "new",
    }
    target = rs("a", 1, revision=1, annotations={"kubernetes.io/change-cause": "old", "team": "x"})
    copy_deployment_annotations(d, target)
    assert target["metadata"]["annotations"] == {
        "kubernetes.io/change-cause": "new",
        "team": "x",
        "deployment.kubernetes.io/revision": "1",
    }
    back = rs("b", 1, revision=1, annotations={"kubernetes.io/change-cause": "old"})
    set_deployment_annotations_to(d, back)
    assert d["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        "deployment.kubernetes.io/revision": "2",
        "kubernetes.io/change-cause": "old",
    }


# ---------------------------------------------------------------------------------- which ReplicaSet, how big


def test_new_and_old_replica_sets_are_told_apart_by_template():
    d = dep()
    new, old = rs("n", 3), rs("o", 0, image="nginx:0")
    assert find_new_replica_set(d, [old, new]) is new
    required, every = find_old_replica_sets(d, [old, new, rs("p", 2, image="nginx:p")])
    assert [r["metadata"]["name"] for r in required] == ["p"]
    assert [r["metadata"]["name"] for r in every] == ["o", "p"]


def test_active_or_latest():
    a, b = rs("a", 0, created="2026-01-01T00:00:01Z"), rs("b", 0, created="2026-01-01T00:00:02Z")
    assert find_active_or_latest(None, [a, b]) is b  # none active: the newest
    assert find_active_or_latest(rs("n", 0), [a]) is not a
    assert find_active_or_latest(None, [rs("x", 2), a])["metadata"]["name"] == "x"
    assert find_active_or_latest(rs("n", 1), [rs("x", 2)]) is None  # several: proportional


def test_new_replica_set_size_within_surge():
    d = dep(10, surge=3)
    new = rs("n", 0)
    assert new_rs_new_replicas(d, [rs("o", 10), new], new) == 3
    assert new_rs_new_replicas(d, [rs("o", 8), new], new) == 5
    assert new_rs_new_replicas(d, [rs("o", 11), rs("n", 2)], rs("n", 2)) == 2  # full: stays
    assert new_rs_new_replicas(d, [rs("n", 9)], rs("n", 9)) == 10  # never above replicas
    assert new_rs_new_replicas(dep(4, strategy="Recreate"), [new], new) == 4


def test_proportions():
    d = dep(15, surge=3, unavailable=2)
    old = rs("o", 8, annotations={"deployment.kubernetes.io/max-replicas": "13"})
    new = rs(
        "n", 5, annotations={"deployment.kubernetes.io/max-replicas": "13"}, created="2026-01-01T00:01:00Z"
    )
    assert get_proportion(old, d, 5, 0) == 3  # 8 * 18/13 = 11.07
    assert get_proportion(new, d, 5, 3) == 2  # 5 * 18/13 = 6.92, and only 2 left
    assert [(r["metadata"]["name"], size) for r, size in proportional_sizes(d, [old, new])] == [
        ("o", 11),
        ("n", 7),
    ]
    at_18 = {"deployment.kubernetes.io/max-replicas": "18"}
    grown = [rs("o", 11, annotations=at_18), rs("n", 7, annotations=at_18, created="2026-01-01T00:01:00Z")]
    assert [size for _, size in proportional_sizes(dep(10, surge=3, unavailable=2), grown)] == [8, 5]
    assert [size for _, size in proportional_sizes(dep(0, surge=3), grown)] == [0, 0]


def test_proportions_without_the_annotation_use_the_deployments_status_and_leftovers_go_to_the_largest():
    d = dep(5, surge=0, unavailable=1, status={"replicas": 3})
    sizes = proportional_sizes(d, [rs("a", 2), rs("b", 1, created="2026-01-01T00:01:00Z")])
    assert sum(size for _, size in sizes) == 5
    assert sizes[0][0]["metadata"]["name"] == "a"


def test_a_scaling_event_is_seen_in_desired_replicas():
    d = dep(5)
    assert is_scaling_event(
        d, [rs("a", 3, annotations={"deployment.kubernetes.io/desired-replicas": "3"}), None]
    )
    assert not is_scaling_event(
        d, [rs("a", 5, annotations={"deployment.kubernetes.io/desired-replicas": "5"})]
    )
    assert not is_scaling_event(
        d, [rs("a", 0, annotations={"deployment.kubernetes.io/desired-replicas": "3"})]
    )


# ------------------------------------------------------------------------------ rolling, recreate, rollback


def test_how_far_old_replica_sets_may_be_scaled_down():
    d = dep(10, surge=3, unavailable=2)
    # Kubernetes' example: 13 pods, 8 must stay available, 5 new ones not available
    assert max_scaled_down(d, [rs("o", 8), rs("n", 5, available=0)], rs("n", 5, available=0)) == 0
    assert max_scaled_down(d, [rs("o", 8), rs("n", 5, available=4)], rs("n", 5, available=4)) == 4


def test_unhealthy_pods_go_first_oldest_replica_set_first():
    a = rs("a", 3, available=1, created="2026-01-01T00:00:01Z")
    b = rs("b", 4, available=2, created="2026-01-01T00:00:00Z")
    assert [(r["metadata"]["name"], n) for r, n in unhealthy_cleanup([a, b], 3)] == [("b", 2), ("a", 2)]
    assert unhealthy_cleanup([rs("c", 2)], 5) == []


def test_old_pods_go_only_beyond_the_minimum_available():
    d = dep(10, surge=3, unavailable=2)
    old, new = rs("o", 10), rs("n", 3)
    assert [(r["metadata"]["name"], n) for r, n in old_scale_down(d, [old, new], [old])] == [("o", 5)]
    assert old_scale_down(d, [rs("o", 8), rs("n", 5, available=0)], [rs("o", 8)]) == []


def test_recreate_waits_for_every_old_pod():
    new, old = rs("n", 0), rs("o", 0, actual=0)
    running = {"phase": "Running"}
    assert not old_pods_running(None, [old], {})
    assert old_pods_running(None, [rs("o", 0, actual=1)], {})
    assert old_pods_running(new, [old], {"uid-o": [{"status": running}]})
    assert not old_pods_running(
        new, [old], {"uid-o": [{"status": {"phase": "Succeeded"}}], "uid-n": [{"status": running}]}
    )


def test_rollback_targets():
    rss = [rs("a", 0, revision=1), rs("b", 3, revision=2), None]
    assert rollback_target(rss, 0)[1]["metadata"]["name"] == "a"  # the previous revision
    assert rollback_target(rss, 2)[1]["metadata"]["name"] == "b"
    assert rollback_target(rss, 9) == (9, None)
    assert rollback_target([rs("b", 3, revision=2)], 0) == (0, None)
    assert rollback_to({"metadata": {"annotations": {"deprecated.deployment.rollback.to": "x"}}}) is None


def test_history_cleanup_deletes_only_drained_replica_sets_beyond_the_limit_lowest_revision_first():
    observed = {"observedGeneration": 1}
    rss = [
        rs("r1", 0, revision=1, generation=1, status=observed),
        rs("r2", 0, revision=2, generation=2, status=observed),  # not yet seen at size 0
        rs("r3", 0, revision=3, generation=1, status=observed),
        rs("r4", 0, revision=4, generation=1, status=observed),
        rs("r5", 0, revision=5, generation=1, status=observed, deletionTimestamp="2026-01-01T00:00:00Z"),
    ]
    assert [r["metadata"]["name"] for r in cleanable_replica_sets(rss, dep())] == ["r1"]
    unlimited = dep()
    unlimited["spec"]["revisionHistoryLimit"] = 2**31 - 1
    assert cleanable_replica_sets(rss, unlimited) == []


# ---------------------------------------------------------------------------------- status and progress


def test_set_condition_keeps_what_did_not_change_and_appends_what_did():
    status: dict = {}
    set_condition(status, new_condition("Progressing", "True", "A", "a", T0))
    set_condition(status, new_condition("Available", "True", "X", "x", T0))
    later = T0 + dt.timedelta(seconds=5)
    set_condition(status, new_condition("Progressing", "True", "A", "changed", later))  # same reason: kept
    assert status["conditions"][0]["message"] == "a"
    set_condition(status, new_condition("Progressing", "True", "B", "b", later))
    assert [c["type"] for c in status["conditions"]] == ["Available", "Progressing"]
    assert status["conditions"][1]["lastTransitionTime"] == "2026-01-01T00:00:00Z"  # status did not change
    assert status["conditions"][1]["lastUpdateTime"] == "2026-01-01T00:00:05Z"


def test_calculate_status_sums_the_replica_sets_and_omits_zeros():
    d = dep(4, surge=1, unavailable=1, status={"collisionCount": 2})
    new = rs("n", 2, available=1, status={"readyReplicas": 1})
    old = rs("o", 3, available=3, status={"readyReplicas": 3})
    status = calculate_status([old, new], new, d, T0)
    assert {k: v for k, v in status.items() if k != "conditions"} == {
        "observedGeneration": 1,
        "replicas": 5,
        "updatedReplicas": 2,
        "readyReplicas": 4,
        "availableReplicas": 4,
        "unavailableReplicas": 1,
        "collisionCount": 2,
    }
    assert status["conditions"][0]["reason"] == "MinimumReplicasAvailable"
    empty = calculate_status([], None, dep(0), T0)
    assert set(empty) == {"observedGeneration", "conditions"}
    assert calculate_status([rs("o", 4, available=2)], None, dep(4, unavailable=1), T0)["conditions"][0][
        "reason"
    ] == ("MinimumReplicasUnavailable")


def test_progress_predicates():
    d = dep(2, status={"replicas": 3, "updatedReplicas": 1, "readyReplicas": 2, "availableReplicas": 2})
    assert deployment_progressing(d, {"replicas": 3, "updatedReplicas": 2})
    assert deployment_progressing(d, {"replicas": 2, "updatedReplicas": 1})  # an old one went
    assert not deployment_progressing(
        d, {"replicas": 3, "updatedReplicas": 1, "readyReplicas": 2, "availableReplicas": 2}
    )
    cond = new_condition("Progressing", "True", "ReplicaSetUpdated", "", T0)
    status = {"conditions": [cond]}
    assert not deployment_timed_out(d, status, T0 + dt.timedelta(seconds=600))
    assert deployment_timed_out(d, status, T0 + dt.timedelta(seconds=601))
    done = {"conditions": [new_condition("Progressing", "True", "NewReplicaSetAvailable", "", T0)]}
    assert not deployment_timed_out(d, done, T0 + dt.timedelta(days=1))


def test_rollout_status_moves_progressing_through_its_reasons():
    new = rs("n", 2, available=0, actual=2)
    d = dep(2, surge=1, unavailable=0)
    d["status"] = {"conditions": [new_condition("Progressing", "True", "NewReplicaSetCreated", "", T0)]}
    later = T0 + dt.timedelta(seconds=9)
    status = rollout_status([new], new, d, later)
    progressing = status["conditions"][-1]
    assert (progressing["reason"], progressing["message"]) == (
        "ReplicaSetUpdated",
        'ReplicaSet "n" is progressing.',
    )
    assert (progressing["lastUpdateTime"], progressing["lastTransitionTime"]) == (
        "2026-01-01T00:00:09Z",
        "2026-01-01T00:00:00Z",
    )
    d["status"] = status
    assert progress_check_after(d, status, later) == 601
    done = rs("n", 2, available=2, actual=2)
    status = rollout_status([done], done, d, later)
    assert status["conditions"][-1]["reason"] == "NewReplicaSetAvailable"
    assert progress_check_after(d, status, later) is None
    d["status"] = status
    # once complete it is left alone, however much time passes
    assert rollout_status([done], done, d, later + dt.timedelta(days=9))["conditions"] == status["conditions"]


def test_paused_and_resumed_conditions():
    paused = dep()
    paused["spec"]["paused"] = True
    assert paused_condition(paused, T0)["reason"] == "DeploymentPaused"
    paused["status"] = {"conditions": [paused_condition(paused, T0)]}
    assert paused_condition(paused, T0) is None
    paused["spec"]["paused"] = False
    assert paused_condition(paused, T0)["reason"] == "DeploymentResumed"
    timed_out = dep()
    timed_out["spec"]["paused"] = True
    timed_out["status"] = {
        "conditions": [new_condition("Progressing", "False", "ProgressDeadlineExceeded", "", T0)]
    }
    assert paused_condition(timed_out, T0) is None
