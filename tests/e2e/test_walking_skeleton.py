"""The walking skeleton end to end, as a user does it: bring a cluster up with the kubelite
command (as local processes, and as containers with docker compose), `kubectl apply -f` a pod
and a NodePort service, wait for the pod, and get the pod's answer through the NodePort of
every node from the host. Then delete, and check that the cluster leaves nothing behind.
"""

from __future__ import annotations

import ipaddress
import secrets
import subprocess
import sys
import time

import pytest

from kubelite.localcluster import CLUSTER_LABEL
from tests.support import Kubectl, env_with, free_loopback_base, free_port, http_get, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

NODE_PORT = 30007
MANIFEST = f"""
apiVersion: v1
kind: Pod
metadata:
  name: whoami
  labels:
    app: whoami
spec:
  containers:
  - name: whoami
    image: kubelite/whoami:latest
    imagePullPolicy: IfNotPresent
    ports:
    - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: whoami
spec:
  type: NodePort
  selector:
    app: whoami
  ports:
  - port: 80
    targetPort: 8080
    nodePort: {NODE_PORT}
"""


def kubelite_cmd(*args: str, env: dict[str, str], timeout: float = 300) -> None:
    cmd = [sys.executable, "-m", "kubelite.cli", *args]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"kubelite {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


class Cluster:
    def __init__(self, kind: str, name: str, server: str, node_addresses: list[str], up_seconds: float):
        self.kind = kind
        self.name = name
        self.server = server
        self.node_addresses = node_addresses
        self.up_seconds = up_seconds


@pytest.fixture(scope="module", params=["local", "compose"])
def cluster(request, images, docker_client):
    kind = request.param
    name = f"kt-{secrets.token_hex(3)}"
    first = free_loopback_base(2)
    nodes = [first, str(ipaddress.IPv4Address(first) + 1)]
    api_port = free_port()
    if kind == "local":
        env = env_with()
        etcd_ports = ",".join(str(free_port()) for _ in range(3))
        peer_ports = ",".join(str(free_port()) for _ in range(3))
        up = ["up", "--name", name, "--api-port", str(api_port), "--etcd-ports", etcd_ports,
              "--etcd-peer-ports", peer_ports, "--first-node-address", first, "--skip-images"]  # fmt: skip
        down = ["down", "--name", name]
    else:
        env = env_with(KUBELITE_NETWORK=name, KUBELITE_API_PORT=str(api_port),
                       KUBELITE_NODE1_ADDR=nodes[0], KUBELITE_NODE2_ADDR=nodes[1])  # fmt: skip
        up = ["compose", "up", "-p", name, "--skip-images"]
        down = ["compose", "down", "-p", name]
    started = time.monotonic()
    try:
        kubelite_cmd(*up, env=env)
        up_seconds = time.monotonic() - started
        print(f"\n[{kind}] cluster up with all nodes Ready in {up_seconds:.1f}s")
        yield Cluster(kind, name, f"http://127.0.0.1:{api_port}", nodes, up_seconds)
    finally:
        kubelite_cmd(*down, env=env)
        leftovers = docker_client.containers.list(all=True, filters={"label": f"{CLUSTER_LABEL}={name}"})
        networks = [n.name for n in docker_client.networks.list(names=[name]) if n.name == name]
        assert not leftovers and not networks, f"cluster {name} left {leftovers} and networks {networks}"


def test_kubectl_apply_pod_and_nodeport_service_then_curl_every_node(cluster, tmp_path, docker_client):
    kubectl = Kubectl(cluster.server, tmp_path)

    nodes = kubectl.run("get", "nodes").stdout
    ready = [line for line in nodes.splitlines()[1:] if line.split()[1] == "Ready"]
    assert len(ready) == 2, f"expected 2 Ready nodes, kubectl get nodes printed:\n{nodes}"

    manifest = tmp_path / "whoami.yaml"
    manifest.write_text(MANIFEST)
    started = time.monotonic()
    applied = kubectl.run("apply", "-f", str(manifest)).stdout
    assert "pod/whoami created" in applied and "service/whoami created" in applied, applied

    kubectl.run("wait", "--for=condition=Ready", "pod/whoami", "--timeout=120s", timeout=150)
    pods = kubectl.run("get", "pods", "-o", "wide").stdout
    assert "Running" in pods and "1/1" in pods, pods

    for address in cluster.node_addresses:
        url = f"http://{address}:{NODE_PORT}/"
        answer = wait_until(
            lambda url=url: http_get(url), f"an answer from the pod through {url}", timeout=60
        )
        assert answer.strip() == "whoami", f"{url} answered {answer!r}, expected the pod's hostname"
    print(f"[{cluster.kind}] kubectl apply to first successful curl: {time.monotonic() - started:.1f}s")

    svc = kubectl.run("get", "service", "whoami").stdout
    assert f"80:{NODE_PORT}/TCP" in svc and "NodePort" in svc, svc

    deleted = kubectl.run("delete", "-f", str(manifest), timeout=150).stdout
    assert 'pod "whoami" deleted' in deleted and 'service "whoami" deleted' in deleted, deleted
    missing = kubectl.run("get", "pod", "whoami", check=False)
    assert missing.returncode == 1 and 'pods "whoami" not found' in missing.stderr, missing.stderr

    def pod_containers_gone() -> bool:
        filters = {"label": [f"{CLUSTER_LABEL}={cluster.name}", "io.kubernetes.pod.name=whoami"]}
        return not docker_client.containers.list(all=True, filters=filters)

    wait_until(pod_containers_gone, "the kubelet to remove the deleted pod's containers", timeout=60)


def test_kubectl_logs_reads_the_container_log_through_the_kubelet(cluster, tmp_path):
    kubectl = Kubectl(cluster.server, tmp_path)
    kubectl.run(
        "run", "talker", "--image=kubelite/busybox:latest", "--image-pull-policy=IfNotPresent",
        "--", "sh", "-c", "echo one; echo two; echo three; sleep 3600",
    )  # fmt: skip
    try:
        kubectl.run("wait", "--for=condition=Ready", "pod/talker", "--timeout=120s", timeout=150)

        def full_log() -> str | None:
            out = kubectl.run("logs", "talker").stdout
            return out if "three" in out else None

        logs = wait_until(full_log, "the pod's output in kubectl logs", timeout=30)
        assert logs == "one\ntwo\nthree\n"
        assert kubectl.run("logs", "talker", "--tail=1").stdout == "three\n"
        wrong = kubectl.run("logs", "talker", "-c", "nope", check=False)
        assert "container nope is not valid for pod talker" in wrong.stderr, wrong.stderr
    finally:
        kubectl.run("delete", "pod", "talker", "--wait=false")
