"""core/v1 Events: involvedObject field selectors (kubectl describe) and LAST SEEN printing. Pure."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from apiserver import tables
from apiserver.errors import FieldError, required
from apiserver.meta import JSONObject
from apiserver.strategy import Strategy
from apiserver.tables import Column


class EventStrategy(Strategy):
    kind = "Event"
    tracks_generation = False
    allow_create_on_update = True
    columns: ClassVar[list[Column]] = [
        Column("Last Seen", description="Time when last event from this object was observed."),
        Column(
            "Type",
            description="Type of this event (Normal, Warning), new types could be added in the future.",
        ),
        Column(
            "Reason",
            description="A short, machine understandable reason for the transition into the current status.",
        ),
        Column("Object", description="The object that this event is about."),
        Column("Subobject", description="The subobject that this event is about.", priority=1),
        Column("Source", description="The component reporting this event.", priority=1),
        Column("Message", description="A human-readable description of the status of this operation."),
        Column("First Seen", description="Time when first event from this object was observed.", priority=1),
        Column(
            "Count", type="integer", description="The number of times this event has occurred.", priority=1
        ),
        Column("Name", format="name", description="Name must be unique within a namespace.", priority=1),
    ]

    def validate(self, obj: JSONObject) -> list[FieldError]:
        errs = super().validate(obj)
        if not isinstance(obj.get("involvedObject"), dict):
            errs.append(required("involvedObject"))
        return errs

    def fields(self, obj: JSONObject) -> dict[str, str]:
        out = super().fields(obj)
        involved = obj.get("involvedObject") or {}
        for key in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"):
            out[f"involvedObject.{key}"] = str(involved.get(key) or "")
        out["reason"] = obj.get("reason") or ""
        out["reportingComponent"] = obj.get("reportingComponent") or ""
        out["source"] = (obj.get("source") or {}).get("component") or obj.get("reportingComponent") or ""
        out["type"] = obj.get("type") or ""
        return out

    def cells(self, obj: JSONObject, now: dt.datetime) -> list[Any]:
        meta = obj.get("metadata") or {}
        involved = obj.get("involvedObject") or {}
        last = obj.get("lastTimestamp") or obj.get("eventTime") or meta.get("creationTimestamp")
        first = obj.get("firstTimestamp") or obj.get("eventTime") or meta.get("creationTimestamp")
        source = obj.get("source") or {}
        source_text = source.get("component") or obj.get("reportingComponent") or ""
        if source.get("host"):
            source_text += f", {source['host']}"
        return [
            tables.age(last, now),
            obj.get("type", ""),
            obj.get("reason", ""),
            f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
            involved.get("fieldPath", ""),
            source_text,
            str(obj.get("message", "")).strip(),
            tables.age(first, now),
            int(obj.get("count") or 1),
            meta.get("name", ""),
        ]
