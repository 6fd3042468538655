"""The CronJob controller's sync on the fake API, with the fake clock driving the schedule."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from controller.cronjob import CronJobController
from controller.cronjob.jobs import SCHEDULED_TIMESTAMP_ANNOTATION, go_rfc3339, job_name
from controller.cronjob.schedule import Missed, most_recent_schedule_time, next_schedule_delay
from kubelite.cron import parse_standard
from kubelite.objects import Object, rfc3339
from kubelite.resources import CRONJOBS, EVENTS, JOBS
from tests.fakeapi import START, FakeApi

KEY = "default/tick"


def minutes(moment: dt.datetime) -> int:
    return int(moment.timestamp()) // 60


def cronjob(schedule: str = "*/1 * * * *", **spec: Any) -> Object:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "tick", "namespace": "default"},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {
                "metadata": {"labels": {"app": "tick"}},
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "c", "image": "busybox", "command": ["true"]}],
                        }
                    }
                },
            },
            **spec,
        },
    }


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def cjc(api: FakeApi) -> CronJobController:
    return api.controller(CronJobController)


def sync(api: FakeApi, cjc: CronJobController) -> None:
    api.run(cjc.sync(KEY))


def jobs(api: FakeApi) -> list[str]:
    return sorted(j["metadata"]["name"] for j in api.items(JOBS))


def events(api: FakeApi, reason: str | None = None) -> list[str]:
    found = sorted(api.items(EVENTS), key=lambda e: e["metadata"]["creationTimestamp"])
    return [f"{e['reason']}: {e['message']}" for e in found if reason in (None, e["reason"])]


def status(api: FakeApi) -> Object:
    return api.get(CRONJOBS, "tick").get("status") or {}


def finish(api: FakeApi, name: str, kind: str = "Complete") -> None:
    """Play the Job controller: the Job ran to its end."""
    job = api.get(JOBS, name)
    now = rfc3339(api.clock.now())
    job["status"] = {
        "conditions": [{"type": kind, "status": "True", "lastTransitionTime": now}],
        "startTime": job["metadata"]["creationTimestamp"],
    }
    if kind == "Complete":
        job["status"]["completionTime"] = now
        job["status"]["succeeded"] = 1
    else:
        job["status"]["failed"] = 1
    api.run(api.client.update(JOBS, job, subresource="status"))


def test_a_job_is_created_at_each_scheduled_minute_and_the_queue_comes_back_then(api, cjc):
    api.create(CRONJOBS, cronjob())
    sync(api, cjc)
    assert jobs(api) == []
    assert api.clock.pending() == [pytest.approx(60.1)]  # requeued for 00:01:00 (plus 100 ms)

    api.clock.advance(60.1)
    assert len(cjc.queue) == 1  # the timer put the key back
    sync(api, cjc)
    due = START + dt.timedelta(minutes=1)
    name = f"tick-{minutes(due)}"
    assert jobs(api) == [name]
    job = api.get(JOBS, name)
    assert job["metadata"]["annotations"][SCHEDULED_TIMESTAMP_ANNOTATION] == "2026-01-01T00:01:00Z"
    assert job["metadata"]["labels"]["app"] == "tick"
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("CronJob", "tick", True)
    st = status(api)
    assert [ref["name"] for ref in st["active"]] == [name]
    assert st["active"][0]["kind"] == "Job" and st["active"][0]["apiVersion"] == "batch/v1"
    assert st["lastScheduleTime"] == "2026-01-01T00:01:00Z"
    assert events(api, "SuccessfulCreate") == [f"SuccessfulCreate: Created job {name}"]

    sync(api, cjc)  # same minute again: nothing new
    assert jobs(api) == [name]


def test_missed_runs_start_only_the_most_recent_one(api, cjc):
    api.create(CRONJOBS, cronjob())
    api.clock.advance(5 * 60 + 10)  # the controller was away for 00:01 .. 00:05
    sync(api, cjc)
    assert jobs(api) == [job_name({"metadata": {"name": "tick"}}, START + dt.timedelta(minutes=5))]
    assert events(api, "TooManyMissedTimes") == []


def test_more_than_a_hundred_missed_runs_warn_and_still_start_the_latest(api, cjc):
    api.create(CRONJOBS, cronjob())
    api.clock.advance(200 * 60 + 5)
    sync(api, cjc)
    assert jobs(api) == [f"tick-{minutes(START) + 200}"]
    assert events(api, "TooManyMissedTimes") == [
        "TooManyMissedTimes: too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
        "or check clock skew"
    ]


def test_starting_deadline_skips_a_run_that_is_too_late_and_takes_one_in_time(api, cjc):
    api.create(CRONJOBS, cronjob("*/5 * * * *", startingDeadlineSeconds=30))
    api.clock.advance(6 * 60)  # 00:05 passed 60 s ago: older than the deadline
    sync(api, cjc)
    assert jobs(api) == []
    assert api.clock.pending()[-1] == pytest.approx(4 * 60 + 0.1)  # back at 00:10

    api.clock.advance(4 * 60 + 20)  # 00:10:20, 20 s late: within 30 s
    sync(api, cjc)
    assert jobs(api) == [f"tick-{minutes(START) + 10}"]


def test_forbid_skips_a_run_while_the_last_is_active(api, cjc):
    api.create(CRONJOBS, cronjob(concurrencyPolicy="Forbid"))
    api.clock.advance(60)
    sync(api, cjc)
    first = f"tick-{minutes(START) + 1}"
    api.clock.advance(60)
    sync(api, cjc)
    assert jobs(api) == [first]
    assert events(api, "JobAlreadyActive") == [
        "JobAlreadyActive: Not starting job because prior execution is running and concurrency policy "
        "is Forbid"
    ]
    finish(api, first)
    api.clock.advance(60)
    sync(api, cjc)
    assert jobs(api) == [first, f"tick-{minutes(START) + 3}"]
    assert events(api, "SawCompletedJob") == [
        f"SawCompletedJob: Saw completed job: {first}, status: Complete"
    ]


def test_replace_deletes_the_active_job_and_starts_the_new_one(api, cjc):
    api.create(CRONJOBS, cronjob(concurrencyPolicy="Replace"))
    api.clock.advance(60)
    sync(api, cjc)
    first, second = f"tick-{minutes(START) + 1}", f"tick-{minutes(START) + 2}"
    api.clock.advance(60)
    sync(api, cjc)
    assert jobs(api) == [second]
    assert [ref["name"] for ref in status(api)["active"]] == [second]
    assert events(api, "SuccessfulDelete") == [f"SuccessfulDelete: Deleted job {first}"]


def test_allow_runs_jobs_side_by_side(api, cjc):
    api.create(CRONJOBS, cronjob())
    for _ in range(3):
        api.clock.advance(60)
        sync(api, cjc)
    assert len(status(api)["active"]) == 3


def test_history_limits_delete_the_oldest_finished_jobs(api, cjc):
    api.create(CRONJOBS, cronjob(successfulJobsHistoryLimit=2, failedJobsHistoryLimit=1))
    names = []
    for i in range(5):
        api.clock.advance(60)
        sync(api, cjc)
        names.append(f"tick-{minutes(START) + i + 1}")
        finish(api, names[-1], "Failed" if i in (1, 3) else "Complete")
    sync(api, cjc)
    # successes: 0, 2, 4 -> keep 2 and 4; failures: 1, 3 -> keep 3
    assert jobs(api) == sorted([names[2], names[3], names[4]])
    deleted = events(api, "SuccessfulDelete")
    assert f"SuccessfulDelete: Deleted job {names[0]}" in deleted
    assert f"SuccessfulDelete: Deleted job {names[1]}" in deleted
    assert "active" not in status(api)
    assert status(api)["lastSuccessfulTime"]


def test_a_suspended_cronjob_starts_nothing_until_resumed(api, cjc):
    api.create(CRONJOBS, cronjob(suspend=True))
    api.clock.advance(120)
    sync(api, cjc)
    assert jobs(api) == []
    cj = api.get(CRONJOBS, "tick")
    cj["spec"]["suspend"] = False
    api.run(api.client.update(CRONJOBS, cj))
    sync(api, cjc)
    assert jobs(api) == [f"tick-{minutes(START) + 2}"]


def test_time_zone_decides_the_wall_clock_and_the_annotation(api, cjc):
    # 09:00 in Tokyo is 00:00 UTC; the CronJob is created at exactly 00:00 UTC on 2026-01-01
    api.create(CRONJOBS, cronjob("0 9 * * *", timeZone="Asia/Tokyo"))
    sync(api, cjc)
    assert api.clock.pending() == [pytest.approx(24 * 3600 + 0.1)]
    api.clock.advance(24 * 3600 + 1)
    sync(api, cjc)
    job = api.get(JOBS, f"tick-{minutes(START) + 24 * 60}")
    assert job["metadata"]["annotations"][SCHEDULED_TIMESTAMP_ANNOTATION] == "2026-01-02T09:00:00+09:00"


def test_a_job_that_vanished_leaves_status_active(api, cjc):
    api.create(CRONJOBS, cronjob("0 * * * *"))
    api.clock.advance(3600)
    sync(api, cjc)
    name = f"tick-{minutes(START) + 60}"
    api.run(api.client.delete(JOBS, name, "default"))
    sync(api, cjc)
    assert "active" not in status(api)
    assert events(api, "MissingJob") == [f"MissingJob: Active job went missing: {name}"]


def test_a_job_made_by_hand_from_the_cronjob_is_reported_not_adopted(api, cjc):
    api.create(CRONJOBS, cronjob("0 * * * *"))
    cj = api.get(CRONJOBS, "tick")
    manual = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "manual",
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "CronJob", "name": "tick", "uid": cj["metadata"]["uid"],
                 "controller": True}
            ],
        },
        "spec": cj["spec"]["jobTemplate"]["spec"],
    }  # fmt: skip
    api.create(JOBS, manual)
    sync(api, cjc)
    assert events(api, "UnexpectedJob") == [
        "UnexpectedJob: Saw a job that the controller did not create or forgot: manual"
    ]
    assert "active" not in status(api)


def test_an_unparseable_schedule_already_stored_is_reported_not_retried(api, cjc):
    api.create(CRONJOBS, cronjob())

    # an object stored before validation existed: write the store through the registry unchecked
    def broken(current: Object) -> Object:
        return {**current, "spec": {**current["spec"], "schedule": "61 * * * *"}}

    api.force_update(CRONJOBS, "tick", broken)
    api.deliver()
    api.clock.advance(120)
    sync(api, cjc)
    assert jobs(api) == []
    assert events(api, "UnparseableSchedule") == [
        'UnparseableSchedule: unparseable schedule: "61 * * * *" : end of range (61) above maximum (59): 61'
    ]


def test_most_recent_schedule_time_counts_missed_runs_like_kubernetes():
    schedule = parse_standard("0 * * * *")
    cj = {"metadata": {"creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {}}
    now = START + dt.timedelta(minutes=30)
    assert most_recent_schedule_time(cj, now, schedule, True).most_recent is None
    due = most_recent_schedule_time(cj, START + dt.timedelta(hours=1, minutes=5), schedule, True)
    assert (due.most_recent, due.missed) == (START + dt.timedelta(hours=1), Missed.NONE)
    due = most_recent_schedule_time(cj, START + dt.timedelta(hours=3, minutes=5), schedule, True)
    assert (due.most_recent, due.missed) == (START + dt.timedelta(hours=3), Missed.FEW)
    assert next_schedule_delay(cj, now, schedule) == pytest.approx(30 * 60 + 0.1)


def test_scheduled_timestamps_are_written_as_go_writes_rfc3339():
    moment = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)
    assert go_rfc3339(moment) == "2026-07-01T12:00:00Z"
    from kubelite.cron import load_location

    assert go_rfc3339(moment.astimezone(load_location("America/New_York"))) == "2026-07-01T08:00:00-04:00"
    assert go_rfc3339(moment.astimezone(load_location("Asia/Kolkata"))) == "2026-07-01T17:30:00+05:30"


def test_a_wall_time_skipped_by_daylight_saving_runs_the_next_day(api, cjc):
    # New York springs forward on 2026-03-08 at 02:00 EST: 02:30 does not exist that day
    api.clock.advance((dt.datetime(2026, 3, 8, 5, 0, tzinfo=dt.UTC) - START).total_seconds())
    api.create(CRONJOBS, cronjob("30 2 * * *", timeZone="America/New_York"))
    sync(api, cjc)
    assert api.clock.pending()[-1] == pytest.approx(25.5 * 3600 + 0.1)  # 2026-03-09 02:30 EDT
    api.clock.advance(25.5 * 3600 + 0.1)
    sync(api, cjc)
    (job,) = api.items(JOBS)
    assert job["metadata"]["annotations"][SCHEDULED_TIMESTAMP_ANNOTATION] == "2026-03-09T02:30:00-04:00"


def test_changing_the_schedule_requeues_for_the_new_next_time(api, cjc):
    api.create(CRONJOBS, cronjob("0 * * * *"))
    sync(api, cjc)
    cj = api.get(CRONJOBS, "tick")
    cj["spec"]["schedule"] = "*/5 * * * *"
    api.run(api.client.update(CRONJOBS, cj))
    assert pytest.approx(5 * 60 + 0.1) in api.clock.pending()
