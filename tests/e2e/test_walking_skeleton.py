"""The walking skeleton end to end, as a user does it: bring a cluster up with the kubelite
command (as local processes, and as containers with docker compose), `kubectl apply -f` a pod
and a NodePort service, wait for the pod, and get the pod's answer through the NodePort of
every node from the host. Then delete, and check that the cluster leaves nothing behind.
"""

from __future__ import annotations

import time

import pytest

from kubelite.localcluster import CLUSTER_LABEL
from tests.e2e.clusters import KINDS, cluster_fixture
from tests.support import Kubectl, http_get, wait_until

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


@pytest.fixture(scope="module", params=KINDS)
def cluster(request, images, docker_client):
    yield from cluster_fixture(request.param, docker_client)


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


def test_a_bad_image_stalls_a_rollout_within_max_unavailable_until_its_progress_deadline(cluster, tmp_path):
    """On real Docker nodes: an image that cannot be pulled never becomes available, so the rollout
    stops at maxUnavailable with the old pods serving, and ends in ProgressDeadlineExceeded."""
    kubectl = Kubectl(cluster.server, tmp_path)
    kubectl.run("create", "deployment", "stuck", "--image=kubelite/whoami:1.0", "--replicas=4")
    kubectl.run("patch", "deployment", "stuck", "-p", '{"spec":{"progressDeadlineSeconds":15}}')
    kubectl.run("rollout", "status", "deployment/stuck", "--timeout=120s", timeout=150)
    try:
        kubectl.run("set", "image", "deployment/stuck", "whoami=kubelite/no-such-image:1.0")
        failed = kubectl.run(
            "rollout", "status", "deployment/stuck", "--timeout=120s", check=False, timeout=150
        )
        assert failed.returncode != 0
        assert 'error: deployment "stuck" exceeded its progress deadline' in failed.stderr, failed.stderr
        d = kubectl.get_json("deployment", "stuck")
        progressing = next(c for c in d["status"]["conditions"] if c["type"] == "Progressing")
        assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
        assert d["status"].get("availableReplicas") == 3, (
            "4 replicas, 25% unavailable at most: 3 stay available"
        )
        pods = kubectl.get_json("pods", "-l", "app=stuck")["items"]
        waiting = {
            cs["state"].get("waiting", {}).get("reason")
            for p in pods
            for cs in p["status"].get("containerStatuses") or []
            if p["spec"]["containers"][0]["image"] == "kubelite/no-such-image:1.0"
        }
        assert waiting & {"ErrImagePull", "ImagePullBackOff"}, waiting
    finally:
        kubectl.run("delete", "deployment", "stuck")


def test_a_container_removed_behind_the_kubelets_back_is_replaced(cluster, tmp_path, docker_client):
    kubectl = Kubectl(cluster.server, tmp_path)
    kubectl.run("create", "deployment", "healed", "--image=kubelite/whoami:1.0", "--replicas=1")
    try:
        kubectl.run("rollout", "status", "deployment/healed", "--timeout=120s", timeout=150)
        [pod] = kubectl.get_json("pods", "-l", "app=healed")["items"]
        labels = [f"io.kubernetes.pod.name={pod['metadata']['name']}", "io.kubernetes.container.name=whoami"]
        filters = {"label": [f"{CLUSTER_LABEL}={cluster.name}", *labels]}
        [container] = docker_client.containers.list(filters=filters)
        container.remove(force=True)  # docker rm -f

        def restarted() -> bool:
            current = kubectl.get_json("pod", pod["metadata"]["name"])
            [status] = current["status"].get("containerStatuses") or [{}]
            return status.get("restartCount", 0) >= 1 and status.get("ready") is True

        wait_until(restarted, "the kubelet to start the container again", timeout=60)
        assert docker_client.containers.list(filters=filters), "a new container runs"
    finally:
        kubectl.run("delete", "deployment", "healed")


# Keep this test last in the file: it takes the module's cluster down itself.
def test_a_component_killed_mid_run_fails_the_teardown_by_name(cluster):
    victim = "scheduler"
    cluster.kill(victim)
    result = cluster.down()
    assert result.returncode == 1, f"down did not report the killed {victim}:\n{result.stdout}"
    report = result.stdout
    if cluster.kind == "local":
        assert f"{victim} had exited without logging an exit status before down" in report, report
    else:
        assert f"{victim} had died and been restarted 1 time(s) before down" in report, report
    assert "its log ends:" in report and "not cleanly: scheduler" in report, report
