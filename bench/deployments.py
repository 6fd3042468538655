"""`python -m bench.deployments`: a Deployment at scale on hollow nodes, against the real control
plane (three etcdlite members, the apiserver, the scheduler, the controller-manager).

Measures, with the machine's load beside each figure:
- scale-up: a Deployment scaled 0 -> N replicas (default 1,000 on 100 hollow nodes): seconds until
  N available, and p50/p99 of each pod's create-to-Running-and-Ready, timed from the pod watch;
- rolling update of those N replicas (25 %/25 %): seconds until `kubectl rollout status` would
  report success (updated = available = replicas = N, generation observed);
- idle: the controller-manager's RSS and CPU over 10 s with the N pods settled;
- the CPU seconds each process used in each phase.

Targets (issue 8): scale-up < 30 s, rolling update < 60 s, controller-manager RSS < 200 MB and
idle CPU < 2 % of a core. Anchor: kube-controller-manager at its default `--kube-api-qps=20`
needs about N/20 s (50 s for 1,000) for the creates alone; it is computed, not run here.

    .venv/bin/python -m bench.deployments                  # 100 nodes, 1,000 replicas (~3 min)
    .venv/bin/python -m bench.deployments --nodes 20 --replicas 200 --json out.json

Every process is started in its own session, killed if the harness dies, and stopped at the end.
"""

from __future__ import annotations

import argparse
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.memory import cpu_seconds, rss_bytes
from bench.stats import percentile
from bench.stores import StoreKind, child_process, start_cluster
from kubelite.client import ApiClient
from kubelite.objects import is_node_ready, is_pod_ready
from kubelite.resources import DEPLOYMENTS, NODES, PODS
from kubelite.waiting import wait_for

log = logging.getLogger("bench.deployments")

# Upper limits (the controller-manager's RSS and CPU when idle): a figure meets its target below it.
TARGETS = {"scale_up_s": 30.0, "rolling_update_s": 60.0, "idle_rss_mb": 200.0, "idle_cpu_pct": 2.0}


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    loadavg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    cpu: dict[str, float] = field(default_factory=dict)  # process -> CPU seconds used in the phase
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    nodes: int
    replicas: int
    machine: dict[str, Any]
    phases: list[Phase] = field(default_factory=list)


# ---------------------------------------------------------------------------------- pure parts


def judge(result: Result) -> list[tuple[str, str, str, bool | None]]:
    """(measurement, value, target, met) rows; a phase that did not complete misses its target. Pure."""
    by = {p.name: p for p in result.phases}
    rows: list[tuple[str, str, str, bool | None]] = []

    def judged(name: str, value: str, figure: float, target: str, unit: str, complete: bool = True) -> None:
        """A row whose figure is held against TARGETS[target], shown as "< limit unit"."""
        limit = TARGETS[target]
        rows.append((name, value, f"< {limit:g} {unit}", complete and figure < limit))

    up = by.get("scale-up")
    if up is not None:
        name, complete = f"scale 0 -> {result.replicas} available", bool(up.details.get("complete"))
        judged(name, f"{up.seconds:.1f} s", up.seconds, "scale_up_s", "s", complete)
        lat = up.details.get("create_to_running_s") or {}
        if lat:
            value = f"{lat['p50']:.2f} / {lat['p99']:.2f} s"
            rows.append(("pod create -> Running+Ready p50 / p99", value, "", None))
        anchor = result.replicas / 20
        rows.append(
            ("kube-controller-manager anchor (creates at 20 qps)", f"~{anchor:.0f} s", "computed", None)
        )
    roll = by.get("rolling-update")
    if roll is not None:
        name, complete = f"rolling update of {result.replicas} (25%/25%)", bool(roll.details.get("complete"))
        judged(name, f"{roll.seconds:.1f} s", roll.seconds, "rolling_update_s", "s", complete)
    idle = by.get("idle")
    if idle is not None:
        rss = idle.details["controller_manager_rss_mb"]
        cpu = idle.details["controller_manager_cpu_pct"]
        judged("controller-manager RSS (idle, pods settled)", f"{rss:.0f} MB", rss, "idle_rss_mb", "MB")
        judged("controller-manager CPU (idle, 10 s)", f"{cpu:.2f} % of a core", cpu, "idle_cpu_pct", "%")
    return rows


