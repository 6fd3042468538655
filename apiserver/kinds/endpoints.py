"""Endpoints: written by the endpoints controller, read by proxies. Pure."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from apiserver import tables
from apiserver.errors import FieldError, invalid, required
from apiserver.kinds.common import check_protocol
from apiserver.meta import JSONObject
from apiserver.strategy import Strategy
from apiserver.tables import AGE_COLUMN, NAME_COLUMN, Column
from apiserver.validation import port_range_errors

MAX_SHOWN = 3


def endpoints_text(obj: JSONObject) -> str:
    """`10.0.0.1:80,10.0.0.2:80 + 1 more...`, or `<none>`, as kubectl prints."""
    items: list[str] = []
    for subset in obj.get("subsets") or []:
        if not isinstance(subset, dict):
            continue
        ports = [p.get("port") for p in subset.get("ports") or [] if isinstance(p, dict)] or [None]
        for address in subset.get("addresses") or []:
            if not isinstance(address, dict):
                continue
            for port in ports:
                items.append(f"{address.get('ip')}:{port}" if port is not None else str(address.get("ip")))
    if not items:
        return "<none>"
    text = ",".join(items[:MAX_SHOWN])
    if len(items) > MAX_SHOWN:
        text += f" + {len(items) - MAX_SHOWN} more..."
    return text


class EndpointsStrategy(Strategy):
    kind = "Endpoints"
    tracks_generation = False
    allow_create_on_update = True
    columns: ClassVar[list[Column]] = [
        NAME_COLUMN,
        Column("Endpoints", description="Endpoints of the service"),
        AGE_COLUMN,
    ]

    def default(self, obj: JSONObject) -> None:
        for subset in obj.get("subsets") or []:
            for port in (subset.get("ports") or []) if isinstance(subset, dict) else []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")

    def validate(self, obj: JSONObject) -> list[FieldError]:
        errs = super().validate(obj)
        subsets = obj.get("subsets") or []
        if not isinstance(subsets, list):
            return [*errs, invalid("subsets", str(subsets), "must be a list")]
        for i, subset in enumerate(subsets):
            path = f"subsets[{i}]"
            if not isinstance(subset, dict):
                errs.append(invalid(path, str(subset), "must be an object"))
                continue
            for kind in ("addresses", "notReadyAddresses"):
                for j, address in enumerate(subset.get(kind) or []):
                    if not isinstance(address, dict) or not address.get("ip"):
                        errs.append(required(f"{path}.{kind}[{j}].ip"))
            for j, port in enumerate(subset.get("ports") or []):
                if not isinstance(port, dict):
                    continue
                errs.extend(port_range_errors(f"{path}.ports[{j}].port", port.get("port")))
                errs.extend(check_protocol(f"{path}.ports[{j}].protocol", port.get("protocol")))
        return errs

    def cells(self, obj: JSONObject, now: dt.datetime) -> list[Any]:
        meta = obj.get("metadata") or {}
        return [meta.get("name", ""), endpoints_text(obj), tables.age(meta.get("creationTimestamp"), now)]
