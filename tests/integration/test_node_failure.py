"""A node that dies, on real processes: etcdlite, the apiserver (default tolerations of 5 s), the
scheduler, the controller-manager (grace 6 s, checked every second) and two hollow-node processes
(real kubelets on the fake runtime), driven by the real kubectl.

One hollow node's process is stopped: its node goes Ready=Unknown with the unreachable taints, its
Deployment pods are evicted (TaintManagerEviction) once their toleration runs out and recreated on
the other node within grace + toleration (+ slack), pod GC removes the dead pods the silent kubelet
never finishes, and the Deployment counts its replacements. Started again, the node is cleared.
The measured timings are printed (run with -s to see them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.conftest import ControlPlane, hollow_cluster
from tests.support import Kubectl, Process, wait_until

GRACE = 6.0  # --node-monitor-grace-period
PERIOD = 1.0  # --node-monitor-period
TOLERATION = 5.0  # --default-unreachable-toleration-seconds
SLACK = 10.0  # scheduling, the hollow kubelet's start-up, polling
REPLICAS = 4
DEAD, ALIVE = "hollow-a-0", "hollow-b-0"
UNREACHABLE = "node.kubernetes.io/unreachable"


@dataclass
class NodeFailure:
    cp: ControlPlane
    kubectl: Kubectl
    nodes: dict[str, Process] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    stopped_at: float = 0.0
    evicted: set[str] = field(default_factory=set)

    def start_node(self, prefix: str) -> Process:
        proc = self.cp.start(
            "kubelet.hollow",
            ["--master", self.cp.server, "--nodes", "1", "--name-prefix", prefix,
             "--node-status-update-frequency", "1"],
            name=f"{prefix}{len(self.cp.processes)}",
        )  # fmt: skip
        proc.wait_log("starting", timeout=30)
        self.nodes[prefix] = proc
        return proc

    def node(self, name: str) -> dict:
        return self.kubectl.get_json("node", name)

    def pods(self) -> list[dict]:
        return self.kubectl.get_json("pods", "-l", "app=web")["items"]

    def live_pods(self) -> list[dict]:
        return [p for p in self.pods() if not p["metadata"].get("deletionTimestamp")]

    def note(self, what: str, since: float) -> float:
        took = time.monotonic() - since
        self.timings[what] = round(took, 1)
        print(f"node failure: {what}: {took:.1f}s")
        return took


def ready_status(node: dict) -> str:
    return next((c["status"] for c in node["status"].get("conditions") or [] if c["type"] == "Ready"), "")


def taint_keys(node: dict) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}


def running_ready(pod: dict) -> bool:
    conds = pod["status"].get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
    "spec": {
        "replicas": REPLICAS, "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "web", "image": "kubelite/whoami:1.0"}]},
        },
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def failure(tmp_path_factory) -> Iterator[NodeFailure]:
    workdir = tmp_path_factory.mktemp("node-failure")
    seconds = str(int(TOLERATION))
    apiserver_flags = (
        "--default-unreachable-toleration-seconds", seconds,
        "--default-not-ready-toleration-seconds", seconds,
    )  # fmt: skip
    controller_flags = (
        "--node-monitor-grace-period",
        f"{GRACE:.0f}s",
        "--node-monitor-period",
        f"{PERIOD:.0f}s",
    )
    # each node is a hollow-node process of its own, so that one can be stopped alone
    with hollow_cluster(workdir, nodes=0, controller_args=None, apiserver_args=apiserver_flags) as h:
        scenario = NodeFailure(h.cp, h.kubectl)
        scenario.start_node("hollow-a-")
        scenario.start_node("hollow-b-")
        h.start_controller_manager(*controller_flags, name="controller-manager")
        wait_until(
            lambda: {n["metadata"]["name"] for n in scenario.kubectl.get_json("nodes")["items"]
                     if ready_status(n) == "True"} == {DEAD, ALIVE},
            "both hollow nodes Ready", timeout=30,
        )  # fmt: skip
        yield scenario


def test_pods_get_the_default_tolerations_from_the_apiserver_flags(failure):
    failure.kubectl.run("apply", "-f", "-", input=json.dumps(DEPLOYMENT))
    wait_until(
        lambda: len([p for p in failure.live_pods() if running_ready(p)]) == REPLICAS,
        f"{REPLICAS} web pods Running and Ready", timeout=60,
    )  # fmt: skip
    pods = failure.live_pods()
    tolerations = pods[0]["spec"]["tolerations"]
    assert {(t["key"], t["effect"], t.get("tolerationSeconds")) for t in tolerations} == {
        ("node.kubernetes.io/not-ready", "NoExecute", int(TOLERATION)),
        (UNREACHABLE, "NoExecute", int(TOLERATION)),
    }
    on_dead = {p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] == DEAD}
    assert on_dead, f"the scheduler spread the pods over both nodes: {[p['spec']['nodeName'] for p in pods]}"
    failure.evicted = on_dead


def test_a_stopped_node_is_tainted_and_its_pods_are_recreated_on_the_other_node(failure):
    assert failure.evicted, "needs the Deployment of the first test"
    failure.stopped_at = time.monotonic()
    failure.nodes["hollow-a-"].stop_cleanly()

    def unreachable() -> dict | None:
        node = failure.node(DEAD)
        return (
            node
            if ready_status(node) == "Unknown" and (UNREACHABLE, "NoExecute") in taint_keys(node)
            else None
        )

    node = wait_until(unreachable, f"{DEAD} Ready=Unknown with the unreachable taint", timeout=GRACE + 10)
    took = failure.note("stop -> Ready=Unknown + unreachable taint", failure.stopped_at)
    assert took >= GRACE - 2, "not before the grace period (less the last heartbeat's age)"
    assert taint_keys(node) >= {(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")}
    assert all(t.get("timeAdded") for t in node["spec"]["taints"])

    def replaced() -> bool:
        live = failure.live_pods()
        return len(live) == REPLICAS and all(
            p["spec"].get("nodeName") == ALIVE and running_ready(p) for p in live
        )

    budget = GRACE + PERIOD + TOLERATION + SLACK
    wait_until(replaced, f"{REPLICAS} live web pods Ready on {ALIVE}", timeout=budget)
    took = failure.note("stop -> all pods Running and Ready on the other node", failure.stopped_at)
    assert took >= GRACE + TOLERATION - 3, "the pods stayed for their tolerationSeconds"
    events = failure.kubectl.get_json("events", "--field-selector", "reason=TaintManagerEviction")["items"]
    messages = {e["message"] for e in events}
    assert {f"Marking for deletion Pod default/{name}" for name in failure.evicted} <= messages


def test_the_dead_nodes_pods_disappear_and_the_deployment_counts_the_replacements(failure):
    def gone() -> bool:
        return not any(p["metadata"]["name"] in failure.evicted for p in failure.pods())

    wait_until(gone, "pod GC to remove the evicted pods the dead kubelet cannot finish", timeout=40)
    failure.note("stop -> evicted pods gone (pod GC)", failure.stopped_at)
    status = failure.kubectl.get_json("deployment", "web")["status"]
    assert (status.get("replicas"), status.get("readyReplicas"), status.get("availableReplicas")) == (
        REPLICAS, REPLICAS, REPLICAS,
    )  # fmt: skip


def test_a_returning_node_is_cleared(failure):
    started = time.monotonic()
    failure.start_node("hollow-a-")

    def cleared() -> bool:
        node = failure.node(DEAD)
        return ready_status(node) == "True" and not taint_keys(node)

    wait_until(cleared, f"{DEAD} Ready=True with no taints", timeout=30)
    failure.note("restart -> Ready=True, taints removed", started)
    assert len(failure.live_pods()) == REPLICAS, "nothing moves back: the Deployment is already whole"
