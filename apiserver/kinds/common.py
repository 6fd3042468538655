"""Helpers several kinds share: quantities as strings, protocol checks. Pure."""

from __future__ import annotations

from typing import Any

from apiserver.errors import FieldError, not_supported

PROTOCOLS = ["SCTP", "TCP", "UDP"]


def quantity_string(value: Any) -> Any:
    """Quantities are strings on the wire; the real server turns `1` into `"1"`, `0.5` into `"500m"`."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        milli = round(value * 1000)
        if abs(milli - value * 1000) < 1e-6:
            return f"{milli}m"
        return repr(value)
    return value


def normalize_quantities(resources: Any) -> None:
    """Turn every number in a `{name: quantity}` map (limits, capacity, ...) into a string."""
    if isinstance(resources, dict):
        for key, value in list(resources.items()):
            resources[key] = quantity_string(value)


def check_protocol(path: str, value: Any) -> list[FieldError]:
    if value not in PROTOCOLS:
        return [not_supported(path, value, PROTOCOLS)]
    return []


def bool_field(value: Any) -> str:
    return "true" if value else "false"


def child_object(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """The object at parent[key], made empty in place when it is missing or not an object, so that
    defaulting can fill a nested struct as Go's zero value would have it."""
    child = parent.get(key)
    if not isinstance(child, dict):
        child = parent[key] = {}
    return child
