"""Every manifest under examples/ as the README offers it: `kubectl apply -f examples/<file>` with the
real kubectl on real Docker nodes, under both run modes (`kubelite up` and compose), then a check
that each kind in it actually works, then `kubectl delete -f` and a check that nothing is left.

What "works" means, per kind, as a user would look:
- Deployment: `kubectl rollout status` succeeds;
- DaemonSet: `kubectl rollout status` succeeds and one Running, Ready pod of it sits on every node;
- StatefulSet: `<name>-0` ... `<name>-<replicas-1>` Running and Ready, `-0` created first;
- Job: `kubectl wait --for=condition=complete`, with `succeeded` = its completions;
- CronJob: `kubectl create job --from=cronjob/<name>` makes a Job owned by the CronJob, and that Job
  completes (its every-minute schedule is covered by the CronJob's own integration test; waiting
  up to a minute per run mode here would double this module's time);
- PodDisruptionBudget: `kubectl get pdb` shows ALLOWED DISRUPTIONS, the number its minAvailable or
  maxUnavailable gives once the pods it covers are Ready.

Each example runs in a namespace of its own, so "nothing left" is checkable: after `kubectl delete
-f`, no object of the manifest and no pod remain in it. The examples are collected from the
directory, so a new one is tested without editing this file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubelite.imagedefs import (
    BUSYBOX_IMAGE,
    DEBIAN_IMAGE,
    KUBELITE_IMAGE,
    PAUSE_IMAGE,
    WHOAMI_IMAGE,
    WHOAMI_VERSIONS,
    whoami_version_image,
)
from tests.e2e.clusters import KINDS, cluster_fixture
from tests.support import ROOT, Kubectl, wait_until

EXAMPLES = ROOT / "examples"
MANIFESTS = sorted(EXAMPLES.glob("*.yaml"))
# The kinds issue 9 adds, each with its example (README: "a manifest under examples/ per kind").
ISSUE_EXAMPLES = {"daemonset.yaml", "statefulset.yaml", "job.yaml", "cronjob.yaml", "pdb.yaml"}
LOCAL_IMAGES = {KUBELITE_IMAGE, PAUSE_IMAGE, BUSYBOX_IMAGE, WHOAMI_IMAGE, DEBIAN_IMAGE}
LOCAL_IMAGES |= {whoami_version_image(v) for v in WHOAMI_VERSIONS}
# Workloads are checked before the budgets that cover them.
ORDER = ["Service", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "PodDisruptionBudget"]
TIMEOUT = 120


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def pod_templates(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod specs a manifest document would run (a CronJob's sits one level deeper)."""
    spec = doc.get("spec") or {}
    if doc.get("kind") == "Pod":
        return [spec]
    if doc.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template")
    return [template.get("spec") or {}] if template else []


# ---------------------------------------------------------------------------------- without a cluster


def test_every_kind_of_the_issue_has_an_example():
    missing = ISSUE_EXAMPLES - {p.name for p in MANIFESTS}
    assert not missing, f"examples/ lacks {sorted(missing)}"


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_an_example_runs_only_images_built_here_without_pulling(manifest):
    containers = [c for doc in documents(manifest) for spec in pod_templates(doc)
                  for c in [*spec.get("initContainers", []), *spec["containers"]]]  # fmt: skip
    for c in containers:
        assert c["image"] in LOCAL_IMAGES, f"{manifest.name}: {c['image']} is not built by `kubelite images`"
        assert c.get("imagePullPolicy") in ("IfNotPresent", "Never"), (
            f"{manifest.name}: {c['name']} would pull {c['image']}, and no registry is reachable"
        )


# ---------------------------------------------------------------------------------- on a cluster


@pytest.fixture(scope="module", params=KINDS)
def cluster(request, images, docker_client):
    yield from cluster_fixture(request.param, docker_client)


