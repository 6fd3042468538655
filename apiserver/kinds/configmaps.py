"""ConfigMaps: data key validation and the DATA column. Pure."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, ClassVar

from apiserver import tables
from apiserver.errors import FieldError, forbidden, invalid
from apiserver.meta import JSONObject
from apiserver.strategy import Strategy
from apiserver.tables import AGE_COLUMN, NAME_COLUMN, Column

_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
KEY_ERR = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)


class ConfigMapStrategy(Strategy):
    kind = "ConfigMap"
    tracks_generation = False
    columns: ClassVar[list[Column]] = [
        NAME_COLUMN,
        Column("Data", type="integer", description="Number of data entries in this ConfigMap."),
        AGE_COLUMN,
    ]

    def validate(self, obj: JSONObject) -> list[FieldError]:
        errs = super().validate(obj)
        for section in ("data", "binaryData"):
            values = obj.get(section) or {}
            if not isinstance(values, dict):
                errs.append(invalid(section, str(values), "must be a map of strings"))
                continue
            for key, value in values.items():
                if len(key) > 253 or not _KEY_RE.match(key) or key in (".", ".."):
                    errs.append(invalid(f"{section}[{key}]", key, KEY_ERR))
                if not isinstance(value, str):
                    errs.append(invalid(f"{section}[{key}]", str(value), "must be a string"))
        return errs

    def validate_update(self, new: JSONObject, old: JSONObject) -> list[FieldError]:
        errs = self.validate(new)
        if old.get("immutable") and any(
            new.get(k) != old.get(k) for k in ("data", "binaryData", "immutable")
        ):
            errs.append(forbidden("data", "field is immutable when `immutable` is set"))
        return errs

    def cells(self, obj: JSONObject, now: dt.datetime) -> list[Any]:
        meta = obj.get("metadata") or {}
        count = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
        return [meta.get("name", ""), count, tables.age(meta.get("creationTimestamp"), now)]
