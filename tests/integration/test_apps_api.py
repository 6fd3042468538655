"""The workload API as kubectl and the kubernetes Python client use it, against the real apiserver
(no controllers running): apps/v1 Deployments and ReplicaSets and v1 ReplicationControllers, their
defaults, scale and status subresources, strategic-merge `set image`, the `kubectl get` columns,
and bad input answered with Kubernetes' errors, leaving nothing half-created.
"""

from __future__ import annotations

import pytest

from tests.conftest import running_control_plane
from tests.support import Kubectl

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {app}}}
  template:
    metadata:
      labels: {{app: {label}}}
    spec:
      containers:
      - name: web
        image: kubelite/whoami:1.0
        {extra}
"""


def deployment(name="web", replicas=2, app=None, label=None, extra="") -> str:
    """A Deployment of name whose selector is app=<app> (default: its name) and template label <label>."""
    app = app or name
    return DEPLOYMENT.format(name=name, replicas=replicas, app=app, label=label or app, extra=extra)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with running_control_plane(tmp_path_factory.mktemp("apps-api")) as cp:
        yield cp


@pytest.fixture
def kubectl(api, tmp_path) -> Kubectl:
    return Kubectl(api.server, tmp_path)


@pytest.fixture
def client(api):
    import kubernetes

    configuration = kubernetes.client.Configuration()
    configuration.host = api.server
    with kubernetes.client.ApiClient(configuration) as api_client:
        yield kubernetes.client.AppsV1Api(api_client)


def test_kubectl_create_deployment_sends_protobuf_and_gets_kubernetes_defaults(kubectl):
    created = kubectl.run("create", "deployment", "proto", "--image=kubelite/whoami:1.0", "--replicas=3")
    assert created.stdout == "deployment.apps/proto created\n"
    obj = kubectl.get_json("deployment", "proto")
    spec = obj["spec"]
    assert spec["replicas"] == 3 and spec["selector"] == {"matchLabels": {"app": "proto"}}
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }
    assert spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    [container] = spec["template"]["spec"]["containers"]
    assert container["name"] == "whoami" and container["imagePullPolicy"] == "IfNotPresent"
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert obj["metadata"]["generation"] == 1 and obj["status"] == {}
    table = kubectl.run("get", "deployment", "proto").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1].split()[:4] == ["proto", "0/3", "0", "0"]
    wide = kubectl.run("get", "deployment", "proto", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[-3:] == ["whoami", "kubelite/whoami:1.0", "app=proto"]
    assert "deployment.apps/proto" in kubectl.run("get", "all").stdout
    kubectl.run("delete", "deployment", "proto")


def test_scale_set_image_and_generation(kubectl, client):
    kubectl.run("apply", "-f", "-", input=deployment("scaled", extra="ports: [{containerPort: 8080}]"))
    assert (
        kubectl.run("scale", "deployment", "scaled", "--replicas=8").stdout
        == "deployment.apps/scaled scaled\n"
    )
    kubectl.run("scale", "deployment", "scaled", "--current-replicas=8", "--replicas=5")  # a PUT of the Scale
    wrong = kubectl.run("scale", "deployment", "scaled", "--current-replicas=8", "--replicas=1", check=False)
    assert wrong.returncode != 0 and "Expected replicas to be 8, was 5" in wrong.stderr, wrong.stderr
    scale = client.read_namespaced_deployment_scale("scaled", "default")
    assert scale.spec.replicas == 5 and scale.status.selector == "app=scaled"
    client.patch_namespaced_deployment_scale("scaled", "default", {"spec": {"replicas": 6}})
    kubectl.run("set", "image", "deployment/scaled", "web=kubelite/whoami:2.0")
    obj = kubectl.get_json("deployment", "scaled")
    [container] = obj["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "kubelite/whoami:2.0"
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}], "set image merges by name"
    assert obj["spec"]["replicas"] == 6
    assert obj["metadata"]["generation"] == 5, "every spec change, and only those, bumps generation"
    kubectl.run("label", "deployment", "scaled", "tier=frontend")
    assert kubectl.get_json("deployment", "scaled")["metadata"]["generation"] == 5
    bad = kubectl.run("scale", "deployment", "scaled", "--replicas=-1", check=False)
    assert bad.returncode != 0
    kubectl.run("delete", "deployment", "scaled")


def test_the_python_client_does_crud_status_and_watch_on_apps_v1(client):
    import kubernetes

    body = {
        "metadata": {"name": "py"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "py"}},
            "template": {
                "metadata": {"labels": {"app": "py"}},
                "spec": {"containers": [{"name": "c", "image": "x:1"}]},
            },
        },
    }
    created = client.create_namespaced_replica_set("default", body)
    assert created.status.replicas == 0 and created.metadata.generation == 1
    unlabelled = client.list_namespaced_replica_set("default", label_selector="app=py")
    assert unlabelled.items == [], "apps/v1 does not copy the template's labels to the ReplicaSet"
    listed = client.list_namespaced_replica_set("default", field_selector="metadata.name=py")
    assert [rs.metadata.name for rs in listed.items] == ["py"]
    created.status.replicas = 1
    created.status.ready_replicas = 1
    updated = client.replace_namespaced_replica_set_status("py", "default", created)
    assert updated.status.ready_replicas == 1 and updated.spec.replicas == 1
    events = kubernetes.watch.Watch().stream(
        client.list_namespaced_replica_set, "default", field_selector="metadata.name=py", timeout_seconds=2
    )
    first = next(iter(events))
    assert first["type"] == "ADDED" and first["object"].metadata.name == "py"
    client.delete_namespaced_replica_set("py", "default")


def test_a_replicationcontroller_defaults_its_selector_from_the_template(kubectl):
    kubectl.run("apply", "-f", "-", input="""
