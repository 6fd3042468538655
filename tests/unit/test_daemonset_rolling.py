"""The pure decisions of the DaemonSet controller: rolling-update steps, per-node plans, status
counts and the failed-pod back-off."""

from __future__ import annotations

import functools

from controller.daemonset.backoff import FailedPodBackoff
from controller.daemonset.placement import Eligibility, creation_order, plan_node
from controller.daemonset.rolling import rolling_update, surge_and_unavailable
from controller.daemonset.status import daemon_status
from controller.deployment.util import scaled_value

NEW, OLD = "new", "old"


def pod(name: str, rev: str, ready: bool = True, created: str = "2026-01-01T00:00:00Z", **meta) -> dict:
    return {
        "metadata": {
            "name": name,
            "labels": {"controller-revision-hash": rev},
            "creationTimestamp": created,
            **meta,
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def ds(unavailable=1, surge=0) -> dict:
    return {
        "metadata": {"generation": 2},
        "spec": {
            "updateStrategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": unavailable, "maxSurge": surge},
            }
        },
    }


def ready(p: dict) -> bool:
    return p["status"]["conditions"][0]["status"] == "True" and not p["metadata"].get("deletionTimestamp")


def step(d: dict, node_pods: dict, desired: int | None = None, runs=lambda n: True):
    return rolling_update(
        d, node_pods, NEW, None, ready, runs, len(node_pods) if desired is None else desired
    )


def test_counts_scale_up_from_percentages_and_never_stall():
    up = functools.partial(scaled_value, round_up=True)  # a DaemonSet rounds up, as a Deployment's surge
    assert up("10%", 15) == 2 and up(3, 15) == 3 and up("0%", 15) == 0
    assert surge_and_unavailable(ds("25%", 0), 10) == (0, 3)
    assert surge_and_unavailable(ds(0, 0), 4) == (0, 1)  # an impossible configuration: one at a time


def test_without_surge_old_pods_go_within_max_unavailable():
    nodes = {f"n{i}": [pod(f"p{i}", OLD)] for i in range(5)}
    assert [p["metadata"]["name"] for p in step(ds(2), nodes).delete] == ["p0", "p1"]
    nodes["n0"] = [pod("q0", NEW, ready=False)]  # being replaced: counts as unavailable
    assert [p["metadata"]["name"] for p in step(ds(2), nodes).delete] == ["p1"]
    nodes["n1"] = []  # no pod at all yet: unavailable too
    assert step(ds(2), nodes).delete == []
    nodes["n2"] = [pod("p2", OLD, ready=False)]  # an unavailable old pod is always replaced
    assert [p["metadata"]["name"] for p in step(ds(2), nodes).delete] == ["p2"]
    assert step(ds(2), nodes).create_on == []  # manage() creates


def test_with_surge_new_pods_start_beside_old_ones():
    nodes = {f"n{i}": [pod(f"p{i}", OLD)] for i in range(3)}
    first = step(ds(0, 1), nodes)
    assert first.create_on == ["n0"] and first.delete == []
    nodes["n0"].append(pod("q0", NEW, ready=False))
    assert step(ds(0, 1), nodes).create_on == []  # the surge is used up until q0 is available
    nodes["n0"][1] = pod("q0", NEW)
    later = step(ds(0, 1), nodes)
    assert [p["metadata"]["name"] for p in later.delete] == ["p0"]
    assert later.create_on == ["n1"]  # n0 no longer uses the surge: the next node may start
    nodes["n1"][0] = pod("p1", OLD, ready=False)  # an unavailable old pod is replaced beyond the surge
    assert "n1" in step(ds(0, 1), nodes).create_on


def test_plan_node_keeps_the_oldest_pod_and_deletes_finished_ones():
    both = [pod("b", OLD, created="2026-01-01T00:00:02Z"), pod("a", OLD, created="2026-01-01T00:00:01Z")]
    plan = plan_node(Eligibility(True, True), both, NEW, False, {})
    assert [p["metadata"]["name"] for p in plan.delete] == ["b"] and not plan.create
    done = pod("c", OLD)
    done["status"]["phase"] = "Succeeded"
    failed = pod("d", OLD)
    failed["status"]["phase"] = "Failed"
    plan = plan_node(Eligibility(True, True), [done, failed], NEW, False, {})
    assert [p["metadata"]["name"] for p in plan.delete] == ["c"]
    assert [p["metadata"]["name"] for p in plan.failed] == ["d"]
    assert plan_node(Eligibility(True, True), [], NEW, False, {}).create
    gone = plan_node(Eligibility(False, False), [pod("e", OLD)], NEW, False, {})
    assert [p["metadata"]["name"] for p in gone.delete] == ["e"]
    assert plan_node(Eligibility(False, True), [pod("f", OLD)], NEW, False, {}).delete == []


def test_pods_are_ordered_scheduled_first_then_oldest_then_by_name():
    """podByCreationTimestampAndPhase: spec.nodeName set before unset; the phase plays no part."""
    pending = pod("a-old-unscheduled", OLD, created="2026-01-01T00:00:00Z")
    pending["status"]["phase"] = "Pending"
    late = {**pod("z-late", OLD, created="2026-01-01T00:00:05Z"), "spec": {"nodeName": "n1"}}
    late["status"]["phase"] = "Pending"
    early = {**pod("y-early", OLD, created="2026-01-01T00:00:01Z"), "spec": {"nodeName": "n1"}}
    tie = {**pod("x-tie", OLD, created="2026-01-01T00:00:05Z"), "spec": {"nodeName": "n1"}}
    ordered = sorted([pending, late, early, tie], key=creation_order)
    assert [p["metadata"]["name"] for p in ordered] == ["y-early", "x-tie", "z-late", "a-old-unscheduled"]
    plan = plan_node(Eligibility(True, True), [pending, late], NEW, False, {})
    assert [p["metadata"]["name"] for p in plan.delete] == ["a-old-unscheduled"], "the scheduled pod stays"


def test_status_counts_the_oldest_pod_of_each_node():
    node_pods = {
        "a": [pod("a1", NEW)],
        "b": [pod("b1", OLD, ready=False)],
        "c": [pod("c1", OLD)],  # c should not run one: misscheduled
    }
    status = daemon_status(
        ds(),
        {"a": True, "b": True, "c": False, "d": True},
        node_pods,
        NEW,
        None,
        ready,
        observe_generation=True,
    )
    assert status == {
        "currentNumberScheduled": 2,
        "numberMisscheduled": 1,
        "desiredNumberScheduled": 3,
        "numberReady": 1,
        "observedGeneration": 2,
        "updatedNumberScheduled": 1,
        "numberAvailable": 1,
        "numberUnavailable": 2,
    }
    waiting = daemon_status(ds(), {"a": True}, {}, NEW, None, ready, observe_generation=False)
    assert "observedGeneration" not in waiting and waiting["numberUnavailable"] == 1


def test_failed_pod_back_off_doubles_and_expires():
    backoff = FailedPodBackoff(initial=1, maximum=8)
    assert not backoff.in_backoff("k", 0)
    backoff.next("k", 0)
    assert backoff.in_backoff("k", 0.5) and not backoff.in_backoff("k", 1.0)
    backoff.next("k", 1.0)
    assert backoff.delay("k") == 2 and backoff.in_backoff("k", 2.5)
    for t in range(2, 10):
        backoff.next("k", float(t))
    assert backoff.delay("k") == 8  # capped
    backoff.next("k", 100.0)  # long quiet: starts over
    assert backoff.delay("k") == 1
    backoff.forget_prefix("k")
    assert backoff.delay("k") == 0
