"""Whole clusters for the end-to-end tests, brought up and down with the `kubelite` command exactly
as a user does (`kubelite up` / `kubelite compose up`), each on its own addresses and ports.

Teardown is part of the test: `down` must find every component still running and see each one exit
cleanly on SIGTERM, or the test fails naming the component, with the tail of its log; nothing the
cluster made (containers, the network) may be left behind.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import signal
import subprocess
import sys
import time

from kubelite.compose import PROJECT_LABEL, SERVICE_LABEL
from kubelite.localcluster import CLUSTER_LABEL, LocalCluster
from tests.support import env_with, free_loopback_base, free_port

KINDS = ["local", "compose"]


def kubelite_cmd(*args: str, env: dict[str, str], timeout: float = 300, check: bool = True):
    cmd = [sys.executable, "-m", "kubelite.cli", *args]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"kubelite {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


class E2ECluster:
    """One cluster of either kind; `down()` runs once and its verdict is kept."""

    def __init__(self, kind: str, docker_client, nodes: int = 2):
        self.kind = kind
        self.docker = docker_client
        self.name = f"kt-{secrets.token_hex(3)}"
        first = free_loopback_base(nodes)
        self.node_addresses = [str(ipaddress.IPv4Address(first) + i) for i in range(nodes)]
        api_port = free_port()
        self.server = f"http://127.0.0.1:{api_port}"
        if kind == "local":
            self.env = env_with()
            etcd_ports = ",".join(str(free_port()) for _ in range(3))
            peer_ports = ",".join(str(free_port()) for _ in range(3))
            self.up_args = ["up", "--name", self.name, "--api-port", str(api_port),
                            "--etcd-ports", etcd_ports, "--etcd-peer-ports", peer_ports,
                            "--first-node-address", first, "--nodes", str(nodes),
                            "--skip-images"]  # fmt: skip
            self.down_args = ["down", "--name", self.name]
        else:
            assert nodes == 2, "compose.yaml has two nodes"
            self.env = env_with(KUBELITE_NETWORK=self.name, KUBELITE_API_PORT=str(api_port),
                                KUBELITE_NODE1_ADDR=self.node_addresses[0],
                                KUBELITE_NODE2_ADDR=self.node_addresses[1])  # fmt: skip
            self.up_args = ["compose", "up", "-p", self.name, "--skip-images"]
            self.down_args = ["compose", "down", "-p", self.name]
        self.up_seconds = 0.0
        self._down: subprocess.CompletedProcess | None = None

    def up(self) -> None:
        started = time.monotonic()
        kubelite_cmd(*self.up_args, env=self.env)
        self.up_seconds = time.monotonic() - started

    def kill(self, component: str) -> None:
        """SIGKILL one component (its process, or its container's main process), as a crash would."""
        if self.kind == "local":
            os.kill(LocalCluster.load(self.name).pids[component], signal.SIGKILL)
            return
        filters = {"label": [f"{PROJECT_LABEL}={self.name}", f"{SERVICE_LABEL}={component}"]}
        [container] = self.docker.containers.list(filters=filters)
        os.kill(container.attrs["State"]["Pid"], signal.SIGKILL)

    def down(self) -> subprocess.CompletedProcess:
        if self._down is None:
            self._down = kubelite_cmd(*self.down_args, env=self.env, check=False)
        return self._down

    def leftovers(self) -> list[str]:
        containers = self.docker.containers.list(all=True, filters={"label": f"{CLUSTER_LABEL}={self.name}"})
        if self.kind == "compose":
            containers += self.docker.containers.list(
                all=True, filters={"label": f"{PROJECT_LABEL}={self.name}"}
            )
        networks = [n.name for n in self.docker.networks.list(names=[self.name]) if n.name == self.name]
        return [c.name for c in containers] + [f"network {n}" for n in networks]

    def down_cleanly(self) -> None:
        """Bring the cluster down; fail naming every component that had died or stopped badly."""
        result = self.down()
        assert result.returncode == 0, (
            f"{self.kind} cluster {self.name}: not every component was running and stopped cleanly:\n"
            f"{result.stdout}\n{result.stderr}"
        )
        assert not self.leftovers(), f"cluster {self.name} left {self.leftovers()}"


def cluster_fixture(kind: str, docker_client, nodes: int = 2):
    """The body of a cluster fixture: up, yield, and a teardown that is an assertion."""
    cluster = E2ECluster(kind, docker_client, nodes)
    try:
        cluster.up()
        print(f"\n[{kind}] cluster up with all nodes Ready in {cluster.up_seconds:.1f}s")
        yield cluster
    finally:
        if cluster._down is None or cluster._down.returncode == 0:
            cluster.down_cleanly()
        else:  # a test took the cluster down on purpose and judged the verdict itself
            assert not cluster.leftovers(), f"cluster {cluster.name} left {cluster.leftovers()}"
