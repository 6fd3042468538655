"""batch/v1 CronJobs in the apiserver: defaults, validation wording, columns, protobuf bodies."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from apiserver.kinds.cronjobs import CronJobStrategy
from apiserver.protobuf import MAGIC, decode_envelope
from kubelite.client import ApiError
from kubelite.objects import Object
from kubelite.resources import CRONJOBS
from tests.fakeapi import START, FakeApi
from tests.unit.test_apiserver_protobuf import entry, envelope, field


def cronjob(name: str = "tick", **spec: Any) -> Object:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {
            "schedule": "*/1 * * * *",
            "jobTemplate": {
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "OnFailure",
                            "containers": [{"name": "c", "image": "busybox:1.36"}],
                        }
                    }
                }
            },
            **spec,
        },
    }


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


def refused(api: FakeApi, obj: Object) -> str:
    with pytest.raises(ApiError) as err:
        api.create(CRONJOBS, obj)
    assert err.value.code == 422
    assert api.items(CRONJOBS) == []  # nothing half-created
    return str(err.value.status["message"])


def test_defaults_are_kubernetes_own(api):
    created = api.create(CRONJOBS, cronjob())
    spec = created["spec"]
    assert spec["concurrencyPolicy"] == "Allow"
    assert spec["suspend"] is False
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 1)
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["dnsPolicy"] == "ClusterFirst" and pod["terminationGracePeriodSeconds"] == 30
    assert pod["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert "backoffLimit" not in spec["jobTemplate"]["spec"]  # Job defaults come with each Job
    assert created["status"] == {}


def test_explicit_zero_limits_and_values_are_kept(api):
    spec = {"successfulJobsHistoryLimit": 0, "failedJobsHistoryLimit": 0, "suspend": True}
    created = api.create(CRONJOBS, cronjob(**spec))
    assert {k: created["spec"][k] for k in spec} == spec


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"schedule": "*/1 * * *"},
            'spec.schedule: Invalid value: "*/1 * * *": expected exactly 5 fields, found 4: [*/1 * * *]',
        ),
        (
            {"schedule": "61 * * * *"},
            'spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61',
        ),
        ({"schedule": ""}, "spec.schedule: Required value"),
        (
            {"schedule": "TZ=UTC 0 * * * *"},
            'spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, '
            "use timeZone field instead",
        ),
        (
            {"timeZone": "Mars/Olympus"},
            'spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus',
        ),
        ({"timeZone": ""}, 'spec.timeZone: Invalid value: "": timeZone must be nil or non-empty string'),
        (
            {"timeZone": "Local"},
            'spec.timeZone: Invalid value: "Local": timeZone must be an explicit time zone as defined in '
            "https://www.iana.org/time-zones",
        ),
        (
            {"concurrencyPolicy": "Sometimes"},
            'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", '
            '"Replace"',
        ),
        (
            {"startingDeadlineSeconds": -1},
            "spec.startingDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            {"successfulJobsHistoryLimit": -1},
            "spec.successfulJobsHistoryLimit: Invalid value: -1: must be greater than or equal to 0",
        ),
    ],
)
def test_bad_specs_are_422_naming_the_field(api, spec, message):
    assert message in refused(api, cronjob(**spec))


def test_the_job_template_is_validated_as_a_jobs_spec(api):
    bad = cronjob()
    bad["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    assert "spec.jobTemplate.spec.template.spec.restartPolicy" in refused(api, bad)
    bad = cronjob()
    bad["spec"]["jobTemplate"]["spec"]["selector"] = {"matchLabels": {"a": "b"}}
    assert "spec.jobTemplate.spec.selector: Invalid value" in refused(api, bad)
    bad = cronjob()
    bad["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"] = []
    assert "spec.jobTemplate.spec.template.spec.containers: Required value" in refused(api, bad)


def test_names_longer_than_52_characters_are_refused_on_create(api):
    name = "n" * 53
    assert f'metadata.name: Invalid value: "{name}": must be no more than 52 characters' in refused(
        api, cronjob(name)
    )
    api.create(CRONJOBS, cronjob("n" * 52))


def test_a_valid_time_zone_is_accepted(api):
    assert api.create(CRONJOBS, cronjob(timeZone="Europe/Berlin"))["spec"]["timeZone"] == "Europe/Berlin"


def test_kubectl_get_columns_and_cells():
    strategy = CronJobStrategy(namespaced=True)
    names = [c.name for c in strategy.columns]
    assert names == ["Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age",
                     "Containers", "Images", "Selector"]  # fmt: skip
    assert [c.priority for c in strategy.columns][-3:] == [1, 1, 1]
    obj = cronjob(suspend=False)
    obj["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    obj["status"] = {"active": [{"name": "tick-1"}], "lastScheduleTime": "2026-01-01T00:04:00Z"}
    now = START + dt.timedelta(minutes=5)
    assert strategy.cells(obj, now) == [
        "tick", "*/1 * * * *", "<none>", "False", 1, "60s", "5m", "c", "busybox:1.36", "<none>",
    ]  # fmt: skip
    obj["spec"].pop("suspend")
    obj["spec"]["timeZone"] = "Asia/Tokyo"
    obj.pop("status")
    assert strategy.cells(obj, now)[2:6] == ["Asia/Tokyo", "<unset>", 0, "<none>"]


def kubectl_create_cronjob_body() -> bytes:
    """What `kubectl create cronjob tick --image=busybox --schedule='*/1 * * * *' -- date` sends
    (gogo-protobuf writes every non-pointer field, empty or not)."""
    empty_meta = field(1, "") + field(2, "") + field(3, "") + field(8, b"")
    container = field(1, "tick") + field(2, "busybox") + field(3, "date") + field(8, b"")
    pod_spec = field(2, container) + field(3, "OnFailure") + field(6, "")
    job_spec = field(6, field(1, empty_meta) + field(2, pod_spec)) + field(9, "")
    job_template = field(1, field(1, "tick") + field(8, b"")) + field(2, job_spec)
    spec = field(1, "*/1 * * * *") + field(3, "") + field(5, job_template)
    meta = field(1, "tick") + field(2, "") + field(3, "") + field(8, b"") + entry(11, "k", "v")
    return envelope("batch/v1", "CronJob", field(1, meta) + field(2, spec) + field(3, b""))


def test_kubectl_create_cronjob_protobuf_body_decodes_and_is_accepted(api):
    body = kubectl_create_cronjob_body()
    assert body.startswith(MAGIC)
    obj = decode_envelope(body)
    assert obj["spec"] == {
        "schedule": "*/1 * * * *",
        "jobTemplate": {
            "metadata": {"name": "tick"},
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "tick", "image": "busybox", "command": ["date"]}],
                             "restartPolicy": "OnFailure"}
                }
            },
        },
    }  # fmt: skip
    created = api.create(CRONJOBS, obj)
    assert created["spec"]["concurrencyPolicy"] == "Allow"


def test_cronjob_spec_pointer_fields_keep_explicit_zero_in_protobuf():
    spec = field(1, "@hourly") + field(2, 0) + field(4, 0) + field(6, 0) + field(7, 0)
    obj = decode_envelope(envelope("batch/v1", "CronJob", field(1, field(1, "z")) + field(2, spec)))
    assert obj["spec"] == {
        "schedule": "@hourly",
        "startingDeadlineSeconds": 0,
        "suspend": False,
        "successfulJobsHistoryLimit": 0,
        "failedJobsHistoryLimit": 0,
    }


def test_a_tz_prefix_may_stay_only_on_an_object_that_already_had_it(api):
    created = api.create(CRONJOBS, cronjob())
    strategy = CronJobStrategy(namespaced=True)
    legacy = {**created, "spec": {**created["spec"], "schedule": "TZ=UTC 0 * * * *"}}
    assert strategy.validate_update(legacy, legacy) == []
    both = {**legacy, "spec": {**legacy["spec"], "timeZone": "UTC"}}
    (err,) = strategy.validate_update(both, legacy)
    assert str(err) == (
        'spec.schedule: Invalid value: "TZ=UTC 0 * * * *": cannot use both timeZone field and TZ or CRON_TZ '
        "in schedule"
    )
    assert [e.field for e in strategy.validate_update(legacy, created)] == ["spec.schedule"]


def test_suspend_by_merge_patch_as_kubectl_patch_does(api):
    api.create(CRONJOBS, cronjob())
    patched = api.run(api.client.patch(CRONJOBS, "tick", {"spec": {"suspend": True}}, "default"))
    assert patched["spec"]["suspend"] is True
    assert patched["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["name"] == "c"


@pytest.mark.parametrize("zone", ["../etc/passwd", "America//New_York", "-Foo", "Europe/VeryLongCityNameX"])
def test_time_zone_names_outside_iana_rules_are_unknown(api, zone):
    assert f'spec.timeZone: Invalid value: "{zone}": unknown time zone {zone}' in refused(
        api, cronjob(timeZone=zone)
    )
