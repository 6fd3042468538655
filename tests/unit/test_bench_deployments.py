"""The Deployment benchmark's verdicts: a phase that did not complete misses its target, and the
committed result still reads as the table it printed."""

from __future__ import annotations

import json
from pathlib import Path

from bench.deployments import Phase, Result, judge, render

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


def result(up: float, roll: float, complete: bool = True, rss: float = 104.0, cpu: float = 0.4) -> Result:
    r = Result(100, 1000, {"cpus": 2})
    r.phases = [
        Phase(
            "scale-up", up, details={"complete": complete, "create_to_running_s": {"p50": 12.2, "p99": 23.2}}
        ),
        Phase("rolling-update", roll, details={"complete": complete}),
        Phase("idle", 10.0, details={"controller_manager_rss_mb": rss, "controller_manager_cpu_pct": cpu}),
    ]
    return r


def verdicts(r: Result) -> dict[str, bool | None]:
    return {name: met for name, _value, _target, met in judge(r)}


def test_targets_are_judged_on_time_memory_and_cpu():
    met = verdicts(result(27.0, 37.4))
    assert met["scale 0 -> 1000 available"] is True
    assert met["rolling update of 1000 (25%/25%)"] is True
    assert met["controller-manager RSS (idle, pods settled)"] is True
    assert met["controller-manager CPU (idle, 10 s)"] is True
    assert met["kube-controller-manager anchor (creates at 20 qps)"] is None
    slow = verdicts(result(30.0, 60.0, rss=200.0, cpu=2.0))
    assert not any(v for k, v in slow.items() if v is not None), "the targets are strict: < 30 s, < 60 s, ..."


def test_a_phase_that_did_not_complete_misses_its_target_however_fast():
    met = verdicts(result(5.0, 5.0, complete=False))
    assert met["scale 0 -> 1000 available"] is False and met["rolling update of 1000 (25%/25%)"] is False


def test_the_committed_result_renders_as_recorded():
    recorded = json.loads((RESULTS / "2026-12-02-deployments-100-nodes-1000-replicas.json").read_text())
    r = Result(recorded["nodes"], recorded["replicas"], recorded["machine"])
    r.phases = [Phase(**p) for p in recorded["phases"]]
    text = (RESULTS / "2026-12-02-deployments-100-nodes-1000-replicas.txt").read_text()
    assert render(r) + "\n" == text
    assert all(met is not False for *_, met in judge(r))
