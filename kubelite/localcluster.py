"""`kubelite up` / `kubelite down`: the cluster's processes as plain local processes.

Starts etcdlite, the apiserver, the scheduler, the controller-manager, and per node a
kubelet and a proxy on the node's own loopback address (127.0.0.x), exactly with the flags a
user would type. Process ids, logs and data live in a state directory, so `down` can stop
them later from another shell and remove every container and the Docker network the
cluster's kubelets made (found by the `kubelite.io/cluster` label). `down` also reports every
process that had died before it, needed SIGKILL, or did not log a clean exit.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from kubelite import kubeconfig
from kubelite.objects import is_node_ready
from kubelite.process import exit_status_in_log
from kubelite.supervise import restarts_in_log
from kubelite.waiting import ConditionFailed, wait_for

if TYPE_CHECKING:
    import docker

CLUSTER_LABEL = "kubelite.io/cluster"
# Components that exit by design (a controller-manager that lost its Lease) and are started again,
# as systemd would; the others run bare, and `down` reports one that died.
SUPERVISED = frozenset({"controller"})
# Where `up` and `down` report progress (print by default).
Log = Callable[[str], None]


@dataclass
class ClusterSpec:
    name: str = "kubelite-local"
    nodes: int = 2
    # two controller-managers elect a leader on a Lease, so killing the active one loses nothing;
    # manager i serves /healthz on 127.0.0.1 at controller_manager_port + i
    controller_managers: int = 2
    controller_manager_port: int = 10257
    api_address: str = "127.0.0.1"
    api_port: int = 6443
    # one etcdlite member per client port, with the peer port beside it (etcd's own layout)
    etcd_ports: tuple[int, ...] = (2379, 22379, 32379)
    etcd_peer_ports: tuple[int, ...] = (2380, 22380, 32380)
    first_node_address: str = "127.0.0.2"
    kubelet_port: int = 10250
    node_port_range: str = "30000-32767"
    pause_image: str = "kubelite/pause:latest"
    state_dir: str = ""
    extra_args: dict[str, list[str]] = field(default_factory=dict)
    # `kubelite up --pod-eviction-timeout`: how long pods stay on a failed node, as the tolerationSeconds
    # of the apiserver's default not-ready/unreachable tolerations (its flags are left out at 300)
    pod_eviction_timeout: float = 300.0

    def __post_init__(self) -> None:
        if not self.state_dir:
            self.state_dir = str(default_state_root() / self.name)
        self.etcd_ports = tuple(self.etcd_ports)
        self.etcd_peer_ports = tuple(self.etcd_peer_ports)
        if len(self.etcd_ports) != len(self.etcd_peer_ports) or not self.etcd_ports:
            raise ValueError("give one etcd peer port for each etcd client port")

    @property
    def server(self) -> str:
        return f"http://{self.api_address}:{self.api_port}"

    @property
    def etcd_endpoints(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.etcd_ports]

    @property
    def etcd_initial_cluster(self) -> str:
        return ",".join(
            f"etcd-{i + 1}=http://127.0.0.1:{port}" for i, port in enumerate(self.etcd_peer_ports)
        )

    def node_name(self, i: int) -> str:
        return f"node-{i + 1}"

    def node_address(self, i: int) -> str:
        return str(ipaddress.IPv4Address(self.first_node_address) + i)


def default_state_root() -> Path:
    return Path(os.environ.get("KUBELITE_STATE", Path.home() / ".kubelite"))


def default_tolerations(spec: ClusterSpec) -> list[str]:
    """The apiserver flags that carry --pod-eviction-timeout (none at the default of 300 s)."""
    if spec.pod_eviction_timeout == 300:
        return []
    seconds = str(int(spec.pod_eviction_timeout))
    return [
        "--default-not-ready-toleration-seconds", seconds,
        "--default-unreachable-toleration-seconds", seconds,
    ]  # fmt: skip


def controller_managers(spec: ClusterSpec) -> list[tuple[str, list[str]]]:
    """controller-manager, controller-manager-2, ...: one leads (the Lease kube-system/
    kube-controller-manager), the others stand by; each exits when it loses the Lease, and its
    supervisor (`kubelite.supervise`) starts it again as a standby. Pure."""
    extra = range(2, spec.controller_managers + 1)
    names = ["controller-manager", *(f"controller-manager-{i}" for i in extra)]
    return [
        (name, ["controller", "--master", spec.server, "--bind-address", "127.0.0.1",
                "--secure-port", str(spec.controller_manager_port + i)])
        for i, name in enumerate(names)
    ]  # fmt: skip


def commands(spec: ClusterSpec) -> list[tuple[str, list[str]]]:
    """(process name, argv) for every process of the cluster, in start order. Pure."""
    procs: list[tuple[str, list[str]]] = []
    for i, endpoint in enumerate(spec.etcd_endpoints):
        name = f"etcd-{i + 1}"
        peer = f"http://127.0.0.1:{spec.etcd_peer_ports[i]}"
        procs.append(
            (
                name,
                [
                    "etcdlite",
                    "--name",
                    name,
                    "--data-dir",
                    str(Path(spec.state_dir) / name),
                    "--listen-client-urls",
                    endpoint,
                    "--advertise-client-urls",
                    endpoint,
                    "--listen-peer-urls",
                    peer,
                    "--initial-advertise-peer-urls",
                    peer,
                    "--initial-cluster",
                    spec.etcd_initial_cluster,
                    "--initial-cluster-state",
                    "new",
                    "--initial-cluster-token",
                    spec.name,
                ],
            )
        )
    procs += [
        ("apiserver", ["apiserver", "--etcd-servers", ",".join(spec.etcd_endpoints),
                       "--bind-address", spec.api_address, "--secure-port", str(spec.api_port),
                       "--advertise-address", spec.api_address,
                       "--service-node-port-range", spec.node_port_range, *default_tolerations(spec)]),
        ("scheduler", ["scheduler", "--master", spec.server]),
        *controller_managers(spec),
    ]  # fmt: skip
    for i in range(spec.nodes):
        name, address = spec.node_name(i), spec.node_address(i)
        kubelet = ["kubelet", "--master", spec.server, "--hostname-override", name]
        kubelet += ["--node-ip", address, "--address", address, "--port", str(spec.kubelet_port)]
        kubelet += ["--docker-network", spec.name, "--pod-infra-container-image", spec.pause_image]
        kubelet += ["--cluster-name", spec.name]
        proxy = ["proxy", "--master", spec.server, "--hostname-override", name, "--bind-address", address]
        procs += [(f"kubelet-{name}", kubelet), (f"proxy-{name}", proxy)]
    out = []
    for name, argv in procs:
        command = [sys.executable, "-m", *argv, *spec.extra_args.get(argv[0], [])]
        if argv[0] in SUPERVISED:
            command = [sys.executable, "-m", "kubelite.supervise", "--name", name, "--", *command]
        out.append((name, command))
    return out


@dataclass(frozen=True)
class Stopped:
    """How one process of the cluster ended when `down` stopped it."""

    name: str
    alive_before: bool  # still running when down began
    killed: bool  # did not exit within the grace period of SIGTERM
    status: int | None  # the status it logged on its way out, None if it logged none
    restarts: int = 0  # times a supervisor (docker) restarted it after it died

    @property
    def problem(self) -> str | None:
        """What was wrong, in words, or None for a clean stop. Pure."""
        if self.restarts:
            return f"{self.name} had died and been restarted {self.restarts} time(s) before down"
        if not self.alive_before:
            how = "without logging an exit status" if self.status is None else f"with status {self.status}"
            return f"{self.name} had exited {how} before down"
        if self.killed:
            return f"{self.name} did not stop on SIGTERM and was killed"
        if self.status != 0:
            return f"{self.name} exited with status {self.status} on SIGTERM"
        return None


def stop_summary(stopped: list[Stopped], noun: str) -> str:
    """`down`'s verdict in words: how many of the cluster's `noun` stopped cleanly, and which not."""
    bad = sorted(p.name for p in stopped if p.problem)
    summary = f"{len(stopped) - len(bad)} of {len(stopped)} {noun} stopped cleanly"
    return summary + (f"; not cleanly: {', '.join(bad)}" if bad else "")


def down_exit_code(stopped: list[Stopped]) -> int:
    """`kubelite down`'s exit status: 1 when any component had a problem, as a failed test would."""
    return 1 if any(p.problem for p in stopped) else 0


