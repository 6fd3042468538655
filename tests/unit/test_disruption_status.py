"""The pure half of the disruption controller: expected pods and desired health from minAvailable or
maxUnavailable (percentages of the controllers' scale), healthy pods, evictions awaiting their
deletion, and the status and DisruptionAllowed condition a budget should carry."""

from __future__ import annotations

import datetime as dt

import pytest

from controller.disruption.status import (
    DELETION_TIMEOUT,
    ExpectedCounts,
    ScaleError,
    budget_status,
    count_healthy,
    disrupted_pods,
    expected_counts,
    fail_safe_status,
    scaled_value,
    stale_disruption_wait,
)
from kubelite.disruptionbudget import conditions_are_up_to_date, covers
from kubelite.objects import rfc3339

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def pod(name: str, ready: bool = True, owner: str | None = "rs-uid", **meta) -> dict:
    refs = [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": owner, "controller": True}
    ]
    return {
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"},
                     "ownerReferences": refs if owner else [], **meta},
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }  # fmt: skip


def budget(generation: int = 1, status: dict | None = None, **spec) -> dict:
    return {
        "metadata": {"name": "web", "namespace": "default", "generation": generation},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
        "status": status or {},
    }


def scale_of(replicas: int):
    def find(ref: dict, namespace: str) -> tuple[str, int] | None:
        return ("deployment-uid", replicas) if ref.get("uid") == "rs-uid" else None

    return find


def test_scaled_values_round_percentages_up():
    assert scaled_value(2, 10) == 2
    assert scaled_value("50%", 3) == 2
    assert scaled_value("50%", 3, round_up=False) == 1
    assert scaled_value("0%", 7) == 0
    with pytest.raises(ScaleError, match='invalid value "half"'):
        scaled_value("half", 3)


def test_an_integer_min_available_counts_the_pods_themselves():
    pods = [pod("a"), pod("b", owner=None)]
    counts = expected_counts(budget(minAvailable=2), pods, scale_of(5))
    assert counts == ExpectedCounts(expected=2, desired_healthy=2, unmanaged=[])


def test_percentages_and_max_unavailable_use_the_top_level_controllers_scale():
    pods = [pod("a"), pod("b")]
    assert expected_counts(budget(minAvailable="50%"), pods, scale_of(5)) == ExpectedCounts(5, 3, [])
    assert expected_counts(budget(maxUnavailable=1), pods, scale_of(4)) == ExpectedCounts(4, 3, [])
    assert expected_counts(budget(maxUnavailable="100%"), pods, scale_of(4)).desired_healthy == 0
    assert expected_counts(budget(maxUnavailable=9), pods, scale_of(4)).desired_healthy == 0


def test_unmanaged_pods_are_reported_and_pods_without_a_known_controller_fail():
    counts = expected_counts(budget(maxUnavailable=1), [pod("a"), pod("lone", owner=None)], scale_of(2))
    assert counts.unmanaged == ["lone"]
    with pytest.raises(ScaleError, match='found no controllers for pod "a"'):
        expected_counts(budget(maxUnavailable=1), [pod("a", owner="other")], scale_of(2))


def test_healthy_pods_are_ready_not_terminating_and_not_just_evicted():
    pods = [pod("a"), pod("b", ready=False), pod("c", deletionTimestamp=rfc3339(NOW)), pod("d"), pod("e")]
    evicted = {"d": rfc3339(NOW - dt.timedelta(seconds=30)), "e": rfc3339(NOW - DELETION_TIMEOUT * 2)}
    assert count_healthy(pods, evicted, NOW) == 2  # a, and e whose eviction expired


