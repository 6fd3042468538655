"""Deployments, ReplicaSets and ReplicationControllers run by the real controller-manager, scheduler
and apiserver on hollow nodes (`python -m kubelet.hollow`: real kubelets on the fake runtime),
driven by the real kubectl and the kubernetes Python client: rolling updates inside their surge and
unavailability bounds at every step, rollback, pause and resume, restart, self-healing, adoption
and release, cascading deletes in all three modes, and a controller-manager killed mid-rollout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.conftest import HollowCluster, hollow_cluster
from tests.support import wait_until
from tests.workloads_support import PodWatch, deployment, is_available

NODES = 3


# short leases: a restarted manager has a new identity and must wait out the old lease
CONTROLLER_ARGS = [
    "--node-monitor-grace-period", "60s", "--leader-elect-lease-duration", "4s",
    "--leader-elect-renew-deadline", "3s", "--leader-elect-retry-period", "1s",
]  # fmt: skip


class Workloads(HollowCluster):
    """The control plane, scheduler, controller-manager and hollow nodes, plus kubectl."""

    def rollout_status(self, name: str, timeout: str = "120s") -> str:
        return self.kubectl.run(
            "rollout", "status", f"deployment/{name}", f"--timeout={timeout}", timeout=180
        ).stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Workloads]:
    workdir = tmp_path_factory.mktemp("workloads")
    with hollow_cluster(workdir, nodes=NODES, controller_args=CONTROLLER_ARGS, cluster_type=Workloads) as w:
        yield w


def observed(cluster: Workloads, name: str) -> bool:
    d = cluster.kubectl.get_json("deployment", name)
    return d["status"].get("observedGeneration") == d["metadata"]["generation"]


def orphaned(cluster: Workloads, rs_name: str) -> bool:
    return not cluster.kubectl.get_json("rs", rs_name)["metadata"].get("ownerReferences")


def names(cluster: Workloads, selector: str) -> set[str]:
    return {p["metadata"]["name"] for p in cluster.live_pods(selector)}


def test_a_rolling_update_keeps_within_surge_and_unavailability_at_every_step(cluster):
    name, replicas = "roll", 10
    cluster.apply(deployment(name, replicas, minReadySeconds=1))
    cluster.rollout_status(name)
    with PodWatch(cluster.cp.server, f"app={name}") as watched:
        cluster.kubectl.run("set", "image", f"deployment/{name}", "web=kubelite/whoami:2.0")
        assert "successfully rolled out" in cluster.rollout_status(name)
        wait_until(
            lambda: len(watched.pods) == replicas and all(
                p["spec"]["containers"][0]["image"] == "kubelite/whoami:2.0" for p in watched.pods.values()),
            "the watch to see only the new pods", timeout=60,
        )  # fmt: skip
    assert len(watched.states) > 20, "the rollout was observed step by step"
    for state in watched.states:
        active = [p for p in state.values() if not p["metadata"].get("deletionTimestamp")]
        available = [p for p in active if is_available(p)]
        assert len(active) <= replicas + 3, (
            f"more than replicas + maxSurge (25% of 10 -> 3) pods: {len(active)}"
        )
        assert len(available) >= replicas - 2, (
            f"fewer than replicas - maxUnavailable (2) available: {len(available)}"
        )
    history = cluster.kubectl.run("rollout", "history", f"deployment/{name}").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"], history


def test_rollout_undo_pause_resume_and_restart(cluster):
    name = "undo"
    cluster.apply(deployment(name, 4))
    cluster.rollout_status(name)
    cluster.kubectl.run("set", "image", f"deployment/{name}", "web=kubelite/whoami:2.0")
    cluster.rollout_status(name)
    replicasets = {
        rs["metadata"]["name"]: rs for rs in cluster.kubectl.get_json("rs", "-l", f"app={name}")["items"]
    }
    assert len(replicasets) == 2
    cluster.kubectl.run("rollout", "undo", f"deployment/{name}")
    cluster.rollout_status(name)
    images = {p["spec"]["containers"][0]["image"] for p in cluster.live_pods(f"app={name}")}
    assert images == {"kubelite/whoami:1.0"}
    after = {
        rs["metadata"]["name"]: rs for rs in cluster.kubectl.get_json("rs", "-l", f"app={name}")["items"]
    }
    assert set(after) == set(replicasets), "undo scales the old ReplicaSet back up, it makes no new one"
    revisions = {
        n: rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for n, rs in after.items()
    }
    assert sorted(revisions.values()) == ["2", "3"], revisions

    cluster.kubectl.run("rollout", "pause", f"deployment/{name}")
    cluster.kubectl.run("set", "image", f"deployment/{name}", "web=kubelite/whoami:2.0")
    wait_until(lambda: observed(cluster, name), "the paused change observed")
    assert {p["spec"]["containers"][0]["image"] for p in cluster.live_pods(f"app={name}")} == {
        "kubelite/whoami:1.0"
    }
    assert len(cluster.kubectl.get_json("rs", "-l", f"app={name}")["items"]) == 2, "no rollout while paused"
    cluster.kubectl.run("rollout", "resume", f"deployment/{name}")
    cluster.rollout_status(name)
    assert {p["spec"]["containers"][0]["image"] for p in cluster.live_pods(f"app={name}")} == {
        "kubelite/whoami:2.0"
    }

    before = {p["metadata"]["name"] for p in cluster.live_pods(f"app={name}")}
    cluster.kubectl.run("rollout", "restart", f"deployment/{name}")
    cluster.rollout_status(name)
    wait_until(lambda: not before & {p["metadata"]["name"] for p in cluster.live_pods(f"app={name}")},
               "every pod replaced by the restart")  # fmt: skip
    cluster.kubectl.run("delete", "deployment", name)


def test_a_deleted_pod_is_replaced_and_labels_move_pods_in_and_out(cluster):
    cluster.apply(deployment("heal", 3))
    cluster.rollout_status("heal")
    victim = cluster.live_pods("app=heal")[0]["metadata"]["name"]
    cluster.kubectl.run("delete", "pod", victim)
    wait_until(lambda: len(names(cluster, "app=heal") - {victim}) == 3, "a replacement pod")

    # a pod relabelled out of the selector is released (and replaced); relabelled back, it is adopted
    moved = cluster.live_pods("app=heal")[0]["metadata"]["name"]
    cluster.kubectl.run("label", "pod", moved, "app=debug", "--overwrite")
    wait_until(lambda: len(cluster.live_pods("app=heal")) == 3, "a replacement for the released pod")
    released = cluster.kubectl.get_json("pod", moved)
    assert not released["metadata"].get("ownerReferences"), released["metadata"].get("ownerReferences")
    cluster.kubectl.run("label", "pod", moved, "app=heal", "--overwrite")

    def adopted_back() -> bool:
        """Adopted: it is the ReplicaSet's again, and one of the four is removed as surplus (which
        one is Kubernetes' choice among equals: it may be the adopted pod itself)."""
        pods = cluster.live_pods("app=heal")
        if len(pods) != 3 or not all(p["metadata"].get("ownerReferences") for p in pods):
            return False
        if moved in {p["metadata"]["name"] for p in pods}:
            return True
        events = cluster.kubectl.get_json("events", "--field-selector", "reason=SuccessfulDelete")["items"]
        return any(e["message"] == f"Deleted pod: {moved}" for e in events)

    wait_until(adopted_back, "the orphan adopted back and a surplus pod removed")
    cluster.kubectl.run("delete", "deployment", "heal")
    wait_until(lambda: cluster.live_pods("app=heal") == [], "the deployment's pods gone with it")


