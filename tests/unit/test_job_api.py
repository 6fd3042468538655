"""batch/v1 Jobs in the apiserver: defaulting, the generated selector, validation with the real
wording, the immutable template, the `kubectl get jobs` row, and the protobuf body of
`kubectl create job`."""

from __future__ import annotations

import datetime as dt

import pytest

from apiserver.kinds.jobs import JobStrategy, default_job_spec, validate_job_spec, validate_job_template_spec
from apiserver.protobuf import decode_envelope
from kubelite.client import ApiError
from kubelite.resources import JOBS
from tests.fakeapi import FakeApi
from tests.unit.test_apiserver_protobuf import envelope, field

POD_SPEC = {"restartPolicy": "Never", "containers": [{"name": "c", "image": "kubelite/whoami:1.0"}]}


def job(**spec) -> dict:
    return {"metadata": {"name": "pi"}, "spec": {"template": {"spec": dict(POD_SPEC)}, **spec}}


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


def refused(api: FakeApi, body: dict) -> dict:
    with pytest.raises(ApiError) as caught:
        api.create(JOBS, body)
    assert caught.value.code == 422
    return caught.value.status


def test_defaults_and_the_generated_selector_and_labels(api):
    created = api.create(JOBS, job())
    spec, uid = created["spec"], created["metadata"]["uid"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert (spec["completionMode"], spec["suspend"], spec["manualSelector"]) == ("NonIndexed", False, False)
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    labels = {
        "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "pi",
        "controller-uid": uid, "job-name": "pi",
    }  # fmt: skip
    assert spec["template"]["metadata"]["labels"] == labels
    assert created["metadata"]["labels"] == labels
    assert created["status"] == {} and created["metadata"]["generation"] == 1


def test_parallelism_alone_leaves_completions_nil():
    spec = job(parallelism=3)["spec"]
    JobStrategy(True).default({"spec": spec})
    assert "completions" not in spec and spec["parallelism"] == 3


def test_restart_policy_must_be_on_failure_or_never(api):
    body = job()
    del body["spec"]["template"]["spec"]["restartPolicy"]
    status = refused(api, body)
    assert status["message"] == (
        'Job.batch "pi" is invalid: spec.template.spec.restartPolicy: Required value: '
        'valid values: "OnFailure", "Never"'
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"completionMode": "Indexed", "parallelism": 2},
         "spec.completions: Required value: when completion mode is Indexed"),
        ({"parallelism": -1}, "spec.parallelism: Invalid value: -1: must be greater than or equal to 0"),
        ({"backoffLimit": -2}, "spec.backoffLimit: Invalid value: -2: must be greater than or equal to 0"),
        ({"activeDeadlineSeconds": -5},
         "spec.activeDeadlineSeconds: Invalid value: -5: must be greater than or equal to 0"),
        ({"completionMode": "Sometimes"},
         'spec.completionMode: Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"'),
    ],
)  # fmt: skip
def test_bad_specs_are_refused_naming_the_field(api, spec, message):
    assert refused(api, job(**spec))["message"] == f'Job.batch "pi" is invalid: {message}'
    assert api.items(JOBS) == [], "nothing half-created"


def test_template_is_immutable_and_an_update_changes_nothing(api):
    created = api.create(JOBS, job())
    changed = {**created, "spec": {**created["spec"]}}
    changed["spec"]["template"] = {
        **created["spec"]["template"],
        "spec": {**POD_SPEC, "restartPolicy": "OnFailure"},
    }
    with pytest.raises(ApiError) as caught:
        api.run(api.client.update(JOBS, changed))
    assert caught.value.code == 422
    causes = caught.value.status["details"]["causes"]
    assert [(c["field"], c["message"].endswith("field is immutable")) for c in causes] == [
        ("spec.template", True)
    ]
    assert api.get(JOBS, "pi") == created


def test_a_suspended_job_that_never_ran_may_change_its_scheduling_directives(api):
    created = api.create(JOBS, job(suspend=True))
    changed = {**created, "spec": {**created["spec"]}}
    template = created["spec"]["template"]
    changed["spec"]["template"] = {**template, "spec": {**template["spec"], "nodeSelector": {"a": "b"}}}
    updated = api.run(api.client.update(JOBS, changed))
    assert updated["spec"]["template"]["spec"]["nodeSelector"] == {"a": "b"}


