"""The one description of every kind's fields: complete, and what the protobuf decoder and the
strategic merge patch both read."""

from __future__ import annotations

from apiserver.strategicpatch import ListStrategy, Nested, _schema_for
from kubelite import resources, schema


def test_every_referenced_type_is_described():
    assert schema.check() == []


def test_every_served_kind_has_a_type():
    assert [r.kind for r in resources.ALL if r.kind not in schema.TYPES] == []


def test_the_merge_rules_come_from_the_schema():
    pod_spec = _schema_for("PodSpec")
    assert pod_spec["containers"] == ListStrategy("name", "Container")
    assert pod_spec["volumes"] == ListStrategy("name", "Volume")
    assert pod_spec.get("tolerations") is None, "tolerations replace as a whole, as in Kubernetes"
    assert _schema_for("Container")["ports"] == ListStrategy("containerPort", "ContainerPort")
    assert _schema_for("Deployment")["spec"] == Nested("DeploymentSpec")
    assert _schema_for("DeploymentSpec")["template"] == Nested("PodTemplateSpec")
    assert _schema_for("ObjectMeta")["finalizers"] == ListStrategy(None, None)
    # an embedded message's fields merge as the parent's own (Volume embeds VolumeSource)
    assert _schema_for("Volume")["configMap"] == Nested("ConfigMapVolumeSource")
