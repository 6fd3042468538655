"""Strategic merge patch (`application/strategic-merge-patch+json`) for the built-in kinds.

Like a JSON merge patch, except that the lists Kubernetes tags with a patch merge key are
merged element by element (containers by `name`, volumeMounts by `mountPath`, ...) and the
directives `$patch`, `$retainKeys`, `$setElementOrder/<f>` and `$deleteFromPrimitiveList/<f>`
are honoured. The merge keys are the `patchMergeKey` tags of k8s.io/api, read from the type
schema in `kubelite.schema`. Pure: inputs are never mutated.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

from apiserver.errors import PatchError
from kubelite import schema

JSON = Any


@dataclass(frozen=True)
class ListStrategy:
    """A list with patchStrategy merge: keyed by `merge_key`, or a set of primitives if None."""

    merge_key: str | None
    element_type: str | None = None


@dataclass(frozen=True)
class Nested:
    """A field holding an object of the named schema type (a list of them is atomic)."""

    type_name: str


FieldSchema = ListStrategy | Nested


@functools.cache
def _schema_for(type_name: str | None) -> dict[str, FieldSchema]:
    """How the fields of one type merge, derived from `kubelite.schema`; fields not listed merge
    as maps or replace as atomic lists."""
    if type_name is None:
        return {}
    out: dict[str, FieldSchema] = {}
    for f in schema.fields_of(type_name):
        element = None if f.type in schema.SCALARS else f.type
        if f.inline and element:
            out.update(_schema_for(element))
        elif f.repeated and (f.merge_key or f.merge):
            out[f.name] = ListStrategy(f.merge_key, element)
        elif element and not f.repeated and not f.map:
            out[f.name] = Nested(element)
    return out


def strategic_merge(original: JSON, patch: JSON, type_name: str = "Generic") -> JSON:
    """Apply a strategic merge patch to `original` (a JSON object) using the schema for `type_name`."""
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object", malformed=True)
    base = copy.deepcopy(original) if isinstance(original, dict) else {}
    result = _merge_map(base, patch, type_name)
    if result is _DELETE:
        return {}
    return result


class _Delete:
    pass


_DELETE = _Delete()


def _strip(value: JSON) -> JSON:
    """A patch value with its directives removed, for places where nothing is merged."""
    if isinstance(value, dict):
        if value.get("$patch") == "delete":
            return _DELETE
        return {
            k: _strip(v)
            for k, v in value.items()
            if not k.startswith("$") and v is not None and _strip(v) is not _DELETE
        }
    if isinstance(value, list):
        out = []
        for item in value:
            if (
                isinstance(item, dict)
                and item.get("$patch") in ("replace", "delete", "merge")
                and len(item) == 1
            ):
                continue
            stripped = _strip(item)
            if stripped is not _DELETE:
                out.append(stripped)
        return out
    return value


def _merge_map(original: dict[str, JSON], patch: dict[str, JSON], type_name: str | None) -> JSON:
    patch = dict(patch)
    directive = patch.pop("$patch", None)
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return _strip(patch)
    if directive not in (None, "merge"):
        raise PatchError(f"unknown patch type: {directive!r}", malformed=True)
    retain = patch.pop("$retainKeys", None)
    if retain is not None:
        if not isinstance(retain, list):
            raise PatchError("$retainKeys must be a list", malformed=True)
        original = {k: v for k, v in original.items() if k in retain}
    schema = _schema_for(type_name)
    orders: dict[str, list[JSON]] = {}
    result = original
    for key, value in patch.items():
        if key.startswith("$setElementOrder/"):
            if not isinstance(value, list):
                raise PatchError(f"{key} must be a list", malformed=True)
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            current = result.get(name)
            if isinstance(current, list) and isinstance(value, list):
                result[name] = [v for v in current if v not in value]
            continue
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
            continue
        field = schema.get(key)
        current = result.get(key)
        if isinstance(value, dict):
            nested = field.type_name if isinstance(field, Nested) else None
            merged = _merge_map(current if isinstance(current, dict) else {}, value, nested)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            if isinstance(field, ListStrategy):
                result[key] = _merge_list(current if isinstance(current, list) else [], value, field, key)
            else:
                result[key] = _strip(value)
        else:
            result[key] = value
    for name, order in orders.items():
        field = schema.get(name)
        if isinstance(result.get(name), list):
            merge_key = field.merge_key if isinstance(field, ListStrategy) else None
            result[name] = _apply_order(result[name], order, merge_key)
    return result


def _merge_list(original: list[JSON], patch: list[JSON], field: ListStrategy, name: str) -> list[JSON]:
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return _strip([p for p in patch if not (isinstance(p, dict) and p.get("$patch") == "replace")])
    if field.merge_key is None:
        result = list(original)
        for item in patch:
            if isinstance(item, dict | list):
                raise PatchError(f"list {name!r} holds primitives; cannot merge {item!r}", malformed=True)
            if item not in result:
                result.append(item)
        return result
    key = field.merge_key
    result = [copy.deepcopy(o) for o in original]
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"list {name!r} must hold objects with merge key {key!r}", malformed=True)
        if key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {key}")
        wanted = item[key]
        index = next((i for i, o in enumerate(result) if isinstance(o, dict) and o.get(key) == wanted), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
            continue
        if index is None:
            stripped = _merge_map({}, item, field.element_type)
            if stripped is not _DELETE:
                result.append(stripped)
            continue
        merged = _merge_map(result[index], item, field.element_type)
        if merged is _DELETE:
            del result[index]
        else:
            result[index] = merged
    return result


def _apply_order(items: list[JSON], order: list[JSON], merge_key: str | None) -> list[JSON]:
    """Sort items named in a $setElementOrder list into that order; others keep their place after."""

    def identity(item: JSON) -> JSON:
        if merge_key is not None and isinstance(item, dict):
            return item.get(merge_key)
        return item

    wanted = [identity(o) for o in order]
    position = {}
    for i, w in enumerate(wanted):
        position.setdefault(_hashable(w), i)
    ordered = sorted(
        (item for item in items if _hashable(identity(item)) in position),
        key=lambda item: position[_hashable(identity(item))],
    )
    rest = [item for item in items if _hashable(identity(item)) not in position]
    return ordered + rest


def _hashable(value: JSON) -> JSON:
    if isinstance(value, dict | list):
        return repr(value)
    return value