def render(result: Result) -> str:
    lines = [f"kubelite Deployment benchmark: {result.nodes} hollow nodes, {result.replicas} replicas",
             f"machine: {result.machine}", ""]  # fmt: skip
    header = f"{'measurement':52} {'value':22} {'target':10} met"
    lines += [header, "-" * len(header)]
    for name, value, target, met in judge(result):
        mark = "" if met is None else ("yes" if met else "NO")
        lines.append(f"{name:52} {value:22} {target:10} {mark}")
    lines.append("")
    for phase in result.phases:
        load = "/".join(f"{x:.2f}" for x in phase.loadavg)
        line = f"{phase.name}: {phase.seconds:.1f} s, load {load}"
        if phase.cpu:
            line += "; CPU: " + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(phase.cpu.items()))
        if phase.details.get("rss_mb"):
            line += "; RSS: " + ", ".join(
                f"{k} {v:.0f} MB" for k, v in sorted(phase.details["rss_mb"].items())
            )
        lines.append(line)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- the cluster


class ControlPlane:
    """etcdlite x3, apiserver, scheduler, controller-manager and the hollow node fleet."""

    def __init__(self, nodes: int, workdir: Path):
        self.workdir = workdir
        self.store = start_cluster(StoreKind.ETCDLITE, members=3)
        self.processes: dict[str, Any] = {}
        api_log = workdir / "apiserver.log"
        etcd = ",".join(f"http://{a}" for a in self.store.addresses)
        argv = [sys.executable, "-m", "apiserver", "--etcd-servers", etcd, "--bind-address", "127.0.0.1"]
        self.processes["apiserver"] = child_process([*argv, "--secure-port", "0"], api_log)
        self.server = self._await_log(api_log, r"serving on (http://\S+:\d+)")
        for name, argv in (
            ("scheduler", ["-m", "scheduler", "--master", self.server]),
            ("controller-manager", ["-m", "controller", "--master", self.server]),
            ("hollow-nodes", ["-m", "kubelet.hollow", "--master", self.server, "--nodes", str(nodes)]),
        ):
            self.processes[name] = child_process([sys.executable, *argv], workdir / f"{name}.log")

    def _await_log(self, path: Path, pattern: str, timeout: float = 30) -> str:
        def logged() -> str:
            match = re.search(pattern, path.read_text(errors="replace")) if path.exists() else None
            return match.group(1) if match else ""

        return wait_for(logged, f"{path.name} to log /{pattern}/", timeout=timeout, interval=0.1)

    def pids(self) -> dict[str, int]:
        out = {name: p.pid for name, p in self.processes.items()}
        out.update({f"etcd-{m.name}": m.pid for m in self.store.members})
        return out

    def cpu(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids().items()}

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


# ---------------------------------------------------------------------------------- the phases


async def wait_nodes(client: ApiClient, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = (await client.list(NODES)).get("items") or []
        if sum(1 for n in nodes if is_node_ready(n)) >= count:
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"{count} hollow nodes did not become Ready within {timeout}s")


class PodClock:
    """Watches pods: when each was first seen and when it was first Running and Ready."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.running: dict[str, float] = {}

    async def run(self, client: ApiClient) -> None:
        listing = await client.list(PODS, "default")
        rv = listing["metadata"]["resourceVersion"]
        while True:
            async for event in client.watch(PODS, "default", resource_version=rv, timeout_seconds=600):
                pod = event.object
                rv = pod["metadata"].get("resourceVersion", rv)
                uid = pod["metadata"].get("uid")
                if event.type in ("ADDED", "MODIFIED") and uid:
                    now = time.monotonic()
                    self.seen.setdefault(uid, now)
                    if pod.get("status", {}).get("phase") == "Running" and is_pod_ready(pod):
                        self.running.setdefault(uid, now)

    def latencies(self) -> list[float]:
        return sorted(self.running[u] - self.seen[u] for u in self.running if u in self.seen)


async def wait_rollout(client: ApiClient, name: str, replicas: int, generation: int, timeout: float) -> bool:
    """Until `kubectl rollout status` would say "successfully rolled out"; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = await client.get(DEPLOYMENTS, name, "default")
        s = d.get("status", {})
        counts = [s.get(k, 0) for k in ("updatedReplicas", "replicas", "availableReplicas")]
        if s.get("observedGeneration", 0) >= generation and counts == [replicas] * 3:
            return True
        await asyncio.sleep(0.2)
    return False


