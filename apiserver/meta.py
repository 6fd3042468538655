"""Small helpers on JSON objects: timestamps, uids, generated names, nested field access.

Pure apart from the clock and the random source, both injectable.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from typing import Any

from kubelite.objects import rfc3339 as rfc3339  # Kubernetes' time format, shared by every component

JSONObject = dict[str, Any]

# The alphabet apimachinery's rand.String uses: no vowels, no confusable digits.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_GENERATED_SUFFIX_LEN = 5
_MAX_NAME_LEN = 63


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_time(value: Any) -> dt.datetime | None:
    """Parse an RFC 3339 timestamp (Z or offset, optional fraction); None when absent or bad."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def new_uid() -> str:
    return str(uuid.uuid4())


def generate_name(prefix: str, rng: random.Random | None = None) -> str:
    """`prefix` plus five random characters, trimming the prefix so the name fits in 63."""
    rng = rng or random.SystemRandom()
    room = _MAX_NAME_LEN - _GENERATED_SUFFIX_LEN
    return prefix[:room] + "".join(rng.choice(_NAME_ALPHABET) for _ in range(_GENERATED_SUFFIX_LEN))


def get_path(obj: Any, path: str, default: Any = None) -> Any:
    """`get_path(pod, "spec.nodeName")`; missing steps give `default`."""
    node = obj
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node
