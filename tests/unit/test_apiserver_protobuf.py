"""Decoding the Kubernetes protobuf envelope that `kubectl create <generator>` sends."""

import pytest

from apiserver.protobuf import MAGIC, ProtobufError, decode_envelope


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, value: int | bytes | str) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def entry(number: int, key: str, value: bytes | str) -> bytes:
    return field(number, field(1, key) + field(2, value))


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = field(1, api_version) + field(2, kind)
    return MAGIC + field(1, type_meta) + field(2, raw) + field(3, "") + field(4, "")


def test_namespace_with_gogo_zero_values_decodes_to_what_json_would_carry():
    meta = field(1, "team-a") + field(2, "") + field(7, 0) + field(8, b"") + entry(11, "env", "dev")
    raw = field(1, meta) + field(2, b"") + field(3, field(1, ""))
    assert decode_envelope(envelope("v1", "Namespace", raw)) == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "team-a", "labels": {"env": "dev"}},
    }


def test_service_ports_with_int_or_string_and_secret_bytes_are_converted():
    port = (
        field(1, "http")
        + field(2, "TCP")
        + field(3, 80)
        + field(4, field(1, 1) + field(3, "web"))
        + field(5, 0)
    )
    spec = field(1, port) + entry(2, "app", "web") + field(4, "NodePort")
    svc = decode_envelope(envelope("v1", "Service", field(1, field(1, "s")) + field(2, spec)))
    assert svc["spec"] == {
        "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "web"}],
        "selector": {"app": "web"},
        "type": "NodePort",
    }
    secret = decode_envelope(
        envelope("v1", "Secret", field(1, field(1, "s")) + entry(2, "k", b"\x00v") + field(3, "Opaque"))
    )
    assert secret["data"] == {"k": "AHY="} and secret["type"] == "Opaque"


def test_deployment_keeps_an_explicit_zero_replicas_and_reads_quantities_and_negative_ints():
    resources = field(8, entry(2, "cpu", field(1, "250m")))
    container = field(1, "web") + field(2, "kubelite/whoami:latest") + resources
    template = field(2, field(2, container) + field(4, -1))
    spec = field(1, 0) + field(2, entry(1, "app", "web")) + field(3, template)
    deploy = decode_envelope(envelope("apps/v1", "Deployment", field(1, field(1, "web")) + field(2, spec)))
    assert deploy["spec"]["replicas"] == 0
    assert deploy["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    pod_spec = deploy["spec"]["template"]["spec"]
    assert pod_spec["containers"][0]["resources"] == {"requests": {"cpu": "250m"}}
    assert pod_spec["terminationGracePeriodSeconds"] == -1


def test_bad_bodies_are_refused_with_a_reason():
    with pytest.raises(ProtobufError, match="magic"):
        decode_envelope(b"{}")
    with pytest.raises(ProtobufError, match="cannot decode protobuf for kind 'HorizontalPodAutoscaler'"):
        decode_envelope(envelope("autoscaling/v2", "HorizontalPodAutoscaler", b""))
    with pytest.raises(ProtobufError, match="truncated"):
        decode_envelope(envelope("v1", "Namespace", field(1, b"\x0a\x05ab")))
