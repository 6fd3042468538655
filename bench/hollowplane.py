"""The real control plane on hollow nodes, for the cluster benchmarks: three etcdlite members, the
apiserver, the scheduler, the controller-manager and one or more `python -m kubelet.hollow`
processes (a group of nodes each, so a benchmark can stop one group as a node failure).

Also what every such benchmark does around its phases: wait for the nodes, meter a process's CPU
and memory over a phase, poll a condition against a deadline, and run the whole thing so that every
process is stopped at the end, on an error, on Ctrl-C or SIGTERM (children also get SIGKILL if the
harness itself is killed).

Touches: child processes, loopback ports, a temporary directory, /proc.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from bench.memory import cpu_seconds, rss_bytes
from bench.phases import usage
from bench.stores import StoreKind, child_process, start_cluster
from kubelite.client import ApiClient
from kubelite.objects import is_node_ready
from kubelite.resources import LEASES, NODES
from kubelite.waiting import WaitTimeout, wait_for

log = logging.getLogger("bench")
T = TypeVar("T")


@dataclass(frozen=True)
class NodeGroup:
    """One hollow-node process: `count` nodes named `prefix0`, `prefix1`, ..."""

    process: str  # the process's name in CPU/RSS reports
    count: int
    prefix: str = "hollow-"


class ControlPlane:
    """etcdlite x3, apiserver, scheduler, controller-manager and the hollow node groups, each
    started with the flags a user would give, plus `apiserver_flags` and `controller_flags`."""

    def __init__(
        self,
        workdir: Path,
        groups: Sequence[NodeGroup],
        apiserver_flags: Sequence[str] = (),
        controller_flags: Sequence[str] = (),
    ):
        self.workdir = workdir
        self.store = start_cluster(StoreKind.ETCDLITE, members=3)
        self.processes: dict[str, Any] = {}
        try:
            api_log = workdir / "apiserver.log"
            etcd = ",".join(f"http://{a}" for a in self.store.addresses)
            argv = [sys.executable, "-m", "apiserver", "--etcd-servers", etcd, "--bind-address", "127.0.0.1"]
            argv += ["--secure-port", "0", *apiserver_flags]
            self.processes["apiserver"] = child_process(argv, api_log)
            self.server = self._await_log("apiserver", api_log, r"serving on (http://\S+:\d+)")
            started = [
                ("scheduler", ["-m", "scheduler", "--master", self.server]),
                ("controller-manager", ["-m", "controller", "--master", self.server, *controller_flags]),
            ]
            for g in groups:
                hollow = ["-m", "kubelet.hollow", "--master", self.server]
                started.append((g.process, [*hollow, "--nodes", str(g.count), "--name-prefix", g.prefix]))
            for name, args in started:
                self.processes[name] = child_process([sys.executable, *args], workdir / f"{name}.log")
        except BaseException:
            self.stop()
            raise

    def _await_log(self, name: str, path: Path, pattern: str, timeout: float = 30) -> str:
        def logged() -> str:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited: {self.log_tail(name)}")
            match = re.search(pattern, path.read_text(errors="replace")) if path.exists() else None
            return match.group(1) if match else ""

        return wait_for(logged, f"{path.name} to log /{pattern}/", timeout=timeout, interval=0.1)

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.workdir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def pids(self) -> dict[str, int]:
        out = {name: p.pid for name, p in self.processes.items() if p.poll() is None}
        out.update({f"etcd-{m.name}": m.pid for m in self.store.members})
        return out

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids().items()}

    def exited(self) -> list[str]:
        """Processes that have died on their own (a benchmark that kills one forgets it first)."""
        return [name for name, p in self.processes.items() if p.poll() is not None]

    def kill(self, name: str) -> None:
        """SIGKILL one process, as a machine failing would, and stop tracking it."""
        proc = self.processes.pop(name)
        proc.kill()
        proc.wait(10)

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(15)
            except Exception:
                proc.kill()
        self.store.stop()


async def wait_nodes(client: ApiClient, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = (await client.list(NODES)).get("items") or []
        if sum(1 for n in nodes if is_node_ready(n)) >= count:
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"{count} hollow nodes did not become Ready within {timeout}s")


async def wait_leader(client: ApiClient, timeout: float = 60) -> str:
    """The controller-manager's identity once it holds its Lease (kube-system/kube-controller-manager,
    with --leader-elect on by default), so that no phase is timed while it is still electing."""

    async def holder() -> str:
        lease = await client.get(LEASES, "kube-controller-manager", "kube-system")
        return str((lease.get("spec") or {}).get("holderIdentity") or "")

    return await poll(holder, "the controller-manager to hold its leader Lease", timeout, interval=0.25)


async def poll(probe: Callable[[], Awaitable[T]], what: str, timeout: float, interval: float = 0.2) -> T:
    """Await `probe` until it returns something truthy; WaitTimeout naming `what` and the last
    value (or error) seen once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = await probe()
            if value:
                return value
            last = value
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # not there yet; keep the reason for the message
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")
        await asyncio.sleep(interval)


class Meter:
    """One process over one phase: CPU seconds at both ends and RSS sampled every `interval`."""

    def __init__(self, pid: int, interval: float = 0.25):
        self.pid, self.interval = pid, interval
        self.samples: list[int] = []
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            try:
                self.samples.append(rss_bytes(self.pid))
            except OSError:  # the process is gone; the phase will say so
                return
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self.cpu0, self.t0 = cpu_seconds(self.pid), time.monotonic()
        self._task = asyncio.create_task(self._sample())

    async def stop(self) -> dict[str, float]:
        seconds = time.monotonic() - self.t0
        try:
            cpu1 = cpu_seconds(self.pid)
            self.samples.append(rss_bytes(self.pid))
        except OSError:
            cpu1 = self.cpu0
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        return usage(self.cpu0, cpu1, seconds, self.samples)


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "loadavg_before": os.getloadavg(), "python": sys.version.split()[0]}


def _sigterm_is_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_benchmark(
    prefix: str,
    start: Callable[[Path], ControlPlane],
    measure: Callable[[ControlPlane], Coroutine[Any, Any, None]],
    keep_logs: str | None = None,
) -> None:
    """Start the control plane in a fresh directory, measure, and stop every process whatever
    happens (SIGTERM is handled as Ctrl-C so the clean-up runs); `keep_logs` keeps their logs."""
    previous = signal.signal(signal.SIGTERM, _sigterm_is_interrupt)
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    cp = None
    try:
        cp = start(workdir)
        asyncio.run(measure(cp))
    finally:
        if cp is not None:
            cp.stop()
        if keep_logs:
            shutil.copytree(workdir, keep_logs, dirs_exist_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)


def write_json(path: str, result: Any) -> None:
    Path(path).write_text(json.dumps(asdict(result), indent=2))
