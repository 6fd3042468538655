"""The Job controller and the TTL-after-finished controller against the shared fake API and its
clock: completions and parallelism, back-off timing, backoffLimit, deadline, Indexed, suspend,
TTL."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from controller.job import JobController, TTLAfterFinishedController
from controller.job.backoff import backoff_delay
from controller.job.indexes import format_indexes, parse_indexes
from kubelite.objects import rfc3339
from kubelite.resources import EVENTS, JOBS, PODS
from tests.fakeapi import FakeApi

KEY = "default/pi"


def job(name: str = "pi", restart: str = "Never", **spec: Any) -> dict:
    template = {
        "spec": {"restartPolicy": restart, "containers": [{"name": "c", "image": "kubelite/whoami:1.0"}]}
    }
    return {"metadata": {"name": name}, "spec": {"template": template, **spec}}


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def jc(api: FakeApi) -> JobController:
    return api.controller(JobController)


def end_pod(api: FakeApi, pod: dict, phase: str, restarts: int = 0) -> None:
    """Play kubelet: the pod's one container ended now (Succeeded: exit 0; Failed: exit 1)."""
    now = rfc3339(api.clock.now())
    code = 0 if phase == "Succeeded" else 1
    status = {
        "phase": phase,
        "containerStatuses": [{
            "name": "c", "restartCount": restarts, "ready": False,
            "state": {"terminated": {"exitCode": code, "finishedAt": now, "startedAt": now}},
        }],
    }  # fmt: skip
    set_status(api, pod, status)


def set_status(api: FakeApi, pod: dict, status: dict) -> None:
    api.force_update(PODS, pod["metadata"]["name"], lambda cur: {**cur, "status": status})
    api.deliver()


def pods(api: FakeApi, phase: str | None = None) -> list[dict]:
    out = api.items(PODS)
    return [p for p in out if phase is None or (p.get("status") or {}).get("phase", "Pending") == phase]


def active(api: FakeApi) -> list[dict]:
    return [p for p in api.live_pods() if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]


def status(api: FakeApi, name: str = "pi") -> dict:
    return api.get(JOBS, name)["status"]


def conditions(api: FakeApi, name: str = "pi") -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c.get("reason", "")) for c in status(api, name).get("conditions") or []}


def events(api: FakeApi) -> list[tuple[str, str]]:
    return [(e["reason"], e["message"]) for e in api.items(EVENTS)]


def sync(api: FakeApi, jc: JobController, key: str = KEY) -> None:
    api.run(jc.sync(key))


def test_three_completions_two_at_a_time_then_complete(api, jc):
    api.create(JOBS, job(completions=3, parallelism=2))
    sync(api, jc)
    assert len(active(api)) == 2
    first = status(api)
    assert first["active"] == 2 and first["startTime"] == "2026-01-01T00:00:00Z"
    sync(api, jc)
    assert len(api.live_pods()) == 2, "a second sync creates nothing more"
    end_pod(api, active(api)[0], "Succeeded")
    sync(api, jc)
    assert len(active(api)) == 2 and status(api)["succeeded"] == 1
    for pod in active(api):
        end_pod(api, pod, "Succeeded")
    api.clock.advance(7)
    sync(api, jc)
    assert active(api) == [], "never more pods than completions"
    st = status(api)
    assert st["succeeded"] == 3 and "active" not in st
    assert conditions(api) == {
        "SuccessCriteriaMet": ("True", "CompletionsReached"),
        "Complete": ("True", "CompletionsReached"),
    }
    assert st["completionTime"] == "2026-01-01T00:00:07Z"
    assert ("Completed", "Job completed") in events(api)
    assert sum(1 for r, _ in events(api) if r == "SuccessfulCreate") == 3
    sync(api, jc)
    assert len(pods(api)) == 3, "a finished Job is left alone"


def test_defaults_nil_completions_means_any_success(api, jc):
    created = api.create(JOBS, job(parallelism=2))
    assert "completions" not in created["spec"] and created["spec"]["parallelism"] == 2
    sync(api, jc)
    first, second = active(api)
    end_pod(api, first, "Succeeded")
    sync(api, jc)
    assert len(active(api)) == 1, "after one success the running pods are left to finish, none added"
    assert "Complete" not in conditions(api)
    end_pod(api, second, "Succeeded")
    sync(api, jc)
    assert conditions(api)["Complete"] == ("True", "CompletionsReached")


