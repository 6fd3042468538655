"""coordination.k8s.io/v1 Leases: node heartbeats and leader election. Pure."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from apiserver import tables
from apiserver.errors import FieldError, invalid
from apiserver.meta import JSONObject
from apiserver.strategy import Strategy
from apiserver.tables import AGE_COLUMN, NAME_COLUMN, Column


class LeaseStrategy(Strategy):
    kind = "Lease"
    tracks_generation = False
    columns: ClassVar[list[Column]] = [
        NAME_COLUMN,
        Column("Holder", description="The holder of the lease"),
        AGE_COLUMN,
    ]

    def validate(self, obj: JSONObject) -> list[FieldError]:
        errs = super().validate(obj)
        duration = (obj.get("spec") or {}).get("leaseDurationSeconds")
        if duration is not None and (not isinstance(duration, int) or duration <= 0):
            errs.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
        return errs

    def cells(self, obj: JSONObject, now: dt.datetime) -> list[Any]:
        meta = obj.get("metadata") or {}
        holder = (obj.get("spec") or {}).get("holderIdentity") or ""
        return [meta.get("name", ""), holder, tables.age(meta.get("creationTimestamp"), now)]
