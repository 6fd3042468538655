"""Decoding Kubernetes protobuf request bodies (what `kubectl create <generator>` sends).

Since client-go 0.31 the typed clients behind `kubectl create namespace|configmap|secret|
service|deployment` send `application/vnd.kubernetes.protobuf`: the magic `k8s\\0` and a
`runtime.Unknown` envelope around the object's own message (COMPAT.md, Appendix P). This
module turns such a body into the JSON form the rest of the apiserver handles, from a table of
the field numbers of the kinds kubectl creates this way. Fields it does not know are skipped.

gogo-protobuf writes zero values of non-pointer fields explicitly (`restartPolicy: ""`,
`paused: false`): they are dropped here, as JSON's `omitempty` would, so defaulting still
applies. Pure functions, no IO.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    pass


# Field kinds: scalars, or ("msg", name), ("list", kind), ("map", value kind).
S, N, B, Y = "string", "int", "bool", "bytes"
TIME, QUANTITY, INT_OR_STRING, RAW = "time", "quantity", "intorstring", "raw"


def msg(name: str) -> tuple[str, str]:
    return ("msg", name)


def lst(kind: Any) -> tuple[str, Any]:
    return ("list", kind)


def mapof(kind: Any) -> tuple[str, Any]:
    return ("map", kind)


SCHEMAS: dict[str, dict[int, tuple[str, Any]]] = {
    "TypeMeta": {1: ("apiVersion", S), 2: ("kind", S)},
    "Unknown": {1: ("typeMeta", msg("TypeMeta")), 2: ("raw", RAW), 3: ("contentEncoding", S),
                4: ("contentType", S)},
    "ObjectMeta": {
        1: ("name", S), 2: ("generateName", S), 3: ("namespace", S), 4: ("selfLink", S), 5: ("uid", S),
        6: ("resourceVersion", S), 7: ("generation", N), 8: ("creationTimestamp", TIME),
        9: ("deletionTimestamp", TIME), 10: ("deletionGracePeriodSeconds", N), 11: ("labels", mapof(S)),
        12: ("annotations", mapof(S)), 13: ("ownerReferences", lst(msg("OwnerReference"))),
        14: ("finalizers", lst(S)),
    },
    "OwnerReference": {
        1: ("kind", S), 3: ("name", S), 4: ("uid", S), 5: ("apiVersion", S), 6: ("controller", B),
        7: ("blockOwnerDeletion", B),
    },
    "LabelSelector": {1: ("matchLabels", mapof(S)),
                      2: ("matchExpressions", lst(msg("LabelSelectorRequirement")))},
    "LabelSelectorRequirement": {1: ("key", S), 2: ("operator", S), 3: ("values", lst(S))},
    "Namespace": {1: ("metadata", msg("ObjectMeta")), 2: ("spec", msg("NamespaceSpec"))},
    "NamespaceSpec": {1: ("finalizers", lst(S))},
    "ConfigMap": {1: ("metadata", msg("ObjectMeta")), 2: ("data", mapof(S)), 3: ("binaryData", mapof(Y)),
                  4: ("immutable", B)},
    "Secret": {1: ("metadata", msg("ObjectMeta")), 2: ("data", mapof(Y)), 3: ("type", S),
               4: ("stringData", mapof(S)), 5: ("immutable", B)},
    "Service": {1: ("metadata", msg("ObjectMeta")), 2: ("spec", msg("ServiceSpec"))},
    "ServiceSpec": {
        1: ("ports", lst(msg("ServicePort"))), 2: ("selector", mapof(S)), 3: ("clusterIP", S), 4: ("type", S),
        5: ("externalIPs", lst(S)), 7: ("sessionAffinity", S), 8: ("loadBalancerIP", S),
        10: ("externalName", S), 11: ("externalTrafficPolicy", S), 17: ("ipFamilyPolicy", S),
        18: ("clusterIPs", lst(S)), 19: ("ipFamilies", lst(S)), 22: ("internalTrafficPolicy", S),
    },
    "ServicePort": {1: ("name", S), 2: ("protocol", S), 3: ("port", N), 4: ("targetPort", INT_OR_STRING),
                    5: ("nodePort", N), 6: ("appProtocol", S)},
    "Pod": {1: ("metadata", msg("ObjectMeta")), 2: ("spec", msg("PodSpec"))},
    "PodTemplateSpec": {1: ("metadata", msg("ObjectMeta")), 2: ("spec", msg("PodSpec"))},
    "PodSpec": {
        2: ("containers", lst(msg("Container"))), 3: ("restartPolicy", S),
        4: ("terminationGracePeriodSeconds", N),
        5: ("activeDeadlineSeconds", N), 6: ("dnsPolicy", S), 7: ("nodeSelector", mapof(S)),
        8: ("serviceAccountName", S), 9: ("serviceAccount", S), 10: ("nodeName", S), 11: ("hostNetwork", B),
        12: ("hostPID", B), 13: ("hostIPC", B), 16: ("hostname", S), 17: ("subdomain", S),
        19: ("schedulerName", S), 20: ("initContainers", lst(msg("Container"))),
        21: ("automountServiceAccountToken", B), 22: ("tolerations", lst(msg("Toleration"))),
        24: ("priorityClassName", S), 25: ("priority", N), 30: ("enableServiceLinks", B),
    },
    "Container": {
        1: ("name", S), 2: ("image", S), 3: ("command", lst(S)), 4: ("args", lst(S)), 5: ("workingDir", S),
        6: ("ports", lst(msg("ContainerPort"))), 7: ("env", lst(msg("EnvVar"))),
        8: ("resources", msg("ResourceRequirements")), 13: ("terminationMessagePath", S),
        14: ("imagePullPolicy", S), 16: ("stdin", B), 17: ("stdinOnce", B), 18: ("tty", B),
        20: ("terminationMessagePolicy", S),
    },
    "ContainerPort": {1: ("name", S), 2: ("hostPort", N), 3: ("containerPort", N), 4: ("protocol", S),
                      5: ("hostIP", S)},
    "EnvVar": {1: ("name", S), 2: ("value", S)},
    "ResourceRequirements": {1: ("limits", mapof(QUANTITY)), 2: ("requests", mapof(QUANTITY))},
    "Toleration": {1: ("key", S), 2: ("operator", S), 3: ("value", S), 4: ("effect", S),
                   5: ("tolerationSeconds", N)},
    "Deployment": {1: ("metadata", msg("ObjectMeta")), 2: ("spec", msg("DeploymentSpec"))},
    "DeploymentSpec": {
        1: ("replicas", N), 2: ("selector", msg("LabelSelector")), 3: ("template", msg("PodTemplateSpec")),
        4: ("strategy", msg("DeploymentStrategy")), 5: ("minReadySeconds", N), 6: ("revisionHistoryLimit", N),
        7: ("paused", B), 9: ("progressDeadlineSeconds", N),
    },
    "DeploymentStrategy": {1: ("type", S), 2: ("rollingUpdate", msg("RollingUpdateDeployment"))},
    "RollingUpdateDeployment": {1: ("maxUnavailable", INT_OR_STRING), 2: ("maxSurge", INT_OR_STRING)},
    "Eviction": {1: ("metadata", msg("ObjectMeta")), 2: ("deleteOptions", msg("DeleteOptions"))},
    "DeleteOptions": {1: ("gracePeriodSeconds", N), 3: ("orphanDependents", B), 4: ("propagationPolicy", S),
                      5: ("dryRun", lst(S))},
    "Scale": {1: ("metadata", msg("ObjectMeta")), 2: ("spec", msg("ScaleSpec"))},
    "ScaleSpec": {1: ("replicas", N)},
}  # fmt: skip

# Fields whose zero is meaningful and kept (a pointer in the Go type, set on purpose).
KEEP_ZERO = {
    ("DeploymentSpec", "replicas"),
    ("ScaleSpec", "replicas"),
    ("DeleteOptions", "gracePeriodSeconds"),
}


def decode_envelope(body: bytes) -> dict[str, Any]:
    """The object in a `k8s\\0` + runtime.Unknown body, as JSON data with apiVersion and kind."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic number")
    unknown = decode_message(body[len(MAGIC) :], "Unknown")
    type_meta = unknown.get("typeMeta") or {}
    kind = type_meta.get("kind", "")
    if kind not in SCHEMAS or kind in ("Unknown", "TypeMeta"):
        raise ProtobufError(f"kubelite cannot decode protobuf for kind {kind!r} yet; send JSON instead")
    if unknown.get("contentEncoding"):
        raise ProtobufError(f"unsupported protobuf contentEncoding {unknown['contentEncoding']!r}")
    obj = decode_message(unknown.get("raw", b""), kind)
    return {"apiVersion": type_meta.get("apiVersion", ""), "kind": kind, **obj}


