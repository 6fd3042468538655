"""What a request body must be before the registry stores it: the kind and apiVersion of the
resource it is sent to, the namespace of the URL, and metadata in the shape the store keeps (no
null timestamps, no empty lists or maps: Go's omitempty). Also the 422 a strategy's field errors
become. Pure.
"""

from __future__ import annotations

import copy
from typing import Any

from apiserver import errors
from apiserver.errors import APIError, FieldError, invalid_error
from apiserver.meta import JSONObject
from apiserver.resources import ResourceDef


def object_identity(rd: ResourceDef, body: Any, namespace: str | None) -> JSONObject:
    """Check kind/apiVersion/namespace of a request body and fill what is missing."""
    if not isinstance(body, dict):
        raise errors.bad_request(f"the body of the request must be a JSON object describing a {rd.kind}")
    kind = body.get("kind")
    if kind and kind != rd.kind:
        raise errors.bad_request(
            f'{kind} in version "{rd.version}" cannot be handled as a {rd.kind}: '
            f'no kind "{kind}" is registered for version "{rd.group_version}"'
        )
    api_version = body.get("apiVersion")
    if api_version and api_version != rd.group_version:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version "
            f"({rd.group_version})"
        )
    # apiVersion, kind and metadata first, as the real server writes them.
    obj = {"apiVersion": rd.group_version, "kind": rd.kind, "metadata": None, **copy.deepcopy(body)}
    obj["kind"] = rd.kind
    obj["apiVersion"] = rd.group_version
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        raise errors.bad_request("metadata must be an object")
    for key in ("creationTimestamp", "deletionTimestamp"):
        if key in meta and meta[key] is None:
            del meta[key]
    for key in ("labels", "annotations", "finalizers", "ownerReferences"):  # omitempty in Go
        if key in meta and not meta[key]:
            del meta[key]
    if rd.namespaced:
        body_ns = meta.get("namespace")
        if body_ns and namespace and body_ns != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = namespace or body_ns or ""
    else:
        meta.pop("namespace", None)
    return obj


def invalid_object(rd: ResourceDef, obj: JSONObject, errs: list[FieldError]) -> APIError:
    name = (obj.get("metadata") or {}).get("name") or (obj.get("metadata") or {}).get("generateName") or ""
    return invalid_error(rd.group, rd.kind, name, errs)
