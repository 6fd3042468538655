"""`kubectl drain` with PodDisruptionBudgets, on hollow nodes with the real kubectl, scheduler and
controller-manager: drain cordons the node, evicts its pods through `pods/eviction` (their
Deployment recreates them on the other node), leaves DaemonSet pods with `--ignore-daemonsets`, and
waits (retrying every 5 s) while a budget would be broken, until scaling up lets it finish. Also
the PDB kind as kubectl shows it, and a PDB with both bounds refused with 422.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import HollowCluster, hollow_cluster
from tests.support import wait_until

NODES = 2
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pdb.yaml"


class Cluster(HollowCluster):
    def ready_on(self, selector: str) -> dict[str, str]:
        """pod name -> node of the selected pods that are Ready and not being deleted."""
        return {
            p["metadata"]["name"]: p["spec"].get("nodeName", "")
            for p in self.live_pods(selector)
            if any(
                c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or []
            )
        }

    def budget(self, name: str) -> dict:
        return self.kubectl.get_json("pdb", name)["status"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    # the DaemonSet of this test is a hand-made one (its pod placed by the test), so that what is
    # checked here is drain, not the DaemonSet controller
    with hollow_cluster(
        tmp_path_factory.mktemp("drain"),
        nodes=NODES,
        controller_args=["--controllers", "*,-daemonset"],
        cluster_type=Cluster,
    ) as c:
        yield c


def test_drain_waits_for_the_budget_leaves_daemonset_pods_and_finishes_after_scaling(cluster):
    kubectl = cluster.kubectl
    kubectl.run("apply", "-f", str(EXAMPLE))
    kubectl.run("scale", "deployment/web", "--replicas=2")
    wait_until(lambda: len(cluster.ready_on("app=web")) == 2, "2 ready web pods", timeout=60)
    node = sorted(cluster.ready_on("app=web").values())[0]
    other = next(
        n["metadata"]["name"] for n in kubectl.get_json("nodes")["items"] if n["metadata"]["name"] != node
    )
    ds = {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"containers": [{"name": "a", "image": "kubelite/whoami:1.0"}]}}},
    }  # fmt: skip
    kubectl.run("apply", "-f", "-", input=json.dumps(ds))
    uid = kubectl.get_json("daemonset", "agent")["metadata"]["uid"]
    agent = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "agent-on-node", "labels": {"app": "agent"}, "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": uid, "controller": True}]},
        "spec": {"nodeName": node, "containers": [{"name": "a", "image": "kubelite/whoami:1.0"}]},
    }  # fmt: skip
    kubectl.run("apply", "-f", "-", input=json.dumps(agent))
    wait_until(
        lambda: cluster.ready_on("app=agent") == {"agent-on-node": node}, "the agent pod ready", timeout=30
    )
    wait_until(
        lambda: (s := cluster.budget("web"))["currentHealthy"] == 2 and s["disruptionsAllowed"] == 0
        and s["expectedPods"] == 2 and s.get("observedGeneration") == 1,
        "the budget to count 2 healthy pods and allow no disruption", timeout=30,
    )  # fmt: skip
    table = kubectl.run("get", "pdb", "web").stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "MIN",
        "AVAILABLE",
        "MAX",
        "UNAVAILABLE",
        "ALLOWED",
        "DISRUPTIONS",
        "AGE",
    ]
    assert table[1].split()[:4] == ["web", "2", "N/A", "0"]

    refused = kubectl.run("drain", node, "--timeout=10s", check=False)
    assert refused.returncode != 0
    assert f"node/{node} cordoned" in refused.stdout
    assert (
        "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/agent-on-node"
        in refused.stderr
    ), refused.stderr
    blocked = kubectl.run("drain", node, "--ignore-daemonsets", "--timeout=12s", check=False, timeout=60)
    assert blocked.returncode != 0, blocked.stdout
    assert f"node/{node} already cordoned" in blocked.stdout
    assert "Warning: ignoring DaemonSet-managed Pods: default/agent-on-node" in blocked.stderr
    assert (
        "(will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget."
        in blocked.stderr
    )
    assert "global timeout reached: 12s" in blocked.stderr
    assert kubectl.get_json("node", node)["spec"].get("unschedulable") is True
    assert sorted(cluster.ready_on("app=web").values()).count(node) >= 1, "no web pod left the node"

    kubectl.run("scale", "deployment/web", "--replicas=3")
    wait_until(lambda: cluster.budget("web")["disruptionsAllowed"] >= 1, "the budget to allow one disruption",
               timeout=60)  # fmt: skip
    drained = kubectl.run("drain", node, "--ignore-daemonsets", "--timeout=90s", timeout=120)
    assert f"node/{node} drained" in drained.stdout, drained.stdout + drained.stderr
    assert "evicting pod default/web-" in drained.stdout
    wait_until(
        lambda: sorted(cluster.ready_on("app=web").values()) == [other] * 3,
        "the Deployment's 3 pods ready on the other node", timeout=60,
    )  # fmt: skip
    assert cluster.ready_on("app=agent") == {"agent-on-node": node}, "the DaemonSet pod stays"
    kubectl.run("uncordon", node)


def test_pdb_create_describe_and_a_budget_with_both_bounds_is_refused(cluster):
    kubectl = cluster.kubectl
    created = kubectl.run("create", "pdb", "api", "--selector=app=api", "--min-available=50%")
    assert created.stdout.strip() == "poddisruptionbudget.policy/api created"
    wait_until(
        lambda: cluster.budget("api").get("observedGeneration") == 1, "the controller to see it", timeout=30
    )
    described = kubectl.run("describe", "pdb", "api").stdout
    for line in ("Name:", "Min available:  50%", "Selector:       app=api", "Allowed disruptions:  0"):
        assert line in described, described

    bad = {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "bad"},
        "spec": {"minAvailable": 1, "maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    }  # fmt: skip
    refused = kubectl.run("apply", "-f", "-", input=json.dumps(bad), check=False)
    assert refused.returncode == 1
    assert 'The PodDisruptionBudget "bad" is invalid: spec: Invalid value: ' in refused.stderr, refused.stderr
    assert "minAvailable and maxUnavailable cannot be both set" in refused.stderr
    missing = kubectl.run("get", "pdb", "bad", check=False)
    assert 'poddisruptionbudgets.policy "bad" not found' in missing.stderr
