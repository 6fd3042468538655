"""Decoding Kubernetes protobuf request bodies (what `kubectl create <generator>` sends).

Since client-go 0.31 the typed clients behind `kubectl create namespace|configmap|secret|
service|deployment` send `application/vnd.kubernetes.protobuf`: the magic `k8s\\0` and a
`runtime.Unknown` envelope around the object's own message (COMPAT.md, Appendix P). This
module turns such a body into the JSON form the rest of the apiserver handles, from the field
numbers in `kubelite.schema`. Fields the schema does not number are skipped.

gogo-protobuf writes zero values of non-pointer fields explicitly (`restartPolicy: ""`,
`paused: false`): they are dropped here, as JSON's `omitempty` would, so defaulting still
applies. Pure functions, no IO.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
from typing import Any

from kubelite import schema

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    pass


def decode_envelope(body: bytes) -> dict[str, Any]:
    """The object in a `k8s\\0` + runtime.Unknown body, as JSON data with apiVersion and kind."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic number")
    envelope = dict((n, v) for n, _w, v in _fields(body[len(MAGIC) :]))  # runtime.Unknown
    type_meta = dict((n, v.decode()) for n, _w, v in _fields(envelope.get(1, b"")))  # TypeMeta
    api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
    if kind not in schema.TYPES:
        raise ProtobufError(f"kubelite cannot decode protobuf for kind {kind!r} yet; send JSON instead")
    if envelope.get(3):
        raise ProtobufError(f"unsupported protobuf contentEncoding {envelope[3].decode()!r}")
    obj = decode_message(envelope.get(2, b""), kind)
    return {"apiVersion": api_version, "kind": kind, **obj}


def decode_message(data: bytes, type_name: str) -> dict[str, Any]:
    """One message of the schema as JSON data; zero values of non-pointer fields are dropped."""
    by_number, keep = _numbered(type_name)
    out: dict[str, Any] = {}
    for number, _wire_type, value in _fields(data):
        field = by_number.get(number)
        if field is None:
            continue
        if field.inline:
            out.update(decode_message(value, field.type))
        elif field.map:
            entry = dict((n, v) for n, _w, v in _fields(value))
            key = entry.get(1, b"")
            out.setdefault(field.name, {})[key.decode() if isinstance(key, bytes) else ""] = _convert(
                entry.get(2, b""), field.type
            )
        elif field.repeated:
            out.setdefault(field.name, []).append(_convert(value, field.type))
        else:
            out[field.name] = _convert(value, field.type)
    return {k: v for k, v in out.items() if not _is_zero(v) or k in keep}


@functools.cache
def _numbered(type_name: str) -> tuple[dict[int, schema.Field], frozenset[str]]:
    """A type's fields by protobuf number, and the names whose zero values are kept."""
    fields = schema.fields_of(type_name)
    by_number = {f.number: f for f in fields if f.number is not None}
    return by_number, frozenset(f.name for f in fields if f.keep_zero)


def _is_zero(value: Any) -> bool:
    return (
        value is None
        or value == ""
        or value is False
        or (value == 0 and not isinstance(value, bool))
        or (isinstance(value, list | dict) and not value)
    )


def _convert(value: Any, type_name: str) -> Any:
    if type_name == schema.STRING:
        return value.decode("utf-8")
    if type_name == schema.BYTES:
        return base64.b64encode(value).decode()
    if type_name == schema.INT:
        return _signed(value)
    if type_name == schema.BOOL:
        return bool(value)
    if type_name == schema.QUANTITY:
        return dict((n, v) for n, _w, v in _fields(value)).get(1, b"").decode()
    if type_name == schema.INT_OR_STRING:
        parts = dict((n, v) for n, _w, v in _fields(value))
        return parts.get(3, b"").decode() if parts.get(1, 0) == 1 else _signed(parts.get(2, 0))
    if type_name == schema.TIME:
        parts = dict((n, v) for n, _w, v in _fields(value))
        if not parts.get(1):
            return None
        stamp = dt.datetime.fromtimestamp(_signed(parts[1]), dt.UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return decode_message(value, type_name)


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise ProtobufError("varint too long")


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) for each field: ints for varints, bytes otherwise."""
    out = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _varint(data, pos)
        elif wire_type == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated length-delimited field")
            value, pos = data[pos : pos + length], pos + length
        elif wire_type == 1:
            value, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        elif wire_type == 5:
            value, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire_type}")
        out.append((number, wire_type, value))
    return out
