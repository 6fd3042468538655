"""Request paths, content negotiation, body decoding, discovery and OpenAPI documents."""

from __future__ import annotations

import pytest

from apiserver import discovery
from apiserver.allocation import NodePortRange, ServiceIPRange
from apiserver.errors import APIError
from apiserver.negotiation import Output, PatchType, choose_output, decode_body, patch_type
from apiserver.request_info import RequestInfo, parse_resource_path
from apiserver.resources import build_resource_table
from apiserver.storage import parse_endpoints, prefix_end

TABLE = build_resource_table(ServiceIPRange("10.96.0.0/12"), NodePortRange(30000, 32767))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1/namespaces/default/pods", RequestInfo("", "v1", "pods", "default")),
        ("/api/v1/namespaces/default/pods/p1/", RequestInfo("", "v1", "pods", "default", "p1")),
        (
            "/api/v1/namespaces/default/pods/p1/binding",
            RequestInfo("", "v1", "pods", "default", "p1", "binding"),
        ),
        ("/api/v1/pods", RequestInfo("", "v1", "pods")),
        ("/api/v1/nodes/n1/status", RequestInfo("", "v1", "nodes", "", "n1", "status")),
        ("/api/v1/namespaces", RequestInfo("", "v1", "namespaces")),
        ("/api/v1/namespaces/t1", RequestInfo("", "v1", "namespaces", "", "t1")),
        ("/api/v1/namespaces/t1/finalize", RequestInfo("", "v1", "namespaces", "", "t1", "finalize")),
        ("/api/v1/watch/namespaces/d/pods", RequestInfo("", "v1", "pods", "d", watch_prefix=True)),
        (
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
            RequestInfo("coordination.k8s.io", "v1", "leases", "kube-node-lease", "n1"),
        ),
        ("//api//v1//pods//", RequestInfo("", "v1", "pods")),
        ("/api/v1", None),
        ("/apis/apps", None),
        ("/version", None),
        ("/api/v1/namespaces/d/pods/p/status/extra", None),
    ],
)
def test_parse_resource_path(path: str, expected: RequestInfo | None) -> None:
    assert parse_resource_path(path) == expected


def test_choose_output() -> None:
    kubectl_get = (
        "application/json;as=Table;v=v1;g=meta.k8s.io,"
        "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    )
    assert choose_output(kubectl_get) is Output.TABLE
    assert choose_output("application/json") is Output.OBJECT
    assert choose_output(None) is Output.OBJECT
    assert choose_output("application/vnd.kubernetes.protobuf,application/json") is Output.OBJECT
    assert choose_output("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io") is Output.PARTIAL
    assert choose_output("application/json;as=Table;v=v2;g=other,application/json") is Output.OBJECT


def test_decode_body() -> None:
    assert decode_body(b'{"a":1}', None) == {"a": 1}
    assert decode_body(b'{"a":1}', "application/json; charset=utf-8") == {"a": 1}
    assert decode_body(b"a: 1\n", "application/yaml") == {"a": 1}
    assert decode_body(b"", None) is None
    with pytest.raises(APIError) as err:
        decode_body(b"k8s\x00...", "application/vnd.kubernetes.protobuf")
    assert err.value.code == 415
    assert "--dry-run=client -o yaml | kubectl apply -f -" in err.value.message
    with pytest.raises(APIError) as bad:
        decode_body(b"{nope", None)
    assert bad.value.code == 400
    assert patch_type("application/strategic-merge-patch+json") is PatchType.STRATEGIC
    with pytest.raises(APIError):
        patch_type("application/json")


def test_discovery_documents() -> None:
    assert set(discovery.version_info()) == {
        "major", "minor", "gitVersion", "gitCommit", "gitTreeState",
        "buildDate", "goVersion", "compiler", "platform",
    }  # fmt: skip
    assert (
        discovery.api_versions("127.0.0.1:6443")["serverAddressByClientCIDRs"][0]["serverAddress"]
        == "127.0.0.1:6443"
    )
    groups = discovery.api_groups(TABLE)["groups"]
    assert [g["name"] for g in groups] == ["apps", "batch", "policy", "coordination.k8s.io"]
    core = discovery.resource_list(TABLE, "", "v1")
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["pods"]["shortNames"] == ["po"] and by_name["pods"]["categories"] == ["all"]
    assert by_name["services"]["categories"] == ["all"]
    assert by_name["pods/binding"] == {
        "name": "pods/binding",
        "singularName": "",
        "namespaced": True,
        "kind": "Binding",
        "verbs": ["create"],
    }
    assert by_name["nodes"]["namespaced"] is False
    assert all("singularName" in r and "verbs" in r for r in core["resources"])
    apps = {r["name"]: r for r in discovery.resource_list(TABLE, "apps", "v1")["resources"]}
    assert apps["deployments"]["shortNames"] == ["deploy"] and apps["deployments"]["categories"] == ["all"]
    assert apps["deployments/scale"] == {
        "name": "deployments/scale",
        "singularName": "",
        "namespaced": True,
        "kind": "Scale",
        "verbs": ["get", "patch", "update"],
        "group": "autoscaling",
        "version": "v1",
    }
    assert apps["replicasets"]["shortNames"] == ["rs"]
    assert by_name["replicationcontrollers"]["shortNames"] == ["rc"]
    assert apps["statefulsets/scale"]["kind"] == "Scale" and apps["daemonsets"]["shortNames"] == ["ds"]
    batch = {r["name"]: r for r in discovery.resource_list(TABLE, "batch", "v1")["resources"]}
    assert batch["cronjobs"]["shortNames"] == ["cj"] and batch["jobs"]["categories"] == ["all"]
    policy = {r["name"]: r for r in discovery.resource_list(TABLE, "policy", "v1")["resources"]}
    assert policy["poddisruptionbudgets"]["shortNames"] == ["pdb"]
    assert discovery.resource_list(TABLE, "autoscaling", "v2") is None


def test_openapi_documents() -> None:
    index = discovery.openapi_index(TABLE)["paths"]
    assert set(index) == {
        "api/v1", "apis/coordination.k8s.io/v1", "apis/apps/v1", "apis/batch/v1", "apis/policy/v1",
    }  # fmt: skip
    assert index["api/v1"]["serverRelativeURL"].startswith("/openapi/v3/api/v1?hash=")
    document = discovery.openapi_document(TABLE, "", "v1")
    patch = document["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert {"name": "fieldValidation", "in": "query"}.items() <= patch["parameters"][0].items()
    assert "/api/v1/nodes/{name}" in document["paths"]


def test_store_endpoints_and_prefixes() -> None:
    assert parse_endpoints("http://127.0.0.1:2379, https://etcd.example:2379") == [
        ("127.0.0.1:2379", False),
        ("etcd.example:2379", True),
    ]
    assert parse_endpoints("127.0.0.1:2379") == [("127.0.0.1:2379", False)]
    with pytest.raises(ValueError):
        parse_endpoints("http://no-port")
    assert prefix_end("/registry/pods/") == b"/registry/pods0"
    pods = TABLE.lookup("", "v1", "pods")
    nodes = TABLE.lookup("", "v1", "nodes")
    assert pods.key("default", "p") == "/registry/pods/default/p"
    assert pods.prefix(None) == "/registry/pods/" and pods.prefix("ns") == "/registry/pods/ns/"
    assert nodes.key("", "n1") == "/registry/nodes/n1"