def test_failed_pods_are_replaced_after_an_exponential_back_off(api, jc):
    api.create(JOBS, job(backoffLimit=6))
    sync(api, jc)
    delays = []
    for _ in range(4):
        (pod,) = active(api)
        end_pod(api, pod, "Failed")
        sync(api, jc)
        assert active(api) == [], "no replacement before the back-off"
        waited = 0
        while not active(api):
            api.clock.advance(1)
            waited += 1
            sync(api, jc)
        delays.append(waited)
    assert delays == [10, 20, 40, 80]
    assert status(api)["failed"] == 4
    assert [backoff_delay(n) for n in (1, 2, 7, 20)] == [10, 20, 600, 600]


def test_backoff_limit_fails_the_job_with_backoff_limit_exceeded(api, jc):
    api.create(JOBS, job(backoffLimit=1, parallelism=2, completions=4))
    sync(api, jc)
    first, second = active(api)
    end_pod(api, first, "Failed")
    sync(api, jc)
    assert "FailureTarget" not in conditions(api), "one failure is within backoffLimit 1"
    end_pod(api, second, "Failed")
    api.clock.advance(30)
    sync(api, jc)
    assert conditions(api)["Failed"] == ("True", "BackoffLimitExceeded")
    assert conditions(api)["FailureTarget"] == ("True", "BackoffLimitExceeded")
    cond = next(c for c in status(api)["conditions"] if c["type"] == "Failed")
    assert cond["message"] == "Job has reached the specified backoff limit"
    assert status(api)["failed"] == 2 and "completionTime" not in status(api)
    assert ("BackoffLimitExceeded", "Job has reached the specified backoff limit") in events(api)
    assert active(api) == []


def test_restarts_count_against_the_backoff_limit_with_on_failure(api, jc):
    api.create(JOBS, job(restart="OnFailure", backoffLimit=2))
    sync(api, jc)
    (pod,) = active(api)
    set_status(api, pod, {"phase": "Running", "containerStatuses": [{"name": "c", "restartCount": 2}]})
    sync(api, jc)
    assert conditions(api)["FailureTarget"] == ("True", "BackoffLimitExceeded")
    assert api.live_pods() == [], "the running pod is deleted"
    api.finish_deletions()
    sync(api, jc)
    assert conditions(api)["Failed"] == ("True", "BackoffLimitExceeded")


def test_active_deadline_deletes_the_pods_and_fails_the_job(api, jc):
    api.create(JOBS, job(activeDeadlineSeconds=30, parallelism=2, completions=2))
    sync(api, jc)
    assert jc.queue and api.clock.pending()[-1] == pytest.approx(30)
    api.clock.advance(30)
    sync(api, jc)
    assert conditions(api) == {"FailureTarget": ("True", "DeadlineExceeded")}
    assert api.live_pods() == [] and status(api)["terminating"] == 2
    api.finish_deletions()
    sync(api, jc)
    assert conditions(api)["Failed"] == ("True", "DeadlineExceeded")
    assert ("DeadlineExceeded", "Job was active longer than specified deadline") in events(api)


def test_indexed_pods_carry_their_index_and_completed_indexes_are_tracked(api, jc):
    api.create(JOBS, job(completions=5, parallelism=3, completionMode="Indexed"))
    sync(api, jc)
    running = sorted(active(api), key=lambda p: p["metadata"]["name"])
    indexes = []
    for pod in running:
        index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == index
        assert pod["metadata"]["name"].startswith(f"pi-{index}-")
        assert pod["spec"]["hostname"] == f"pi-{index}"
        assert pod["spec"]["containers"][0]["env"] == [{
            "name": "JOB_COMPLETION_INDEX",
            "valueFrom": {"fieldRef": {
                "apiVersion": "v1",
                "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']",
            }},
        }]  # fmt: skip
        indexes.append(int(index))
    assert indexes == [0, 1, 2]
    by_index = {
        int(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]): p for p in running
    }
    end_pod(api, by_index[0], "Succeeded")
    end_pod(api, by_index[2], "Succeeded")
    sync(api, jc)
    assert status(api)["completedIndexes"] == "0,2"
    now_running = {
        p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in active(api)
    }
    assert now_running == {"1", "3", "4"}
    for pod in active(api):
        end_pod(api, pod, "Succeeded")
    sync(api, jc)
    assert status(api)["completedIndexes"] == "0-4" and status(api)["succeeded"] == 5
    assert conditions(api)["Complete"] == ("True", "CompletionsReached")