class LocalCluster:
    def __init__(self, spec: ClusterSpec):
        self.spec = spec
        self.state = Path(spec.state_dir)
        self.pids: dict[str, int] = {}
        # where each log stood when the process started, so down reads only this run's lines
        self.log_offsets: dict[str, int] = {}

    @property
    def state_file(self) -> Path:
        return self.state / "cluster.json"

    @property
    def log_dir(self) -> Path:
        return self.state / "logs"

    @classmethod
    def load(cls, name: str, state_root: Path | None = None) -> LocalCluster:
        path = (state_root or default_state_root()) / name / "cluster.json"
        data = json.loads(path.read_text())
        cluster = cls(ClusterSpec(**data["spec"]))
        cluster.pids = data["pids"]
        cluster.log_offsets = data.get("log_offsets", {})
        return cluster

    def _save(self) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        state = {"spec": asdict(self.spec), "pids": self.pids, "log_offsets": self.log_offsets}
        self.state_file.write_text(json.dumps(state, indent=2))

    def up(self, log: Log = print, timeout: float = 90) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        ensure_network(self.spec.name)
        try:
            for name, argv in commands(self.spec):
                self._start(name, argv)
                if name == "apiserver":
                    wait_for(self._api_ready, f"the apiserver at {self.spec.server}/readyz", timeout)
            log(f"cluster {self.spec.name}: started, waiting for {self.spec.nodes} Ready node(s)")
            wait_for(self._nodes_ready, f"{self.spec.nodes} Ready node(s)", timeout)
        except BaseException:
            log(f"cluster {self.spec.name} failed to start; logs are in {self.log_dir}")
            raise
        path = kubeconfig.write_context(self.spec.name, self.spec.server)
        log(f"cluster {self.spec.name} is up; kubeconfig context {self.spec.name} in {path}")

    def _start(self, name: str, argv: list[str]) -> None:
        with open(self.log_path(name), "ab") as out:
            self.log_offsets[name] = out.tell()
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)  # fmt: skip
        self.pids[name] = proc.pid
        self._save()

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def log_since_start(self, name: str) -> str:
        try:
            with open(self.log_path(name), "rb") as f:
                f.seek(self.log_offsets.get(name, 0))
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, name: str, lines: int = 30) -> str:
        return "\n".join(self.log_since_start(name).splitlines()[-lines:])

    def dead(self) -> list[str]:
        """The processes of the cluster that are not running."""
        return [n for n, pid in self.pids.items() if not _alive(pid)]

    def _api_ready(self) -> bool:
        if dead := self.dead():
            raise ConditionFailed(f"process(es) exited: {', '.join(dead)}; see {self.log_dir}")
        with urllib.request.urlopen(f"{self.spec.server}/readyz", timeout=2) as resp:
            status: int = resp.status
            return status == 200

    def _nodes_ready(self) -> bool:
        if dead := self.dead():
            raise ConditionFailed(f"process(es) exited: {', '.join(dead)}; see {self.log_dir}")
        return ready_nodes(self.spec.server) >= self.spec.nodes

    def down(self, log: Log = print, keep_state: bool = False, grace: float = 10) -> list[Stopped]:
        """Stop every process, remove the pods, the network and the context. Returns how each
        process ended; problems are logged with the tail of the process's log."""
        alive_before = {name: _alive(pid) for name, pid in self.pids.items()}
        killed = stop_processes(self.pids, grace)
        stopped = []
        for name in self.pids:
            text = self.log_since_start(name)
            status = exit_status_in_log(text)
            stopped.append(Stopped(name, alive_before[name], name in killed, status, restarts_in_log(text)))
        for process in stopped:
            if process.problem:
                log(f"{process.problem}; its log ends:\n{self.log_tail(process.name)}\n")
        removed = remove_cluster_containers(self.spec.name)
        remove_network(self.spec.name)
        kubeconfig.remove_context(self.spec.name)
        if not keep_state:
            shutil.rmtree(self.state, ignore_errors=True)
        summary = stop_summary(stopped, "processes")
        log(f"cluster {self.spec.name} is down ({summary}, {removed} containers removed)")
        return stopped


