"""Strategic merge patch, JSON patch (RFC 6902) and JSON merge patch (RFC 7386)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apiserver.errors import PatchError
from apiserver.jsonpatch import json_patch, merge_patch
from apiserver.strategicpatch import strategic_merge

POD = {
    "metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["x"]},
    "spec": {
        "containers": [
            {
                "name": "web",
                "image": "nginx:1.25",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "volumeMounts": [{"name": "v", "mountPath": "/data"}],
            },
            {"name": "side", "image": "busybox"},
        ],
        "volumes": [{"name": "v", "emptyDir": {}}],
    },
}


def test_set_image_keeps_other_container_fields() -> None:
    # What `kubectl set image` sends (COMPAT A4).
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
            "containers": [{"image": "nginx:1.26", "name": "web"}],
        }
    }
    result = strategic_merge(POD, patch, "Pod")
    web = result["spec"]["containers"][0]
    assert web["image"] == "nginx:1.26"
    assert web["env"] == POD["spec"]["containers"][0]["env"]
    assert [c["name"] for c in result["spec"]["containers"]] == ["web", "side"]
    assert POD["spec"]["containers"][0]["image"] == "nginx:1.25", "input must not be mutated"


def test_merge_keys_for_env_ports_mounts() -> None:
    patch = {
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                    "ports": [{"containerPort": 443}],
                    "volumeMounts": [{"mountPath": "/data", "readOnly": True}],
                }
            ]
        }
    }
    web = strategic_merge(POD, patch, "Pod")["spec"]["containers"][0]
    assert web["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "3"},
        {"name": "C", "value": "4"},
    ]
    assert [p["containerPort"] for p in web["ports"]] == [80, 443]
    assert web["volumeMounts"] == [{"name": "v", "mountPath": "/data", "readOnly": True}]


def test_delete_directives_and_null() -> None:
    patch = {
        "metadata": {"labels": {"a": None}, "$deleteFromPrimitiveList/finalizers": ["x"]},
        "spec": {"containers": [{"name": "side", "$patch": "delete"}], "volumes": [{"$patch": "replace"}]},
    }
    result = strategic_merge(POD, patch, "Pod")
    assert result["metadata"]["labels"] == {}
    assert result["metadata"]["finalizers"] == []
    assert [c["name"] for c in result["spec"]["containers"]] == ["web"]
    assert result["spec"]["volumes"] == []


def test_replace_map_and_retain_keys_and_primitive_merge() -> None:
    patch = {
        "metadata": {"finalizers": ["y"]},
        "spec": {
            "volumes": [{"name": "v", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/tmp"}}],
            "securityContext": {"$patch": "replace", "runAsUser": 1},
        },
    }
    result = strategic_merge(POD, patch, "Pod")
    assert result["metadata"]["finalizers"] == ["x", "y"]
    assert result["spec"]["volumes"] == [{"name": "v", "hostPath": {"path": "/tmp"}}]
    assert result["spec"]["securityContext"] == {"runAsUser": 1}


def test_service_ports_merge_by_port_and_unknown_lists_replace() -> None:
    svc = {"spec": {"ports": [{"port": 80, "nodePort": 30080}], "externalIPs": ["1.1.1.1"]}}
    result = strategic_merge(
        svc, {"spec": {"ports": [{"port": 80, "targetPort": 8080}], "externalIPs": ["2.2.2.2"]}}, "Service"
    )
    assert result["spec"]["ports"] == [{"port": 80, "nodePort": 30080, "targetPort": 8080}]
    assert result["spec"]["externalIPs"] == ["2.2.2.2"]


def test_cordon_and_uncordon_patches() -> None:
    node = {"spec": {"podCIDR": "10.0.0.0/24"}}
    cordoned = strategic_merge(node, {"spec": {"unschedulable": True}}, "Node")
    assert cordoned["spec"] == {"podCIDR": "10.0.0.0/24", "unschedulable": True}
    assert strategic_merge(cordoned, {"spec": {"unschedulable": None}}, "Node")["spec"] == {
        "podCIDR": "10.0.0.0/24"
    }


def test_node_conditions_merge_by_type() -> None:
    node = {
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}]
        }
    }
    result = strategic_merge(node, {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}, "Node")
    assert result["status"]["conditions"] == [
        {"type": "Ready", "status": "False"},
        {"type": "MemoryPressure", "status": "False"},
    ]


def test_strategic_patch_errors() -> None:
    with pytest.raises(PatchError):
        strategic_merge(POD, [], "Pod")  # type: ignore[arg-type]
    with pytest.raises(PatchError):
        strategic_merge(POD, {"spec": {"containers": [{"image": "x"}]}}, "Pod")


def test_json_patch_operations() -> None:
    doc = {"metadata": {"annotations": {"a/b": "1"}}, "spec": {"list": [1, 2, 3]}}
    ops = [
        {"op": "replace", "path": "/metadata/annotations", "value": {"x": "y"}},
        {"op": "add", "path": "/spec/list/-", "value": 4},
        {"op": "add", "path": "/spec/list/0", "value": 0},
        {"op": "remove", "path": "/spec/list/1"},
        {"op": "test", "path": "/spec/list/0", "value": 0},
        {"op": "copy", "from": "/spec/list", "path": "/spec/copy"},
        {"op": "move", "from": "/metadata/annotations/x", "path": "/metadata/moved"},
    ]
    result = json_patch(doc, ops)
    assert result == {
        "metadata": {"annotations": {}, "moved": "y"},
        "spec": {"list": [0, 2, 3, 4], "copy": [0, 2, 3, 4]},
    }
    assert doc["spec"]["list"] == [1, 2, 3]
    assert json_patch({"a/b": {"~c": 1}}, [{"op": "replace", "path": "/a~1b/~0c", "value": 2}]) == {
        "a/b": {"~c": 2}
    }


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/a", "value": 2}],
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "/missing", "value": 1}],
        [{"op": "add", "path": "/list/9", "value": 1}],
        [{"op": "bogus", "path": "/a"}],
        {"op": "add"},
    ],
)
def test_json_patch_failures_change_nothing(ops: object) -> None:
    doc = {"a": 1, "list": []}
    before = copy.deepcopy(doc)
    with pytest.raises(PatchError):
        json_patch(doc, ops)
    assert doc == before


# `$` keys are strategic-merge directives, so plain keys avoid them.
plain_keys = st.text(max_size=3).filter(lambda k: not k.startswith("$"))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(plain_keys, children, max_size=3),
    max_leaves=10,
)
json_objects = st.dictionaries(plain_keys, json_values, max_size=4)


def _without_nulls(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value if v is not None]
    return value


@given(json_objects, json_objects)
def test_merge_patch_properties(original: dict, patch: dict) -> None:
    result = merge_patch(original, patch)
    # Every key the patch sets is there with the patch's value (nulls removed), every null key is gone.
    for key, value in patch.items():
        if value is None:
            assert key not in result
        elif not isinstance(value, dict):
            assert result[key] == value
    # Applying the same patch twice changes nothing more (idempotence).
    assert merge_patch(result, patch) == result
    # A strategic merge patch with no schema behaves like a merge patch on maps.
    assert strategic_merge(original, _without_nulls(patch), "Unknown") == merge_patch(
        original, _without_nulls(patch)
    )