def decode_message(data: bytes, name: str) -> dict[str, Any]:
    schema = SCHEMAS[name]
    out: dict[str, Any] = {}
    for number, wire_type, value in _fields(data):
        if number not in schema:
            continue
        field, kind = schema[number]
        if isinstance(kind, tuple) and kind[0] == "list":
            items = value if isinstance(value, list) else [value]
            out.setdefault(field, []).extend(_convert(v, kind[1], wire_type) for v in items)
        elif isinstance(kind, tuple) and kind[0] == "map":
            entry = dict((n, v) for n, _w, v in _fields(value))
            key = entry.get(1, b"").decode() if isinstance(entry.get(1, b""), bytes) else ""
            out.setdefault(field, {})[key] = _convert(entry.get(2, b""), kind[1], 2)
        else:
            out[field] = _convert(value, kind, wire_type)
    return {k: v for k, v in out.items() if not _is_zero(v) or (name, k) in KEEP_ZERO}


def _is_zero(value: Any) -> bool:
    return (
        value is None
        or value == ""
        or value is False
        or (value == 0 and not isinstance(value, bool))
        or (isinstance(value, list | dict) and not value)
    )


def _convert(value: Any, kind: Any, wire_type: int) -> Any:
    if isinstance(kind, tuple) and kind[0] == "msg":
        return decode_message(value, kind[1])
    if kind == S:
        return value.decode("utf-8")
    if kind == Y:
        return base64.b64encode(value).decode()
    if kind == RAW:
        return value
    if kind == N:
        return _signed(value)
    if kind == B:
        return bool(value)
    if kind == QUANTITY:
        return dict((n, v) for n, _w, v in _fields(value)).get(1, b"").decode()
    if kind == INT_OR_STRING:
        parts = dict((n, v) for n, _w, v in _fields(value))
        return parts.get(3, b"").decode() if parts.get(1, 0) == 1 else _signed(parts.get(2, 0))
    if kind == TIME:
        parts = dict((n, v) for n, _w, v in _fields(value))
        if not parts.get(1):
            return None
        stamp = dt.datetime.fromtimestamp(_signed(parts[1]), dt.UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    raise ProtobufError(f"unknown field kind {kind!r}")


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
