"""Server-side printing: `meta.k8s.io/v1` Table objects and the age text kubectl shows.

Per-kind columns and cells live with each kind's strategy; this module assembles Tables,
formats durations like apimachinery's duration.HumanDuration, and builds the
PartialObjectMetadata that rows carry. Pure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from apiserver.meta import JSONObject, parse_time

TABLE_API_VERSION = "meta.k8s.io/v1"


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "string"
    format: str = ""
    description: str = ""
    priority: int = 0

    def definition(self) -> JSONObject:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


NAME_COLUMN = Column("Name", format="name", description="Name must be unique within a namespace.")
AGE_COLUMN = Column(
    "Age",
    description="CreationTimestamp is a timestamp representing the server time when this object was created.",
)


def human_duration(seconds: float) -> str:
    """duration.HumanDuration: `45s`, `3m20s`, `15m`, `5h10m`, `3d4h`, `2y10d`."""
    secs = int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 120:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        rest = secs % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d" if rest == 0 else f"{hours // 24}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def age(timestamp: Any, now: dt.datetime) -> str:
    """The AGE cell: `<unknown>` when the timestamp is missing, as kubectl prints."""
    moment = parse_time(timestamp)
    if moment is None:
        return "<unknown>"
    return human_duration((now - moment).total_seconds())


def partial_metadata(obj: JSONObject) -> JSONObject:
    """The PartialObjectMetadata a Table row carries by default."""
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": TABLE_API_VERSION,
        "metadata": obj.get("metadata") or {},
    }


def table(
    columns: list[Column],
    rows: list[tuple[list[Any], JSONObject]],
    *,
    include_object: str = "Metadata",
    resource_version: str = "",
    continue_token: str = "",
    remaining: int | None = None,
    with_definitions: bool = True,
) -> JSONObject:
    """A Table; `include_object` is `None`, `Metadata` (default) or `Object` as the query says."""
    out_rows = []
    for cells, obj in rows:
        row: JSONObject = {"cells": cells}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_metadata(obj)
        out_rows.append(row)
    meta: JSONObject = {}
    if resource_version:
        meta["resourceVersion"] = resource_version
    if continue_token:
        meta["continue"] = continue_token
    if remaining is not None:
        meta["remainingItemCount"] = remaining
    result: JSONObject = {"kind": "Table", "apiVersion": TABLE_API_VERSION, "metadata": meta}
    # The real server sends the definitions only in a watch's first Table; later ones carry null.
    result["columnDefinitions"] = [c.definition() for c in columns] if with_definitions else None
    result["rows"] = out_rows
    return result