async def measure(cp: ControlPlane, nodes: int, replicas: int, result: Result) -> None:
    client = ApiClient(cp.server)
    clock = PodClock()
    watcher = asyncio.create_task(clock.run(client))
    try:
        await wait_nodes(client, nodes)
        containers = [{"name": "c", "image": "kubelite/whoami:1.0"}]
        template = {"metadata": {"labels": {"app": "bench"}}, "spec": {"containers": containers}}
        spec = {"replicas": 0, "selector": {"matchLabels": {"app": "bench"}}, "template": template}
        body = {"metadata": {"name": "bench"}, "spec": spec}
        created = await client.create(DEPLOYMENTS, body, "default")
        await wait_rollout(client, "bench", 0, created["metadata"]["generation"], 30)

        async def phase(name: str, action, timeout: float) -> Phase:  # type: ignore[no-untyped-def]
            ph = Phase(name)
            cpu0, t0 = cp.cpu(), time.monotonic()
            generation = await action()
            complete = await wait_rollout(client, "bench", replicas, generation, timeout)
            ph.seconds = time.monotonic() - t0
            ph.loadavg = os.getloadavg()
            ph.cpu = {k: v - cpu0.get(k, 0.0) for k, v in cp.cpu().items()}
            ph.details["complete"] = complete
            log.info("%s: %.1f s (%s)", name, ph.seconds, "complete" if complete else "NOT complete")
            return ph

        async def scale_up() -> int:
            d = await client.patch(DEPLOYMENTS, "bench", {"spec": {"replicas": replicas}}, "default")
            return int(d["metadata"]["generation"])

        up = await phase("scale-up", scale_up, timeout=300)
        lat = clock.latencies()
        if lat:
            up.details["create_to_running_s"] = {
                "p50": percentile(lat, 50),
                "p99": percentile(lat, 99),
                "pods": len(lat),
            }
        result.phases.append(up)

        async def roll() -> int:
            patch = {
                "spec": {
                    "template": {"spec": {"containers": [{"name": "c", "image": "kubelite/whoami:2.0"}]}}
                }
            }
            d = await client.patch(DEPLOYMENTS, "bench", patch, "default",
                                   content_type="application/strategic-merge-patch+json")  # fmt: skip
            return int(d["metadata"]["generation"])

        result.phases.append(await phase("rolling-update", roll, timeout=600))

        await asyncio.sleep(10)  # let the last status writes settle before sampling idle
        idle = Phase("idle")
        pid = cp.pids()["controller-manager"]
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(10)
        idle.seconds = time.monotonic() - t0
        idle.loadavg = os.getloadavg()
        idle.details["controller_manager_cpu_pct"] = 100 * (cpu_seconds(pid) - cpu0) / idle.seconds
        idle.details["controller_manager_rss_mb"] = rss_bytes(pid) / 1e6
        idle.details["rss_mb"] = {name: rss_bytes(p) / 1e6 for name, p in cp.pids().items()}
        result.phases.append(idle)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.deployments", description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=100, help="hollow nodes to run")
    parser.add_argument("--replicas", type=int, default=1000, help="replicas to scale the Deployment to")
    parser.add_argument("--json", help="also write the result as JSON to this file")
    parser.add_argument("--keep-logs", help="copy every process's log into this directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="bench-deployments-"))
    machine = {"cpus": os.cpu_count(), "loadavg_before": os.getloadavg(), "python": sys.version.split()[0]}
    result = Result(args.nodes, args.replicas, machine)
    cp = None
    try:
        log.info("starting 3 etcdlite members, the control plane and %d hollow nodes", args.nodes)
        cp = ControlPlane(args.nodes, workdir)
        asyncio.run(measure(cp, args.nodes, args.replicas, result))
    finally:
        if cp is not None:
            cp.stop()
        if args.keep_logs:
            shutil.copytree(workdir, args.keep_logs, dirs_exist_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
    print(render(result))
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(result), indent=2))
    return 0 if all(met is not False for *_, met in judge(result)) else 1


if __name__ == "__main__":
    sys.exit(main())
