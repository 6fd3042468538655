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
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.hollowplane import ControlPlane, NodeGroup, machine, run_benchmark, wait_nodes, write_json
from bench.memory import cpu_seconds, rss_bytes
from bench.phases import Phase, Row, judged, phase_line, table_lines
from bench.stats import percentile
from kubelite.client import ApiClient
from kubelite.objects import is_pod_ready
from kubelite.resources import DEPLOYMENTS, PODS

log = logging.getLogger("bench.deployments")

# Upper limits (the controller-manager's RSS and CPU when idle): a figure meets its target below it.
TARGETS = {"scale_up_s": 30.0, "rolling_update_s": 60.0, "idle_rss_mb": 200.0, "idle_cpu_pct": 2.0}


@dataclass
class Result:
    nodes: int
    replicas: int
    machine: dict[str, Any]
    phases: list[Phase] = field(default_factory=list)


# ---------------------------------------------------------------------------------- pure parts


def judge(result: Result) -> list[Row]:
    """(measurement, value, target, met) rows; a phase that did not complete misses its target. Pure."""
    by = {p.name: p for p in result.phases}
    rows: list[Row] = []

    def against(name: str, value: str, figure: float, target: str, unit: str, complete: bool = True) -> None:
        """A row whose figure is held against TARGETS[target], shown as "< limit unit"."""
        rows.append(judged(name, value, figure, TARGETS[target], unit, complete))

    up = by.get("scale-up")
    if up is not None:
        name, complete = f"scale 0 -> {result.replicas} available", bool(up.details.get("complete"))
        against(name, f"{up.seconds:.1f} s", up.seconds, "scale_up_s", "s", complete)
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
        against(name, f"{roll.seconds:.1f} s", roll.seconds, "rolling_update_s", "s", complete)
    idle = by.get("idle")
    if idle is not None:
        rss = idle.details["controller_manager_rss_mb"]
        cpu = idle.details["controller_manager_cpu_pct"]
        against("controller-manager RSS (idle, pods settled)", f"{rss:.0f} MB", rss, "idle_rss_mb", "MB")
        against("controller-manager CPU (idle, 10 s)", f"{cpu:.2f} % of a core", cpu, "idle_cpu_pct", "%")
    return rows


def render(result: Result) -> str:
    lines = [f"kubelite Deployment benchmark: {result.nodes} hollow nodes, {result.replicas} replicas",
             f"machine: {result.machine}", ""]  # fmt: skip
    lines += [*table_lines(judge(result)), ""]
    lines += [phase_line(phase) for phase in result.phases]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- the phases


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
    result = Result(args.nodes, args.replicas, machine())
    log.info("starting 3 etcdlite members, the control plane and %d hollow nodes", args.nodes)
    run_benchmark(
        "bench-deployments-",
        lambda workdir: ControlPlane(workdir, [NodeGroup("hollow-nodes", args.nodes)]),
        lambda cp: measure(cp, args.nodes, args.replicas, result),
        args.keep_logs,
    )
    print(render(result))
    if args.json:
        write_json(args.json, result)
    return 0 if all(met is not False for *_, met in judge(result)) else 1


if __name__ == "__main__":
    sys.exit(main())