def test_a_replicationcontroller_keeps_its_equality_selected_pods(cluster):
    cluster.apply(json.dumps({
        "apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "legacy"},
        "spec": {"replicas": 2, "selector": {"app": "legacy"}, "template": {
            "metadata": {"labels": {"app": "legacy", "tier": "x"}},
            "spec": {"containers": [{"name": "c", "image": "kubelite/whoami:1.0"}]}}},
    }))  # fmt: skip
    wait_until(
        lambda: cluster.kubectl.get_json("rc", "legacy")["status"].get("readyReplicas") == 2,
        "2 ready RC pods",
    )
    cluster.kubectl.run("scale", "rc", "legacy", "--replicas=3")
    wait_until(lambda: len(cluster.live_pods("app=legacy")) == 3, "the RC scaled to 3")
    cluster.kubectl.run("delete", "rc", "legacy")
    wait_until(lambda: cluster.live_pods("app=legacy") == [], "kubectl's background cascade removes the pods")


def owned(cluster: Workloads, kind: str, selector: str) -> list[dict]:
    return [
        o
        for o in cluster.kubectl.get_json(kind, "-l", selector)["items"]
        if not o["metadata"].get("deletionTimestamp")
    ]


def test_cascading_deletes_in_all_three_modes(cluster):
    for mode in ("background", "foreground", "orphan"):
        name = f"cascade-{mode}"
        cluster.apply(deployment(name, 2))
        cluster.rollout_status(name)
        [rs] = cluster.kubectl.get_json("rs", "-l", f"app={name}")["items"]
        cluster.kubectl.run("delete", "deployment", name, f"--cascade={mode}", timeout=120)
        missing = cluster.kubectl.run("get", "deployment", name, check=False)
        assert "not found" in missing.stderr, f"{mode}: kubectl delete waits until the deployment is gone"
        if mode == "orphan":
            rs_name = rs["metadata"]["name"]
            wait_until(lambda rs_name=rs_name: orphaned(cluster, rs_name), "the ReplicaSet orphaned")
            assert len(cluster.live_pods(f"app={name}")) == 2, "orphaned: the pods keep running"
            cluster.kubectl.run("delete", "rs", rs["metadata"]["name"])
            wait_until(
                lambda name=name: cluster.live_pods(f"app={name}") == [], "pods of the deleted RS gone"
            )
        else:
            if mode == "foreground":
                assert cluster.live_pods(f"app={name}") == [], "foreground: the dependents went first"
            wait_until(
                lambda name=name: owned(cluster, "rs", f"app={name}") == [], f"{mode}: the ReplicaSet gone"
            )
            wait_until(lambda name=name: cluster.live_pods(f"app={name}") == [], f"{mode}: the pods gone")


