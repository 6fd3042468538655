"""The pod-template hash that names a Deployment's ReplicaSets, and template equality that ignores
it (Kubernetes' controller.ComputeHash and deploymentutil.EqualIgnoreHash). Pure.

Kubernetes feeds the Go struct to fnv32a; kubelite feeds the template's canonical JSON instead, so a
name has the shape and the stability of a real cluster's (`web-5d4b8c7f9`) but not the same letters.
The 32-bit hash is written in decimal and each digit mapped into an alphabet without vowels, as
rand.SafeEncodeString does, so that a generated name never spells a word.
"""

from __future__ import annotations

import copy
import json
import struct
from typing import Any

from kubelite.objects import Object

POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

FNV32_OFFSET = 0x811C9DC5
FNV32_PRIME = 0x01000193


def fnv32a(data: bytes, h: int = FNV32_OFFSET) -> int:
    for byte in data:
        h = ((h ^ byte) * FNV32_PRIME) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """rand.SafeEncodeString: every character mapped into SAFE_ALPHABET."""
    return "".join(SAFE_ALPHABET[ord(c) % len(SAFE_ALPHABET)] for c in text)


def semantic(value: Any) -> Any:
    """The value with null, empty maps and empty lists left out: Go decodes all three as the zero
    value, so apiequality.Semantic.DeepEqual sees no difference between them and a missing field."""
    if isinstance(value, dict):
        out = {k: semantic(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [semantic(v) for v in value]
    return value


def without_hash_label(template: Object | None) -> Object:
    """A copy of a pod template without the pod-template-hash label."""
    out = copy.deepcopy(template or {})
    labels = (out.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH_LABEL, None)
    return out


def compute_hash(template: Object | None, collision_count: int | None) -> str:
    """The pod-template-hash of a template; a collision count, when there is one, changes it, which is
    how a Deployment steps around a name already taken by a ReplicaSet with another template."""
    canonical = json.dumps(comparable(template), sort_keys=True, separators=(",", ":"))
    h = fnv32a(canonical.encode())
    if collision_count is not None:
        h = fnv32a(struct.pack("<Q", collision_count & 0xFFFFFFFF), h)  # 8 bytes, as Kubernetes writes
    return safe_encode(str(h))


def comparable(template: Object | None) -> Any:
    """A pod template in the form that hashing and comparing see: no hash label, no empty values."""
    return semantic(without_hash_label(template))


def equal_ignore_hash(t1: Object | None, t2: Object | None) -> bool:
    """Whether two pod templates are the same but for the pod-template-hash label."""
    return comparable(t1) == comparable(t2)
