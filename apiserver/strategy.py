"""The per-kind behaviour the generic registry delegates to (Kubernetes' RESTStrategy).

A Strategy says, for one kind: how to default and validate it, what create and update may
change (status is reset or kept), which fields field selectors may use, how deletion works
(graceful or not), which side allocations it holds (Service IPs and ports), and how
`kubectl get` prints it. Strategies are pure; the one IO they get (looking up taken
allocations) is injected by the registry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from apiserver import tables
from apiserver.errors import FieldError
from apiserver.meta import JSONObject
from apiserver.tables import AGE_COLUMN, NAME_COLUMN, Column
from apiserver.validation import NameValidator, dns1123_subdomain, validate_object_meta

# prefix -> the keys under it that are taken right now
TakenLookup = Callable[[str], Awaitable[set[str]]]


@dataclass(frozen=True)
class Claim:
    """A store key an object holds besides its own (an allocated IP or port).

    `field` and `value` name what asked for it, for the "already allocated" error.
    """

    key: str
    field: str
    value: Any
    taken_detail: str


@dataclass
class Allocation:
    """The outcome of assigning allocations: problems with user-chosen values, and which
    claims the server picked itself (those are re-picked on a race instead of failing)."""

    errors: list[FieldError] = field(default_factory=list)
    automatic: set[str] = field(default_factory=set)


class Strategy:
    """Defaults for a plain kind with no status and nothing special; kinds override."""

    kind: ClassVar[str] = ""
    patch_schema: ClassVar[str] = "Generic"
    tracks_generation: ClassVar[bool] = True
    allow_create_on_update: ClassVar[bool] = False
    return_deleted_object: ClassVar[bool] = False
    # what a DELETE without a propagationPolicy does to dependents (DefaultGarbageCollectionPolicy)
    default_gc_policy: ClassVar[str] = "Background"
    columns: ClassVar[list[Column]] = [NAME_COLUMN, AGE_COLUMN]

    def __init__(self, namespaced: bool) -> None:
        self.namespaced = namespaced

    # --------------------------------------------------------------- defaulting and validation

    def name_validator(self) -> NameValidator:
        return dns1123_subdomain

    def default(self, obj: JSONObject) -> None:
        """Fill defaults; runs on every create, update and patch result (as decoding does)."""

    def prepare_for_create(self, obj: JSONObject) -> None:
        """Reset what a client may not set on create (usually status)."""

    def prepare_for_update(self, new: JSONObject, old: JSONObject) -> None:
        """Keep what a main-resource update may not change (usually status)."""

    def prepare_for_status_update(self, new: JSONObject, old: JSONObject) -> None:
        """A status write changes status only: everything else comes from the stored object."""
        status = new.get("status")
        new.clear()
        new.update({k: v for k, v in old.items() if k != "status"})
        if status is not None:
            new["status"] = status

    def validate(self, obj: JSONObject) -> list[FieldError]:
        return validate_object_meta(
            obj.get("metadata") or {}, namespaced=self.namespaced, name_validator=self.name_validator()
        )

    def validate_update(self, new: JSONObject, old: JSONObject) -> list[FieldError]:
        return self.validate(new)

    def spec_of(self, obj: JSONObject) -> Any:
        """What counts as the spec for `metadata.generation`."""
        return obj.get("spec")

    # --------------------------------------------------------------- selection

    def fields(self, obj: JSONObject) -> dict[str, str]:
        """The field-selector attributes (GetAttrs); keys are the fields selectors may use."""
        meta = obj.get("metadata") or {}
        out = {"metadata.name": meta.get("name", "")}
        if self.namespaced:
            out["metadata.namespace"] = meta.get("namespace", "")
        return out

    def field_names(self) -> set[str]:
        return set(self.fields({"metadata": {}}))

    # --------------------------------------------------------------- deletion and allocations

    def grace_period(self, obj: JSONObject, requested: int | None) -> int:
        """Seconds of graceful deletion; 0 deletes at once (all kinds but pods)."""
        return 0

    def deletion_forbidden(self, name: str) -> str | None:
        """Why an object of this name may never be deleted (the default namespaces), if so."""
        return None

    def blocks_deletion(self, obj: JSONObject) -> bool:
        """Besides metadata.finalizers, does anything keep a deleted object (namespace spec.finalizers)?"""
        return False

    def mark_deleting(self, obj: JSONObject) -> None:
        """Extra changes when deletion starts (a namespace turns Terminating)."""

    def claims(self, obj: JSONObject) -> list[Claim]:
        return []

    async def allocate(self, obj: JSONObject, old: JSONObject | None, taken: TakenLookup) -> Allocation:
        """Pick server-assigned values (cluster IP, node ports) and check user-chosen ones."""
        return Allocation()

    def scale_selector(self, obj: JSONObject) -> str:
        """The label selector of a scalable kind as text, for its Scale's status.selector."""
        return ""

    # --------------------------------------------------------------- printing

    def cells(self, obj: JSONObject, now: dt.datetime) -> list[Any]:
        meta = obj.get("metadata") or {}
        return [meta.get("name", ""), tables.age(meta.get("creationTimestamp"), now)]