def test_a_controller_manager_killed_mid_rollout_resumes_without_losing_or_duplicating_pods(cluster):
    name, replicas = "crash", 8
    cluster.apply(deployment(name, replicas, minReadySeconds=1))
    cluster.rollout_status(name)
    cluster.kubectl.run("set", "image", f"deployment/{name}", "web=kubelite/whoami:2.0")
    wait_until(lambda: cluster.kubectl.get_json("deployment", name)["status"].get("updatedReplicas", 0) >= 2,
               "the rollout under way")  # fmt: skip
    assert cluster.controller is not None
    cluster.controller.kill()
    cluster.start_controller_manager()
    assert "successfully rolled out" in cluster.rollout_status(name)
    pods = cluster.live_pods(f"app={name}")
    assert len(pods) == replicas, [p["metadata"]["name"] for p in pods]
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"kubelite/whoami:2.0"}
    replicasets = cluster.kubectl.get_json("rs", "-l", f"app={name}")["items"]
    assert sorted(rs["spec"]["replicas"] for rs in replicasets) == [0, replicas]
    cluster.kubectl.run("delete", "deployment", name)


def test_kubectl_describe_and_drain(cluster):
    cluster.apply(deployment("drained", 3))
    cluster.rollout_status("drained")
    described = cluster.kubectl.run("describe", "deployment", "drained").stdout
    expected = (
        "3 desired | 3 updated | 3 total | 3 available | 0 unavailable",
        "StrategyType:           RollingUpdate",
        "RollingUpdateStrategy:  25% max unavailable, 25% max surge",
        "NewReplicaSet:",
        "ScalingReplicaSet",
    )
    for line in expected:
        assert line in described, described
    node = cluster.live_pods("app=drained")[0]["spec"]["nodeName"]
    on_node = {
        p["metadata"]["name"] for p in cluster.live_pods("app=drained") if p["spec"]["nodeName"] == node
    }
    drained = cluster.kubectl.run("drain", node, "--ignore-daemonsets", "--timeout=60s", timeout=90)
    assert f"node/{node} drained" in drained.stdout, drained.stdout + drained.stderr
    for name in on_node:
        assert f"pod/{name} evicted" in drained.stdout, drained.stdout
    try:
        assert cluster.kubectl.get_json("node", node)["spec"].get("unschedulable") is True
        wait_until(lambda: len(cluster.live_pods("app=drained")) == 3, "replacements for the evicted pods")
        assert all(p["spec"].get("nodeName") != node for p in cluster.live_pods("app=drained")), (
            "none on the drained node"
        )
    finally:
        cluster.kubectl.run("uncordon", node)
        cluster.kubectl.run("delete", "deployment", "drained")
