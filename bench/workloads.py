"""`python -m bench.workloads`: a DaemonSet, a Job and a node failure on hollow nodes.

Runs against the real control plane (three etcdlite members, the apiserver, the scheduler, the
controller-manager, all as processes).

Measures (issue 9), with the controller-manager's RSS and CPU over each phase beside each figure:
- daemonset: a DaemonSet created on N nodes (default 100): seconds until every node has a pod of
  it Running and Ready, seen on the pod watch;
- job: a Job of 500 completions at parallelism 50 whose pods run `sh -c "sleep 1; exit 0"` (the
  hollow runtime runs such commands to completion): seconds until its Complete condition;
- node-failure: a Deployment of 2 pods per node; the hollow-node process that carries one node is
  SIGKILLed, and the seconds until that node's pods are replaced (as many pods Running and Ready,
  none terminating, on the other nodes as the Deployment wants), with when the node went
  Ready=Unknown, got the unreachable NoExecute taint and lost its pods.

Targets: DaemonSet < 10 s, Job < 60 s, replacement < grace period + toleration + 5 s, computed from
the flags the processes get (controller-manager `--node-monitor-grace-period 10s
--node-monitor-period 1s`, apiserver `--default-unreachable-toleration-seconds 10`: 25 s).

    .venv/bin/python -m bench.workloads                       # 100 nodes, all three phases (~2 min)
    .venv/bin/python -m bench.workloads --nodes 10 --completions 50 --parallelism 10 --json out.json

The nodes run as two hollow processes (N-1 nodes `hollow-*`, one node `lone-0`) so that one node
can die alone. Every process is started in its own session, killed if the harness dies, and
stopped at the end, on an error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bench.hollowplane import (
    ControlPlane,
    Meter,
    NodeGroup,
    machine,
    run_benchmark,
    wait_leader,
    wait_nodes,
    write_json,
)
from bench.phases import Phase, Row, judged, phase_line, table_lines, usage_text
from bench.podtimeline import PodTimeline, job_pod_rows
from bench.podview import watching
from kubelite.client import ApiClient
from kubelite.duration import parse_duration
from kubelite.objects import get_condition, is_pod_ready, is_terminating
from kubelite.resources import DAEMONSETS, DEPLOYMENTS, JOBS, NODES, PODS

log = logging.getLogger("bench.workloads")

# Upper limits in seconds; the node-failure target is computed from the flags plus this slack.
TARGETS = {"daemonset_s": 10.0, "job_s": 60.0, "replacement_slack_s": 5.0}
PHASES = ("daemonset", "job", "node-failure")
LONE_NODE = "lone-0"
IMAGE = "kubelite/whoami:1.0"
UNREACHABLE = "node.kubernetes.io/unreachable"
STALL_S = 20.0  # a phase in which no pod (or Job status) has appeared by then gives up


@dataclass
class Result:
    nodes: int
    settings: dict[str, Any]  # the flags the phases ran with (completions, grace period, ...)
    machine: dict[str, Any]
    phases: list[Phase] = field(default_factory=list)


# ---------------------------------------------------------------------------------- pure parts


def replacement_target(
    grace_s: float, toleration_s: float, slack_s: float = TARGETS["replacement_slack_s"]
) -> float:
    """A dead node's pods must be Running elsewhere within the grace period (the node turns
    Unknown and is tainted), the pods' toleration of that taint (then they are evicted), plus slack."""
    return grace_s + toleration_s + slack_s


def nodes_with_ready_pod(pods: Iterable[dict[str, Any]]) -> set[str]:
    """The nodes on which some pod is Running and Ready and not being deleted."""
    return {p["spec"]["nodeName"] for p in pods if serving(p) and p.get("spec", {}).get("nodeName")}


def serving(pod: dict[str, Any]) -> bool:
    return pod.get("status", {}).get("phase") == "Running" and is_pod_ready(pod) and not is_terminating(pod)


