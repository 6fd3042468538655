"""`kubelite compose up|down`: the cluster as containers, through `docker compose`.

Wraps compose.yaml with what compose alone cannot do: build the images first, wait for
Ready nodes, write the kubeconfig, and on the way down remove the pod containers the
kubelets made (they are not compose's) before compose removes the network.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kubelite import kubeconfig
from kubelite.localcluster import ready_nodes, remove_cluster_containers
from kubelite.waiting import wait_for

COMPOSE_FILE = Path(__file__).resolve().parent.parent / "compose.yaml"


@dataclass
class ComposeCluster:
    project: str = "kubelite"
    compose_file: Path = COMPOSE_FILE
    env: dict[str, str] | None = None
    nodes: int = 2

    def _env(self) -> dict[str, str]:
        return {**os.environ, **(self.env or {})}

    @property
    def network(self) -> str:
        return self._env().get("KUBELITE_NETWORK", "kubelite")

    @property
    def server(self) -> str:
        env = self._env()
        return f"http://{env.get('KUBELITE_API_ADDR', '127.0.0.1')}:{env.get('KUBELITE_API_PORT', '6443')}"

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        argv = ["docker", "compose", "-f", str(self.compose_file), "-p", self.project, *args]
        return subprocess.run(argv, env=self._env(), check=check)

    def up(self, log=print, timeout: float = 180) -> None:
        self.compose("up", "-d", "--wait", "--wait-timeout", str(int(timeout)))
        log(f"containers up; waiting for {self.nodes} Ready node(s)")
        wait_for(self._nodes_ready, f"{self.nodes} Ready node(s) at {self.server}", timeout)
        path = kubeconfig.write_context(self.project, self.server)
        log(f"cluster {self.project} is up; kubeconfig context {self.project} in {path}")

    def _nodes_ready(self) -> bool:
        return ready_nodes(self.server) >= self.nodes

    def down(self, log=print) -> None:
        # Stop the kubelets first so they do not start the pods again, then remove the pods,
        # then let compose remove its containers, volumes and the network.
        self.compose("stop", check=False)
        removed = remove_cluster_containers(self.network)
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "5")
        kubeconfig.remove_context(self.project)
        log(f"cluster {self.project} is down ({removed} pod containers removed)")
