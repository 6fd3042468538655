"""JSON Patch (RFC 6902) and JSON Merge Patch (RFC 7386) on plain JSON values.

Used for `application/json-patch+json` and `application/merge-patch+json` requests.
Pure: inputs are never mutated; a failing patch raises PatchError and changes nothing.
"""

from __future__ import annotations

import copy
from typing import Any

from apiserver.errors import PatchError

JSON = Any


def merge_patch(original: JSON, patch: JSON) -> JSON:
    """RFC 7386: objects merge recursively, `null` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _parse_pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f'JSON pointer must start with "/": {pointer!r}', malformed=True)
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _index(token: str, length: int, allow_end: bool, path: str) -> int:
    if token == "-" and allow_end:
        return length
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r} in path {path!r}")
    index = int(token)
    limit = length if allow_end else length - 1
    if index > limit:
        raise PatchError(f"index out of range: {index} in path {path!r}")
    return index


def _resolve_parent(doc: JSON, parts: list[str], path: str) -> JSON:
    node = doc
    for token in parts[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f'doc is missing path: "{path}": missing value')
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(token, len(node), False, path)]
        else:
            raise PatchError(f'doc is missing path: "{path}": missing value')
    return node


def _get(doc: JSON, path: str) -> JSON:
    parts = _parse_pointer(path)
    if not parts:
        return doc
    parent = _resolve_parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'doc is missing path: "{path}": missing value')
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(last, len(parent), False, path)]
    raise PatchError(f'doc is missing path: "{path}": missing value')


def _add(doc: JSON, path: str, value: JSON) -> JSON:
    parts = _parse_pointer(path)
    if not parts:
        return value
    parent = _resolve_parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(last, len(parent), True, path), value)
    else:
        raise PatchError(f'doc is missing path: "{path}": missing value')
    return doc


def _remove(doc: JSON, path: str) -> JSON:
    parts = _parse_pointer(path)
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _resolve_parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"Unable to remove nonexistent key: {last}: missing value")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(last, len(parent), False, path)]
    else:
        raise PatchError(f'doc is missing path: "{path}": missing value')
    return doc


def _replace(doc: JSON, path: str, value: JSON) -> JSON:
    parts = _parse_pointer(path)
    if not parts:
        return value
    parent = _resolve_parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"doc is missing key: {path}: missing value")
        parent[last] = value
    elif isinstance(parent, list):
        parent[_index(last, len(parent), False, path)] = value
    else:
        raise PatchError(f'doc is missing path: "{path}": missing value')
    return doc


def json_patch(original: JSON, operations: JSON) -> JSON:
    """Apply an RFC 6902 operation list; all or nothing."""
    if not isinstance(operations, list):
        raise PatchError("json patch must be a list of operations", malformed=True)
    doc = copy.deepcopy(original)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError(f"invalid json patch operation: {op!r}", malformed=True)
        kind = op["op"]
        path = op.get("path")
        if not isinstance(path, str):
            raise PatchError(f"operation {kind!r} is missing a string path", malformed=True)
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"operation {kind!r} on {path!r} is missing value", malformed=True)
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "replace":
            doc = _replace(doc, path, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise PatchError(f"operation {kind!r} is missing from", malformed=True)
            value = copy.deepcopy(_get(doc, source))
            if kind == "move":
                if path.startswith(source + "/"):
                    raise PatchError(f"cannot move {source!r} into its own child {path!r}")
                doc = _remove(doc, source)
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op["value"]:
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {kind}", malformed=True)
    return doc