def serving_elsewhere(pods: Iterable[dict[str, Any]], lost_node: str) -> int:
    """Pods Running and Ready, not being deleted, on any node but the lost one."""
    return sum(1 for p in pods if serving(p) and p.get("spec", {}).get("nodeName") != lost_node)


def has_taint(node: dict[str, Any], key: str, effect: str) -> bool:
    return any(
        t.get("key") == key and t.get("effect") == effect for t in node.get("spec", {}).get("taints") or []
    )


def _rows(result: Result) -> list[tuple[Row, str]]:
    """Each judged row with the controller-manager's use over its phase (blank for sub-rows)."""
    by = {p.name: p for p in result.phases}
    s = result.settings
    rows: list[tuple[Row, str]] = []
    ds = by.get("daemonset")
    if ds is not None:
        name = f"DaemonSet on {result.nodes} nodes: every pod Running+Ready"
        row = judged(name, f"{ds.seconds:.1f} s", ds.seconds, TARGETS["daemonset_s"], "s", _complete(ds))
        rows.append((row, usage_text(ds.details.get("controller_manager"))))
    job = by.get("job")
    if job is not None:
        name = f"Job of {s['completions']} completions, parallelism {s['parallelism']}"
        row = judged(name, f"{job.seconds:.1f} s", job.seconds, TARGETS["job_s"], "s", _complete(job))
        rows.append((row, usage_text(job.details.get("controller_manager"))))
        rows += [(row, "") for row in job_pod_rows(job.details.get("pods") or {}, s["parallelism"])]
    nf = by.get("node-failure")
    if nf is not None:
        grace, tol = s["node_monitor_grace_period_s"], s["default_unreachable_toleration_s"]
        target = replacement_target(grace, tol)
        lost = nf.details.get("lost_pods", 0)
        name = f"node stopped -> its {lost} pods Running elsewhere"
        row = judged(name, f"{nf.seconds:.1f} s", nf.seconds, target, "s", _complete(nf))
        rows.append((row, usage_text(nf.details.get("controller_manager"))))
        slack = TARGETS["replacement_slack_s"]
        how = f"  target: grace {grace:g} s + toleration {tol:g} s + {slack:g} s"
        rows.append(((how, f"{target:g} s", "computed", None), ""))
        for key, label in (("unknown_s", "Ready=Unknown"), ("tainted_s", "unreachable:NoExecute taint"),
                           ("evicted_s", "its pods evicted")):  # fmt: skip
            seen = nf.details.get(key)
            rows.append(
                ((f"  node stopped -> {label}", "-" if seen is None else f"{seen:.1f} s", "", None), "")
            )
    return rows


def _complete(phase: Phase) -> bool:
    return bool(phase.details.get("complete"))


def judge(result: Result) -> list[Row]:
    """(measurement, value, target, met) rows; a phase that did not complete misses its target. Pure."""
    return [row for row, _ in _rows(result)]


