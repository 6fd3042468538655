"""The DaemonSet controller against the shared fake API and its clock: which nodes get a daemon pod,
following nodes that join, change and leave, the pods it makes (placed by the scheduler, never
bound by the controller), expectations, adoption, failed pods, history and status."""

from __future__ import annotations

import copy

import pytest

from controller.daemonset import DaemonSetController
from controller.daemonset.placement import Eligibility, daemon_tolerations, node_should_run
from kubelite.objects import controller_ref
from kubelite.resources import CONTROLLERREVISIONS, DAEMONSETS, EVENTS, NODES, PODS
from kubelite.scheduling import target_node_name
from tests.fakeapi import FakeApi

KEY = "default/agent"


def node_obj(name: str, labels: dict | None = None, taints: list | None = None) -> dict:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {"taints": taints or []},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def daemonset(image: str = "kubelite/whoami:1.0", **spec) -> dict:
    template_spec = {"containers": [{"name": "agent", "image": image}], **spec.pop("pod", {})}
    return {
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {"metadata": {"labels": {"app": "agent"}}, "spec": template_spec},
            **spec,
        },
    }


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def dsc(api: FakeApi) -> DaemonSetController:
    return api.controller(DaemonSetController)


def add_nodes(api: FakeApi, *names: str, **kw) -> None:
    for name in names:
        api.create(NODES, node_obj(name, **kw), namespace=None)


def sync(api: FakeApi, dsc: DaemonSetController) -> None:
    api.run(dsc.sync(KEY))


def pods_by_node(api: FakeApi) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for pod in api.live_pods():
        out.setdefault(target_node_name(pod) or "?", []).append(pod["spec"]["containers"][0]["image"])
    return dict(sorted(out.items()))


def run_pods(api: FakeApi, ready: bool = True, only: set[str] | None = None) -> None:
    """Play scheduler and kubelet: bind each live pod to the node its affinity names and run it."""
    now = api.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    for pod in api.live_pods():
        if only is not None and pod["metadata"]["name"] not in only:
            continue
        bound = copy.deepcopy(pod)
        bound["spec"]["nodeName"] = target_node_name(pod)
        status = "True" if ready else "False"
        bound["status"] = {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": status, "lastTransitionTime": now}],
        }
        api.force_update(PODS, pod["metadata"]["name"], lambda _c, b=bound: b)
    api.deliver()


def status(api: FakeApi) -> dict:
    return api.get(DAEMONSETS, "agent")["status"]


def events(api: FakeApi, reason: str) -> list[str]:
    return [e["message"] for e in api.items(EVENTS) if e.get("reason") == reason]


# ------------------------------------------------------------------ eligibility (pure)


