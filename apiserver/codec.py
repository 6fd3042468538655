"""How objects are kept in the store and how list positions are handed to clients.

The store contract (see docs/architecture.md): the value of `/registry/<resource>/[<ns>/]<name>`
is the object as JSON without `metadata.resourceVersion`, which is the key's mod_revision; a
continue token carries the list's revision and the key to resume after. Store failures map to
what the real apiserver answers. Pure.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json

from apiserver import errors
from apiserver.errors import APIError
from apiserver.meta import JSONObject
from apiserver.storage import CompactedError, FutureRevisionError, KeyValue, StoreError, StoreUnavailable


def encode(obj: JSONObject) -> bytes:
    stored = copy.copy(obj)
    meta = dict(stored.get("metadata") or {})
    meta.pop("resourceVersion", None)
    meta.pop("selfLink", None)
    stored["metadata"] = meta
    return json.dumps(stored, separators=(",", ":"), sort_keys=False).encode()


def decode(kv: KeyValue) -> JSONObject:
    obj = json.loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


def encode_continue(revision: int, key: str, prefix: str) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": revision, "start": key[len(prefix) :]}
    return base64.urlsafe_b64encode(json.dumps(token, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_continue(token: str, prefix: str) -> tuple[int, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        revision, start = int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise errors.bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        ) from None
    if start.startswith("/") or ".." in start.split("/") or revision <= 0:
        raise errors.bad_request("continue key is not valid: key path is not valid")
    return revision, prefix + start


def store_errors(err: StoreError) -> APIError:
    """Map a store failure to what the real apiserver answers."""
    if isinstance(err, StoreUnavailable):
        return errors.service_unavailable(f"etcd is unavailable: {err}")
    if isinstance(err, CompactedError):
        return errors.expired("The resourceVersion for the provided list is too old.")
    if isinstance(err, FutureRevisionError):
        return APIError(504, errors.Reason.TIMEOUT, "Too large resource version", {"retryAfterSeconds": 1})
    return errors.internal_error(str(err))


def parse_resource_version(value: str) -> int:
    try:
        revision = int(value)
    except ValueError:
        raise errors.bad_request(f'invalid resource version "{value}"') from None
    if revision < 0:
        raise errors.bad_request(f'invalid resource version "{value}"')
    return revision
