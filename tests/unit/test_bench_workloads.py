"""The workload benchmark's verdicts and arithmetic: the node-failure target follows the flags, a
phase that did not complete misses its target, pods count only when they serve, and the table
shows the controller-manager's use beside each figure."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from bench.phases import Phase, table_lines, usage, usage_text
from bench.podtimeline import PodTimeline
from bench.workloads import (
    Result,
    finished_condition,
    has_taint,
    job_started,
    judge,
    nodes_with_ready_pod,
    render,
    replacement_target,
    serving_elsewhere,
    workload,
)

SETTINGS = {
    "completions": 500,
    "parallelism": 50,
    "job_sleep_s": 1.0,
    "node_monitor_grace_period_s": 10.0,
    "node_monitor_period_s": 1.0,
    "default_unreachable_toleration_s": 10,
}
JOB_PODS = {"pods": 500.0, "most_unfinished": 50.0, "busy_pct": 71.5, "events_per_pod": 5.0,
            "create_to_running_p50": 1.2, "create_to_running_p99": 3.4,
            "running_to_finished_p50": 1.1, "running_to_finished_p99": 2.0}  # fmt: skip
CM = {"cpu_s": 4.2, "cpu_pct": 55.0, "rss_mb": 98.0, "rss_peak_mb": 101.0}


def result(ds: float = 7.0, job: float = 40.0, nf: float = 21.0, complete: bool = True, **settings) -> Result:
    r = Result(100, {**SETTINGS, **settings}, {"cpus": 2})
    r.phases = [
        Phase("daemonset", ds, details={"complete": complete, "ready_nodes": 100, "controller_manager": CM}),
        Phase("job", job, details={"complete": complete, "succeeded": 500, "pods": JOB_PODS,
                                   "controller_manager": CM}),
        Phase("node-failure", nf, details={"complete": complete, "lost_pods": 2, "unknown_s": 8.1,
                                           "tainted_s": 8.9, "evicted_s": 19.0, "controller_manager": CM}),
    ]  # fmt: skip
    return r


def verdicts(r: Result) -> dict[str, bool | None]:
    return {name: met for name, _value, _target, met in judge(r)}


def test_the_replacement_target_is_grace_plus_toleration_plus_five_seconds():
    assert replacement_target(10, 10) == 25
    assert replacement_target(40, 300) == 345  # Kubernetes' defaults
    rows = {name: (value, target) for name, value, target, _ in judge(result())}
    assert rows["  target: grace 10 s + toleration 10 s + 5 s"] == ("25 s", "computed")
    assert rows["node stopped -> its 2 pods Running elsewhere"] == ("21.0 s", "< 25 s")
    slower = {name: target for name, _, target, _ in judge(result(node_monitor_grace_period_s=40.0))}
    assert slower["node stopped -> its 2 pods Running elsewhere"] == "< 55 s"


def test_targets_are_strict_upper_limits():
    met = verdicts(result())
    assert met["DaemonSet on 100 nodes: every pod Running+Ready"] is True
    assert met["Job of 500 completions, parallelism 50"] is True
    assert met["node stopped -> its 2 pods Running elsewhere"] is True
    assert met["  node stopped -> Ready=Unknown"] is None
    slow = verdicts(result(ds=10.0, job=60.0, nf=25.0))
    assert [v for v in slow.values() if v is not None] == [False, False, True, False]


def test_a_job_running_more_pods_than_its_parallelism_fails_the_run():
    r = result()
    assert verdicts(r)["  pods pending or running at once, at most"] is True
    r.phases[1].details["pods"] = {**JOB_PODS, "most_unfinished": 51.0}
    assert verdicts(r)["  pods pending or running at once, at most"] is False
    rows = {name: (value, target) for name, value, target, _ in judge(r)}
    assert rows["  pods pending or running at once, at most"] == ("51", "<= 50")


def test_a_phase_that_did_not_complete_misses_its_target_however_fast():
    met = verdicts(result(1, 1, 1, complete=False))
    assert [met[k] for k in met if not k.startswith(" ")] == [False] * 3


def test_the_table_shows_the_controller_managers_use_beside_each_figure():
    text = render(result())
    assert "--node-monitor-grace-period 10s --node-monitor-period 1s" in text
    assert "--default-unreachable-toleration-seconds 10" in text
    [ds_line] = [line for line in text.splitlines() if line.startswith("DaemonSet on 100 nodes")]
    assert ds_line.endswith("< 10 s     yes  RSS 98 MB (peak 101), CPU 4.2 s (55 %)"), ds_line
    header = text.splitlines()[3]
    assert header.endswith("controller-manager over the phase")
    assert ds_line.index("RSS") == header.index("controller-manager"), "the column lines up"


def test_a_failed_phase_says_why_under_the_table():
    r = result()
    r.phases[1].details.update(complete=False, error="TimeoutError: the Job's Complete condition not reached")
    assert "job failed: TimeoutError: the Job's Complete condition not reached" in render(r)


def test_the_result_round_trips_through_json():
    r = result()
    loaded = json.loads(json.dumps(asdict(r)))
    back = Result(
        loaded["nodes"], loaded["settings"], loaded["machine"], [Phase(**p) for p in loaded["phases"]]
    )
    assert render(back) == render(r)


def test_usage_over_a_phase():
    u = usage(10.0, 14.0, 8.0, [90_000_000, 120_000_000, 100_000_000])
    assert u == {"cpu_s": 4.0, "cpu_pct": 50.0, "rss_mb": 100.0, "rss_peak_mb": 120.0}
    assert usage_text(u) == "RSS 100 MB (peak 120), CPU 4.0 s (50 %)"
    assert usage(1.0, 1.0, 0.0, [])["cpu_pct"] == 0.0 and usage_text({}) == ""


def test_the_shared_table_without_a_side_column_is_the_deployment_benchmarks():
    lines = table_lines([("a", "1 s", "< 2 s", True), ("b", "", "", None)])
    assert lines[0] == f"{'measurement':52} {'value':22} {'target':10} met"
    assert lines[2] == f"{'a':52} {'1 s':22} {'< 2 s':10} yes"
    assert lines[3] == f"{'b':52} {'':22} {'':10} "


def pod(name: str, node: str, phase: str = "Running", ready: bool = True, terminating: bool = False) -> dict:
    meta = {"name": name, **({"deletionTimestamp": "2026-12-02T08:00:00Z"} if terminating else {})}
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {
        "metadata": meta,
        "spec": {"nodeName": node},
        "status": {"phase": phase, "conditions": conditions},
    }


def test_only_running_ready_pods_not_being_deleted_count():
    pods = [
        pod("a", "n1"),
        pod("b", "n1"),
        pod("c", "n2", ready=False),
        pod("d", "n3", phase="Pending", ready=False),
        pod("e", "n4", terminating=True),
        pod("f", "lone-0"),
    ]
    assert nodes_with_ready_pod(pods) == {"n1", "lone-0"}
    assert serving_elsewhere(pods, "lone-0") == 2
    assert serving_elsewhere(pods, "") == 3


def test_the_unreachable_taint_counts_only_with_the_noexecute_effect():
    key = "node.kubernetes.io/unreachable"
    node = {"spec": {"taints": [{"key": key, "effect": "NoSchedule"}]}}
    assert not has_taint(node, key, "NoExecute")
    node["spec"]["taints"].append({"key": key, "effect": "NoExecute", "timeAdded": "2026-12-02T08:00:00Z"})
    assert has_taint(node, key, "NoExecute") and not has_taint({"spec": {}}, key, "NoExecute")


def test_the_job_rows_say_where_its_time_went():
    rows = {name: value for name, value, _, _ in judge(result())}
    assert rows["  pod create -> Running p50 / p99"] == "1.20 / 3.40 s"
    assert rows["  pod Running -> Succeeded p50 / p99"] == "1.10 / 2.00 s"
    assert rows["  slots busy (pod lifetimes / 50 x duration)"] == "72 %"
    assert rows["  writes per pod (pod watch events)"] == "5.0"


def test_a_pod_timeline_counts_what_holds_a_jobs_parallelism():
    t = PodTimeline()
    t.seen({"metadata": {"name": "a"}}, 0.0)  # just created: no status yet
    t.seen(pod("b", "n1", phase="Pending", ready=False), 0.5)
    t.seen(pod("a", "n1"), 1.0)
    assert t.unfinished == {"a", "b"} and t.most_unfinished == 2
    t.seen(pod("a", "n1", phase="Succeeded", ready=False), 3.0)
    t.seen(pod("b", "n1", phase="Succeeded", ready=False), 3.5)  # finished between two events
    t.seen(pod("c", "n2", phase="Pending", ready=False, terminating=True), 4.0)
    t.seen(pod("d", "n2", phase="Pending", ready=False), 4.0, deleted=True)
    assert t.unfinished == set() and t.most_unfinished == 2
    summary = t.summary(parallelism=2, seconds=4.0)
    assert summary["create_to_running_p50"] == 1.0 and summary["create_to_running_p99"] == 3.0
    assert summary["running_to_finished_p50"] == 0.0 and summary["running_to_finished_p99"] == 2.0
    assert summary["busy_pct"] == 100 * (3.0 + 3.0) / (2 * 4.0)
    assert summary["pods"] == 4 and summary["most_unfinished"] == 2
    assert summary["events_per_pod"] == 7 / 4  # seven events for four pods


def test_a_job_is_finished_by_its_complete_or_failed_condition():
    job = {"status": {"conditions": [{"type": "Complete", "status": "False"}]}}
    assert finished_condition(job) is None
    job["status"]["conditions"] = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    assert finished_condition(job) == "Failed"
    assert finished_condition({}) is None
    assert not job_started({"status": {"active": 0}}) and job_started({"status": {"succeeded": 1}})


def test_workloads_run_the_local_image_without_pulling():
    body = workload("bench-job", command=["sh", "-c", "sleep 1; exit 0"], replicas=3)
    [container] = body["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "kubelite/whoami:1.0" and container["imagePullPolicy"] == "IfNotPresent"
    assert body["spec"]["selector"]["matchLabels"] == body["spec"]["template"]["metadata"]["labels"]
    assert body["spec"]["replicas"] == 3


def test_the_committed_result_renders_as_recorded():
    results = Path(__file__).resolve().parents[2] / "bench" / "results"
    recorded = json.loads((results / "2026-12-02-workloads-100-nodes.json").read_text())
    r = Result(recorded["nodes"], recorded["settings"], recorded["machine"])
    r.phases = [Phase(**p) for p in recorded["phases"]]
    assert render(r) + "\n" == (results / "2026-12-02-workloads-100-nodes.txt").read_text()
    assert all(met is not False for *_, met in judge(r))
