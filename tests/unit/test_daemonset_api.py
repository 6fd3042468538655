"""apps/v1 DaemonSets and ControllerRevisions in the apiserver registry: defaults, validation in the
real server's words, status and template generation, and the `kubectl get` columns."""

from __future__ import annotations

import pytest

from kubelite.client import ApiError
from kubelite.resources import CONTROLLERREVISIONS, DAEMONSETS
from tests.fakeapi import FakeApi


def ds(**spec) -> dict:
    body = {
        "selector": {"matchLabels": {"app": "a"}},
        "template": {
            "metadata": {"labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        },
    }
    body.update(spec)
    return {"metadata": {"name": "a"}, "spec": body}


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


def rejected(api: FakeApi, body: dict) -> str:
    with pytest.raises(ApiError) as err:
        api.create(DAEMONSETS, body)
    assert err.value.code == 422
    assert api.items(DAEMONSETS) == []  # nothing half-created
    return str(err.value.status["message"])


def test_defaults_status_and_template_generation(api):
    created = api.create(DAEMONSETS, {**ds(), "status": {"numberReady": 5}})
    spec = created["spec"]
    assert spec["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert spec["revisionHistoryLimit"] == 10
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert created["status"] == {
        "currentNumberScheduled": 0,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 0,
        "numberReady": 0,
    }
    assert created["metadata"]["generation"] == 1
    assert created["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"
    on_delete = api.create(DAEMONSETS, {**ds(updateStrategy={"type": "OnDelete"}), "metadata": {"name": "b"}})
    assert on_delete["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_updates_bump_generation_and_keep_status(api):
    created = api.create(DAEMONSETS, ds())
    created["status"] = {"numberReady": 3}
    created["spec"]["minReadySeconds"] = 5
    updated = api.run(api.client.update(DAEMONSETS, created))
    assert updated["metadata"]["generation"] == 2
    assert updated["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"
    assert updated["status"]["numberReady"] == 0
    updated["spec"]["template"]["spec"]["containers"][0]["image"] = "y"
    again = api.run(api.client.update(DAEMONSETS, updated))
    assert again["metadata"]["generation"] == 3
    assert again["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "2"
    again["status"] = {**again["status"], "numberReady": 1, "observedGeneration": 3}
    status = api.run(api.client.update(DAEMONSETS, again, subresource="status"))
    assert status["status"]["numberReady"] == 1 and status["metadata"]["generation"] == 3


def test_validation_wording(api):
    assert rejected(api, ds(selector=None)) == (
        'DaemonSet.apps "a" is invalid: [spec.selector: Required value, spec.template.metadata.labels: '
        'Invalid value: map[string]string{"app":"a"}: `selector` does not match template `labels`]'
    )
    assert "empty selector is invalid for daemonset" in rejected(api, ds(selector={}))
    assert "`selector` does not match template `labels`" in rejected(
        api, ds(selector={"matchLabels": {"app": "b"}})
    )
    assert rejected(api, ds(updateStrategy={"type": "Foo"})).endswith(
        'spec.updateStrategy: Unsupported value: apps.DaemonSetUpdateStrategy{Type:"Foo", '
        'RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}: supported values: "RollingUpdate", "OnDelete"'
    )
    both_zero = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}
    assert rejected(api, ds(updateStrategy=both_zero)).endswith(
        "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"
    )
    both_set = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "10%"}}
    assert rejected(api, ds(updateStrategy=both_set)).endswith(
        "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 10%: "
        "may not be set when maxUnavailable is non-zero"
    )
    bad_percent = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "120%"}}
    assert "must not be greater than 100%" in rejected(api, ds(updateStrategy=bad_percent))
    never = ds()
    never["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    assert rejected(api, never).endswith(
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'
    )
    deadline = ds()
    deadline["spec"]["template"]["spec"]["activeDeadlineSeconds"] = 5
    assert "activeDeadlineSeconds in DaemonSet is not Supported" in rejected(api, deadline)
    assert "spec.revisionHistoryLimit" in rejected(api, ds(revisionHistoryLimit=-1))


def test_selector_is_immutable(api):
    created = api.create(DAEMONSETS, ds())
    created["spec"]["selector"] = {"matchLabels": {"app": "a", "x": "y"}}
    created["spec"]["template"]["metadata"]["labels"]["x"] = "y"
    with pytest.raises(ApiError) as err:
        api.run(api.client.update(DAEMONSETS, created))
    assert "spec.selector: Invalid value" in err.value.status["message"]
    assert "field is immutable" in err.value.status["message"]


def test_get_columns(api):
    created = api.create(DAEMONSETS, ds())
    created["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd", "a": "b"}
    strategy = api.registry.table.of(DAEMONSETS).strategy
    names = [c.name for c in strategy.columns]
    assert names == [
        "Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age",
        "Containers", "Images", "Selector",
    ]  # fmt: skip
    created["status"] = {
        "desiredNumberScheduled": 3, "currentNumberScheduled": 2, "numberReady": 1,
        "updatedNumberScheduled": 2, "numberAvailable": 1,
    }  # fmt: skip
    row = strategy.cells(created, api.clock.now())
    assert row[:7] == ["a", 3, 2, 1, 2, 1, "a=b,disk=ssd"]
    assert row[8:] == ["c", "x", "app=a"]
    revision_columns = [c.name for c in api.registry.table.of(CONTROLLERREVISIONS).strategy.columns]
    assert revision_columns == ["Name", "Controller", "Revision", "Age"]


def test_controller_revision_needs_data_and_keeps_it(api):
    with pytest.raises(ApiError) as err:
        api.create(CONTROLLERREVISIONS, {"metadata": {"name": "r"}, "revision": 1})
    assert err.value.status["message"].endswith("data: Required value: data is mandatory")
    created = api.create(CONTROLLERREVISIONS, {"metadata": {"name": "r"}, "revision": 1, "data": {"a": 1}})
    assert "status" not in created and created["data"] == {"a": 1}
    created["revision"] = 7
    assert api.run(api.client.update(CONTROLLERREVISIONS, created))["revision"] == 7
