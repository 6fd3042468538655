"""Validation messages, with the real apiserver's wording, through the kind strategies."""

from __future__ import annotations

import copy

from apiserver.allocation import NodePortRange, ServiceIPRange
from apiserver.errors import invalid_error
from apiserver.resources import build_resource_table

TABLE = build_resource_table(ServiceIPRange("10.96.0.0/12"), NodePortRange(30000, 32767))
PODS = TABLE.lookup("", "v1", "pods")
SERVICES = TABLE.lookup("", "v1", "services")
NAMESPACES = TABLE.lookup("", "v1", "namespaces")
CONFIGMAPS = TABLE.lookup("", "v1", "configmaps")


def pod(**spec: object) -> dict:
    body = {
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec},
    }
    PODS.strategy.default(body)
    return body


def messages(rd, obj) -> list[str]:
    return [str(e) for e in rd.strategy.validate(obj)]


def test_valid_pod_has_no_errors_and_gets_defaults() -> None:
    body = pod()
    assert messages(PODS, body) == []
    spec = body["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["enableServiceLinks"] is True
    container = spec["containers"][0]
    assert container["imagePullPolicy"] == "Always"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "File"
    PODS.strategy.prepare_for_create(body)
    assert body["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


def test_pull_policy_and_quantities_and_qos() -> None:
    limits = {"cpu": 1, "memory": "64Mi"}
    body = pod(containers=[{"name": "c", "image": "nginx:1.25", "resources": {"limits": limits},
                            "ports": [{"containerPort": 80}]}])  # fmt: skip
    container = body["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["resources"] == {
        "limits": {"cpu": "1", "memory": "64Mi"},
        "requests": {"cpu": "1", "memory": "64Mi"},
    }
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    PODS.strategy.prepare_for_create(body)
    assert body["status"]["qosClass"] == "Guaranteed"
    assert (
        pod(containers=[{"name": "c", "image": "reg:5000/x"}])["spec"]["containers"][0]["imagePullPolicy"]
        == "Always"
    )
    assert (
        pod(containers=[{"name": "c", "image": "x@sha256:ab"}])["spec"]["containers"][0]["imagePullPolicy"]
        == "IfNotPresent"
    )


def test_pod_errors_use_real_wording() -> None:
    body = pod(
        restartPolicy="Sometimes",
        containers=[
            {"name": "a", "image": "x", "ports": [{"containerPort": 70000}]},
            {"name": "a", "image": ""},
            {"name": "Bad Name", "image": "x"},
        ],
    )
    body["metadata"]["name"] = "Bad_Name"
    got = messages(PODS, body)
    assert (
        'metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of' in got[0]
    )
    assert (
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: "
        "must be between 1 and 65535, inclusive" in got
    )
    assert "spec.containers[1].image: Required value" in got
    assert 'spec.containers[1].name: Duplicate value: "a"' in got
    assert any(
        m.startswith('spec.containers[2].name: Invalid value: "Bad Name": a lowercase RFC 1123 label')
        for m in got
    )
    assert (
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'
        in got
    )


def test_invalid_status_shape() -> None:
    errs = PODS.strategy.validate(pod(containers=[{"name": "c"}]))
    err = invalid_error("", "Pod", "p", errs)
    status = err.to_status()
    assert err.code == 422
    assert status["message"] == 'Pod "p" is invalid: spec.containers[0].image: Required value'
    assert status["details"]["kind"] == "Pod"
    assert status["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers[0].image"}
    ]
    two = invalid_error("", "Pod", "p", errs + errs)
    assert two.message.startswith('Pod "p" is invalid: [spec.containers[0].image: Required value, ')


def test_missing_name_and_labels() -> None:
    body = pod()
    body["metadata"] = {"namespace": "default", "labels": {"ok": "bad value"}}
    got = messages(PODS, body)
    assert "metadata.name: Required value: name or generateName is required" in got
    assert any(
        m.startswith('metadata.labels: Invalid value: "bad value": a valid label must be') for m in got
    )


def test_pod_update_may_only_change_image() -> None:
    old = pod()
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "busybox:2"
    assert PODS.strategy.validate_update(new, old) == []
    new["spec"]["containers"][0]["command"] = ["sh"]
    assert [e.field for e in PODS.strategy.validate_update(new, old)] == ["spec"]


def service(**spec: object) -> dict:
    body = {"metadata": {"name": "s", "namespace": "default"}, "spec": {"ports": [{"port": 80}], **spec}}
    SERVICES.strategy.default(body)
    return body


def test_service_defaults() -> None:
    spec = service(type="NodePort")["spec"]
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster" and spec["externalTrafficPolicy"] == "Cluster"


def test_service_errors() -> None:
    body = service(type="Fancy", ports=[{"port": 0}, {"port": 80, "nodePort": 30001}])
    body["metadata"]["name"] = "1svc"
    got = messages(SERVICES, body)
    assert any(
        m.startswith('metadata.name: Invalid value: "1svc": a DNS-1035 label must consist of') for m in got
    )
    assert (
        'spec.type: Unsupported value: "Fancy": '
        'supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"' in got
    )
    assert "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive" in got
    assert "spec.ports[0].name: Required value" in got
    assert "spec.ports[1].nodePort: Forbidden: may not be used when `type` is 'Fancy'" in got
    assert "spec.ports: Required value" in messages(SERVICES, service(ports=[]))


def test_namespace_and_configmap_rules() -> None:
    ns = {"metadata": {"name": "a.b"}}
    assert any(
        m.startswith('metadata.name: Invalid value: "a.b": a lowercase RFC 1123 label')
        for m in messages(NAMESPACES, ns)
    )
    cm = {"metadata": {"name": "c", "namespace": "d"}, "data": {"bad key": "v", "ok": "v"}}
    assert any(
        m.startswith('data[bad key]: Invalid value: "bad key": a valid config key')
        for m in messages(CONFIGMAPS, cm)
    )


def test_graceful_deletion_periods() -> None:
    body = pod()
    assert PODS.strategy.grace_period(body, None) == 0, "an unbound pod goes at once"
    body["spec"]["nodeName"] = "n1"
    assert PODS.strategy.grace_period(body, None) == 30
    assert PODS.strategy.grace_period(body, 5) == 5
    body["status"] = {"phase": "Succeeded"}
    assert PODS.strategy.grace_period(body, None) == 0
    assert SERVICES.strategy.grace_period(service(), None) == 0


def test_fields_for_selectors() -> None:
    body = pod(nodeName="n1")
    body["status"] = {"phase": "Running"}
    fields = PODS.strategy.fields(body)
    assert fields["spec.nodeName"] == "n1" and fields["status.phase"] == "Running"
    assert "involvedObject.uid" in TABLE.lookup("", "v1", "events").strategy.field_names()
    assert "metadata.namespace" not in TABLE.lookup("", "v1", "nodes").strategy.field_names()


def test_tolerations_and_node_affinity_are_checked_with_the_real_wording() -> None:
    bad_tolerations = [
        {"key": "a", "operator": "Exists", "value": "x"},
        {"operator": "Equal", "value": "x"},
        {"key": "b", "operator": "Sometimes"},
        {"key": "c", "effect": "NoSchedule", "tolerationSeconds": 5},
        {"key": "d", "effect": "Never"},
    ]
    nodes = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "zone", "operator": "In"},
                            {"key": "ssd", "operator": "Exists", "values": ["x"]},
                            {"key": "cpus", "operator": "Gt", "values": ["1", "2"]},
                            {"key": "zone", "operator": "Near", "values": ["a"]},
                        ],
                        "matchFields": [{"key": "metadata.uid", "operator": "In", "values": ["a", "b"]}],
                    }
                ]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 0, "preference": {}}],
        }
    }
    assert messages(PODS, pod(tolerations=bad_tolerations, affinity=affinity)) == [
        "spec.tolerations[0].operator: Invalid value: \"x\": value must be empty when `operator` is 'Exists'",
        'spec.tolerations[1].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, '
        'which means "match all values and all keys"',
        'spec.tolerations[2].operator: Unsupported value: "Sometimes": supported values: "Equal", "Exists"',
        "spec.tolerations[3].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when "
        "`tolerationSeconds` is set",
        'spec.tolerations[4].effect: Unsupported value: "Never": supported values: "NoExecute", '
        '"NoSchedule", "PreferNoSchedule"',
        f"{nodes}[0].matchExpressions[0].values: Required value: must be specified when `operator` is "
        "'In' or 'NotIn'",
        f"{nodes}[0].matchExpressions[1].values: Forbidden: may not be specified when `operator` is "
        "'Exists' or 'DoesNotExist'",
        f"{nodes}[0].matchExpressions[2].values: Required value: must be specified single value when "
        "`operator` is 'Lt' or 'Gt'",
        f'{nodes}[0].matchExpressions[3].operator: Invalid value: "Near": not a valid selector operator',
        f"{nodes}[0].matchFields[0].values: Required value: must be only one value when `operator` is "
        "'In' or 'NotIn' for node field selector",
        f'{nodes}[0].matchFields[0].key: Invalid value: "metadata.uid": not a valid field selector key',
        "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: "
        "Invalid value: 0: must be in the range 1-100",
    ]
    daemon = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-1"]}]}
    good = {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [daemon]}}
    }
    ok = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
           "tolerationSeconds": 300}, {"operator": "Exists"}]  # fmt: skip
    assert messages(PODS, pod(tolerations=ok, affinity=good)) == []