apiVersion: v1
kind: ReplicationController
metadata: {name: legacy}
spec:
  replicas: 2
  template:
    metadata: {labels: {app: legacy}}
    spec:
      containers: [{name: c, image: kubelite/whoami:1.0}]
""")  # fmt: skip
    obj = kubectl.get_json("rc", "legacy")
    assert obj["spec"]["selector"] == {"app": "legacy"} and obj["metadata"]["labels"] == {"app": "legacy"}
    assert obj["status"] == {"replicas": 0}
    table = kubectl.run("get", "rc").stdout.splitlines()
    assert table[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    kubectl.run("delete", "rc", "legacy", "--cascade=background")


def with_strategy(manifest: str, strategy: str) -> str:
    return manifest.replace("spec:\n  replicas", f"spec:\n  strategy: {strategy}\n  replicas", 1)


def test_bad_deployments_get_kubernetes_422_naming_every_field_and_create_nothing(kubectl):
    bad = with_strategy(deployment("bad", replicas=-2, label="other"), "{rollingUpdate: {maxSurge: abc}}")
    result = kubectl.run("apply", "-f", "-", input=bad, check=False)
    assert result.returncode == 1
    assert 'The Deployment "bad" is invalid: ' in result.stderr, result.stderr
    for line in (
        "* spec.replicas: Invalid value: -2: must be greater than or equal to 0",
        '* spec.template.metadata.labels: Invalid value: map[string]string{"app":"other"}: '
        "`selector` does not match template `labels`",
        "* spec.strategy.rollingUpdate.maxSurge: Invalid value: abc: a valid percent string must be a "
        "numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is "
        "'[0-9]+%')",
    ):
        assert line in result.stderr, result.stderr
    missing = kubectl.run("get", "deployment", "bad", check=False)
    assert 'deployments.apps "bad" not found' in missing.stderr, "nothing half-created"

    zero = with_strategy(deployment("zero"), "{rollingUpdate: {maxSurge: 0, maxUnavailable: 0}}")
    result = kubectl.run("apply", "-f", "-", input=zero, check=False)
    expected = (
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"
    )
    assert expected in result.stderr, result.stderr


def test_unknown_fields_are_refused_under_strict_validation_and_warned_about_otherwise(kubectl):
    typo = deployment("typo", extra="imagePullPolicyy: Never")
    strict = kubectl.run("apply", "-f", "-", input=typo, check=False)  # kubectl asks for Strict by default
    assert strict.returncode == 1
    assert (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.template.spec.containers[0].imagePullPolicyy"'
    ) in strict.stderr, strict.stderr
    assert "not found" in kubectl.run("get", "deployment", "typo", check=False).stderr
    warned = kubectl.run("apply", "--validate=warn", "-f", "-", input=typo)
    assert 'Warning: unknown field "spec.template.spec.containers[0].imagePullPolicyy"' in warned.stderr, (
        warned.stderr
    )
    stored = kubectl.get_json("deployment", "typo")["spec"]["template"]["spec"]["containers"][0]
    assert "imagePullPolicyy" not in stored, "an unknown field is dropped, as Kubernetes' decoder does"
    kubectl.run("delete", "deployment", "typo")


def test_a_deployment_selector_cannot_change(kubectl):
    kubectl.run("apply", "-f", "-", input=deployment("fixed"))
    moved = deployment("fixed", app="moved")
    result = kubectl.run("apply", "-f", "-", input=moved, check=False)
    assert result.returncode == 1
    expected = (
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"moved"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
    )
    assert expected in result.stderr, result.stderr
    kubectl.run("delete", "deployment", "fixed")


def test_delete_cascades_put_the_garbage_collectors_finalizers_on_the_owner(kubectl):
    for policy, finalizer in (("orphan", "orphan"), ("foreground", "foregroundDeletion")):
        name = f"held-{policy}"
        kubectl.run("apply", "-f", "-", input=deployment(name))
        kubectl.run("delete", "deployment", name, f"--cascade={policy}", "--wait=false")
        obj = kubectl.get_json("deployment", name)
        assert obj["metadata"]["finalizers"] == [finalizer] and obj["metadata"]["deletionTimestamp"]
        # no garbage collector runs here: remove the finalizer as it would, and the object goes
        kubectl.run(
            "patch",
            "deployment",
            name,
            "--type=json",
            "-p",
            '[{"op":"remove","path":"/metadata/finalizers"}]',
        )
        assert "not found" in kubectl.run("get", "deployment", name, check=False).stderr
    kubectl.run("apply", "-f", "-", input=deployment("gone"))
    kubectl.run("delete", "deployment", "gone", "--cascade=background")
    assert "not found" in kubectl.run("get", "deployment", "gone", check=False).stderr
