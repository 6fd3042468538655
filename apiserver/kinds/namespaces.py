"""Namespaces: the `kubernetes` finalizer, Terminating phase, the name label. Pure."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from apiserver import tables
from apiserver.meta import JSONObject
from apiserver.strategy import Strategy
from apiserver.tables import AGE_COLUMN, NAME_COLUMN, Column
from apiserver.validation import NameValidator, dns1123_label

NAME_LABEL = "kubernetes.io/metadata.name"
FINALIZER = "kubernetes"
PROTECTED = ("default", "kube-system", "kube-public")


class NamespaceStrategy(Strategy):
    kind = "Namespace"
    patch_schema = "Namespace"
    tracks_generation = False
    columns: ClassVar[list[Column]] = [
        NAME_COLUMN,
        Column("Status", description="The status of the namespace"),
        AGE_COLUMN,
    ]

    def name_validator(self) -> NameValidator:
        return dns1123_label

    def default(self, obj: JSONObject) -> None:
        meta = obj.get("metadata")
        if isinstance(meta, dict) and meta.get("name"):
            labels = meta.get("labels")
            if not isinstance(labels, dict):
                labels = meta["labels"] = {}
            labels[NAME_LABEL] = meta["name"]

    def prepare_for_create(self, obj: JSONObject) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = obj["spec"] = {}
        finalizers = spec.get("finalizers") or []
        if FINALIZER not in finalizers:
            finalizers = [*finalizers, FINALIZER]
        spec["finalizers"] = finalizers
        obj["status"] = {"phase": "Active"}

    def prepare_for_update(self, new: JSONObject, old: JSONObject) -> None:
        new["spec"] = old.get("spec") or {}
        new["status"] = old.get("status") or {"phase": "Active"}

    def prepare_for_finalize(self, new: JSONObject, old: JSONObject) -> None:
        """`namespaces/<n>/finalize` changes spec.finalizers only."""
        finalizers = (new.get("spec") or {}).get("finalizers") or []
        new.clear()
        new.update(old)
        new["spec"] = {**(old.get("spec") or {}), "finalizers": list(finalizers)}

    def deletion_forbidden(self, name: str) -> str | None:
        return "this namespace may not be deleted" if name in PROTECTED else None

    def blocks_deletion(self, obj: JSONObject) -> bool:
        return bool((obj.get("spec") or {}).get("finalizers"))

    def mark_deleting(self, obj: JSONObject) -> None:
        status = obj.get("status")
        if not isinstance(status, dict):
            status = obj["status"] = {}
        status["phase"] = "Terminating"

    def fields(self, obj: JSONObject) -> dict[str, str]:
        out = super().fields(obj)
        out["status.phase"] = (obj.get("status") or {}).get("phase", "")
        return out

    def cells(self, obj: JSONObject, now: dt.datetime) -> list[Any]:
        meta = obj.get("metadata") or {}
        return [
            meta.get("name", ""),
            (obj.get("status") or {}).get("phase", ""),
            tables.age(meta.get("creationTimestamp"), now),
        ]
