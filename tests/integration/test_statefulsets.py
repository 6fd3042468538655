"""StatefulSets run by the real controller-manager, scheduler and apiserver on hollow nodes, driven
by the real kubectl: examples/statefulset.yaml makes db-0 Ready before db-1 exists, a deleted pod
comes back under its name, `kubectl set image` with a partition updates from the highest ordinal
down to the partition only, `kubectl rollout status|history|undo` work, `kubectl scale` removes the
highest ordinal, and a StatefulSet without serviceName is refused naming the field.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import hollow_cluster
from tests.support import Kubectl, wait_until
from tests.workloads_support import PodWatch

NODES = 2
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "statefulset.yaml"


class Cluster:
    def __init__(self, server: str, kubectl: Kubectl):
        self.server = server
        self.kubectl = kubectl

    def pods(self) -> dict[str, dict]:
        items = self.kubectl.get_json("pods", "-l", "app=db")["items"]
        return {p["metadata"]["name"]: p for p in items if not p["metadata"].get("deletionTimestamp")}

    def images(self) -> dict[str, str]:
        return {name: p["spec"]["containers"][0]["image"] for name, p in self.pods().items()}

    def rollout_status(self) -> str:
        return self.kubectl.run("rollout", "status", "sts/db", "--timeout=90s", timeout=120).stdout


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    with hollow_cluster(tmp_path_factory.mktemp("statefulsets"), nodes=NODES) as h:
        yield Cluster(h.cp.server, h.kubectl)


def ready(pod: dict | None) -> bool:
    conditions = (pod or {}).get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_the_example_creates_its_pods_in_order_with_stable_identities(cluster):
    with PodWatch(cluster.server, "app=db") as watch:
        cluster.kubectl.run("apply", "-f", str(EXAMPLE))
        out = cluster.rollout_status()
        wait_until(lambda: len(watch.states[-1]) == 3, "the watch saw db-0, db-1 and db-2", timeout=10)
    assert "partitioned roll out complete: 3 new pods have been updated..." in out
    for state in watch.states:
        if "db-1" in state:
            assert ready(state.get("db-0")), f"db-1 existed while db-0 was not Ready: {sorted(state)}"
        if "db-2" in state:
            assert ready(state.get("db-1")), f"db-2 existed while db-1 was not Ready: {sorted(state)}"
    pod = cluster.kubectl.get_json("pod", "db-1")
    assert pod["spec"]["hostname"] == "db-1" and pod["spec"]["subdomain"] == "db"
    assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "db-1"
    table = cluster.kubectl.run("get", "sts", "-o", "wide").stdout.split("\n")
    assert table[0].split() == ["NAME", "READY", "AGE", "CONTAINERS", "IMAGES"]
    assert table[1].split()[:2] == ["db", "3/3"] and table[1].split()[-2:] == [
        "whoami",
        "kubelite/whoami:1.0",
    ]
    events = cluster.kubectl.run("get", "events", "--field-selector", "involvedObject.name=db").stdout
    assert "create Pod db-0 in StatefulSet db successful" in events
    described = " ".join(cluster.kubectl.run("describe", "sts", "db").stdout.split())
    for line in (
        "Replicas: 3 desired | 3 total",
        "Update Strategy: RollingUpdate Partition: 0",
        "Pods Status: 3 Running / 0 Waiting / 0 Succeeded / 0 Failed",
        "SuccessfulCreate",
    ):
        assert line in described, f"{line!r} not in kubectl describe:\n{described}"


def test_a_deleted_pod_comes_back_under_the_same_name(cluster):
    uid = cluster.kubectl.get_json("pod", "db-1")["metadata"]["uid"]
    cluster.kubectl.run("delete", "pod", "db-1", "--wait=false")

    def replaced() -> bool:
        pod = cluster.pods().get("db-1")
        return pod is not None and pod["metadata"]["uid"] != uid and ready(pod)

    wait_until(replaced, "db-1 recreated with a new uid and Ready", timeout=60)
    assert sorted(cluster.pods()) == ["db-0", "db-1", "db-2"]


def test_a_partitioned_update_goes_from_the_highest_ordinal_down_to_the_partition(cluster):
    patch = {"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}}}
    cluster.kubectl.run("patch", "sts", "db", "-p", json.dumps(patch))
    with PodWatch(cluster.server, "app=db") as watch:
        cluster.kubectl.run("set", "image", "sts/db", "whoami=kubelite/whoami:2.0")
        out = cluster.rollout_status()
    assert "partitioned roll out complete: 2 new pods have been updated..." in out
    assert cluster.images() == {
        "db-0": "kubelite/whoami:1.0",
        "db-1": "kubelite/whoami:2.0",
        "db-2": "kubelite/whoami:2.0",
    }
    for state in watch.states:
        db1, db2 = state.get("db-1"), state.get("db-2")
        if db1 and db1["spec"]["containers"][0]["image"].endswith(":2.0"):
            assert db2 and ready(db2) and db2["spec"]["containers"][0]["image"].endswith(":2.0"), (
                "db-1 was updated before db-2 was updated and Ready"
            )
    history = cluster.kubectl.run("rollout", "history", "sts/db").stdout
    assert [line.split()[0] for line in history.strip().split("\n")[2:]] == ["1", "2"], history


def test_rollout_undo_and_a_full_rollout(cluster):
    cluster.kubectl.run("rollout", "undo", "sts/db")
    patch = {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}}
    cluster.kubectl.run("patch", "sts", "db", "-p", json.dumps(patch))
    out = cluster.rollout_status()
    assert "partitioned roll out complete: 3 new pods have been updated..." in out
    wait_until(
        lambda: set(cluster.images().values()) == {"kubelite/whoami:1.0"},
        "every pod back on kubelite/whoami:1.0",
        timeout=30,
    )
    sts = cluster.kubectl.get_json("sts", "db")
    assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"]
    history = cluster.kubectl.run("rollout", "history", "sts/db").stdout
    assert [line.split()[0] for line in history.strip().split("\n")[2:]] == ["2", "3"], history
    # the kubernetes Python client reads the set and its history into its typed models
    import kubernetes

    config = kubernetes.client.Configuration()
    config.host = cluster.server
    apps = kubernetes.client.AppsV1Api(kubernetes.client.ApiClient(config))
    typed = apps.read_namespaced_stateful_set("db", "default")
    assert typed.spec.service_name == "db" and typed.status.replicas == 3
    assert typed.spec.update_strategy.rolling_update.partition == 0
    revisions = apps.list_namespaced_controller_revision("default", label_selector="app=db").items
    assert sorted(r.revision for r in revisions) == [2, 3]


def test_scale_down_removes_the_highest_ordinal(cluster):
    cluster.kubectl.run("scale", "sts", "db", "--replicas=2")
    wait_until(lambda: sorted(cluster.pods()) == ["db-0", "db-1"], "db-2 removed", timeout=60)


def test_a_statefulset_without_service_name_is_refused_naming_the_field(cluster):
    body = yaml_statefulset()
    del body["spec"]["serviceName"]
    body["metadata"]["name"] = "bad"
    result = cluster.kubectl.run("create", "-f", "-", input=json.dumps(body), check=False)
    assert result.returncode != 0
    assert 'The StatefulSet "bad" is invalid: spec.serviceName: Required value' in result.stderr
    request = urllib.request.Request(
        f"{cluster.server}/apis/apps/v1/namespaces/default/statefulsets", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    status = json.loads(refused.value.read())
    assert refused.value.code == 422 and status["reason"] == "Invalid"
    assert status["message"] == 'StatefulSet.apps "bad" is invalid: spec.serviceName: Required value'
    assert status["details"]["causes"][0]["field"] == "spec.serviceName"
    missing = cluster.kubectl.run("get", "sts", "bad", check=False)
    assert "NotFound" in missing.stderr
    assert not any(
        name.startswith("bad-") for name in cluster.kubectl.run("get", "pods", "-o", "name").stdout.split()
    )


def yaml_statefulset() -> dict:
    """The example's StatefulSet."""
    docs = list(yaml.safe_load_all(EXAMPLE.read_text()))
    return next(d for d in docs if d["kind"] == "StatefulSet")
