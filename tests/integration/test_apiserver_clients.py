"""`python -m apiserver` against etcdlite and against a real etcd 3.4, driven by the real
kubectl and the official kubernetes Python client: apply/get/watch/delete, the 422 and
AlreadyExists texts, optimistic concurrency, a watch from a compacted resourceVersion, and a
clean exit on SIGTERM with a watch open.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apiserver.storage import EtcdStore
from tests.integration.etcd_helpers import run_etcdlite, run_etcdlite_cluster, run_real_etcd
from tests.support import Kubectl, Process, free_port, http_ok, wait_until

POD_AND_SERVICE = """
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: web
    image: busybox:1.36
    ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"""


class Cluster:
    """A store plus `python -m apiserver` on free ports."""

    def __init__(self, etcd_url: str, workdir: Path) -> None:
        self.etcd_url = etcd_url
        self.port = free_port()
        self.server = f"http://127.0.0.1:{self.port}"
        self.apiserver = Process(
            "apiserver",
            ["--etcd-servers", etcd_url, "--bind-address", "127.0.0.1", "--secure-port", str(self.port),
             "--advertise-address", "127.0.0.1", "--service-cluster-ip-range", "10.96.0.0/12",
             "--service-node-port-range", "30000-32767"],
            workdir / "logs",
        )  # fmt: skip
        self.kubectl = Kubectl(self.server, workdir)

    def wait_ready(self) -> None:
        def ready() -> bool:
            self.apiserver.assert_running()
            return http_ok(self.server + "/readyz")

        wait_until(ready, f"apiserver {self.server}/readyz", 20)

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.server + path, data=data, method=method, headers={"Content-Type": content_type}
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as err:
            return err.code, json.load(err)


STORES = {"etcdlite": run_etcdlite, "etcdlite-3": run_etcdlite_cluster, "etcd": run_real_etcd}


@pytest.fixture(scope="module", params=list(STORES))
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The apiserver on one etcdlite member, on a 3-member etcdlite (Raft) and on a real etcd 3.4."""
    workdir = tmp_path_factory.mktemp(f"apiserver-{request.param}")
    runner = STORES[request.param]
    with runner(workdir) as etcd_url:
        cl = Cluster(etcd_url, workdir)
        try:
            cl.wait_ready()
            yield cl
        finally:
            code = cl.apiserver.stop()
        assert code == 0, f"apiserver did not exit cleanly on SIGTERM ({code}):\n{cl.apiserver.log_tail()}"