def ready_nodes(server: str) -> int:
    """How many nodes the apiserver at server reports Ready (both ways of running wait on it)."""
    with urllib.request.urlopen(f"{server}/api/v1/nodes", timeout=2) as resp:
        return sum(1 for node in json.load(resp)["items"] if is_node_ready(node))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as dead
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def stop_processes(pids: dict[str, int], grace: float = 10) -> set[str]:
    """SIGTERM all, wait up to grace seconds, then SIGKILL what is left; the names killed."""
    for pid in pids.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    killed = set()
    for name, pid in pids.items():
        while _alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.05)
        if _alive(pid):
            killed.add(name)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _reap(pid)
    return killed


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def docker_client() -> docker.DockerClient:
    import docker

    return docker.from_env()


def ensure_network(name: str) -> None:
    client = docker_client()
    if not client.networks.list(names=[name]):
        client.networks.create(name, driver="bridge", labels={CLUSTER_LABEL: name})


def remove_cluster_containers(name: str) -> int:
    client = docker_client()
    containers = client.containers.list(all=True, filters={"label": f"{CLUSTER_LABEL}={name}"})
    for c in containers:
        try:
            c.remove(force=True)
        except Exception as exc:  # already gone is fine; anything else is reported by the network removal
            if "No such container" not in str(exc):
                raise
    return len(containers)


def remove_network(name: str) -> None:
    client = docker_client()
    for net in client.networks.list(names=[name]):
        if net.name == name:
            net.remove()
