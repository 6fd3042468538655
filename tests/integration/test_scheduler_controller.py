"""The scheduler and the controller-manager as real processes against a real apiserver and
etcdlite, with nodes registered by hand (no kubelet): pods get bound to Ready nodes, an
unschedulable pod says why, Services get Endpoints of ready pods, a silent node goes NotReady,
and a deleted namespace is emptied and removed.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from kubelite.objects import now_rfc3339
from tests.support import wait_until


def api(
    server: str, method: str, path: str, body: object | None = None, content_type: str = "application/json"
):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        server + path, data=data, method=method, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def register_node(server: str, name: str, ready: bool = True, unschedulable: bool = False) -> None:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"unschedulable": unschedulable},
    }
    code, body = api(server, "POST", "/api/v1/nodes", node)
    assert code == 201, body
    status = {
        "status": {
            "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "KubeletReady",
                    "lastHeartbeatTime": now_rfc3339(),
                    "lastTransitionTime": now_rfc3339(),
                }
            ],
        }
    }
    code, body = api(server, "PATCH", f"/api/v1/nodes/{name}/status", status, "application/merge-patch+json")
    assert code == 200, body


def pod_manifest(name: str, labels: dict | None = None, cpu: str | None = None) -> dict:
    container = {"name": "c", "image": "kubelite/whoami:latest"}
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [container]},
    }


@pytest.fixture
def cluster(control_plane):
    scheduler = control_plane.start("scheduler", ["--master", control_plane.server])
    controller = control_plane.start(
        "controller", ["--master", control_plane.server, "--node-monitor-grace-period", "3s"]
    )
    scheduler.wait_log("caches synced")
    controller.wait_log("caches synced")
    return control_plane


def get(server: str, path: str) -> dict:
    code, body = api(server, "GET", path)
    assert code == 200, body
    return body


def test_pods_are_bound_to_ready_schedulable_nodes_only(cluster):
    server = cluster.server
    register_node(server, "good")
    register_node(server, "cordoned", unschedulable=True)
    register_node(server, "sick", ready=False)
    for i in range(4):
        code, body = api(server, "POST", "/api/v1/namespaces/default/pods", pod_manifest(f"p{i}"))
        assert code == 201, body

    def all_bound():
        pods = get(server, "/api/v1/namespaces/default/pods")["items"]
        return {p["metadata"]["name"]: p["spec"].get("nodeName") for p in pods if p["spec"].get("nodeName")}

    bound = wait_until(lambda: len(all_bound()) == 4 and all_bound(), "4 pods bound by the scheduler")
    assert set(bound.values()) == {"good"}, bound
    events = get(server, "/api/v1/namespaces/default/events")["items"]
    assert any(
        e["reason"] == "Scheduled" and e["message"] == "Successfully assigned default/p0 to good"
        for e in events
    )


def test_unschedulable_pod_reports_why_and_is_scheduled_when_a_node_fits(cluster):
    server = cluster.server
    register_node(server, "small")
    code, body = api(server, "POST", "/api/v1/namespaces/default/pods", pod_manifest("big", cpu="3"))
    assert code == 201, body

    def condition():
        pod = get(server, "/api/v1/namespaces/default/pods/big")
        return next((c for c in pod["status"].get("conditions", []) if c["type"] == "PodScheduled"), None)

    cond = wait_until(condition, "a PodScheduled=False condition on the pod that fits no node")
    assert cond["status"] == "False" and cond["reason"] == "Unschedulable"
    assert cond["message"] == "0/1 nodes are available: 1 Insufficient cpu.", cond
    node = get(server, "/api/v1/nodes/small")
    assert node["status"]["allocatable"]["cpu"] == "2"
    large = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "large"}}
    code, body = api(server, "POST", "/api/v1/nodes", large)
    assert code == 201, body
    patch = {
        "status": {
            "allocatable": {"cpu": "8", "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": now_rfc3339()}],
        }
    }
    code, body = api(server, "PATCH", "/api/v1/nodes/large/status", patch, "application/merge-patch+json")
    assert code == 200, body
    assert body["status"]["allocatable"]["cpu"] == "8", body
    wait_until(
        lambda: get(server, "/api/v1/namespaces/default/pods/big")["spec"].get("nodeName") == "large",
        "the pending pod to be scheduled once a large enough node appears",
    )


def test_service_endpoints_follow_ready_pods(cluster):
    server = cluster.server
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }
    assert api(server, "POST", "/api/v1/namespaces/default/services", svc)[0] == 201
    for name, ip in (("w1", "10.1.0.1"), ("w2", "10.1.0.2")):
        code, body = api(
            server, "POST", "/api/v1/namespaces/default/pods", pod_manifest(name, {"app": "web"})
        )
        assert code == 201, body
        status = {
            "status": {
                "phase": "Running",
                "podIP": ip,
                "conditions": [{"type": "Ready", "status": "True" if name == "w1" else "False"}],
            }
        }
        code, body = api(
            server,
            "PATCH",
            f"/api/v1/namespaces/default/pods/{name}/status",
            status,
            "application/merge-patch+json",
        )
        assert code == 200, body

    def endpoints():
        code, body = api(server, "GET", "/api/v1/namespaces/default/endpoints/web")
        subsets = body.get("subsets") or [] if code == 200 else []
        ready = sorted(a["ip"] for s in subsets for a in s.get("addresses", []))
        not_ready = sorted(a["ip"] for s in subsets for a in s.get("notReadyAddresses", []))
        return (ready, not_ready) if ready == ["10.1.0.1"] and not_ready == ["10.1.0.2"] else None

    wait_until(endpoints, "endpoints web with w1 ready and w2 not ready")
    body = get(server, "/api/v1/namespaces/default/endpoints/web")
    assert body["subsets"][0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]

    assert api(server, "DELETE", "/api/v1/namespaces/default/services/web")[0] == 200
    wait_until(
        lambda: api(server, "GET", "/api/v1/namespaces/default/endpoints/web")[0] == 404,
        "the endpoints of a deleted service to be removed",
    )


def test_node_without_heartbeat_becomes_not_ready(cluster):
    register_node(cluster.server, "silent")

    def ready_status():
        node = get(cluster.server, "/api/v1/nodes/silent")
        return next(c for c in node["status"]["conditions"] if c["type"] == "Ready")

    cond = wait_until(
        lambda: ready_status()["status"] == "Unknown" and ready_status(), "node silent to go Unknown"
    )
    assert cond["reason"] == "NodeStatusUnknown" and cond["message"] == "Kubelet stopped posting node status."


def test_deleted_namespace_is_emptied_then_removed(cluster):
    server = cluster.server
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}}
    assert api(server, "POST", "/api/v1/namespaces", ns)[0] == 201
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}
    assert api(server, "POST", "/api/v1/namespaces/doomed/configmaps", cm)[0] == 201
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80}]},
    }
    assert api(server, "POST", "/api/v1/namespaces/doomed/services", svc)[0] == 201
    assert api(server, "DELETE", "/api/v1/namespaces/doomed")[0] == 200
    wait_until(
        lambda: api(server, "GET", "/api/v1/namespaces/doomed")[0] == 404, "namespace doomed to be removed"
    )
    assert api(server, "GET", "/api/v1/namespaces/doomed/configmaps/c")[0] == 404
