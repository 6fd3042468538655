"""Fixtures shared by every test directory.

Tests never touch the user's kubeconfig or kubectl cache, and they fail, never skip, when
Docker or a real client is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support import SUITE_SIZES, Kubectl, Process, http_ok, stop_all, wait_until


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the sizes of the sized tests for .ci/run, which fails a run smaller than the default."""
    report = os.environ.get("KUBELITE_SUITE_REPORT")
    if report:
        Path(report).write_text(json.dumps({**SUITE_SIZES, "exitstatus": int(exitstatus)}))


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
    """etcdlite and the apiserver as real processes, each on a port it bound itself (port 0, read
    back from its log), so no two control planes ever race for a port."""

    def __init__(
        self, workdir: Path, node_port_range: str = "30000-32767", apiserver_args: tuple[str, ...] = ()
    ):
        self.logs = workdir / "logs"
        self.processes: list[Process] = []
        try:
            etcd = self.start(
                "etcdlite",
                ["--name", "etcd-1", "--data-dir", str(workdir / "etcd"),
                 "--listen-client-urls", "http://127.0.0.1:0", "--advertise-client-urls", "http://127.0.0.1:0"],
            )  # fmt: skip
            self.etcd = "http://" + etcd.wait_log_match(r"serving client requests on (\S+:\d+)").group(1)
            apiserver = self.start(
                "apiserver",
                ["--etcd-servers", self.etcd, "--bind-address", "127.0.0.1", "--secure-port", "0",
                 "--service-node-port-range", node_port_range, *apiserver_args],
            )  # fmt: skip
            self.server = apiserver.wait_log_match(r"serving on (http://\S+:\d+)").group(1)
        except BaseException:
            for proc in self.processes:
                proc.kill()
            raise
        self.api_port = int(self.server.rsplit(":", 1)[1])

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

    def close(self) -> None:
        """Stop every process and fail, naming each, unless all were running and exited 0."""
        stop_all(self.processes)


@contextlib.contextmanager
def running_control_plane(workdir: Path, apiserver_args: tuple[str, ...] = ()) -> Iterator[ControlPlane]:
    """A ControlPlane, ready, for the block; closed on the way out (which fails unless every process
    was still running and exited 0), also when the block or the start-up fails. apiserver_args are
    extra apiserver flags."""
    cp = ControlPlane(workdir, apiserver_args=apiserver_args)
    try:
        cp.wait_ready()
        yield cp
    finally:
        cp.close()


class HollowCluster:
    """A control plane with the scheduler, hollow nodes (`python -m kubelet.hollow`: real kubelets
    on the fake runtime) and a controller-manager started with the test module's own flags, driven
    by the real kubectl. Modules subclass it for their own probes."""

    def __init__(self, cp: ControlPlane, kubectl: Kubectl, controller_args: Sequence[str] = ()):
        self.cp = cp
        self.kubectl = kubectl
        self.controller_args = list(controller_args)
        self.controller: Process | None = None

    def start_controller_manager(
        self, *extra: str, name: str | None = None, ready: str = "caches synced", timeout: float = 30
    ) -> Process:
        """A controller-manager with the cluster's flags (plus `extra`), once its caches are synced;
        a restarted one gets a new name."""
        self.controller = self.cp.start(
            "controller",
            ["--master", self.cp.server, *self.controller_args, *extra],
            name=name or f"controller-manager-{len(self.cp.processes)}",
        )
        self.controller.wait_log(ready, timeout=timeout)
        return self.controller

    def apply(self, manifest: str) -> None:
        self.kubectl.run("apply", "-f", "-", input=manifest)

    def pods(self, selector: str) -> list[dict]:
        return list(self.kubectl.get_json("pods", "-l", selector)["items"])

    def live_pods(self, selector: str) -> list[dict]:
        """The selected pods that are not being deleted."""
        return [p for p in self.pods(selector) if not p["metadata"].get("deletionTimestamp")]


@contextlib.contextmanager
def hollow_cluster(
    workdir: Path,
    nodes: int = 3,
    controller_args: Sequence[str] | None = (),
    apiserver_args: tuple[str, ...] = (),
    controller_ready_timeout: float = 30,
    cluster_type: Callable[[ControlPlane, Kubectl, Sequence[str]], Any] = HollowCluster,
) -> Iterator[Any]:
    """A HollowCluster (or `cluster_type`, a subclass) for the block, closed as running_control_plane
    closes it: the scheduler, `nodes` hollow nodes (registered before the block starts), and a
    controller-manager with `controller_args`, none when that is None (the module starts its own)."""
    with running_control_plane(workdir, apiserver_args=apiserver_args) as cp:
        cp.start("scheduler", ["--master", cp.server])
        if nodes:
            hollow = cp.start(
                "kubelet.hollow", ["--master", cp.server, "--nodes", str(nodes)], name="hollow-nodes"
            )
            hollow.wait_log("starting", timeout=30)
        cluster = cluster_type(cp, Kubectl(cp.server, workdir), controller_args or ())
        if controller_args is not None:
            cluster.start_controller_manager(name="controller-manager", timeout=controller_ready_timeout)
        if nodes:
            wait_until(
                lambda: len(cluster.kubectl.get_json("nodes")["items"]) == nodes,
                f"{nodes} hollow nodes registered",
                timeout=30,
            )
        yield cluster


@pytest.fixture
def control_plane(tmp_path):
    with running_control_plane(tmp_path) as cp:
        yield cp
