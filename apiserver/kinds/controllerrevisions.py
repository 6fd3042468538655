"""apps/v1 ControllerRevisions: the history DaemonSets and StatefulSets keep of their pod templates.
Validation as Kubernetes' ValidateControllerRevision(Update) (`data` is mandatory and, once
written, immutable; `revision` is a non-negative number a controller may move on a rollback) and
the `kubectl get controllerrevisions` columns (NAME CONTROLLER REVISION AGE). Pure.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from apiserver import tables
from apiserver.errors import FieldError, invalid, required
from apiserver.meta import JSONObject
from apiserver.strategy import Strategy
from apiserver.tables import AGE_COLUMN, NAME_COLUMN, Column
from apiserver.validation import non_negative


def controller_name(obj: JSONObject) -> str:
    """`<kind>.<group>/<name>` of the controller, as kubectl prints it; `<none>` for an orphan."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            api_version = str(ref.get("apiVersion") or "")
            group = api_version.split("/", 1)[0] if "/" in api_version else ""
            kind = str(ref.get("kind") or "").lower()
            return f"{kind}.{group}/{ref.get('name', '')}" if group else f"{kind}/{ref.get('name', '')}"
    return "<none>"


class ControllerRevisionStrategy(Strategy):
    kind = "ControllerRevision"
    patch_schema = "ControllerRevision"
    tracks_generation = False
    columns: ClassVar[list[Column]] = [
        NAME_COLUMN,
        Column("Controller", description="Controller of the object"),
        Column("Revision", type="integer", description="Revision indicates the revision of the state "
               "represented by Data."),
        AGE_COLUMN,
    ]  # fmt: skip

    def prepare_for_create(self, obj: JSONObject) -> None:
        obj.pop("status", None)

    def prepare_for_update(self, new: JSONObject, old: JSONObject) -> None:
        new.pop("status", None)

    def spec_of(self, obj: JSONObject) -> Any:
        return None

    def validate(self, obj: JSONObject) -> list[FieldError]:
        errs = super().validate(obj)
        if obj.get("data") is None:
            errs.append(required("data", "data is mandatory"))
        errs += non_negative("revision", obj.get("revision") or 0)
        return errs

    def validate_update(self, new: JSONObject, old: JSONObject) -> list[FieldError]:
        errs = self.validate(new)
        if new.get("data") != old.get("data"):
            errs.append(invalid("data", new.get("data"), "field is immutable"))
        return errs

    def cells(self, obj: JSONObject, now: dt.datetime) -> list[Any]:
        meta = obj.get("metadata") or {}
        age = tables.age(meta.get("creationTimestamp"), now)
        return [meta.get("name", ""), controller_name(obj), int(obj.get("revision") or 0), age]
