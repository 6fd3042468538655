"""The table of fields Kubernetes declares: current with the kubernetes client's models, and
walked to find misspelt fields anywhere in an object."""

from __future__ import annotations

import copy

from kubelite import knownfields, resources


def test_the_committed_table_is_what_the_client_models_generate():
    assert knownfields.main(["--check"]) == 0, "run: python -m kubelite.knownfields"


def test_every_served_kind_is_in_the_table():
    table = knownfields.table()
    assert [r.kind for r in resources.ALL if r.kind not in table["kinds"]] == []


def test_unknown_fields_are_found_at_any_depth_and_dropped():
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"any": "key"}},
        "spec": {
            "replicas": 2, "replica": 3,
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
                "metadata": {"annotations": {"x": "y"}},
                "spec": {
                    "containers": [
                        {"name": "c", "image": "i", "ports": [{"containerPort": 80, "hostport": 1}]},
                    ],
                    "volumes": [{"name": "v", "emptyDir": {"medium": "Memory"}}],
                    "nodeSelector": {"disk": "ssd"},
                },
            },
        },
    }  # fmt: skip
    found = knownfields.unknown_fields("Deployment", copy.deepcopy(deployment))
    assert found == ["spec.replica", "spec.template.spec.containers[0].ports[0].hostport"]
    for path in found:
        knownfields.drop(deployment, path)
    assert knownfields.unknown_fields("Deployment", deployment) == []
    assert deployment["spec"]["replicas"] == 2 and "replica" not in deployment["spec"]
    assert knownfields.unknown_fields("NoSuchKind", {"x": 1}) == []
