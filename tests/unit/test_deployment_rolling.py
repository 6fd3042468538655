"""Rolling updates driven to completion by the Deployment controller, the ReplicaSet controller and a
played kubelet, with availability and surge checked on pods after every single sync."""

from __future__ import annotations

import pytest

from controller.deployment.util import resolve_fenceposts
from tests.unit.test_deployment_harness import Cluster, deployment

SETTINGS = [
    ("25%", "25%"),  # Kubernetes' defaults: surge 3 (rounded up), unavailable 2 (rounded down)
    (1, 0),
    (0, 1),
    (3, 2),
    ("50%", "10%"),
    ("0%", "30%"),
    ("10%", "0%"),
    (10, 10),
]


@pytest.mark.parametrize(("surge", "unavailable"), SETTINGS)
def test_rolling_update_of_ten_replicas_keeps_availability_and_surge_at_every_step(surge, unavailable):
    c = Cluster()
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}
    c.create(deployment(replicas=10, strategy=strategy))
    c.roll()
    max_surge, max_unavailable = resolve_fenceposts(surge, unavailable, 10)
    seen = {"max_pods": 0, "min_available": 10}

    def check():
        pods = c.pods(app="web")
        available = c.available(app="web")
        seen["max_pods"] = max(seen["max_pods"], len(pods))
        seen["min_available"] = min(seen["min_available"], available)
        assert len(pods) <= 10 + max_surge, f"{len(pods)} pods with maxSurge {surge}"
        assert available >= 10 - max_unavailable, f"{available} available with maxUnavailable {unavailable}"

    c.set_image("nginx:1.26")
    c.roll(check)
    old, new = c.replicasets()
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 10)
    pods = c.pods(app="web")
    assert len(pods) == 10
    assert {p["metadata"]["labels"]["pod-template-hash"] for p in pods} == {
        new["metadata"]["labels"]["pod-template-hash"]
    }
    assert all(p["spec"]["containers"][0]["image"] == "nginx:1.26" for p in pods)
    # the limits were used, not just respected
    assert seen["max_pods"] == 10 + max_surge
    assert seen["min_available"] == 10 - max_unavailable


def test_scaling_in_the_middle_of_a_rollout_is_proportional():
    c = Cluster()
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}
    c.create(deployment(replicas=10, strategy=strategy))
    c.roll()
    c.stall_rollout()
    old, new = c.replicasets()
    # Kubernetes' own example: 13 pods allowed; 8 old (2 unavailable allowed) and 5 new, never ready
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (8, 5)
    assert c.available(app="web") == 8

    c.scale(15)  # 18 pods allowed now: shared 8:5
    c.sync()
    old, new = c.replicasets()
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (11, 7)
    for rs in (old, new):
        ann = rs["metadata"]["annotations"]
        assert (
            ann["deployment.kubernetes.io/desired-replicas"],
            ann["deployment.kubernetes.io/max-replicas"],
        ) == (
            "15",
            "18",
        )
    assert c.events("ScalingReplicaSet")[-2:] == [
        f"Scaled up replica set {old['metadata']['name']} from 8 to 11",
        f"Scaled up replica set {new['metadata']['name']} from 5 to 7",
    ]

    c.scale(10)  # and back: the larger, older one first
    c.sync()
    old, new = c.replicasets()
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (8, 5)

    c.undo()  # give up on the broken template: the old ReplicaSet is the new one again
    c.roll()
    broken, rolled_back = c.replicasets()  # by revision: the rolled back one is 3
    assert (rolled_back["spec"]["replicas"], broken["spec"]["replicas"]) == (10, 0)
    assert rolled_back["metadata"]["name"] == old["metadata"]["name"]


def test_a_stuck_rollout_never_costs_more_availability_than_allowed():
    c = Cluster()
    c.create(deployment(replicas=4))  # 25%: surge 1, unavailable 1
    c.roll()

    def check():
        assert len(c.pods(app="web")) <= 5
        assert c.available(app="web") >= 3

    c.stall_rollout(check=check)
    old, new = c.replicasets()
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (3, 2)
    assert c.available(app="web") == 3
    assert c.status_line()[0].endswith("2 out of 4 new replicas have been updated...")


def test_a_new_template_in_the_middle_of_a_rollout_rolls_over_to_a_third_replica_set():
    c = Cluster()
    c.create(deployment(replicas=4))
    c.roll()
    c.stall_rollout()
    c.set_image("nginx:1.27")
    c.roll()
    first, broken, third = c.replicasets()
    assert [rs["spec"]["replicas"] for rs in (first, broken, third)] == [0, 0, 4]
    assert {p["spec"]["containers"][0]["image"] for p in c.pods(app="web")} == {"nginx:1.27"}