class Checks:
    """What a user looks at, per kind, to see that an applied object works."""

    def __init__(self, kubectl: Kubectl, namespace: str):
        self.kubectl, self.ns = kubectl, namespace

    def run(self, *args: str, timeout: float = TIMEOUT, check: bool = True):
        return self.kubectl.run("-n", self.ns, *args, timeout=timeout + 30, check=check)

    def get(self, *args: str) -> Any:
        return json.loads(self.run("get", *args, "-o", "json").stdout)

    def pods(self, selector: dict[str, str]) -> list[dict[str, Any]]:
        labels = ",".join(f"{k}={v}" for k, v in selector.items())
        return self.get("pods", "-l", labels)["items"]

    def pods_seen(self, selector: dict[str, str]) -> str:
        """The pods as `kubectl get pods -o wide` would show them, for a wait's failure message."""
        labels = ",".join(f"{k}={v}" for k, v in selector.items())
        return "\n" + self.run("get", "pods", "-l", labels, "-o", "wide", check=False).stdout

    def Service(self, doc: dict[str, Any]) -> None:
        self.get("service", doc["metadata"]["name"])

    def Deployment(self, doc: dict[str, Any]) -> None:
        name = doc["metadata"]["name"]
        out = self.run("rollout", "status", f"deployment/{name}", f"--timeout={TIMEOUT}s").stdout
        assert f'deployment "{name}" successfully rolled out' in out, out

    def DaemonSet(self, doc: dict[str, Any]) -> None:
        name = doc["metadata"]["name"]
        out = self.run("rollout", "status", f"daemonset/{name}", f"--timeout={TIMEOUT}s").stdout
        assert f'daemon set "{name}" successfully rolled out' in out, out
        nodes = sorted(n["metadata"]["name"] for n in self.kubectl.get_json("nodes")["items"])

        def one_ready_pod_per_node() -> bool:
            pods = [p for p in self.pods(doc["spec"]["selector"]["matchLabels"]) if is_serving(p)]
            return sorted(p["spec"]["nodeName"] for p in pods) == nodes

        selector = doc["spec"]["selector"]["matchLabels"]
        wait_until(one_ready_pod_per_node, f"one Running, Ready pod of {name} on each of {nodes}", timeout=60,
                   seen=lambda: self.pods_seen(selector))  # fmt: skip
        table = self.run("get", "daemonset", name).stdout
        desired, current, ready = table.splitlines()[1].split()[1:4]
        assert [desired, current, ready] == [str(len(nodes))] * 3, table

    def StatefulSet(self, doc: dict[str, Any]) -> None:
        name, replicas = doc["metadata"]["name"], doc["spec"].get("replicas", 1)
        names = [f"{name}-{i}" for i in range(replicas)]

        def all_ready() -> bool:
            pods = {p["metadata"]["name"]: p for p in self.pods(doc["spec"]["selector"]["matchLabels"])}
            return sorted(pods) == sorted(names) and all(is_serving(p) for p in pods.values())

        selector = doc["spec"]["selector"]["matchLabels"]
        wait_until(all_ready, f"pods {names} of {name} Running and Ready", timeout=TIMEOUT,
                   seen=lambda: self.pods_seen(selector))  # fmt: skip
        created = {p["metadata"]["name"]: p["metadata"]["creationTimestamp"]
                   for p in self.pods(doc["spec"]["selector"]["matchLabels"])}  # fmt: skip
        assert created[names[0]] == min(created.values()), f"{names[0]} is created first: {created}"

    def Job(self, doc: dict[str, Any]) -> None:
        self.job_completes(doc["metadata"]["name"], doc["spec"].get("completions", 1))

    def job_completes(self, name: str, completions: int) -> None:
        self.run("wait", "--for=condition=complete", f"job/{name}", f"--timeout={TIMEOUT}s")
        status = self.get("job", name)["status"]
        assert status.get("succeeded") == completions, status

    def CronJob(self, doc: dict[str, Any]) -> None:
        name = doc["metadata"]["name"]
        self.run("create", "job", f"{name}-by-hand", f"--from=cronjob/{name}")
        job = self.get("job", f"{name}-by-hand")
        cronjob_uid = self.get("cronjob", name)["metadata"]["uid"]
        owners = [(o["kind"], o["uid"]) for o in job["metadata"].get("ownerReferences") or []]
        assert owners == [("CronJob", cronjob_uid)], f"the Job is owned by its CronJob: {owners}"
        self.job_completes(f"{name}-by-hand", job["spec"].get("completions", 1))

    def PodDisruptionBudget(self, doc: dict[str, Any]) -> None:
        name, spec = doc["metadata"]["name"], doc["spec"]
        covered = len([p for p in self.pods(spec["selector"]["matchLabels"]) if is_serving(p)])
        want = allowed_disruptions(spec, covered)

        def settled() -> dict[str, Any] | None:
            pdb = self.get("pdb", name)
            s = pdb.get("status") or {}
            ok = (
                s.get("observedGeneration") == pdb["metadata"]["generation"]
                and s.get("currentHealthy") == covered
            )
            return s if ok else None

        what = f"{name}'s status to count its {covered} healthy pods"
        pdb_yaml = lambda: self.run("get", "pdb", name, "-o", "yaml", check=False).stdout  # noqa: E731
        status = wait_until(settled, what, timeout=60, seen=pdb_yaml)
        if want is not None:
            assert status["disruptionsAllowed"] == want, status
        table = self.run("get", "pdb", name).stdout
        header, row = table.splitlines()[:2]
        assert "ALLOWED DISRUPTIONS" in header, table
        column = header.index("ALLOWED DISRUPTIONS")
        assert row[column:].split()[0] == str(status["disruptionsAllowed"]), table