def test_disrupted_pods_keep_pending_evictions_drop_deleted_ones_and_expire_late_ones():
    recorded = {
        "gone": rfc3339(NOW),  # no such pod any more
        "deleting": rfc3339(NOW),  # marked for deletion as expected
        "pending": rfc3339(NOW - dt.timedelta(seconds=30)),
        "late": rfc3339(NOW - dt.timedelta(minutes=3)),
    }
    pods = [pod("deleting", deletionTimestamp=rfc3339(NOW)), pod("pending"), pod("late")]
    out = disrupted_pods(pods, budget(status={"disruptedPods": recorded}), NOW)
    assert out.pods == {"pending": recorded["pending"]}
    assert out.not_deleted == ["late"]
    assert out.recheck_at == NOW - dt.timedelta(seconds=30) + DELETION_TIMEOUT


def test_status_allows_the_surplus_and_sets_the_condition_once():
    pdb = budget(generation=2, minAvailable=2)
    status = budget_status(pdb, 3, ExpectedCounts(3, 2), {}, NOW)
    assert status == {
        "observedGeneration": 2, "disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2,
        "expectedPods": 3,
        "conditions": [{"type": "DisruptionAllowed", "status": "True", "observedGeneration": 2,
                        "reason": "SufficientPods", "message": "", "lastTransitionTime": rfc3339(NOW)}],
    }  # fmt: skip
    pdb["status"] = status
    assert conditions_are_up_to_date(pdb)
    assert budget_status(pdb, 3, ExpectedCounts(3, 2), {}, NOW) is None, "nothing changed: no write"
    later = NOW + dt.timedelta(minutes=1)
    short = budget_status(pdb, 2, ExpectedCounts(3, 2), {}, later)
    assert short is not None and short["disruptionsAllowed"] == 0
    assert short["conditions"][0]["reason"] == "InsufficientPods"
    assert short["conditions"][0]["lastTransitionTime"] == rfc3339(later)


def test_nothing_is_allowed_while_no_pod_is_expected():
    status = budget_status(budget(maxUnavailable=1), 0, ExpectedCounts(0, 0), {}, NOW)
    assert status is not None and status["disruptionsAllowed"] == 0
    assert status["conditions"][0]["status"] == "False"


def test_fail_safe_allows_nothing_and_says_why():
    pdb = budget(status={"disruptionsAllowed": 2, "observedGeneration": 1, "currentHealthy": 3})
    status = fail_safe_status(pdb, 'found no controllers for pod "a"', NOW)
    assert status["disruptionsAllowed"] == 0 and status["currentHealthy"] == 3
    cond = status["conditions"][0]
    assert (cond["status"], cond["reason"], cond["message"]) == (
        "False",
        "SyncFailed",
        'found no controllers for pod "a"',
    )


def test_a_null_selector_covers_no_pod_and_an_empty_one_every_pod_of_the_namespace():
    null = {"metadata": {"name": "n", "namespace": "default"}, "spec": {}}
    everything = {"metadata": {"name": "e", "namespace": "default"}, "spec": {"selector": {}}}
    assert not covers(null, pod("a"))
    assert covers(everything, pod("a"))
    other = pod("a")
    other["metadata"]["namespace"] = "team"
    assert not covers(everything, other)


def test_a_disruption_target_goes_stale_two_minutes_after_it_was_set_unless_the_pod_is_going():
    def target(p: dict, reason: str = "EvictionByEvictionAPI") -> dict:
        since = rfc3339(NOW - dt.timedelta(seconds=30))
        p["status"]["conditions"].append(
            {"type": "DisruptionTarget", "status": "True", "reason": reason, "lastTransitionTime": since}
        )
        return p

    assert stale_disruption_wait(target(pod("a")), NOW) == 90
    assert stale_disruption_wait(target(pod("a")), NOW + dt.timedelta(minutes=5)) == 0
    assert stale_disruption_wait(pod("a"), NOW) is None
    assert stale_disruption_wait(target(pod("a", deletionTimestamp=rfc3339(NOW))), NOW) is None
    assert stale_disruption_wait(target(pod("a"), reason="TerminationByKubelet"), NOW) is None
