"""DaemonSets run by the real controller-manager, scheduler and apiserver on hollow nodes, driven by
the real kubectl: the example agent gets one pod on every node, follows a node that joins (a second
hollow-node process), one that is tainted NoExecute and untainted, and one that is deleted; a
`kubectl set image` rolls out node by node within maxUnavailable at every step seen by a watch, and
`kubectl rollout status|history|undo` work on the ControllerRevisions the controller keeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelite.scheduling import target_node_name
from tests.conftest import ControlPlane, hollow_cluster
from tests.support import Kubectl, Process, wait_until
from tests.workloads_support import PodWatch, is_available

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "daemonset.yaml"
NAME = "node-agent"
SELECTOR = "app=node-agent"
FIRST_NODES = {"hollow-0", "hollow-1"}
JOINER = "joiner-0"
V1, V2 = "kubelite/whoami:1.0", "kubelite/whoami:2.0"


class DaemonCluster:
    def __init__(self, cp: ControlPlane, kubectl: Kubectl):
        self.cp = cp
        self.kubectl = kubectl
        self.joiner: Process | None = None

    def live_pods(self) -> list[dict]:
        pods = self.kubectl.get_json("pods", "-l", SELECTOR)["items"]
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")]

    def status(self) -> dict:
        return dict(self.kubectl.get_json("ds", NAME).get("status") or {})

    def rollout_status(self) -> str:
        return str(self.kubectl.run("rollout", "status", f"ds/{NAME}", "--timeout=90s", timeout=120).stdout)


def settled(cluster: DaemonCluster, nodes: set[str], image: str = V1) -> bool:
    """One available pod of image on each of the nodes, no other pod, and a status that says so."""
    pods = cluster.live_pods()
    placed = sorted(p["spec"].get("nodeName") or "" for p in pods)
    if placed != sorted(nodes) or not all(is_available(p) for p in pods):
        return False
    if any(p["spec"]["containers"][0]["image"] != image for p in pods):
        return False
    st = cluster.status()
    counts = ("desiredNumberScheduled", "currentNumberScheduled", "numberReady", "updatedNumberScheduled")
    return all(st.get(c) == len(nodes) for c in counts) and st.get("numberAvailable") == len(nodes)


def describe(cluster: DaemonCluster) -> str:
    pods = {p["metadata"]["name"]: (p["spec"].get("nodeName"), is_available(p)) for p in cluster.live_pods()}
    return f"pods {pods}, status {cluster.status()}"


def wait_settled(cluster: DaemonCluster, nodes: set[str], image: str = V1) -> None:
    wait_until(
        lambda: settled(cluster, nodes, image),
        f"one available {image} pod on each of {sorted(nodes)}",
        timeout=60,
        seen=lambda: describe(cluster),
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[DaemonCluster]:
    with hollow_cluster(tmp_path_factory.mktemp("daemonsets"), nodes=2) as h:
        yield DaemonCluster(h.cp, h.kubectl)


def test_the_example_runs_one_pod_per_node_and_follows_a_node_that_joins(cluster):
    cluster.kubectl.run("apply", "-f", str(EXAMPLE))
    wait_settled(cluster, FIRST_NODES)
    assert cluster.rollout_status() == f'daemon set "{NAME}" successfully rolled out\n'
    table = cluster.kubectl.run("get", "ds", NAME).stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "DESIRED",
        "CURRENT",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "NODE",
        "SELECTOR",
        "AGE",
    ]
    assert table[1].split()[:7] == [NAME, "2", "2", "2", "2", "2", "<none>"]
    described = cluster.kubectl.run("describe", "ds", NAME).stdout
    assert "Desired Number of Nodes Scheduled: 2" in described
    assert "2 Running / 0 Waiting / 0 Succeeded / 0 Failed" in described
    assert "SuccessfulCreate" in described and "Created pod: node-agent-" in described
    for pod in cluster.live_pods():  # placed by the scheduler on the node the controller named
        assert target_node_name({"spec": {**pod["spec"], "nodeName": ""}}) == pod["spec"]["nodeName"]
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"

    import kubernetes

    config = kubernetes.client.Configuration()
    config.host = cluster.cp.server
    apps = kubernetes.client.AppsV1Api(kubernetes.client.ApiClient(config))
    read = apps.read_namespaced_daemon_set(NAME, "default")  # the strict client takes our shapes
    assert (
        read.status.desired_number_scheduled == 2 and read.spec.update_strategy.rolling_update.max_surge == 0
    )
    revisions = apps.list_namespaced_controller_revision("default").items
    assert [(r.revision, r.metadata.owner_references[0].name) for r in revisions] == [(1, NAME)]

    cluster.joiner = cluster.cp.start(
        "kubelet.hollow",
        ["--master", cluster.cp.server, "--nodes", "1", "--name-prefix", "joiner-"],
        name="joiner",
    )
    wait_settled(cluster, FIRST_NODES | {JOINER})


def test_a_tainted_node_loses_its_pod_until_the_taint_goes(cluster):
    cluster.kubectl.run("taint", "nodes", "hollow-1", "dedicated=db:NoExecute")
    wait_settled(cluster, {"hollow-0", JOINER})
    cluster.kubectl.run("taint", "nodes", "hollow-1", "dedicated=db:NoExecute-")
    wait_settled(cluster, FIRST_NODES | {JOINER})


def test_a_rollout_replaces_pods_node_by_node_and_can_be_undone(cluster):
    nodes = FIRST_NODES | {JOINER}
    with PodWatch(cluster.cp.server, SELECTOR) as watched:
        cluster.kubectl.run("set", "image", f"ds/{NAME}", f"agent={V2}")
        assert "successfully rolled out" in cluster.rollout_status()
        wait_until(
            lambda: (
                len(watched.pods) == 3
                and all(p["spec"]["containers"][0]["image"] == V2 for p in watched.pods.values())
            ),
            "the watch to see only the new pods",
            timeout=30,
        )
    mixed = 0
    for state in watched.states:
        serving = {target_node_name(p) for p in state.values() if is_available(p)}
        assert len(nodes - serving) <= 1, (
            f"more than maxUnavailable (1) nodes without an available pod: {state}"
        )
        images = {p["spec"]["containers"][0]["image"] for p in state.values() if is_available(p)}
        mixed += images == {V1, V2}
    assert mixed, "old and new pods served side by side: the rollout went node by node"
    wait_settled(cluster, nodes, V2)

    history = cluster.kubectl.run("rollout", "history", f"ds/{NAME}").stdout
    assert history.split()[:4] == ["daemonset.apps/node-agent", "REVISION", "CHANGE-CAUSE", "1"]
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    revision_1 = cluster.kubectl.run("rollout", "history", f"ds/{NAME}", "--revision=1").stdout
    assert V1 in revision_1 and V2 not in revision_1

    undone = cluster.kubectl.run("rollout", "undo", f"ds/{NAME}").stdout
    assert undone == f"daemonset.apps/{NAME} rolled back\n"
    wait_settled(cluster, nodes, V1)
    assert "successfully rolled out" in cluster.rollout_status()
    history = cluster.kubectl.run("rollout", "history", f"ds/{NAME}").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"]
    revisions = cluster.kubectl.run("get", "controllerrevisions").stdout.splitlines()
    assert revisions[0].split() == ["NAME", "CONTROLLER", "REVISION", "AGE"]
    assert sorted(r.split()[1:3] for r in revisions[1:]) == [
        ["daemonset.apps/node-agent", "2"],
        ["daemonset.apps/node-agent", "3"],
    ]


def test_a_deleted_node_leaves_the_daemonset(cluster):
    assert cluster.joiner is not None, "the node that joined is still there"
    cluster.joiner.stop()
    cluster.kubectl.run("delete", "node", JOINER)

    def shrunk() -> bool:
        st = cluster.status()
        return st.get("desiredNumberScheduled") == 2 and st.get("numberAvailable") == 2

    wait_until(
        shrunk, "the DaemonSet to count the two remaining nodes", timeout=30, seen=lambda: describe(cluster)
    )
    row = cluster.kubectl.run("get", "ds", NAME, "--no-headers").stdout.split()
    assert row[:6] == [NAME, "2", "2", "2", "2", "2"]
    on_nodes = sorted(
        p["spec"].get("nodeName") for p in cluster.live_pods() if p["spec"].get("nodeName") != JOINER
    )
    assert on_nodes == sorted(FIRST_NODES)  # the pod left bound to the deleted node is pod GC's