def is_serving(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return (
        pod.get("status", {}).get("phase") == "Running"
        and ready
        and not pod["metadata"].get("deletionTimestamp")
    )


def allowed_disruptions(spec: dict[str, Any], healthy: int) -> int | None:
    """What a whole-number budget allows when all `healthy` pods it covers are Ready (None for
    percentages, which Kubernetes rounds against the workload's scale)."""
    if isinstance(spec.get("minAvailable"), int):
        return max(healthy - spec["minAvailable"], 0)
    if isinstance(spec.get("maxUnavailable"), int):
        return int(spec["maxUnavailable"])
    return None


def namespace_for(manifest: Path, kind: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", f"ex-{manifest.stem}-{kind}".lower())


@pytest.mark.e2e
@pytest.mark.docker
@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_an_example_applies_works_and_deletes_cleanly(cluster, manifest, tmp_path):
    kubectl = Kubectl(cluster.server, tmp_path)
    ns = namespace_for(manifest, cluster.kind)
    checks = Checks(kubectl, ns)
    docs = sorted(documents(manifest), key=lambda d: ORDER.index(d["kind"]) if d["kind"] in ORDER else -1)
    kubectl.run("create", "namespace", ns)
    try:
        applied = checks.run("apply", "-f", str(manifest)).stdout
        for doc in docs:
            assert re.search(rf"\b{doc['metadata']['name']} (created|configured)", applied), applied
        for doc in docs:
            check = getattr(checks, doc["kind"], None)
            assert check is not None, f"{manifest.name}: no check for kind {doc['kind']}: add one to Checks"
            check(doc)
        deleted = checks.run("delete", "-f", str(manifest), "--wait=true", f"--timeout={TIMEOUT}s").stdout
        for doc in docs:
            assert f'"{doc["metadata"]["name"]}" deleted' in deleted, deleted

        def nothing_left() -> bool:
            left = checks.run("get", "-f", str(manifest), "--ignore-not-found", "-o", "name").stdout.split()
            pods = checks.get("pods")["items"]
            return not left and not pods

        wait_until(nothing_left, f"every object of {manifest.name} and every pod gone from {ns}", timeout=90,
                   seen=lambda: checks.run("get", "all", check=False).stdout)  # fmt: skip
    finally:
        gone = kubectl.run("delete", "namespace", ns, "--wait=true", f"--timeout={TIMEOUT}s",
                           check=False, timeout=TIMEOUT + 30)  # fmt: skip
    assert gone.returncode == 0, f"namespace {ns} was not deleted: {gone.stderr}"