def test_eligibility_follows_selector_affinity_and_taints():
    ds = daemonset(pod={"nodeSelector": {"disk": "ssd"}})
    assert node_should_run(node_obj("a", {"disk": "ssd"}), ds) == Eligibility(True, True)
    assert node_should_run(node_obj("b"), ds) == Eligibility(False, False)
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["x"]}]}
                ]
            }
        }
    }
    ds = daemonset(pod={"affinity": affinity})
    assert node_should_run(node_obj("a", {"zone": "x"}), ds).should_run
    assert not node_should_run(node_obj("a", {"zone": "y"}), ds).should_run
    plain = daemonset()
    no_schedule = [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]
    assert node_should_run(node_obj("a", taints=no_schedule), plain) == Eligibility(False, True)
    no_execute = [{"key": "dedicated", "value": "db", "effect": "NoExecute"}]
    assert node_should_run(node_obj("a", taints=no_execute), plain) == Eligibility(False, False)
    tolerated = daemonset(pod={"tolerations": [{"key": "dedicated", "operator": "Exists"}]})
    assert node_should_run(node_obj("a", taints=no_execute), tolerated) == Eligibility(True, True)
    # the taints every daemon pod tolerates
    for key, effect in [
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ]:
        assert node_should_run(node_obj("a", taints=[{"key": key, "effect": effect}]), plain).should_run
    network = [{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]
    assert not node_should_run(node_obj("a", taints=network), plain).should_run
    assert node_should_run(node_obj("a", taints=network), daemonset(pod={"hostNetwork": True})).should_run


def test_daemon_tolerations_are_added_once():
    spec = {
        "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}]
    }
    tolerations = daemon_tolerations(spec)
    assert len(tolerations) == 6
    assert {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
    } in tolerations


def test_a_time_limited_template_toleration_is_replaced_by_the_daemon_one():
    """AddOrUpdateTolerationInPodSpec matches on key, operator, value and effect: the template's
    60 s unreachable toleration gives way to the unlimited one, so the daemon pod is never evicted."""
    unreachable = "node.kubernetes.io/unreachable"
    spec = {
        "tolerations": [
            {"key": "dedicated", "operator": "Exists"},
            {"key": unreachable, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
        ]
    }
    tolerations = daemon_tolerations(spec)
    assert [t for t in tolerations if t["key"] == unreachable] == [
        {"key": unreachable, "operator": "Exists", "effect": "NoExecute"}
    ]
    assert tolerations[:2] == [
        {"key": "dedicated", "operator": "Exists"},
        {"key": unreachable, "operator": "Exists", "effect": "NoExecute"},
    ], "replaced in place, the others kept"
    assert len(tolerations) == 7
    equal_operator = {"key": unreachable, "operator": "Equal", "effect": "NoExecute", "tolerationSeconds": 60}
    assert equal_operator in daemon_tolerations({"tolerations": [equal_operator]}), "another operator: kept"


# ------------------------------------------------------------------ pods per node


def test_one_pod_per_eligible_node_placed_through_affinity(api, dsc):
    add_nodes(api, "n1", "n2", labels={"disk": "ssd"})
    add_nodes(api, "n3")
    api.create(DAEMONSETS, daemonset(pod={"nodeSelector": {"disk": "ssd"}}))
    sync(api, dsc)
    pods = api.live_pods()
    assert sorted(target_node_name(p) for p in pods) == ["n1", "n2"]
    for pod in pods:
        assert pod["metadata"]["name"].startswith("agent-")
        assert not pod["spec"].get("nodeName")  # the scheduler binds it
        terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"][0]["matchFields"][0]["key"] == "metadata.name"
        labels = pod["metadata"]["labels"]
        assert labels["pod-template-generation"] == "1" and labels["controller-revision-hash"]
        assert controller_ref(pod)["kind"] == "DaemonSet"
        keys = {t["key"] for t in pod["spec"]["tolerations"]}
        assert "node.kubernetes.io/unreachable" in keys and "node.kubernetes.io/unschedulable" in keys
    assert len(events(api, "SuccessfulCreate")) == 2
    st = status(api)
    assert st["desiredNumberScheduled"] == 2 and st["currentNumberScheduled"] == 2
    assert st["numberReady"] == 0 and st["numberUnavailable"] == 2
    run_pods(api)
    sync(api, dsc)
    st = status(api)
    assert st["numberReady"] == 2 and st["numberAvailable"] == 2 and st["updatedNumberScheduled"] == 2
    assert st["observedGeneration"] == 1 and "numberUnavailable" not in st
    sync(api, dsc)  # level-triggered: nothing more to do
    assert len(api.live_pods()) == 2


def test_follows_nodes_joining_changing_and_leaving(api, dsc):
    add_nodes(api, "n1")
    api.create(DAEMONSETS, daemonset())
    sync(api, dsc)
    run_pods(api)
    dsc.queue = api.work_queue()
    add_nodes(api, "n2")  # joins
    assert len(dsc.queue) == 1  # the node handler enqueued the DaemonSet
    sync(api, dsc)
    assert list(pods_by_node(api)) == ["n1", "n2"]
    run_pods(api)
    # a NoSchedule taint keeps the running pod; a NoExecute one removes it
    n1 = api.get(NODES, "n1", namespace=None)
    n1["spec"]["taints"] = [{"key": "maintenance", "effect": "NoSchedule"}]
    api.run(api.client.update(NODES, n1))
    sync(api, dsc)
    assert list(pods_by_node(api)) == ["n1", "n2"]
    assert status(api)["desiredNumberScheduled"] == 1 and status(api)["numberMisscheduled"] == 1
    n1 = api.get(NODES, "n1", namespace=None)
    n1["spec"]["taints"] = [{"key": "maintenance", "effect": "NoExecute"}]
    api.run(api.client.update(NODES, n1))
    sync(api, dsc)
    api.finish_deletions()
    assert list(pods_by_node(api)) == ["n2"]
    assert "Deleted pod" in events(api, "SuccessfulDelete")[0]
    # taint removed: back again
    n1 = api.get(NODES, "n1", namespace=None)
    n1["spec"]["taints"] = []
    api.run(api.client.update(NODES, n1))
    sync(api, dsc)
    assert list(pods_by_node(api)) == ["n1", "n2"]
    # a pod not yet scheduled whose node is deleted is deleted; status counts only existing nodes
    api.run(api.client.delete(NODES, "n1"))
    sync(api, dsc)
    api.finish_deletions()
    assert list(pods_by_node(api)) == ["n2"]
    assert status(api)["desiredNumberScheduled"] == 1


def test_node_label_change_moves_eligibility(api, dsc):
    add_nodes(api, "n1", labels={"agent": "yes"})
    api.create(DAEMONSETS, daemonset(pod={"nodeSelector": {"agent": "yes"}}))
    sync(api, dsc)
    run_pods(api)
    n1 = api.get(NODES, "n1", namespace=None)
    n1["metadata"]["labels"]["agent"] = "no"
    api.run(api.client.update(NODES, n1))
    sync(api, dsc)
    api.finish_deletions()
    assert api.live_pods() == []
    assert status(api)["desiredNumberScheduled"] == 0


def test_expectations_keep_a_lagging_cache_from_doubling_creates(api, dsc):
    add_nodes(api, "n1", "n2")
    api.create(DAEMONSETS, daemonset())
    api.hold_events()
    sync(api, dsc)
    sync(api, dsc)
    api.deliver(force=True)
    sync(api, dsc)
    assert len(api.live_pods()) == 2


def test_orphans_are_adopted_and_kept_or_rolled(api, dsc):
    add_nodes(api, "n1")
    orphan = {
        "metadata": {"name": "stray", "labels": {"app": "agent"}},
        "spec": {"nodeName": "n1", "containers": [{"name": "agent", "image": "kubelite/whoami:1.0"}]},
    }
    api.create(PODS, orphan)
    api.create(DAEMONSETS, daemonset(updateStrategy={"type": "OnDelete"}))
    sync(api, dsc)
    stray = api.get(PODS, "stray")
    assert controller_ref(stray)["name"] == "agent"
    assert [p["metadata"]["name"] for p in api.live_pods()] == ["stray"]  # it already serves n1
    assert status(api)["currentNumberScheduled"] == 1 and "updatedNumberScheduled" not in status(api)
    # under RollingUpdate the adopted pod, of no known revision, is replaced
    ds = api.get(DAEMONSETS, "agent")
    ds["spec"]["updateStrategy"] = {"type": "RollingUpdate"}
    api.run(api.client.update(DAEMONSETS, ds))
    settle(api, dsc, 3)
    pods = api.live_pods()
    assert len(pods) == 1 and pods[0]["metadata"]["name"] != "stray"
    assert status(api)["updatedNumberScheduled"] == 1


def fail_all(api: FakeApi) -> None:
    """Play kubelet: every live pod's containers failed (phase Failed)."""
    for pod in api.live_pods():
        failed = {**pod, "status": {"phase": "Failed"}}
        api.force_update(PODS, pod["metadata"]["name"], lambda _c, b=failed: b)
    api.deliver()


def test_failed_pods_are_replaced_with_back_off(api, dsc):
    add_nodes(api, "n1")
    api.create(DAEMONSETS, daemonset())
    sync(api, dsc)
    run_pods(api)

    fail_all(api)
    sync(api, dsc)
    api.finish_deletions()
    assert events(api, "FailedDaemonPod")[0].startswith("Found failed daemon pod default/agent-")
    sync(api, dsc)
    run_pods(api)
    assert len(api.live_pods()) == 1
    fail_all(api)
    dsc.queue = api.work_queue()
    sync(api, dsc)  # within a second of the first failure: back-off, the pod stays
    assert [p["status"]["phase"] for p in api.live_pods()] == ["Failed"]
    assert len(dsc.queue) == 0 and api.clock.pending()  # it comes back when the back-off ends
    api.clock.advance(2)
    sync(api, dsc)
    api.finish_deletions()
    assert api.live_pods() == []


def test_fixing_the_template_starts_a_fresh_failed_pod_back_off(api, dsc):
    """failedPodsBackoffKey holds the observed generation: a new template is not held back by the
    back-off the broken one earned (OnDelete: only the failed-pod rule can replace the pod)."""
    add_nodes(api, "n1")
    api.create(DAEMONSETS, daemonset(updateStrategy={"type": "OnDelete"}))
    sync(api, dsc)
    run_pods(api)

    fail_all(api)
    sync(api, dsc)
    api.finish_deletions()
    sync(api, dsc)
    run_pods(api)
    fail_all(api)
    dsc.queue = api.work_queue()
    sync(api, dsc)
    assert [p["status"]["phase"] for p in api.live_pods()] == ["Failed"], "in back-off"
    set_image(api, "kubelite/whoami:2.0")
    for _ in range(3):  # no time passes
        sync(api, dsc)
        api.finish_deletions()
    assert api.get(DAEMONSETS, "agent")["status"]["observedGeneration"] == 2
    images = [p["spec"]["containers"][0]["image"] for p in api.live_pods()]
    assert images == ["kubelite/whoami:2.0"], "the failed pod went at once and the new one replaced it"


# ------------------------------------------------------------------ history and rollouts


def set_image(api: FakeApi, image: str) -> None:
    ds = api.get(DAEMONSETS, "agent")
    ds["spec"]["template"]["spec"]["containers"][0]["image"] = image
    api.run(api.client.update(DAEMONSETS, ds))


def revisions(api: FakeApi) -> dict[int, str]:
    return {
        r["revision"]: r["data"]["spec"]["template"]["spec"]["containers"][0]["image"]
        for r in api.items(CONTROLLERREVISIONS)
    }


def settle(api: FakeApi, dsc: DaemonSetController, rounds: int = 20) -> None:
    for _ in range(rounds):
        sync(api, dsc)
        api.finish_deletions()
        run_pods(api)


def test_rolling_update_replaces_pods_node_by_node_within_max_unavailable(api, dsc):
    add_nodes(api, "n1", "n2", "n3")
    api.create(DAEMONSETS, daemonset())
    settle(api, dsc, 2)
    set_image(api, "kubelite/whoami:2.0")
    sync(api, dsc)
    assert status(api)["observedGeneration"] == 2
    doomed = [p for p in api.items(PODS) if p["metadata"].get("deletionTimestamp")]
    assert len(doomed) == 1  # maxUnavailable 1
    sync(api, dsc)  # the deletion is not finished: still unavailable, nothing more
    assert len([p for p in api.items(PODS) if p["metadata"].get("deletionTimestamp")]) == 1
    api.finish_deletions()
    sync(api, dsc)
    new = [p for p in api.live_pods() if p["spec"]["containers"][0]["image"].endswith("2.0")]
    assert len(new) == 1
    run_pods(api, ready=False, only={new[0]["metadata"]["name"]})
    sync(api, dsc)
    assert not [p for p in api.items(PODS) if p["metadata"].get("deletionTimestamp")]  # waits for it
    assert status(api)["updatedNumberScheduled"] == 1
    settle(api, dsc)
    assert pods_by_node(api) == {n: ["kubelite/whoami:2.0"] for n in ("n1", "n2", "n3")}
    st = status(api)
    assert st["updatedNumberScheduled"] == 3 and st["numberAvailable"] == 3
    assert revisions(api) == {1: "kubelite/whoami:1.0", 2: "kubelite/whoami:2.0"}


def test_rolling_update_with_surge_starts_the_new_pod_first(api, dsc):
    add_nodes(api, "n1", "n2")
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    api.create(DAEMONSETS, daemonset(updateStrategy=strategy))
    settle(api, dsc, 2)
    set_image(api, "kubelite/whoami:2.0")
    sync(api, dsc)
    by_node = pods_by_node(api)
    assert sum(len(v) for v in by_node.values()) == 3  # one node surged, nothing deleted
    assert not [p for p in api.items(PODS) if p["metadata"].get("deletionTimestamp")]
    settle(api, dsc)
    assert pods_by_node(api) == {"n1": ["kubelite/whoami:2.0"], "n2": ["kubelite/whoami:2.0"]}


def test_on_delete_waits_for_pods_to_be_deleted(api, dsc):
    add_nodes(api, "n1")
    api.create(DAEMONSETS, daemonset(updateStrategy={"type": "OnDelete"}))
    settle(api, dsc, 2)
    set_image(api, "kubelite/whoami:2.0")
    settle(api, dsc, 3)
    assert pods_by_node(api) == {"n1": ["kubelite/whoami:1.0"]}
    assert status(api)["updatedNumberScheduled"] == 0 if "updatedNumberScheduled" in status(api) else True
    pod = api.live_pods()[0]
    api.run(api.client.delete(PODS, pod["metadata"]["name"], "default"))
    settle(api, dsc, 2)
    assert pods_by_node(api) == {"n1": ["kubelite/whoami:2.0"]}


def test_history_is_truncated_and_a_rollback_renumbers_the_old_revision(api, dsc):
    add_nodes(api, "n1")
    api.create(DAEMONSETS, daemonset(revisionHistoryLimit=1))
    settle(api, dsc, 2)
    for version in ("2.0", "3.0", "4.0"):
        set_image(api, f"kubelite/whoami:{version}")
        settle(api, dsc, 4)
    assert revisions(api) == {3: "kubelite/whoami:3.0", 4: "kubelite/whoami:4.0"}
    set_image(api, "kubelite/whoami:3.0")  # what `kubectl rollout undo` does
    settle(api, dsc, 4)
    assert revisions(api) == {5: "kubelite/whoami:3.0", 4: "kubelite/whoami:4.0"}
    ds = api.get(DAEMONSETS, "agent")
    assert ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "5"
    assert pods_by_node(api) == {"n1": ["kubelite/whoami:3.0"]}
    pod = api.live_pods()[0]
    current = next(r for r in api.items(CONTROLLERREVISIONS) if r["revision"] == 5)
    assert (
        pod["metadata"]["labels"]["controller-revision-hash"]
        == current["metadata"]["labels"]["controller-revision-hash"]
    )
    assert current["metadata"]["name"].startswith("agent-")
    assert controller_ref(current)["name"] == "agent"


def test_a_deleted_daemonset_is_forgotten(api, dsc):
    add_nodes(api, "n1")
    api.create(DAEMONSETS, daemonset())
    sync(api, dsc)
    api.run(api.client.delete(DAEMONSETS, "agent", "default"))
    sync(api, dsc)  # nothing to do, no error
    assert dsc.expectations.satisfied(KEY)