def render(result: Result) -> str:
    s = result.settings
    lines = [
        f"kubelite workload benchmark: {result.nodes} hollow nodes; controller-manager "
        f"--node-monitor-grace-period {s['node_monitor_grace_period_s']:g}s "
        f"--node-monitor-period {s['node_monitor_period_s']:g}s, "
        f"apiserver --default-unreachable-toleration-seconds {s['default_unreachable_toleration_s']:g}",
        f"machine: {result.machine}",
        "",
    ]
    rows = _rows(result)
    lines += table_lines([r for r, _ in rows], [b for _, b in rows], "controller-manager over the phase")
    lines.append("")
    lines += [phase_line(phase) for phase in result.phases]
    for phase in result.phases:
        if phase.details.get("error"):
            lines.append(f"{phase.name} failed: {phase.details['error']}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- the phases


class Bench:
    """The phases, each timed and metered, against one running control plane."""

    def __init__(self, cp: ControlPlane, client: ApiClient, result: Result):
        self.cp, self.client, self.result = cp, client, result
        self.s = result.settings

    async def timed(self, name: str, body: Callable[[Phase], Awaitable[bool]]) -> Phase:
        """Run `body(phase)`, which fills in details and says whether the phase completed; time and
        meter it. An error or a deadline ends the phase as not complete, and the run goes on. A body
        may time a part of itself by setting details["seconds"]."""
        phase = Phase(name)
        meter = Meter(self.cp.pids()["controller-manager"])
        cpu0, t0 = self.cp.cpu(), time.monotonic()
        meter.start()
        try:
            phase.details["complete"] = bool(await body(phase))
        except Exception as exc:
            phase.details["complete"] = False
            phase.details["error"] = f"{type(exc).__name__}: {exc}"
        phase.seconds = phase.details.pop("seconds", time.monotonic() - t0)
        phase.details["controller_manager"] = await meter.stop()
        phase.loadavg = os.getloadavg()
        phase.cpu = {k: v - cpu0.get(k, 0.0) for k, v in self.cp.cpu().items()}
        state = "complete" if phase.details["complete"] else f"NOT complete {phase.details.get('error', '')}"
        log.info("%s: %.1f s (%s); controller-manager %s", name, phase.seconds, state,
                 usage_text(phase.details["controller_manager"]))  # fmt: skip
        self.result.phases.append(phase)
        return phase

    async def until(
        self,
        probe: Callable[[], Any],
        what: str,
        timeout: float,
        interval: float = 0.1,
        started: Callable[[], bool] | None = None,
    ) -> None:
        """Until `probe()` (or what it awaits to) is truthy; fail at the deadline, as soon as one of
        the cluster's processes has died, or when `started()` is still false after STALL_S (the
        controller that should act is missing or stuck: no need to wait out the deadline)."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        while True:
            value = probe()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{what} not reached within {timeout:.0f} s")
            if dead := self.cp.exited():
                raise RuntimeError(f"{', '.join(dead)} exited: {self.cp.log_tail(dead[0])}")
            if started is not None and time.monotonic() - t0 > STALL_S and not started():
                raise TimeoutError(f"nothing happened within {STALL_S:g} s waiting for {what}")
            await asyncio.sleep(interval)

    async def daemonset(self, phase: Phase) -> bool:
        nodes = self.result.nodes
        async with watching(self.client, "app=bench-ds") as view:
            try:
                await self.client.create(DAEMONSETS, workload("bench-ds"), "default")
                what = f"a Ready pod of the DaemonSet on each of {nodes} nodes"
                await self.until(lambda: len(nodes_with_ready_pod(view.pods.values())) >= nodes, what,
                                 timeout=60, started=lambda: bool(view.pods))  # fmt: skip
            finally:
                phase.details["ready_nodes"] = len(nodes_with_ready_pod(view.pods.values()))
        return True

    async def job(self, phase: Phase) -> bool:
        s = self.s
        body = workload("bench-job", command=["sh", "-c", f"sleep {s['job_sleep_s']:g}; exit 0"])
        template = body["spec"]["template"]
        template["spec"]["restartPolicy"] = "Never"
        body["spec"] = {
            "completions": s["completions"],
            "parallelism": s["parallelism"],
            "template": template,
        }
        job: dict[str, Any] = {}
        timeline = PodTimeline()
        t0 = time.monotonic()

        async def finished() -> bool:
            job.update(await self.client.get(JOBS, "bench-job", "default"))
            return finished_condition(job) is not None

        async with watching(self.client, "app=bench-job") as view:
            view.on_event = lambda pod, deleted: timeline.seen(pod, time.monotonic(), deleted)
            await self.client.create(JOBS, body, "default")
            try:
                what = "the Job's Complete or Failed condition"
                await self.until(finished, what, timeout=180, interval=0.25, started=lambda: job_started(job))
            finally:
                status = job.get("status") or {}
                phase.details.update({k: status.get(k, 0) for k in ("succeeded", "failed", "active")})
                phase.details["condition"] = finished_condition(job)
                phase.details["pods"] = timeline.summary(s["parallelism"], time.monotonic() - t0)
        return bool(phase.details["condition"] == "Complete")

    async def clean_up_job(self) -> None:
        """Delete the Job and wait (bounded) for its pods to go, so the next phase starts quiet."""
        await self.client.delete(JOBS, "bench-job", "default", propagation_policy="Background")

        async def gone() -> bool:
            return not (await self.client.list(PODS, "default", label_selector="app=bench-job")).get("items")

        try:
            await self.until(gone, "the Job's pods to be deleted", timeout=120, interval=1.0)
        except TimeoutError as exc:
            log.warning("%s; going on", exc)

    async def node_failure(self, phase: Phase) -> bool:
        replicas = 2 * self.result.nodes
        async with watching(self.client, "app=bench-spread") as view:
            await self.client.create(DEPLOYMENTS, workload("bench-spread", replicas=replicas), "default")
            await self.until(lambda: serving_elsewhere(view.pods.values(), "") >= replicas,
                             f"{replicas} pods of the Deployment Running and Ready", timeout=180)  # fmt: skip
            lost = sorted(n for n, p in view.pods.items() if p["spec"].get("nodeName") == LONE_NODE)
            if not lost:
                raise RuntimeError(f"the scheduler put none of {replicas} pods on {LONE_NODE}")
            phase.details.update(lost_node=LONE_NODE, lost_pods=len(lost))
            log.info(
                "node-failure: %d pods Ready, %d on %s; killing its kubelet", replicas, len(lost), LONE_NODE
            )
            t0 = time.monotonic()
            self.cp.kill("lone-node")
            marks = phase.details
            target = replacement_target(
                self.s["node_monitor_grace_period_s"], self.s["default_unreachable_toleration_s"]
            )

            async def replaced() -> bool:
                node = await self.client.get(NODES, LONE_NODE)
                ready = get_condition(node, "Ready") or {}
                now = time.monotonic() - t0
                if ready.get("status") == "Unknown":
                    marks.setdefault("unknown_s", now)
                if has_taint(node, UNREACHABLE, "NoExecute"):
                    marks.setdefault("tainted_s", now)
                if all(n not in view.pods or is_terminating(view.pods[n]) for n in lost):
                    marks.setdefault("evicted_s", now)
                return "evicted_s" in marks and serving_elsewhere(view.pods.values(), LONE_NODE) >= replicas

            await self.until(replaced, f"the {len(lost)} pods of {LONE_NODE} Running on other nodes",
                             timeout=target + 60, interval=0.25)  # fmt: skip
            marks["seconds"] = time.monotonic() - t0
            for key in ("unknown_s", "tainted_s", "evicted_s"):
                log.info("node-failure: %s at %s", key, f"{marks[key]:.1f} s" if key in marks else "never")
        return True

    async def run(self, phases: Iterable[str]) -> None:
        log.info("waiting for %d hollow nodes to be Ready", self.result.nodes)
        await wait_nodes(self.client, self.result.nodes)
        leader = await wait_leader(self.client)
        log.info("%d nodes Ready; the controller-manager leads as %s", self.result.nodes, leader)
        wanted = set(phases)
        if "daemonset" in wanted:
            await self.timed("daemonset", self.daemonset)
        if "job" in wanted:
            await self.timed("job", self.job)
            await self.clean_up_job()
        if "node-failure" in wanted:
            await self.timed("node-failure", self.node_failure)


def job_started(job: dict[str, Any]) -> bool:
    """The Job controller has acted: some pod is active, has succeeded or has failed."""
    return any((job.get("status") or {}).get(k) for k in ("active", "succeeded", "failed"))


def finished_condition(job: dict[str, Any]) -> str | None:
    """ "Complete" or "Failed" once the Job has that condition True, else None."""
    for kind in ("Complete", "Failed"):
        cond = get_condition(job, kind)
        if cond is not None and cond.get("status") == "True":
            return kind
    return None


def workload(name: str, command: list[str] | None = None, replicas: int | None = None) -> dict[str, Any]:
    """A DaemonSet/Deployment body (a Job takes its template) running the local test image."""
    container: dict[str, Any] = {"name": "c", "image": IMAGE, "imagePullPolicy": "IfNotPresent"}
    if command:
        container["command"] = command
    template = {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": name}}, "template": template}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"metadata": {"name": name}, "spec": spec}


async def measure(cp: ControlPlane, result: Result, phases: Iterable[str]) -> None:
    async with ApiClient(cp.server) as client:
        await Bench(cp, client, result).run(phases)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workloads", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--nodes", type=int, default=100, help="hollow nodes to run (one of them in its own process)"
    )
    parser.add_argument("--completions", type=int, default=500, help="the Job's spec.completions")
    parser.add_argument("--parallelism", type=int, default=50, help="the Job's spec.parallelism")
    parser.add_argument(
        "--job-sleep", type=float, default=1.0, help="seconds each Job pod sleeps before exit 0"
    )
    parser.add_argument("--node-monitor-grace-period", default="10s",
                        help="the controller-manager's flag: silence before a node is Unknown")  # fmt: skip
    parser.add_argument("--node-monitor-period", default="1s",
                        help="the controller-manager's flag: how often node health is checked")  # fmt: skip
    parser.add_argument("--default-unreachable-toleration-seconds", type=int, default=10,
                        help="the apiserver's flag: how long pods tolerate an unreachable node")  # fmt: skip
    parser.add_argument(
        "--phases", default=",".join(PHASES), help=f"which phases to run, of {','.join(PHASES)}"
    )
    parser.add_argument("--json", help="also write the result as JSON to this file")
    parser.add_argument("--keep-logs", help="copy every process's log into this directory")
    args = parser.parse_args(argv)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if unknown := set(phases) - set(PHASES):
        parser.error(f"unknown phases {sorted(unknown)}; known: {', '.join(PHASES)}")
    if args.nodes < 2:
        parser.error("--nodes must be at least 2: one node dies alone in the node-failure phase")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    settings = {
        "completions": args.completions,
        "parallelism": args.parallelism,
        "job_sleep_s": args.job_sleep,
        "node_monitor_grace_period_s": parse_duration(args.node_monitor_grace_period),
        "node_monitor_period_s": parse_duration(args.node_monitor_period),
        "default_unreachable_toleration_s": args.default_unreachable_toleration_seconds,
    }
    result = Result(args.nodes, settings, machine())
    target = replacement_target(
        settings["node_monitor_grace_period_s"], settings["default_unreachable_toleration_s"]
    )
    log.info("starting 3 etcdlite members, the control plane and %d hollow nodes (%d + 1 in two processes); "
             "node-failure target %g s", args.nodes, args.nodes - 1, target)  # fmt: skip
    groups = [NodeGroup("hollow-nodes", args.nodes - 1, "hollow-"), NodeGroup("lone-node", 1, "lone-")]
    apiserver = ["--default-unreachable-toleration-seconds", str(args.default_unreachable_toleration_seconds)]
    controller = ["--node-monitor-grace-period", args.node_monitor_grace_period,
                  "--node-monitor-period", args.node_monitor_period]  # fmt: skip
    try:
        run_benchmark(
            "bench-workloads-",
            lambda workdir: ControlPlane(workdir, groups, apiserver, controller),
            lambda cp: measure(cp, result, phases),
            args.keep_logs,
        )
    except KeyboardInterrupt:
        log.info("interrupted: every process is stopped; the phases measured so far follow")
        return 130
    finally:
        print(render(result))
        if args.json:
            write_json(args.json, result)
    return (
        0 if all(met is not False for *_, met in judge(result)) and len(result.phases) == len(phases) else 1
    )


if __name__ == "__main__":
    sys.exit(main())