def test_suspend_deletes_active_pods_and_resume_restarts_the_clock(api, jc):
    api.create(JOBS, job(completions=2, parallelism=2))
    sync(api, jc)
    assert len(active(api)) == 2
    current = api.get(JOBS, "pi")
    current["spec"]["suspend"] = True
    api.run(api.client.update(JOBS, current))
    api.clock.advance(5)
    sync(api, jc)
    assert api.live_pods() == []
    assert conditions(api) == {"Suspended": ("True", "JobSuspended")}
    assert ("Suspended", "Job suspended") in events(api)
    api.finish_deletions()
    sync(api, jc)
    assert api.live_pods() == [], "a suspended Job creates nothing"
    current = api.get(JOBS, "pi")
    current["spec"]["suspend"] = False
    api.run(api.client.update(JOBS, current))
    api.clock.advance(5)
    sync(api, jc)
    assert len(active(api)) == 2
    assert conditions(api) == {"Suspended": ("False", "JobResumed")}
    assert status(api)["startTime"] == "2026-01-01T00:00:10Z"


def test_a_job_created_suspended_never_starts(api, jc):
    api.create(JOBS, job(suspend=True))
    sync(api, jc)
    assert api.live_pods() == [] and "startTime" not in status(api)
    assert conditions(api) == {"Suspended": ("True", "JobSuspended")}


def test_expectations_stop_a_second_sync_from_doubling_creates(api, jc):
    api.create(JOBS, job(completions=4, parallelism=4))
    api.hold_events()
    sync(api, jc)
    sync(api, jc)
    assert len(api.live_pods()) == 4
    api.deliver(force=True)
    assert jc.expectations.satisfied(KEY)


def test_ttl_after_finished_deletes_the_job_in_the_background(api, jc):
    ttl = TTLAfterFinishedController(api.context(argparse.Namespace()))
    ttl.queue = api.work_queue()
    api.create(JOBS, job(ttlSecondsAfterFinished=60))
    sync(api, jc)
    api.run(ttl.sync(KEY))
    assert api.get(JOBS, "pi"), "a running Job has no TTL running"
    end_pod(api, active(api)[0], "Succeeded")
    sync(api, jc)
    api.clock.advance(59)
    api.run(ttl.sync(KEY))
    assert api.get(JOBS, "pi")
    assert api.clock.pending() == [1.0]
    api.clock.advance(1)
    api.run(ttl.sync(KEY))
    assert [j["metadata"]["name"] for j in api.items(JOBS)] == []
    assert ("delete", "jobs", "pi") in api.client.calls


def test_completed_indexes_text():
    assert format_indexes([0, 1, 2, 4]) == "0-2,4"
    assert format_indexes([3, 4, 7]) == "3,4,7"
    assert format_indexes([]) == ""
    assert parse_indexes("0-2,4,9", 5) == {0, 1, 2, 4}


def test_a_deleted_succeeded_pod_is_still_counted(api, jc):
    api.create(JOBS, job(completions=2, parallelism=1))
    sync(api, jc)
    (first,) = active(api)
    end_pod(api, first, "Succeeded")
    sync(api, jc)
    assert status(api)["succeeded"] == 1
    api.run(api.client.delete(PODS, first["metadata"]["name"], "default", grace_period_seconds=0))
    api.finish_deletions()
    sync(api, jc)
    assert status(api)["succeeded"] == 1 and len(active(api)) == 1, "one more pod, not two"
