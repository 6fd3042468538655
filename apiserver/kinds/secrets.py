"""Secrets: stringData folded into base64 data, the type defaulted, keys validated. Pure.

As in Kubernetes, `stringData` is write-only: it is merged into `data` (base64) when the
object is written and never stored.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any, ClassVar

from apiserver import tables
from apiserver.errors import FieldError, invalid
from apiserver.kinds.configmaps import ConfigMapStrategy
from apiserver.meta import JSONObject
from apiserver.tables import AGE_COLUMN, NAME_COLUMN, Column


class SecretStrategy(ConfigMapStrategy):
    kind = "Secret"
    columns: ClassVar[list[Column]] = [
        NAME_COLUMN,
        Column("Type", description="The type of the secret."),
        Column("Data", type="integer", description="Number of data entries in this Secret."),
        AGE_COLUMN,
    ]

    def default(self, obj: JSONObject) -> None:
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict) and string_data:
            data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            obj["data"] = data

    def validate(self, obj: JSONObject) -> list[FieldError]:
        errs = super().validate(obj)
        for key, value in (obj.get("data") or {}).items() if isinstance(obj.get("data"), dict) else []:
            try:
                base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError):
                errs.append(invalid(f"data[{key}]", "<secret contents redacted>", "must be base64 encoded"))
        return errs

    def cells(self, obj: JSONObject, now: dt.datetime) -> list[Any]:
        meta = obj.get("metadata") or {}
        return [
            meta.get("name", ""),
            obj.get("type", ""),
            len(obj.get("data") or {}),
            tables.age(meta.get("creationTimestamp"), now),
        ]
