"""The kubelet as a real process on real Docker, against a real etcdlite + apiserver.

Pods are bound by hand (spec.nodeName), so no scheduler is involved. Every test runs its own
kubelet on its own node name, cluster name and Docker network, and removes every container
and network it made, also on failure. `KubeletNode` and `Api` are reused by the proxy tests.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ControlPlane, running_control_plane
from tests.support import Process, free_port, http_get, wait_until

pytestmark = pytest.mark.docker

CLUSTER_LABEL = "kubelite.io/cluster"
UID_LABEL = "io.kubernetes.pod.uid"


class Api:
    """A few JSON calls to the apiserver, synchronously, as the tests need them."""

    def __init__(self, server: str):
        self.server = server

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def ok(self, method: str, path: str, body: Any = None) -> dict:
        code, obj = self.call(method, path, body)
        assert code < 300, f"{method} {path} -> {code}: {obj}"
        return obj

    def pod(self, name: str, namespace: str = "default") -> dict | None:
        code, obj = self.call("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
        return obj if code == 200 else None


class KubeletNode:
    """One kubelet process (python -m kubelet, the flags a user gives) with its own Docker network."""

    def __init__(self, cp: ControlPlane, docker_client, images: dict[str, str]):
        token = secrets.token_hex(3)
        self.cp = cp
        self.docker = docker_client
        self.images = images
        self.name = f"node-{token}"
        self.cluster = f"kt-{token}"
        self.network = f"kt-{token}"
        self.port = free_port()
        self.api = Api(cp.server)
        self.namespace = f"ns-{token}"
        self.process: Process | None = None
        self.api.ok("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": self.namespace}})  # fmt: skip
        self.docker.networks.create(self.network, driver="bridge", labels={CLUSTER_LABEL: self.cluster})

    def start(self) -> Process:
        args = ["--master", self.cp.server, "--hostname-override", self.name, "--node-ip", "127.0.0.1",
                "--address", "127.0.0.1", "--port", str(self.port), "--docker-network", self.network,
                "--pod-infra-container-image", self.images["pause"], "--cluster-name", self.cluster,
                "--node-status-update-frequency", "2s", "--node-lease-duration-seconds", "8"]  # fmt: skip
        self.process = self.cp.start("kubelet", args, name=f"kubelet-{self.name}")
        self.process.wait_log("registered; syncing its pods", timeout=30)
        return self.process

    def stop(self) -> int:
        assert self.process is not None
        return self.process.stop()

    def containers(self, **labels: str) -> list:
        filters = [f"{CLUSTER_LABEL}={self.cluster}", *(f"{k}={v}" for k, v in labels.items())]
        return self.docker.containers.list(all=True, filters={"label": filters})

    def cleanup(self) -> None:
        for c in self.containers():
            c.remove(force=True)
        for net in self.docker.networks.list(names=[self.network]):
            net.remove()

    def create_pod(self, name: str, containers: list[dict], **spec: Any) -> dict:
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": self.namespace, "labels": {"app": name}},
            "spec": {
                "nodeName": self.name,
                "terminationGracePeriodSeconds": 2,
                "containers": containers,
                **spec,
            },
        }
        return self.api.ok("POST", self.pods_path(), pod)

    def pods_path(self, name: str = "", sub: str = "") -> str:
        path = f"/api/v1/namespaces/{self.namespace}/pods"
        return path + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")

    def pod(self, name: str) -> dict | None:
        return self.api.pod(name, self.namespace)

    def wait_pod(self, name: str, what: str, check, timeout: float = 30) -> dict:
        def probe():
            pod = self.pod(name)
            if pod and check(pod):
                return pod
            raise AssertionError(f"status: {(pod or {}).get('status')}")  # reported on timeout

        return wait_until(probe, f"pod {name} {what}", timeout)


def is_running_ready(pod: dict) -> bool:
    st = pod.get("status", {})
    ready = [c for c in st.get("conditions", []) if c["type"] == "Ready"]
    return (
        st.get("phase") == "Running"
        and bool(ready)
        and ready[0]["status"] == "True"
        and bool(st.get("podIP"))
    )


def container_state(pod: dict, index: int = 0) -> dict:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return statuses[index]["state"] if len(statuses) > index else {}


@pytest.fixture(scope="module", name="control_plane_module")
def control_plane_module_fixture(tmp_path_factory):
    with running_control_plane(Path(tmp_path_factory.mktemp("kubelet-cp"))) as cp:
        yield cp


@pytest.fixture(name="node")
def node_fixture(control_plane_module, docker_client, images):
    n = KubeletNode(control_plane_module, docker_client, images)
    try:
        n.start()
        yield n
        assert n.process is not None
        n.process.stop_cleanly()
    finally:
        try:
            if n.process is not None and n.process.running():
                n.process.kill()
        finally:
            n.cleanup()  # the pod containers and the network, even when the kubelet failed


def whoami(images: dict[str, str], **extra: Any) -> dict:
    return {"name": "whoami", "image": images["whoami"], "imagePullPolicy": "IfNotPresent", **extra}


def test_pod_runs_ready_with_reachable_pod_ip_and_labelled_containers(node):
    probe = {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}
    node.create_pod("web", [whoami(node.images, readinessProbe=probe, ports=[{"containerPort": 8080}])])
    pod = node.wait_pod("web", "Running and Ready with a pod IP", is_running_ready)
    uid = pod["metadata"]["uid"]
    assert http_get(f"http://{pod['status']['podIP']}:8080/").strip() == "web"
    cs = pod["status"]["containerStatuses"][0]
    assert cs["containerID"].startswith("docker://") and cs["ready"] is True and cs["restartCount"] == 0
    assert pod["status"]["hostIP"] == "127.0.0.1"
    containers = node.containers(**{UID_LABEL: uid})
    names = sorted(c.labels["io.kubernetes.container.name"] for c in containers)
    assert names == ["POD", "whoami"]
    for c in containers:
        assert c.labels["kubelite.io/node"] == node.name
        assert c.labels["io.kubernetes.pod.name"] == "web"
        assert c.labels["io.kubernetes.pod.namespace"] == node.namespace
        assert c.name.startswith(
            f"k8s_{c.labels['io.kubernetes.container.name']}_web_{node.namespace}_{uid}_"
        )
    lease = node.api.ok("GET", f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node.name}")
    assert lease["spec"]["holderIdentity"] == node.name
    n = node.api.ok("GET", f"/api/v1/nodes/{node.name}")
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
    assert http_get(f"http://127.0.0.1:{node.port}/healthz") == "ok"


def test_kubelet_restart_adopts_running_containers_without_duplicates(node):
    node.create_pod("web", [whoami(node.images)])
    pod = node.wait_pod("web", "Running and Ready", is_running_ready)
    uid = pod["metadata"]["uid"]
    before = sorted(c.id for c in node.containers(**{UID_LABEL: uid}))
    assert node.stop() == 0
    assert all(c.status == "running" for c in node.containers(**{UID_LABEL: uid})), "SIGTERM stopped pods"
    # Make the status stale, so that the restarted kubelet's sync is visible when it repairs it.
    stale = {**pod, "status": {**pod["status"], "phase": "Pending", "containerStatuses": []}}
    node.api.ok("PUT", node.pods_path("web", "status"), stale)
    node.start()
    node.wait_pod("web", "repaired to Running by the restarted kubelet", is_running_ready)
    after = sorted(c.id for c in node.containers(**{UID_LABEL: uid}))
    assert after == before


def test_deleting_a_pod_removes_its_containers(node):
    node.create_pod("web", [whoami(node.images)])
    uid = node.wait_pod("web", "Running", is_running_ready)["metadata"]["uid"]
    node.api.ok("DELETE", node.pods_path("web"), {"propagationPolicy": "Background"})
    wait_until(lambda: node.pod("web") is None, "pod web to be gone from the API", 30)
    wait_until(lambda: not node.containers(**{UID_LABEL: uid}), "the pod's containers to be removed", 10)


def test_pod_removed_while_kubelet_was_down_is_cleaned_up(node):
    node.create_pod("web", [whoami(node.images)])
    uid = node.wait_pod("web", "Running", is_running_ready)["metadata"]["uid"]
    assert node.stop() == 0
    node.api.ok("DELETE", node.pods_path("web"), {"gracePeriodSeconds": 0})
    assert node.containers(**{UID_LABEL: uid}), "containers should outlive the kubelet"
    node.start()
    wait_until(lambda: not node.containers(**{UID_LABEL: uid}), "orphaned containers to be removed", 20)


def waiting_reasons(node: KubeletNode, name: str, since: str, until: str, timeout: int = 30) -> list[dict]:
    """The waiting states (reason, message) that the pod's first container showed, in order, from
    resourceVersion `since` until one with reason `until`. Read from a watch, so a state the pod
    showed for a moment only (ErrImagePull until the next sync) is not missed between two polls; the
    apiserver ends the watch after `timeout` seconds."""
    url = (
        f"{node.api.server}{node.pods_path()}?watch=true&resourceVersion={since}"
        f"&fieldSelector=metadata.name%3D{name}&timeoutSeconds={timeout}"
    )
    states: list[dict] = []
    with urllib.request.urlopen(url, timeout=timeout + 10) as stream:
        for line in stream:
            event = json.loads(line)
            waiting = container_state(event["object"]).get("waiting") or {}
            if waiting.get("reason") and (not states or states[-1] != waiting):
                states.append(waiting)
            if waiting.get("reason") == until:
                return states
    raise AssertionError(f"pod {name} showed no {until} within {timeout}s; it showed {states}")


def test_missing_image_reports_err_image_pull_then_back_off(node):
    image = "kubelite/no-such-image:1"
    created = node.create_pod("ghost", [{"name": "c", "image": image, "imagePullPolicy": "IfNotPresent"}])
    states = waiting_reasons(node, "ghost", created["metadata"]["resourceVersion"], until="ImagePullBackOff")
    reasons = [s["reason"] for s in states]
    assert "ErrImagePull" in reasons, states
    pulled = states[reasons.index("ErrImagePull")]
    assert pulled["message"].startswith(f'failed to pull image "{image}"'), pulled
    assert reasons[reasons.index("ErrImagePull") :] == ["ErrImagePull", "ImagePullBackOff"], states
    assert set(reasons) <= {"ContainerCreating", "ErrImagePull", "ImagePullBackOff"}, states
    assert states[-1]["message"] == f'Back-off pulling image "{image}"', states
    pod = node.pod("ghost")
    assert pod is not None and pod["status"]["phase"] == "Pending", pod
    assert node.process.proc.poll() is None


def test_crashing_container_restarts_and_backs_off(node):
    crash = {"name": "c", "image": node.images["busybox"], "imagePullPolicy": "Never",
             "command": ["sh", "-c", "echo bye $(WHO); exit 3"],
             "env": [{"name": "WHO", "value": "now"}]}  # fmt: skip
    node.create_pod("crash", [crash])

    def crash_looping(pod):
        cs = (pod.get("status", {}).get("containerStatuses") or [{}])[0]
        waiting = cs.get("state", {}).get("waiting", {})
        return cs.get("restartCount", 0) >= 1 and waiting.get("reason") == "CrashLoopBackOff"

    pod = node.wait_pod("crash", "in CrashLoopBackOff after a restart", crash_looping)
    cs = pod["status"]["containerStatuses"][0]
    assert cs["lastState"]["terminated"]["exitCode"] == 3
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    assert pod["status"]["phase"] == "Running"
    logs = http_get(f"http://127.0.0.1:{node.port}/containerLogs/{node.namespace}/crash/c")
    assert logs == "bye now\n"


def test_completed_pod_succeeds(node):
    job = {"name": "c", "image": node.images["busybox"], "imagePullPolicy": "Never", "args": ["true"]}
    job["command"] = ["sh", "-c"]
    job["args"] = ["echo done"]
    node.create_pod("job", [job], restartPolicy="Never")
    pod = node.wait_pod("job", "Succeeded", lambda p: p.get("status", {}).get("phase") == "Succeeded")
    term = container_state(pod)["terminated"]
    assert term["exitCode"] == 0 and term["reason"] == "Completed"