def test_kubectl_apply_get_and_errors(cluster: Cluster, tmp_path: Path) -> None:
    k = cluster.kubectl
    manifest = tmp_path / "web.yaml"
    manifest.write_text(POD_AND_SERVICE)
    out = k.run("apply", "-f", str(manifest)).stdout
    assert "pod/web created" in out and "service/web created" in out
    again = k.run("apply", "-f", str(manifest)).stdout
    assert "pod/web unchanged" in again and "service/web unchanged" in again

    wide = k.run("get", "pods", "-o", "wide").stdout.splitlines()
    header = "NAME READY STATUS RESTARTS AGE IP NODE NOMINATED NODE READINESS GATES"
    assert wide[0].split() == header.split()
    assert wide[1].split()[:4] == ["web", "0/1", "Pending", "0"]
    svc = k.run("get", "svc", "web").stdout.splitlines()
    assert svc[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    name, kind, cluster_ip, external, ports, _age = svc[1].split()
    assert (name, kind, external) == ("web", "NodePort", "<none>") and cluster_ip.startswith("10.")
    assert ports.startswith("80:3") and ports.endswith("/TCP")
    as_json = k.get_json("pod", "web")
    assert as_json["spec"]["restartPolicy"] == "Always" and as_json["status"]["phase"] == "Pending"

    created = k.run("create", "-f", str(manifest), check=False)
    assert created.returncode != 0
    assert 'Error from server (AlreadyExists): error when creating "' in created.stderr
    assert 'pods "web" already exists' in created.stderr and 'services "web" already exists' in created.stderr

    bad = k.run("run", "Bad_Name", "--image=busybox", check=False)
    assert bad.returncode != 0
    assert 'The Pod "Bad_Name" is invalid: ' in bad.stderr
    assert (
        '* metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of'
        in bad.stderr
    )

    missing = k.run("get", "pod", "nonexist", check=False)
    assert 'Error from server (NotFound): pods "nonexist" not found' in missing.stderr


def test_kubectl_create_generators_send_protobuf(cluster: Cluster) -> None:
    """`kubectl create namespace|configmap|secret|service` send protobuf bodies (COMPAT.md)."""
    k = cluster.kubectl
    assert k.run("create", "namespace", "pbns").stdout == "namespace/pbns created\n"
    assert (
        "configmap/pb created"
        in k.run("create", "configmap", "pb", "-n", "pbns", "--from-literal=a=b").stdout
    )
    assert (
        "secret/s created"
        in k.run("create", "secret", "generic", "s", "-n", "pbns", "--from-literal=k=v").stdout
    )
    assert (
        "service/pbsvc created"
        in k.run("create", "service", "nodeport", "pbsvc", "-n", "pbns", "--tcp=80:8080").stdout
    )
    cm = k.get_json("configmap", "pb", "-n", "pbns")
    assert cm["data"] == {"a": "b"}
    secret = k.get_json("secret", "s", "-n", "pbns")
    assert secret["data"] == {"k": "dg=="} and secret["type"] == "Opaque"
    svc = k.get_json("service", "pbsvc", "-n", "pbns")
    [port] = svc["spec"]["ports"]
    assert svc["spec"]["type"] == "NodePort" and svc["spec"]["selector"] == {"app": "pbsvc"}
    assert (port["port"], port["targetPort"], port["protocol"]) == (80, 8080, "TCP")
    assert 30000 <= port["nodePort"] <= 32767
    again = k.run("create", "namespace", "pbns", check=False)
    assert 'Error from server (AlreadyExists): namespaces "pbns" already exists' in again.stderr


def test_kubectl_watch_and_delete_with_wait(cluster: Cluster) -> None:
    k = cluster.kubectl
    k.run("run", "w1", "--image=busybox", "--labels=app=w")
    watcher = subprocess.Popen(
        [k.binary, "--kubeconfig", str(k.kubeconfig), "--cache-dir", str(k.cache_dir),
         "get", "pods", "-l", "app=w", "-w", "--request-timeout=30s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []

    def read() -> None:
        assert watcher.stdout is not None
        for line in watcher.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_until(lambda: any(line.startswith("w1 ") for line in lines), "kubectl get -w lists w1", 15)
        # A status change made by "a kubelet" shows up in the watch.
        running = {"name": "w1", "image": "busybox", "imageID": "", "ready": True, "restartCount": 0}
        running["state"] = {"running": {}}
        status = {"status": {"phase": "Running", "podIP": "10.244.0.9", "containerStatuses": [running]}}
        code, body = cluster.request(
            "PATCH",
            "/api/v1/namespaces/default/pods/w1/status",
            status,
            "application/strategic-merge-patch+json",
        )
        assert code == 200, body
        wait_until(
            lambda: any("1/1" in line and "Running" in line for line in lines), "watch shows w1 Running", 15
        )
    finally:
        watcher.terminate()
        watcher.wait(10)

    # Bound pod: deletion is graceful; kubectl waits until "the kubelet" finishes it with grace 0.
    code, body = cluster.request(
        "POST", "/api/v1/namespaces/default/pods/w1/binding", {"target": {"kind": "Node", "name": "n1"}}
    )
    assert code == 201, body
    deleter = subprocess.Popen(
        [k.binary, "--kubeconfig", str(k.kubeconfig), "--cache-dir", str(k.cache_dir), "delete", "pod", "w1",
         "--timeout=30s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:

        def terminating() -> bool:
            got = cluster.request("GET", "/api/v1/namespaces/default/pods/w1")[1]
            return bool(got.get("metadata", {}).get("deletionTimestamp"))

        wait_until(terminating, "pod w1 marked for graceful deletion", 15)
        assert deleter.poll() is None, "kubectl delete must wait for the pod to go"
        code, body = cluster.request("DELETE", "/api/v1/namespaces/default/pods/w1?gracePeriodSeconds=0")
        assert code == 200 and body["kind"] == "Pod", body
        out, err = deleter.communicate(timeout=20)
    finally:
        if deleter.poll() is None:
            deleter.kill()
            deleter.wait()
    assert deleter.returncode == 0, err
    assert 'pod "w1" deleted' in out


def test_python_client(cluster: Cluster) -> None:
    from kubernetes import client, config, watch

    config.load_kube_config(str(cluster.kubectl.kubeconfig))
    api_client = client.ApiClient()
    try:
        core = client.CoreV1Api(api_client)
        assert client.VersionApi(api_client).get_code().git_version.startswith("v1.")
        assert any(r.name == "pods" for r in core.get_api_resources().resources)
        pod = client.V1Pod(
            metadata=client.V1ObjectMeta(name="py", labels={"app": "py"}),
            spec=client.V1PodSpec(
                containers=[
                    client.V1Container(
                        name="c",
                        image="busybox",
                        resources=client.V1ResourceRequirements(limits={"cpu": "500m", "memory": "64Mi"}),
                    )
                ]
            ),
        )
        created = core.create_namespaced_pod("default", pod)
        assert created.status.phase == "Pending" and created.status.qos_class == "Guaranteed"
        svc = client.V1Service(
            metadata=client.V1ObjectMeta(name="py"),
            spec=client.V1ServiceSpec(
                type="NodePort", selector={"app": "py"}, ports=[client.V1ServicePort(port=80)]
            ),
        )
        service = core.create_namespaced_service("default", svc)
        assert 30000 <= service.spec.ports[0].node_port <= 32767 and service.spec.cluster_ip
        assert [
            p.metadata.name for p in core.list_namespaced_pod("default", label_selector="app=py").items
        ] == ["py"]
        seen = [
            (e["type"], e["object"].metadata.name)
            for e in watch.Watch().stream(
                core.list_namespaced_pod, "default", label_selector="app=py", timeout_seconds=1
            )
        ]
        assert seen == [("ADDED", "py")]
        core.patch_namespaced_pod("py", "default", {"metadata": {"labels": {"extra": "1"}}})
        assert core.read_namespaced_pod("py", "default").metadata.labels == {"app": "py", "extra": "1"}
        assert isinstance(core.delete_namespaced_pod("py", "default"), client.V1Pod)
        assert isinstance(core.delete_namespaced_service("py", "default"), client.V1Service)
        with pytest.raises(client.ApiException) as gone:
            core.read_namespaced_pod("py", "default")
        assert gone.value.status == 404
    finally:
        api_client.close()


def test_concurrent_updates_one_conflict(cluster: Cluster) -> None:
    code, cm = cluster.request(
        "POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "race"}, "data": {}}
    )
    assert code == 201, cm
    barrier = threading.Barrier(4)
    results: list[int] = []

    def update(i: int) -> None:
        body = {**cm, "data": {"writer": str(i)}}
        barrier.wait()
        results.append(cluster.request("PUT", "/api/v1/namespaces/default/configmaps/race", body)[0])

    threads = [threading.Thread(target=update, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(results) == [200, 409, 409, 409], results


def test_watch_from_compacted_revision_is_410(cluster: Cluster) -> None:
    from kubernetes import client, config, watch

    code, first = cluster.request(
        "POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "old"}}
    )
    assert code == 201
    old_rv = int(first["metadata"]["resourceVersion"])
    for i in range(3):
        cluster.request("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": f"newer{i}"}})

    async def compact() -> None:
        store = EtcdStore(cluster.etcd_url)
        try:
            await store.compact(await store.revision())
        finally:
            await store.close()

    asyncio.run(compact())
    with urllib.request.urlopen(
        f"{cluster.server}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={old_rv}",
        timeout=10,
    ) as resp:
        event = json.loads(resp.readline())
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
    assert event["object"]["message"].startswith(f"too old resource version: {old_rv} (")

    config.load_kube_config(str(cluster.kubectl.kubeconfig))
    api_client = client.ApiClient()
    try:
        core = client.CoreV1Api(api_client)
        with pytest.raises(client.ApiException) as err:
            stream = watch.Watch().stream(
                core.list_namespaced_config_map, "default", resource_version=str(old_rv), timeout_seconds=5
            )
            for _ in stream:
                pass
        assert err.value.status == 410
    finally:
        api_client.close()


def test_failover_and_sigterm_ends_open_watches(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there: the apiserver must move on
    with run_real_etcd(tmp_path) as etcd_url:
        cl = Cluster(f"{dead},{etcd_url}", tmp_path)
        try:
            cl.wait_ready()
            code, _ = cl.request(
                "POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "via-second"}}
            )
            assert code == 201
            resp = urllib.request.urlopen(f"{cl.server}/api/v1/pods?watch=true", timeout=10)
            # Shutdown must not wait for the watch's timeout (30 to 60 min): stop() would SIGKILL it
            # after 10 s and return -9. Nor may it leave the stream to the shutdown timeout, which
            # cuts it: the apiserver ends it, so the client reads a complete response.
            code = cl.apiserver.stop(timeout=10)
            assert code == 0, cl.apiserver.log_tail()
            try:
                resp.read()
            except http.client.IncompleteRead as cut:
                pytest.fail(f"the watch stream was cut at shutdown, not ended: {cut!r}")
            resp.close()
        finally:
            cl.apiserver.stop()