def test_a_cronjob_template_reuses_the_job_spec_checks():
    spec = {
        "template": {"spec": dict(POD_SPEC, restartPolicy="Always")},
        "selector": {"matchLabels": {"a": "b"}},
    }
    errors = [str(e) for e in validate_job_template_spec(spec, "spec.jobTemplate.spec")]
    policy = (
        "spec.jobTemplate.spec.template.spec.restartPolicy: "
        'Required value: valid values: "OnFailure", "Never"'
    )
    assert policy in errors
    assert any(e.startswith("spec.jobTemplate.spec.selector: Invalid value") for e in errors)
    good = {"template": {"spec": dict(POD_SPEC)}}
    default_job_spec(good)
    assert validate_job_spec(good, "spec.jobTemplate.spec") == []


NOW = dt.datetime(2026, 1, 1, 0, 10, tzinfo=dt.UTC)
T9 = "2026-01-01T00:09:00Z"


def true(kind: str) -> list[dict]:
    return [{"type": kind, "status": "True"}]


@pytest.mark.parametrize(
    ("spec", "status", "deleting", "cells"),
    [
        ({"completions": 3}, {"succeeded": 1, "startTime": T9}, False, ["Running", "1/3", "60s"]),
        ({"parallelism": 2}, {}, False, ["Running", "0/1 of 2", ""]),
        ({"completions": 1}, {"succeeded": 1, "startTime": "2026-01-01T00:00:00Z",
          "completionTime": "2026-01-01T00:00:42Z",
          "conditions": true("Complete")}, False, ["Complete", "1/1", "42s"]),
        ({"completions": 1}, {"conditions": true("Failed")}, False, ["Failed", "0/1", ""]),
        ({"completions": 1, "suspend": True}, {"conditions": true("Suspended")}, False,
         ["Suspended", "0/1", ""]),
        ({"completions": 1}, {}, True, ["Terminating", "0/1", ""]),
    ],
)  # fmt: skip
def test_get_jobs_columns(spec, status, deleting, cells):
    strategy = JobStrategy(True)
    assert [c.name for c in strategy.columns] == [
        "Name", "Status", "Completions", "Duration", "Age", "Containers", "Images", "Selector",
    ]  # fmt: skip
    meta = {"name": "pi", "creationTimestamp": "2026-01-01T00:00:00Z"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:09:00Z"
    obj = {"metadata": meta, "spec": {**spec, "selector": {"matchLabels": {"x": "y"}},
                                      "template": {"spec": POD_SPEC}}, "status": status}  # fmt: skip
    assert strategy.cells(obj, NOW) == ["pi", *cells, "10m", "c", "kubelite/whoami:1.0", "x=y"]


def test_kubectl_create_job_protobuf_body_decodes_and_creates(api):
    container = field(1, "x") + field(2, "kubelite/whoami:1.0")
    pod_spec = field(2, container) + field(3, "Never")
    template = field(1, b"") + field(2, pod_spec)
    spec = field(6, template)
    body = envelope("batch/v1", "Job", field(1, field(1, "x")) + field(2, spec) + field(3, b""))
    decoded = decode_envelope(body)
    assert decoded == {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"},
        "spec": {"template": {"spec": {"containers": [{"name": "x", "image": "kubelite/whoami:1.0"}],
                                       "restartPolicy": "Never"}}},
    }  # fmt: skip
    created = api.create(JOBS, decoded)
    assert created["spec"]["completions"] == 1
    full = field(1, 2) + field(2, 5) + field(7, 0) + field(9, "Indexed") + field(10, 1) + field(8, 0) + spec
    decoded = decode_envelope(envelope("batch/v1", "Job", field(1, field(1, "y")) + field(2, full)))
    assert {k: v for k, v in decoded["spec"].items() if k != "template"} == {
        "parallelism": 2, "completions": 5, "backoffLimit": 0, "completionMode": "Indexed", "suspend": True,
        "ttlSecondsAfterFinished": 0,
    }  # fmt: skip
