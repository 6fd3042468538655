"""Every field Kubernetes declares for the kinds kubelite serves, so that the apiserver can tell a
misspelt field (`spec.template.spec.contianers`) from a real one, as `fieldValidation=Strict`
asks, and drop unknown fields as Kubernetes' decoder does.

The table (`knownfields.json`, beside this module) is generated from the models of the official
`kubernetes` Python client, which are generated from Kubernetes' own OpenAPI document:

    python -m kubelite.knownfields          # regenerate (needs the test extra: pip install -e .[test])
    python -m kubelite.knownfields --check  # fail if the table is stale

`unknown_fields` is pure: it walks an object along the table and returns the dotted paths of
fields no type declares.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("knownfields.json")

# The kinds kubelite serves (and the bodies it accepts), as the client's model names them.
ROOTS = {
    "Pod": "V1Pod", "Service": "V1Service", "Node": "V1Node", "Namespace": "V1Namespace",
    "ConfigMap": "V1ConfigMap", "Secret": "V1Secret", "Endpoints": "V1Endpoints", "Event": "CoreV1Event",
    "Lease": "V1Lease", "Deployment": "V1Deployment", "ReplicaSet": "V1ReplicaSet",
    "ReplicationController": "V1ReplicationController", "Binding": "V1Binding", "Scale": "V1Scale",
    "Eviction": "V1Eviction", "DeleteOptions": "V1DeleteOptions", "DaemonSet": "V1DaemonSet",
    "StatefulSet": "V1StatefulSet", "ControllerRevision": "V1ControllerRevision", "Job": "V1Job",
    "CronJob": "V1CronJob", "PodDisruptionBudget": "V1PodDisruptionBudget",
}  # fmt: skip
_MODEL = re.compile(r"(?:[A-Z][a-z]*V\d\w*|V\d\w+)")


@functools.cache
def table() -> dict[str, Any]:
    with open(TABLE) as f:
        data: dict[str, Any] = json.load(f)
    return data


def _walk(value: Any, type_name: str, path: str, types: dict[str, dict[str, str]], out: list[str]) -> None:
    if value is None:
        return
    if type_name.startswith("List[") and isinstance(value, list):
        inner = type_name[5:-1]
        for i, item in enumerate(value):
            _walk(item, inner, f"{path}[{i}]", types, out)
        return
    if type_name.startswith("Dict[") and isinstance(value, dict):
        inner = type_name[5:-1].split(",", 1)[1].strip()
        for key, item in value.items():
            _walk(item, inner, f"{path}[{key}]", types, out)
        return
    fields = types.get(type_name)
    if fields is None or not isinstance(value, dict):
        return  # a scalar, or `object` (IntOrString, RawExtension): anything goes
    for key, item in value.items():
        child = f"{path}.{key}" if path else key
        if key not in fields:
            out.append(child)
        else:
            _walk(item, fields[key], child, types, out)


def unknown_fields(kind: str, obj: Any) -> list[str]:
    """Dotted paths (`spec.template.spec.nope`) of the fields of obj that kind does not declare;
    empty for a kind the table does not know."""
    data = table()
    root = data["kinds"].get(kind)
    if root is None or not isinstance(obj, dict):
        return []
    out: list[str] = []
    _walk(obj, root, "", data["types"], out)
    return out


def drop(obj: Any, path: str) -> None:
    """Remove the field at a dotted path (as unknown_fields writes it) from obj."""
    parts = re.findall(r"[^.\[\]]+|\[[^\]]*\]", path)
    node = obj
    for part in parts[:-1]:
        key: Any = part[1:-1] if part.startswith("[") else part
        if isinstance(node, list):
            key = int(key)
        node = node[key]
    last = parts[-1]
    if isinstance(node, dict):
        node.pop(last[1:-1] if last.startswith("[") else last, None)


# ---------------------------------------------------------------------------------- generation


def generate() -> dict[str, Any]:
    """The table from the client's models: every type reachable from the served kinds."""
    import kubernetes.client.models as models

    types: dict[str, dict[str, str]] = {}
    todo = list(ROOTS.values())
    while todo:
        name = todo.pop()
        if name in types:
            continue
        model = getattr(models, name)
        types[name] = {model.attribute_map[attr]: kind for attr, kind in model.openapi_types.items()}
        for kind in model.openapi_types.values():
            todo.extend(_MODEL.findall(kind))
    return {"kinds": dict(sorted(ROOTS.items())), "types": dict(sorted(types.items()))}


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    description = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m kubelite.knownfields", description=description)
    parser.add_argument("--check", action="store_true", help="fail if the committed table is stale")
    args = parser.parse_args(argv)
    fresh = render(generate())
    if args.check:
        if not TABLE.exists() or TABLE.read_text() != fresh:
            print(f"{TABLE} is stale: run python -m kubelite.knownfields", file=sys.stderr)
            return 1
        return 0
    TABLE.write_text(fresh)
    print(f"wrote {TABLE} ({len(fresh)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
