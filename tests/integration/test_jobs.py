"""batch/v1 Jobs run by the real controller-manager, scheduler and apiserver on hollow nodes, whose
containers finish as their command says (`sleep 2`, `exit 1`), driven by the real kubectl: the
example Indexed Job completes two at a time, a failing Job stops at its backoffLimit, a finished
Job with a TTL is deleted with its pods, `kubectl create job` works, and a changed template is
refused. Pods carry the `batch.kubernetes.io/job-tracking` finalizer: a pod deleted while running
is counted as failed once and still goes, and a foreground `kubectl delete job` removes the pods."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import HollowCluster, hollow_cluster
from tests.integration.test_kubelet_docker import KubeletNode
from tests.support import Kubectl, wait_until
from tests.workloads_support import PodWatch

NODES = 2
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "job.yaml"
INDEX = "batch.kubernetes.io/job-completion-index"
TRACKING = "batch.kubernetes.io/job-tracking"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[HollowCluster]:
    with hollow_cluster(
        tmp_path_factory.mktemp("jobs"),
        nodes=NODES,
        controller_args=["--leader-elect=false", "--controllers", "job,ttl-after-finished,garbagecollector"],
    ) as c:
        yield c


@pytest.fixture
def kubectl(cluster: HollowCluster) -> Kubectl:
    return cluster.kubectl


def job(name: str, command: list[str], **spec: Any) -> str:
    container = {"name": "main", "image": "kubelite/busybox:latest", "imagePullPolicy": "IfNotPresent",
                 "command": command}  # fmt: skip
    body = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}, **spec},
    }  # fmt: skip
    return json.dumps(body)


def condition(kubectl: Kubectl, name: str, kind: str) -> dict | None:
    conds = kubectl.get_json("job", name).get("status", {}).get("conditions") or []
    return next((c for c in conds if c["type"] == kind and c["status"] == "True"), None)


def running(pod: dict) -> bool:
    terminal = pod.get("status", {}).get("phase") in ("Succeeded", "Failed")
    return not terminal and not pod["metadata"].get("deletionTimestamp")


def test_the_example_indexed_job_completes_never_more_than_two_at_a_time(cluster, kubectl):
    with PodWatch(cluster.cp.server, "batch.kubernetes.io/job-name=squares") as watch:
        kubectl.run("apply", "-f", str(EXAMPLE))
        kubectl.run("wait", "--for=condition=complete", "job/squares", "--timeout=60s", timeout=90)
    assert watch.states, "the watch saw the pods"
    most = max(sum(1 for p in state.values() if running(p)) for state in watch.states)
    assert most == 2, f"at most parallelism 2 pods at once, and 2 at some point (saw {most})"
    done = kubectl.get_json("job", "squares")
    assert done["status"]["succeeded"] == 3 and done["status"]["completedIndexes"] == "0-2"
    assert "active" not in done["status"] and done["status"]["completionTime"]
    pods = kubectl.get_json("pods", "-l", "batch.kubernetes.io/job-name=squares")["items"]
    assert sorted(p["metadata"]["annotations"][INDEX] for p in pods) == ["0", "1", "2"]
    for pod in pods:
        index = pod["metadata"]["annotations"][INDEX]
        assert pod["metadata"]["name"].startswith(f"squares-{index}-")
        assert pod["status"]["phase"] == "Succeeded"
        env = pod["spec"]["containers"][0]["env"]
        assert env == [{"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "apiVersion": "v1", "fieldPath": f"metadata.annotations['{INDEX}']"}}}]  # fmt: skip
        logs = kubectl.run("logs", pod["metadata"]["name"]).stdout
        assert logs == f"item {index} done\n", "the hollow container echoes its own index"
    described = " ".join(kubectl.run("describe", "job", "squares").stdout.split())
    assert "Completion Mode: Indexed" in described and "Completed Indexes: 0-2" in described
    assert "3 Succeeded / 0 Failed" in described and "SuccessfulCreate" in described
    table = kubectl.run("get", "jobs", "squares").stdout.split("\n")
    assert table[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert table[1].split()[:3] == ["squares", "Complete", "3/3"]


def test_a_failing_job_stops_at_its_backoff_limit(kubectl):
    kubectl.run("apply", "-f", "-", input=job("fails", ["sh", "-c", "sleep 1; exit 1"], backoffLimit=1))
    kubectl.run("wait", "--for=condition=failed", "job/fails", "--timeout=60s", timeout=90)
    failed = condition(kubectl, "fails", "Failed")
    assert failed is not None and failed["reason"] == "BackoffLimitExceeded"
    assert failed["message"] == "Job has reached the specified backoff limit"
    status = kubectl.get_json("job", "fails")["status"]
    assert status["failed"] == 2 and "active" not in status
    pods = kubectl.get_json("pods", "-l", "job-name=fails")["items"]
    assert [p["status"]["phase"] for p in pods] == ["Failed", "Failed"], "one try and one retry, no more"
    finish = sorted(p["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"] for p in pods)
    starts = sorted(p["metadata"]["creationTimestamp"] for p in pods)
    assert _seconds(starts[1]) - _seconds(finish[0]) >= 9, "the retry waited out the 10 s back-off"
    events = kubectl.get_json("events", "--field-selector", "involvedObject.name=fails")["items"]
    assert "BackoffLimitExceeded" in {e["reason"] for e in events}
    assert kubectl.run("get", "job", "fails", "--no-headers").stdout.split()[1] == "Failed"


def _seconds(stamp: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_a_finished_job_with_a_ttl_goes_with_its_pods(kubectl):
    kubectl.run("apply", "-f", "-", input=job("brief", ["true"], ttlSecondsAfterFinished=2))
    wait_until(
        lambda: "job.batch/brief" not in kubectl.run("get", "jobs", "-o", "name").stdout.split(),
        "job/brief deleted 2 s after it completed", timeout=40,
    )  # fmt: skip
    wait_until(
        lambda: not kubectl.get_json("pods", "-l", "job-name=brief")["items"],
        "the garbage collector removed brief's pod", timeout=30,
    )  # fmt: skip


def test_kubectl_create_job_and_an_immutable_template(kubectl):
    out = kubectl.run("create", "job", "whoami", "--image=kubelite/whoami:1.0").stdout
    assert out.strip() == "job.batch/whoami created"
    created = kubectl.get_json("job", "whoami")
    assert created["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    wait_until(
        lambda: [p["status"].get("phase") for p in kubectl.get_json("pods", "-l", "job-name=whoami")["items"]]
        == ["Running"],
        "the job's one pod running", timeout=30,
    )  # fmt: skip
    patch = json.dumps(
        {"spec": {"template": {"spec": {"containers": [{"name": "whoami", "image": "kubelite/whoami:2.0"}]}}}}
    )
    result = kubectl.run("patch", "job", "whoami", "-p", patch, check=False)
    assert result.returncode != 0
    assert 'The Job "whoami" is invalid: spec.template: Invalid value: ' in result.stderr
    assert "field is immutable" in result.stderr
    after = kubectl.get_json("job", "whoami")
    assert after["spec"]["template"] == created["spec"]["template"]
    assert after["metadata"]["generation"] == 1
    kubectl.run("delete", "job", "whoami")
    wait_until(
        lambda: not kubectl.get_json("pods", "-l", "job-name=whoami")["items"], "whoami's pod deleted", 30
    )


def test_a_pod_deleted_while_running_counts_as_failed_once_and_goes(kubectl):
    body = json.loads(job("victim", ["sleep", "300"], backoffLimit=3))
    body["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 1
    kubectl.run("apply", "-f", "-", input=json.dumps(body))

    def running_pods() -> list[dict]:
        return [p for p in kubectl.get_json("pods", "-l", "job-name=victim")["items"] if running(p)]

    wait_until(lambda: len(running_pods()) == 1, "victim's pod running", timeout=30)
    (first,) = running_pods()
    assert first["metadata"]["finalizers"] == [TRACKING]
    kubectl.run("delete", "pod", first["metadata"]["name"], "--timeout=30s", timeout=40)  # waits for it to go
    wait_until(
        lambda: kubectl.get_json("job", "victim")["status"].get("failed") == 1,
        "the deleted pod counted as failed", timeout=20,
    )  # fmt: skip
    wait_until(lambda: len(running_pods()) == 1, "a replacement pod running", timeout=40)
    status = kubectl.get_json("job", "victim")["status"]
    assert status["failed"] == 1 and status["active"] == 1 and status["uncountedTerminatedPods"] == {}
    kubectl.run("delete", "job", "victim", "--cascade=foreground", "--timeout=40s", timeout=50)
    assert kubectl.get_json("pods", "-l", "job-name=victim")["items"] == []


@pytest.mark.docker
def test_the_same_example_runs_to_completion_on_a_docker_node(cluster, kubectl, docker_client, images):
    node = KubeletNode(cluster.cp, docker_client, images)
    try:
        node.start()
        manifest = yaml.safe_load(EXAMPLE.read_text())
        manifest["metadata"]["namespace"] = node.namespace
        manifest["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": node.name}
        kubectl.run("apply", "-f", "-", input=json.dumps(manifest))
        kubectl.run(
            "wait",
            "-n",
            node.namespace,
            "--for=condition=complete",
            "job/squares",
            "--timeout=90s",
            timeout=120,
        )
        pods = kubectl.get_json("pods", "-n", node.namespace)["items"]
        assert {p["spec"]["nodeName"] for p in pods} == {node.name}
        for pod in pods:
            index = pod["metadata"]["annotations"][INDEX]
            logs = kubectl.run("logs", "-n", node.namespace, pod["metadata"]["name"]).stdout
            assert logs == f"item {index} done\n", "busybox's sh prints the same as the hollow container"
            assert not pod["metadata"].get("finalizers"), "counted, so the finalizer is gone"
        _a_deleted_pod_goes_from_the_docker_node(kubectl, node.namespace, node.name)
        assert node.process is not None
        node.process.stop_cleanly()
    finally:
        try:
            if node.process is not None and node.process.running():
                node.process.kill()
        finally:
            node.cleanup()


def _a_deleted_pod_goes_from_the_docker_node(kubectl: Kubectl, namespace: str, node: str) -> None:
    """The Docker kubelet stops the container, deletes the pod with grace 0 and the pod is held
    (Terminating) only until the Job controller has counted it and removed the finalizer."""
    body = json.loads(job("stopped", ["sleep", "300"], backoffLimit=0))
    spec = body["spec"]["template"]["spec"]
    spec["terminationGracePeriodSeconds"] = 1
    spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(body))

    def pods() -> list[dict]:
        return kubectl.get_json("pods", "-n", namespace, "-l", "job-name=stopped")["items"]

    wait_until(lambda: [p["status"].get("phase") for p in pods()] == ["Running"], "stopped's pod running", 60)
    (pod,) = pods()
    kubectl.run("delete", "pod", "-n", namespace, pod["metadata"]["name"], "--timeout=40s", timeout=50)
    kubectl.run("wait", "-n", namespace, "--for=condition=failed", "job/stopped", "--timeout=30s", timeout=40)
    assert kubectl.get_json("job", "-n", namespace, "stopped")["status"]["failed"] == 1
    kubectl.run("delete", "job", "-n", namespace, "stopped", "--timeout=30s", timeout=40)
