"""Fixtures shared by every test directory.

Tests never touch the user's kubeconfig or kubectl cache, and they fail, never skip, when
Docker or a real client is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import Process, free_port, http_ok, wait_until


@pytest.fixture(scope="session", autouse=True)
def isolated_kube_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("kube-home")
    old = {k: os.environ.get(k) for k in ("KUBECONFIG", "KUBECACHEDIR", "KUBELITE_STATE")}
    os.environ["KUBECONFIG"] = str(home / "config")
    os.environ["KUBECACHEDIR"] = str(home / "cache")
    os.environ["KUBELITE_STATE"] = str(home / "state")
    yield home
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def docker_client():
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        pytest.fail(f"these tests need a running Docker Engine: {exc}")
    return client


@pytest.fixture(scope="session")
def images(docker_client):
    """Every image the cluster and the tests use, built locally (seconds when they exist)."""
    from kubelite.images import build_images

    return build_images()


class ControlPlane:
    """etcdlite and the apiserver as real processes on free loopback ports."""

    def __init__(self, workdir: Path, node_port_range: str = "30000-32767"):
        self.etcd_port = free_port()
        self.api_port = free_port()
        self.etcd = f"http://127.0.0.1:{self.etcd_port}"
        self.server = f"http://127.0.0.1:{self.api_port}"
        logs = workdir / "logs"
        self.processes: list[Process] = []
        self.processes.append(
            Process(
                "etcdlite",
                ["--name", "etcd-1", "--data-dir", str(workdir / "etcd"), "--listen-client-urls", self.etcd,
                 "--advertise-client-urls", self.etcd],
                logs,
            )
        )  # fmt: skip
        self.processes.append(
            Process(
                "apiserver",
                ["--etcd-servers", self.etcd, "--bind-address", "127.0.0.1",
                 "--secure-port", str(self.api_port), "--service-node-port-range", node_port_range],
                logs,
            )
        )  # fmt: skip
        self.logs = logs

    def wait_ready(self, timeout: float = 30) -> None:
        def ready() -> bool:
            for p in self.processes:
                p.assert_running()
            return http_ok(self.server + "/readyz")

        wait_until(ready, f"apiserver {self.server}/readyz", timeout)

    def start(self, module: str, args: list[str], name: str | None = None) -> Process:
        proc = Process(module, args, self.logs, name)
        self.processes.append(proc)
        return proc

    def stop(self) -> dict[str, int]:
        return {p.name: p.stop() for p in reversed(self.processes)}


@pytest.fixture
def control_plane(tmp_path):
    cp = ControlPlane(tmp_path)
    try:
        cp.wait_ready()
        yield cp
    finally:
        codes = cp.stop()
    assert all(code == 0 for code in codes.values()), f"processes did not stop cleanly on SIGTERM: {codes}"
