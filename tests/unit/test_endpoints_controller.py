"""Service + pods -> Endpoints subsets, as the endpoints controller computes them."""

from controller.endpoints import desired_subsets, resolve_target_port


def service(selector, ports):
    return {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": selector, "ports": ports},
    }


def pod(name, ip, ready=True, labels=None, phase="Running", ports=None, terminating=False):
    p = {
        "metadata": {
            "name": name,
            "namespace": "default",
            "uid": f"uid-{name}",
            "labels": labels or {"app": "web"},
        },
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "ports": ports or []}]},
        "status": {
            "phase": phase,
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }
    if terminating:
        p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return p


def test_ready_and_not_ready_pods_land_in_the_right_lists():
    svc = service({"app": "web"}, [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}])
    pods = [
        pod("a", "10.0.0.1"),
        pod("b", "10.0.0.2", ready=False),
        pod("c", "10.0.0.3", labels={"app": "other"}),
        pod("d", "", ready=True),
        pod("e", "10.0.0.5", phase="Succeeded"),
        pod("f", "10.0.0.6", terminating=True),
    ]
    [subset] = desired_subsets(svc, pods)
    assert [a["ip"] for a in subset["addresses"]] == ["10.0.0.1"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["10.0.0.2"]
    assert subset["addresses"][0]["targetRef"] == {
        "kind": "Pod",
        "namespace": "default",
        "name": "a",
        "uid": "uid-a",
    }
    assert subset["addresses"][0]["nodeName"] == "node-1"
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]


def test_named_target_port_is_resolved_per_pod_and_groups_subsets():
    svc = service({"app": "web"}, [{"port": 80, "targetPort": "http", "protocol": "TCP"}])
    a = pod("a", "10.0.0.1", ports=[{"name": "http", "containerPort": 8080}])
    b = pod("b", "10.0.0.2", ports=[{"name": "http", "containerPort": 9090}])
    c = pod("c", "10.0.0.3", ports=[{"name": "other", "containerPort": 1}])
    subsets = desired_subsets(svc, [a, b, c])
    assert sorted((s["ports"][0]["port"], s["addresses"][0]["ip"]) for s in subsets) == [
        (8080, "10.0.0.1"),
        (9090, "10.0.0.2"),
    ]


def test_service_without_selector_selects_nothing_and_target_port_defaults_to_port():
    assert desired_subsets(service({}, [{"port": 80}]), [pod("a", "10.0.0.1")]) == []
    assert resolve_target_port({"port": 80}, pod("a", "1.2.3.4")) == 80
    assert resolve_target_port({"port": 80, "targetPort": "8080"}, pod("a", "1.2.3.4")) == 8080
