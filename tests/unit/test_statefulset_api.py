"""apps/v1 StatefulSets in the apiserver: Kubernetes' defaults, validation in the real server's
wording, which spec fields an update may change, status reset on create and kept on update, the
Scale selector and the `kubectl get sts` row."""

from __future__ import annotations

import datetime as dt

import pytest

from apiserver.kinds.statefulsets import StatefulSetStrategy
from kubelite.client import ApiError
from kubelite.resources import STATEFULSETS
from tests.fakeapi import FakeApi

STRATEGY = StatefulSetStrategy(True)


def statefulset(**spec) -> dict:
    body = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "c", "image": "kubelite/whoami:1.0"}]},
            },
            **spec,
        },
    }
    return body


def errors(body: dict) -> list[str]:
    STRATEGY.default(body)
    return [str(e) for e in STRATEGY.validate(body)]


def test_defaults_are_kubernetes_defaults():
    body = statefulset()
    STRATEGY.default(body)
    spec = body["spec"]
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert spec["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"


def test_an_explicit_rolling_update_type_gets_no_rolling_update_block_but_a_given_one_gets_partition_0():
    body = statefulset(updateStrategy={"type": "RollingUpdate"})
    STRATEGY.default(body)
    assert body["spec"]["updateStrategy"] == {"type": "RollingUpdate"}
    body = statefulset(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {}})
    STRATEGY.default(body)
    assert body["spec"]["updateStrategy"]["rollingUpdate"] == {"partition": 0}


def test_service_name_is_required():
    body = statefulset()
    del body["spec"]["serviceName"]
    assert errors(body) == ["spec.serviceName: Required value"]


INVALID = [
    ({"selector": None}, "spec.selector: Required value"),
    (
        {"selector": {}},
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for statefulset",
    ),
    (
        {"selector": {"matchLabels": {"app": "other"}}},
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"db"}: '
        "`selector` does not match template `labels`",
    ),
    (
        {"podManagementPolicy": "Burst"},
        "spec.podManagementPolicy: Invalid value: \"Burst\": must be 'OrderedReady' or 'Parallel'",
    ),
    (
        {"updateStrategy": {"type": "Sometimes"}},
        'spec.updateStrategy: Invalid value: apps.StatefulSetUpdateStrategy{Type:"Sometimes", '
        "RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}: "
        "must be 'RollingUpdate' or 'OnDelete'",
    ),
    (
        {"updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}}},
        "spec.updateStrategy.rollingUpdate: Invalid value: "
        "apps.RollingUpdateStatefulSetStrategy{Partition:1, MaxUnavailable:(*intstr.IntOrString)(nil)}: "
        "only allowed for updateStrategy 'RollingUpdate'",
    ),
    (
        {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": -1}}},
        "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0",
    ),
    ({"replicas": -1}, "spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
    (
        {"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Keep", "whenScaled": "Retain"}},
        'spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: "Keep": '
        'supported values: "Delete", "Retain"',
    ),
]


@pytest.mark.parametrize(("spec", "message"), INVALID)
def test_invalid_specs_are_refused_in_the_real_servers_words(spec, message):
    assert message in errors(statefulset(**spec))


def test_template_restrictions():
    body = statefulset()
    body["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    body["spec"]["template"]["spec"]["activeDeadlineSeconds"] = 10
    found = errors(body)
    assert 'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"' in found
    assert (
        "spec.template.spec.activeDeadlineSeconds: Forbidden: "
        "activeDeadlineSeconds in StatefulSet is not Supported" in found
    )


def test_a_volume_mount_may_name_a_volume_claim_template():
    body = statefulset(volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {}}])
    body["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/d"}]
    assert errors(body) == []


def test_only_the_mutable_fields_may_change():
    old = statefulset()
    STRATEGY.default(old)
    new = statefulset(
        replicas=5, minReadySeconds=3, ordinals={"start": 1}, updateStrategy={"type": "OnDelete"}
    )
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "kubelite/whoami:2.0"
    STRATEGY.default(new)
    assert [str(e) for e in STRATEGY.validate_update(new, old)] == []
    for field, value in (
        ("serviceName", "other"),
        ("podManagementPolicy", "Parallel"),
        ("revisionHistoryLimit", 2),
    ):
        changed = statefulset(**{field: value})
        STRATEGY.default(changed)
        assert [str(e) for e in STRATEGY.validate_update(changed, old)] == [
            "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
            "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are "
            "forbidden"
        ]


def test_status_is_reset_on_create_and_kept_on_update_and_the_refusal_is_a_422():
    api = FakeApi()
    body = statefulset()
    body["status"] = {"replicas": 7}
    created = api.create(STATEFULSETS, body)
    assert created["status"] == {"replicas": 0, "availableReplicas": 0}
    api.run(api.client.update(STATEFULSETS, {**created, "status": {"replicas": 3}}, subresource="status"))
    current = api.get(STATEFULSETS, "db")
    current["spec"]["replicas"] = 2
    current["status"] = {}
    updated = api.run(api.client.update(STATEFULSETS, current))
    assert updated["status"]["replicas"] == 3 and updated["metadata"]["generation"] == 2
    bad = statefulset()
    del bad["spec"]["serviceName"]
    bad["metadata"]["name"] = "bad"
    with pytest.raises(ApiError) as refused:
        api.create(STATEFULSETS, bad)
    assert refused.value.code == 422
    assert (
        refused.value.status["message"]
        == 'StatefulSet.apps "bad" is invalid: spec.serviceName: Required value'
    )
    assert api.items(STATEFULSETS) == [updated]


def test_scale_selector_and_table_row():
    body = statefulset(replicas=3)
    STRATEGY.default(body)
    body["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    body["status"] = {"readyReplicas": 2}
    assert STRATEGY.scale_selector(body) == "app=db"
    assert [c.name for c in STRATEGY.columns] == ["Name", "Ready", "Age", "Containers", "Images"]
    now = dt.datetime(2026, 1, 1, 0, 5, tzinfo=dt.UTC)
    assert STRATEGY.cells(body, now) == ["db", "2/3", "5m", "c", "kubelite/whoami:1.0"]
