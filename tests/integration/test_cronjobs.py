"""CronJobs run by the real controller-manager (CronJob and Job controllers), scheduler and
apiserver on hollow nodes, driven by the real kubectl: a `*/1 * * * *` CronJob starts its Job a few
seconds after the minute, Forbid skips a run while one is active, Replace swaps the active Job,
history limits keep only the newest finished Jobs, `kubectl create job --from=cronjob/x` works,
and a bad schedule is a 422 naming spec.schedule.

Real minutes are slow, so every CronJob is created at once and the tests watch the same two minute
boundaries: the whole module waits at most about two minutes and a half.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ControlPlane, hollow_cluster
from tests.support import Kubectl, wait_until

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "kubelite/busybox:latest"
ON_TIME = 6.0  # seconds after the minute a Job must exist by (creationTimestamp has whole seconds)


def cronjob(name: str, command: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {
            "schedule": "*/1 * * * *",
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"labels": {"cronjob": name}},
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [
                                {"name": "main", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                                 "command": ["sh", "-c", command]}
                            ],
                        },
                    },
                }
            },
            **spec,
        },
    }  # fmt: skip


class CronCluster:
    def __init__(self, cp: ControlPlane, kubectl: Kubectl, created: dt.datetime):
        self.cp = cp
        self.kubectl = kubectl
        self.created = created
        # the first two scheduled minutes after every CronJob of the module exists
        self.m1 = created.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        self.m2 = self.m1 + dt.timedelta(minutes=1)

    def jobs(self, cronjob: str) -> dict[str, dict[str, Any]]:
        """The Jobs a CronJob controls, by name."""
        out = {}
        for job in self.kubectl.get_json("jobs")["items"]:
            refs = job["metadata"].get("ownerReferences") or []
            if any(r.get("kind") == "CronJob" and r.get("name") == cronjob for r in refs):
                out[job["metadata"]["name"]] = job
        return out

    def events(self, cronjob: str, reason: str) -> list[str]:
        items = self.kubectl.get_json("events", "--field-selector", f"involvedObject.name={cronjob}")["items"]
        return [e["message"] for e in items if e.get("reason") == reason]

    def until(self, moment: dt.datetime, what: str, probe: Any, slack: float = 40.0) -> Any:
        """Wait for `probe` at most until `slack` seconds after `moment`."""
        timeout = (moment - dt.datetime.now(dt.UTC)).total_seconds() + slack
        return wait_until(probe, what, timeout=max(timeout, slack), interval=1.0)


def job_name(cronjob: str, moment: dt.datetime) -> str:
    return f"{cronjob}-{int(moment.timestamp()) // 60}"


def finished(job: dict[str, Any]) -> str | None:
    for cond in job.get("status", {}).get("conditions") or []:
        if cond["type"] in ("Complete", "Failed") and cond["status"] == "True":
            return str(cond["type"])
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[CronCluster]:
    with hollow_cluster(tmp_path_factory.mktemp("cronjobs"), nodes=2, controller_ready_timeout=60) as h:
        cp, kubectl = h.cp, h.kubectl
        # one CronJob made by `kubectl create cronjob` (a protobuf body), the others applied
        kubectl.run(
            "create", "cronjob", "ontime", f"--image={IMAGE}", "--schedule=*/1 * * * *",
            "--", "sh", "-c", "sleep 1; exit 0",
        )  # fmt: skip
        manifests = [
            cronjob("forbid", "sleep 3600", concurrencyPolicy="Forbid"),
            cronjob("replace", "sleep 3600", concurrencyPolicy="Replace"),
            cronjob("history", "sleep 1; exit 0", successfulJobsHistoryLimit=1),
            cronjob("failing", "exit 3", failedJobsHistoryLimit=1),
        ]
        kubectl.run("apply", "-f", "-", input="\n---\n".join(json.dumps(m) for m in manifests))
        newest = max(
            dt.datetime.fromisoformat(c["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
            for c in kubectl.get_json("cronjobs")["items"]
        )
        yield CronCluster(cp, kubectl, newest)


def test_a_bad_schedule_is_refused_naming_the_field_and_creates_nothing(cluster):
    result = cluster.kubectl.run(
        "create", "cronjob", "bad", f"--image={IMAGE}", "--schedule=61 * * * *", check=False
    )
    assert result.returncode != 0
    assert (
        'spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61'
        in result.stderr
    )
    bad = cluster.kubectl.run("get", "cronjob", "bad", check=False)
    assert 'cronjobs.batch "bad" not found' in bad.stderr


def test_an_every_minute_cronjob_starts_its_job_on_time(cluster):
    name = job_name("ontime", cluster.m1)
    job = cluster.until(cluster.m1, f"job {name}", lambda: cluster.jobs("ontime").get(name))
    created = dt.datetime.fromisoformat(job["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    assert 0 <= (created - cluster.m1).total_seconds() <= ON_TIME, (created, cluster.m1)
    stamp = cluster.m1.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == stamp
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("CronJob", "ontime", True)
    assert f"Created job {name}" in cluster.events("ontime", "SuccessfulCreate")
    table = cluster.kubectl.run("get", "cronjob", "ontime").stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "SCHEDULE",
        "TIMEZONE",
        "SUSPEND",
        "ACTIVE",
        "LAST",
        "SCHEDULE",
        "AGE",
    ]
    assert table[1].split()[:4] == ["ontime", "*/1", "*", "*"]
    cj = cluster.kubectl.get_json("cronjob", "ontime")
    assert cj["status"]["lastScheduleTime"] == stamp
    described = cluster.kubectl.run("describe", "cronjob", "ontime").stdout
    for line in ("Schedule:", "Concurrency Policy:", "Suspend:", "Last Schedule Time:", "SuccessfulCreate"):
        assert line in described, described
    assert "Allow" in described and f"Created job {name}" in described


def test_a_job_can_be_made_by_hand_from_a_cronjob(cluster):
    cluster.kubectl.run("create", "job", "by-hand", "--from=cronjob/forbid")
    job = cluster.kubectl.get_json("job", "by-hand")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    cj = cluster.kubectl.get_json("cronjob", "forbid")
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("CronJob", "forbid", cj["metadata"]["uid"])
    cluster.kubectl.run("delete", "job", "by-hand", "--cascade=background")


def test_forbid_skips_the_next_run_while_one_is_active(cluster):
    first, second = job_name("forbid", cluster.m1), job_name("forbid", cluster.m2)
    cluster.until(cluster.m1, f"job {first}", lambda: first in cluster.jobs("forbid"))
    skipped = "Not starting job because prior execution is running and concurrency policy is Forbid"
    cluster.until(
        cluster.m2, "JobAlreadyActive", lambda: skipped in cluster.events("forbid", "JobAlreadyActive")
    )
    assert second not in cluster.jobs("forbid")
    active = cluster.kubectl.get_json("cronjob", "forbid")["status"]["active"]
    assert [ref["name"] for ref in active] == [first]


def test_replace_deletes_the_running_job_for_the_new_one(cluster):
    first, second = job_name("replace", cluster.m1), job_name("replace", cluster.m2)
    cluster.until(
        cluster.m2, f"job {second} replacing {first}", lambda: set(cluster.jobs("replace")) == {second}
    )
    assert f"Deleted job {first}" in cluster.events("replace", "SuccessfulDelete")
    active = cluster.kubectl.get_json("cronjob", "replace")["status"]["active"]
    assert [ref["name"] for ref in active] == [second]


def test_history_limits_keep_only_the_newest_finished_jobs(cluster):
    newest_ok, newest_failed = job_name("history", cluster.m2), job_name("failing", cluster.m2)

    def kept(cronjob: str, newest: str, state: str) -> bool:
        jobs = cluster.jobs(cronjob)
        return list(jobs) == [newest] and finished(jobs[newest]) == state

    cluster.until(
        cluster.m2, "one Complete job left of history", lambda: kept("history", newest_ok, "Complete")
    )
    cluster.until(
        cluster.m2, "one Failed job left of failing", lambda: kept("failing", newest_failed, "Failed")
    )
    assert f"Deleted job {job_name('history', cluster.m1)}" in cluster.events("history", "SuccessfulDelete")
    cj = cluster.kubectl.get_json("cronjob", "history")
    assert cj["status"].get("lastSuccessfulTime")
    assert not cj["status"].get("active")


def test_the_example_applies(cluster):
    out = cluster.kubectl.run("apply", "-f", str(ROOT / "examples" / "cronjob.yaml")).stdout
    assert "cronjob.batch/hello created" in out
    cj = cluster.kubectl.get_json("cronjob", "hello")
    assert (cj["spec"]["concurrencyPolicy"], cj["spec"]["timeZone"]) == ("Forbid", "Etc/UTC")
    cluster.kubectl.run("delete", "cronjob", "hello")
