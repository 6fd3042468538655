"""Server-side printing: ages, the pod STATUS text, node/service/endpoints cells, Table shape."""

from __future__ import annotations

import datetime as dt

import pytest

from apiserver import tables
from apiserver.allocation import NodePortRange, ServiceIPRange
from apiserver.kinds.endpoints import endpoints_text
from apiserver.kinds.pods import pod_status_text
from apiserver.meta import rfc3339
from apiserver.resources import build_resource_table

NOW = dt.datetime(2025, 1, 10, 12, 0, 0, tzinfo=dt.UTC)
TABLE = build_resource_table(ServiceIPRange("10.96.0.0/12"), NodePortRange(30000, 32767))


def ago(seconds: int) -> str:
    return rfc3339(NOW - dt.timedelta(seconds=seconds))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "<invalid>"), (-1, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (200, "3m20s"), (600, "10m"),
     (179 * 60, "179m"), (3 * 3600, "3h"), (5 * 3600 + 600, "5h10m"), (9 * 3600, "9h"), (50 * 3600, "2d2h"),
     (10 * 86400, "10d"), (800 * 86400, "2y70d"), (9 * 365 * 86400, "9y")],
)  # fmt: skip
def test_human_duration(seconds: int, text: str) -> None:
    assert tables.human_duration(seconds) == text


def _pod(statuses: list[dict], phase: str = "Running", **meta: object) -> dict:
    return {
        "metadata": {"name": "p", "creationTimestamp": ago(30), **meta},
        "spec": {"containers": [{"name": s["name"]} for s in statuses] or [{"name": "c"}]},
        "status": {"phase": phase, "containerStatuses": statuses},
    }


def test_pod_status_texts() -> None:
    running = {"name": "c", "ready": True, "restartCount": 0, "state": {"running": {}}}
    assert pod_status_text(_pod([running]), NOW) == ("1/1", "Running", "0")
    creating = {
        "name": "c",
        "ready": False,
        "restartCount": 0,
        "state": {"waiting": {"reason": "ContainerCreating"}},
    }
    assert pod_status_text(_pod([creating], "Pending"), NOW)[1] == "ContainerCreating"
    crash = {
        "name": "c",
        "ready": False,
        "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(90)}},
    }
    assert pod_status_text(_pod([crash]), NOW) == ("0/1", "CrashLoopBackOff", "3 (90s ago)")
    pull = {"name": "c", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "ErrImagePull"}}}
    assert pod_status_text(_pod([pull], "Pending"), NOW)[1] == "ErrImagePull"
    done = {
        "name": "c",
        "ready": False,
        "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
    }
    assert pod_status_text(_pod([done], "Succeeded"), NOW)[1] == "Completed"
    killed = {"name": "c", "ready": False, "restartCount": 0, "state": {"terminated": {"exitCode": 137}}}
    assert pod_status_text(_pod([killed], "Failed"), NOW)[1] == "ExitCode:137"
    assert pod_status_text(_pod([running], deletionTimestamp=ago(0)), NOW)[1] == "Terminating"
    assert pod_status_text(_pod([], "Pending"), NOW) == ("0/1", "Pending", "0")


def test_init_container_status() -> None:
    pod = _pod([], "Pending")
    pod["spec"]["initContainers"] = [{"name": "i1"}, {"name": "i2"}]
    pod["status"]["initContainerStatuses"] = [
        {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
        {"name": "i2", "state": {"waiting": {"reason": "PodInitializing"}}},
    ]
    assert pod_status_text(pod, NOW)[1] == "Init:1/2"
    pod["status"]["initContainerStatuses"][1] = {"name": "i2", "state": {"terminated": {"exitCode": 2}}}
    assert pod_status_text(pod, NOW)[1] == "Init:ExitCode:2"


def test_pod_row_wide_cells() -> None:
    pods = TABLE.lookup("", "v1", "pods")
    pod = _pod([{"name": "c", "ready": True, "restartCount": 0, "state": {"running": {}}}])
    pod["spec"]["nodeName"] = "n1"
    pod["status"]["podIPs"] = [{"ip": "10.1.0.5"}]
    assert pods.strategy.cells(pod, NOW) == [
        "p",
        "1/1",
        "Running",
        "0",
        "30s",
        "10.1.0.5",
        "n1",
        "<none>",
        "<none>",
    ]
    assert [c.name for c in pods.strategy.columns if c.priority == 0] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
    ]


def test_node_cells() -> None:
    nodes = TABLE.lookup("", "v1", "nodes")
    node = {
        "metadata": {
            "name": "n1",
            "creationTimestamp": ago(60),
            "labels": {"node-role.kubernetes.io/control-plane": ""},
        },
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "Ready", "status": "False"}],
            "nodeInfo": {"kubeletVersion": "v1.37.0"},
            "addresses": [{"type": "InternalIP", "address": "127.0.0.2"}],
        },
    }
    cells = nodes.strategy.cells(node, NOW)
    assert cells[:6] == ["n1", "NotReady,SchedulingDisabled", "control-plane", "60s", "v1.37.0", "127.0.0.2"]


def test_service_and_endpoints_cells() -> None:
    services = TABLE.lookup("", "v1", "services")
    svc = {
        "metadata": {"name": "web", "creationTimestamp": ago(5)},
        "spec": {"type": "NodePort", "clusterIP": "10.96.0.20", "selector": {"app": "web"},
                 "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                           {"port": 53, "protocol": "UDP"}]},
    }  # fmt: skip
    assert services.strategy.cells(svc, NOW) == [
        "web",
        "NodePort",
        "10.96.0.20",
        "<none>",
        "80:30080/TCP,53/UDP",
        "5s",
        "app=web",
    ]
    svc["spec"]["type"] = "LoadBalancer"
    assert services.strategy.cells(svc, NOW)[3] == "<pending>"
    eps = {
        "subsets": [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 5)], "ports": [{"port": 8080}]}]
    }
    assert endpoints_text(eps) == "10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 + 1 more..."
    assert endpoints_text({}) == "<none>"


def test_table_shape() -> None:
    obj = {"metadata": {"name": "a", "namespace": "default", "labels": {"x": "y"}}}
    table = tables.table([tables.NAME_COLUMN], [(["a"], obj)], resource_version="7", continue_token="t")
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "7", "continue": "t"}
    assert table["columnDefinitions"][0]["format"] == "name"
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert tables.table([], [([], obj)], include_object="Object")["rows"][0]["object"] is obj
    assert "object" not in tables.table([], [([], obj)], include_object="None")["rows"][0]
    assert tables.table([], [], with_definitions=False)["columnDefinitions"] is None
