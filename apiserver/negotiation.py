"""Content negotiation: which response shape an Accept header asks for, and how to decode a
request body from its Content-Type. Pure.

Responses are always JSON; `Accept` only chooses between the object itself, a
`meta.k8s.io` Table (kubectl get) and PartialObjectMetadata (metadata-only informers).
Request bodies: JSON (also when Content-Type is missing, as the Python client and
`kubectl scale` send), YAML, and the patch media types. Protobuf is refused with 415 and
a hint, until the decoder exists.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

import yaml

from apiserver import errors, protobuf

PROTOBUF = "application/vnd.kubernetes.protobuf"
JSON_CONTENT_TYPE = "application/json"
TABLE_CONTENT_TYPE = "application/json;as=Table;v=v1;g=meta.k8s.io"
PROTOBUF_HINT = (
    'send JSON instead, for example "kubectl create <kind> ... --dry-run=client -o yaml | kubectl apply -f -"'
)


class Output(enum.Enum):
    OBJECT = "object"
    TABLE = "table"
    PARTIAL = "partial"


class PatchType(enum.StrEnum):
    JSON = "application/json-patch+json"
    MERGE = "application/merge-patch+json"
    STRATEGIC = "application/strategic-merge-patch+json"
    APPLY = "application/apply-patch+yaml"
    APPLY_CBOR = "application/apply-patch+cbor"


@dataclass(frozen=True)
class MediaType:
    type: str
    params: dict[str, str]


def parse_media_types(header: str | None) -> list[MediaType]:
    out = []
    for item in (header or "").split(","):
        item = item.strip()
        if not item:
            continue
        main, *params = [p.strip() for p in item.split(";")]
        values = {}
        for param in params:
            key, _, value = param.partition("=")
            values[key.strip().lower()] = value.strip().strip('"')
        out.append(MediaType(main.lower(), values))
    return out


def choose_output(accept: str | None) -> Output:
    """The first acceptable shape in the client's order; plain JSON otherwise."""
    for media in parse_media_types(accept):
        if media.type not in ("application/json", "*/*", "application/*", "application/yaml"):
            continue
        as_ = media.params.get("as")
        if as_ is None:
            return Output.OBJECT
        if media.params.get("g") != "meta.k8s.io" or media.params.get("v") not in ("v1", "v1beta1"):
            continue
        if as_ == "Table":
            return Output.TABLE
        if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList"):
            return Output.PARTIAL
    return Output.OBJECT


def content_type_of(header: str | None) -> str:
    media = parse_media_types(header)
    return media[0].type if media else ""


def decode_body(raw: bytes, content_type: str | None) -> Any:
    """A request body as JSON data; missing Content-Type means JSON."""
    kind = content_type_of(content_type)
    if kind == PROTOBUF:
        try:
            return protobuf.decode_envelope(raw)
        except protobuf.ProtobufError as err:
            raise errors.unsupported_media_type(kind, f"{err}; {PROTOBUF_HINT}") from None
    if kind in ("", "application/json", "text/plain", "*/*") or kind in (p.value for p in PatchType):
        if kind in ("application/yaml", PatchType.APPLY):
            return _yaml(raw)
        return _json(raw)
    if kind in ("application/yaml", "application/x-yaml", "text/yaml"):
        return _yaml(raw)
    raise errors.unsupported_media_type(kind)


def _json(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise errors.bad_request(f"error decoding the request body: {err}") from None


def _yaml(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise errors.bad_request(f"error converting YAML to JSON: {err}") from None


def patch_type(content_type: str | None) -> PatchType:
    kind = content_type_of(content_type)
    for patch in PatchType:
        if kind == patch.value:
            if patch is PatchType.APPLY_CBOR:
                break
            return patch
    raise errors.unsupported_media_type(
        kind or "(none)",
    )
