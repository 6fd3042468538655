"""Two controller-managers electing a leader on the Lease kube-system/kube-controller-manager, as
real processes on hollow nodes, driven by the real kubectl: only one leads and acts; SIGTERM hands
the Lease over at once; SIGKILL during a Deployment rollout and during a Job hands it over within
the lease duration, and the work completes with no pod duplicated or lost; a leader cut off from
the apiserver past its renew deadline exits 1 ("leaderelection lost") and the standby takes over.

The managers run with short leases (8 s lease, 5 s renew deadline, 1 s retry) so that waiting out
a lease (SIGKILL) and a clean hand-over (SIGTERM) are far enough apart to tell.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import time
from collections.abc import Iterator, Sequence

import pytest

from tests.conftest import ControlPlane, HollowCluster, hollow_cluster
from tests.support import Kubectl, Process, free_port, http_get, wait_until
from tests.workloads_support import PodWatch, deployment, is_available

NODES = 3
LEASE, RENEW, RETRY = 8.0, 5.0, 1.0
JITTER = 1.2  # client-go's JitterFactor: a standby retries every RETRY .. RETRY * (1 + JITTER)
ACQUIRED = "successfully acquired lease kube-system/kube-controller-manager"
ATTEMPTING = "attempting to acquire leader lease kube-system/kube-controller-manager..."


class Failover(HollowCluster):
    """The control plane, scheduler, hollow nodes and the controller-managers started so far."""

    def __init__(self, cp: ControlPlane, kubectl: Kubectl, controller_args: Sequence[str] = ()):
        super().__init__(cp, kubectl, controller_args)
        self.managers: list[Process] = []
        self.healthz: dict[str, str] = {}  # manager name -> its /healthz URL

    def start_manager(self) -> Process:
        """A controller-manager with leader election on and short leases; it waits as a standby
        until it has logged that it is trying for the Lease."""
        port = free_port()
        manager = self.start_controller_manager(
            "--node-monitor-grace-period", "60s", "--leader-elect-lease-duration", f"{LEASE:g}s",
            "--leader-elect-renew-deadline", f"{RENEW:g}s", "--leader-elect-retry-period", f"{RETRY:g}s",
            "--bind-address", "127.0.0.1", "--secure-port", str(port),
            name=f"controller-manager-{len(self.managers) + 1}", ready=ATTEMPTING,
        )  # fmt: skip
        self.managers.append(manager)
        self.healthz[manager.name] = f"http://127.0.0.1:{port}/healthz"
        return manager

    def running(self) -> list[Process]:
        return [m for m in self.managers if m.running()]

    def leader(self, timeout: float = 30) -> Process:
        """The one running manager that has acquired the Lease (failing if two ever say so)."""

        def leading() -> Process | None:
            leaders = [m for m in self.running() if ACQUIRED in m.log_path.read_text(errors="replace")]
            assert len(leaders) <= 1, f"two leaders at once: {[m.name for m in leaders]}"
            return leaders[0] if leaders else None

        return wait_until(leading, "one controller-manager to lead", timeout)

    def standby(self) -> Process:
        leader = self.leader()
        (other,) = [m for m in self.running() if m is not leader]
        return other

    def lease(self) -> dict:
        return self.kubectl.get_json("lease", "-n", "kube-system", "kube-controller-manager")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Failover]:
    workdir = tmp_path_factory.mktemp("failover")
    with hollow_cluster(workdir, nodes=NODES, controller_args=None, cluster_type=Failover) as f:
        f.start_manager()
        f.start_manager()
        yield f


def micro(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def log_of(manager: Process) -> str:
    return manager.log_path.read_text(errors="replace")


def test_only_one_controller_manager_leads_and_acts(cluster):
    leader, standby = cluster.leader(), cluster.standby()
    spec = cluster.lease()["spec"]
    host, _, uid = spec["holderIdentity"].partition("_")
    assert host and len(uid) == 36, f"identity <hostname>_<uuid>: {spec['holderIdentity']}"
    assert spec["leaseDurationSeconds"] == int(LEASE)
    assert {"acquireTime", "renewTime", "leaseTransitions"} <= set(spec), spec
    events = cluster.kubectl.get_json("events", "-n", "kube-system")["items"]
    became = [e["message"] for e in events if e["reason"] == "LeaderElection"]
    assert f"{spec['holderIdentity']} became leader" in became, became
    table = cluster.kubectl.run("get", "lease", "-n", "kube-system").stdout
    assert "kube-controller-manager" in table and spec["holderIdentity"] in table, table

    cluster.apply(deployment("acts", 2))
    cluster.kubectl.run("rollout", "status", "deployment/acts", "--timeout=60s", timeout=90)
    assert "caches synced" in log_of(leader)
    assert "caches synced" not in log_of(standby), "a standby starts no informer and no controller"
    assert ACQUIRED not in log_of(standby)
    for manager in (leader, standby):  # a standby answers /healthz as the leader does
        assert http_get(cluster.healthz[manager.name]) == "ok"
        verbose = http_get(cluster.healthz[manager.name] + "?verbose")
        assert verbose == "[+]ping ok\n[+]leaderElection ok\nhealthz check passed\n", verbose
    cluster.kubectl.run("delete", "deployment", "acts")


def test_sigterm_hands_the_lease_over_at_once(cluster):
    leader, standby = cluster.leader(), cluster.standby()
    before = cluster.lease()["spec"]
    sent = time.monotonic()
    leader.stop_cleanly()  # SIGTERM: the controllers stop, then the Lease is released; exit 0
    assert "released lease kube-system/kube-controller-manager" in log_of(leader)
    standby.wait_log(ACQUIRED, timeout=LEASE * 2)
    took = time.monotonic() - sent
    # waiting out the lease would take at least LEASE - RETRY after the leader's last renewal
    assert took < LEASE - RETRY - 1, f"the standby took {took:.1f}s: it waited out the lease"
    after = cluster.lease()["spec"]
    assert after["holderIdentity"] != before["holderIdentity"]
    assert after["leaseTransitions"] == before["leaseTransitions"] + 1
    standby.wait_log("caches synced", timeout=30)
    cluster.start_manager()  # as a supervisor would: a fresh standby


def test_sigkill_during_a_rollout_hands_over_within_the_lease_and_no_pod_is_lost_or_duplicated(cluster):
    name, replicas = "failover", 8  # 25%: maxSurge 2, maxUnavailable 2
    cluster.apply(deployment(name, replicas, minReadySeconds=1))
    cluster.kubectl.run("rollout", "status", f"deployment/{name}", "--timeout=90s", timeout=120)
    leader, standby = cluster.leader(), cluster.standby()
    with PodWatch(cluster.cp.server, f"app={name}") as watched:
        cluster.kubectl.run("set", "image", f"deployment/{name}", "web=kubelite/whoami:2.0")
        wait_until(
            lambda: cluster.kubectl.get_json("deployment", name)["status"].get("updatedReplicas", 0) >= 2,
            "the rollout under way",
        )
        killed = time.monotonic()
        leader.kill()
        last = cluster.lease()["spec"]  # the dead leader's last renewal
        standby.wait_log(ACQUIRED, timeout=LEASE * 3)
        took = time.monotonic() - killed
        assert took <= LEASE + RETRY * (1 + JITTER) + 1.5, f"the standby took {took:.1f}s to take over"
        now = cluster.lease()["spec"]
        waited = (micro(now["acquireTime"]) - micro(last["renewTime"])).total_seconds()
        assert waited >= LEASE - 0.5, f"the standby took the lease {waited:.1f}s after its last renewal"
        assert now["leaseTransitions"] == last["leaseTransitions"] + 1
        status = cluster.kubectl.run("rollout", "status", f"deployment/{name}", "--timeout=120s", timeout=150)
        assert "successfully rolled out" in status.stdout
        wait_until(
            lambda: len(watched.pods) == replicas and all(
                p["spec"]["containers"][0]["image"] == "kubelite/whoami:2.0" for p in watched.pods.values()),
            "the watch to see only the new pods", timeout=60,
        )  # fmt: skip
    for state in watched.states:
        active = [p for p in state.values() if not p["metadata"].get("deletionTimestamp")]
        assert len(active) <= replicas + 2, f"more than replicas + maxSurge: {sorted(state)}"
        assert len([p for p in active if is_available(p)]) >= replicas - 2, (
            f"below maxUnavailable: {sorted(state)}"
        )
    pods = cluster.live_pods(f"app={name}")
    assert len(pods) == replicas, [p["metadata"]["name"] for p in pods]
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"kubelite/whoami:2.0"}
    replicasets = cluster.kubectl.get_json("rs", "-l", f"app={name}")["items"]
    assert sorted(rs["spec"]["replicas"] for rs in replicasets) == [0, replicas]
    assert sorted(rs["status"].get("replicas", 0) for rs in replicasets) == [0, replicas]
    cluster.kubectl.run("delete", "deployment", name)
    cluster.start_manager()


def job(name: str, completions: int, parallelism: int) -> str:
    body = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {
            "completions": completions, "parallelism": parallelism, "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "work", "image": "kubelite/whoami:1.0",
                                    "command": ["sh", "-c", "sleep 3; exit 0"]}],
                },
            },
        },
    }  # fmt: skip
    return json.dumps(body)


def test_sigkill_during_a_job_hands_over_and_every_completion_runs_exactly_once(cluster):
    """Needs the Job API and controller (batch/v1 jobs) and hollow containers that run to completion."""
    name, completions, parallelism = "failover-job", 6, 2
    leader, standby = cluster.leader(), cluster.standby()
    with PodWatch(cluster.cp.server, f"app={name}") as watched:
        cluster.apply(job(name, completions, parallelism))
        wait_until(
            lambda: cluster.kubectl.get_json("job", name).get("status", {}).get("succeeded", 0) >= 2,
            "two completions of the job", timeout=60,
        )  # fmt: skip
        leader.kill()
        standby.wait_log(ACQUIRED, timeout=LEASE * 3)

        def complete() -> bool:
            status = cluster.kubectl.get_json("job", name).get("status", {})
            return any(
                c["type"] == "Complete" and c["status"] == "True" for c in status.get("conditions") or []
            )

        wait_until(complete, f"job {name} Complete", timeout=90)
        wait_until(
            lambda: [p.get("status", {}).get("phase") for p in watched.pods.values()].count("Succeeded")
            >= completions,
            "the watch to see every completion", timeout=30,
        )  # fmt: skip
    status = cluster.kubectl.get_json("job", name)["status"]
    assert status["succeeded"] == completions and not status.get("failed"), status
    pods = cluster.kubectl.get_json("pods", "-l", f"app={name}")["items"]
    phases = sorted(p["status"].get("phase") for p in pods)
    assert phases == ["Succeeded"] * completions, f"one pod per completion, none duplicated: {phases}"
    for state in watched.states:
        running = [
            p for p in state.values()
            if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")
        ]  # fmt: skip
        assert len(running) <= parallelism, f"more than parallelism {parallelism} active: {sorted(state)}"
    cluster.kubectl.run("delete", "job", name)
    cluster.start_manager()


def test_a_leader_cut_off_past_its_renew_deadline_exits_1_and_the_standby_takes_over(cluster):
    leader, standby = cluster.leader(), cluster.standby()
    apiserver = next(p for p in cluster.cp.processes if p.name == "apiserver")
    os.kill(apiserver.proc.pid, signal.SIGSTOP)  # the leader's renewals go unanswered
    try:
        wait_until(lambda: not leader.running(), "the leader to give up", timeout=RETRY + RENEW + 5)
    finally:
        os.kill(apiserver.proc.pid, signal.SIGCONT)
    leader.killed = True  # it exited as it must; the teardown is not to count it as a crash
    log = log_of(leader)
    assert leader.proc.returncode == 1, log[-2000:]
    assert "failed to renew lease kube-system/kube-controller-manager" in log
    assert "leaderelection lost" in log and "exiting with status 1" in log
    standby.wait_log(ACQUIRED, timeout=LEASE * 3)
    cluster.apply(deployment("after-loss", 2))
    cluster.kubectl.run("rollout", "status", "deployment/after-loss", "--timeout=60s", timeout=90)
    cluster.kubectl.run("delete", "deployment", "after-loss")
