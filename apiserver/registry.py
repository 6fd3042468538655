"""The generic registry: create, get, list, update, delete for every kind in the resource table,
on top of the etcd store, with the per-kind strategy deciding the details.

Store contract (docs/architecture.md): key `/registry/<resource>/[<namespace>/]<name>`, value the
object as JSON without `metadata.resourceVersion`, which is the key's mod_revision (`codec`).
Create is guarded on the key being absent; every other write goes through one guaranteed-update
loop (`guaranteed_update`, Kubernetes' GuaranteedUpdate): read, let the verb compute the new
object, write guarded on the mod_revision read, and on a race read again. The Txn also guards the
namespace (nothing is created in a namespace that began terminating) and any allocation keys
(Service IPs and ports). Touches: the store, through `EtcdStore` only.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from apiserver import claims, deletion, errors
from apiserver.bodies import invalid_object, object_identity
from apiserver.codec import (
    decode,
    decode_continue,
    encode,
    encode_continue,
    parse_resource_version,
    store_errors,
)
from apiserver.deletion import DeleteOptions
from apiserver.errors import APIError, invalid, invalid_error
from apiserver.meta import JSONObject, generate_name, new_uid, rfc3339, utcnow
from apiserver.resources import ResourceDef, ResourceTable
from apiserver.storage import (
    Absent,
    CompactedError,
    Delete,
    EtcdStore,
    Guard,
    KeyValue,
    Put,
    StoreError,
    Unchanged,
)
from apiserver.watchcache import WatchCache
from kubelite import resources
from kubelite.selectors import FieldSelector, LabelSelector

__all__ = ["DeleteOptions", "ListOptions", "Registry", "decode", "parse_resource_version", "store_errors"]

log = logging.getLogger(__name__)

MAX_RETRIES = 8
NAMESPACE_KEY = "/registry/namespaces/"
# Fields only the server sets; a create or update cannot choose them.
SERVER_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")

# prepare(new, old): what a verb keeps from the stored object (status on a main update, spec on a
# status update, ...); the strategy's prepare_for_* methods have this shape.
Prepare = Callable[[JSONObject, JSONObject], None]
# try_update(current) -> the object the verb wants stored (before prepare, defaulting, validation).
TryUpdate = Callable[[JSONObject], JSONObject]


@dataclass
class ListOptions:
    label_selector: LabelSelector = field(default_factory=LabelSelector)
    field_selector: FieldSelector = field(default_factory=FieldSelector)
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""


@dataclass
class ListResult:
    items: list[JSONObject]
    resource_version: str
    continue_token: str = ""
    remaining: int | None = None


@dataclass
class DeleteResult:
    obj: JSONObject
    deleted: bool  # False: deletion is pending (graceful or finalizers)


class Registry:
    """CRUD for every resource in the table; one instance per apiserver."""

    def __init__(
        self,
        store: EtcdStore,
        table: ResourceTable,
        clock: Callable[[], dt.datetime] = utcnow,
        cache: WatchCache | None = None,
    ) -> None:
        self.store = store
        self.table = table
        self.clock = clock
        self.cache = cache

    async def _current(self, rd: ResourceDef, key: str, guess: bool) -> tuple[KeyValue | None, bool]:
        """The stored kv of key and whether it came from the watch cache. With `guess`, the cache's
        copy is taken when it has one (the write's guard catches a stale one); otherwise, and for
        a key the cache lacks, the store is read."""
        if guess and self.cache is not None:
            cacher = self.cache.peek(rd)
            kv = cacher.current(key) if cacher is not None else None
            if kv is not None:
                return kv, True
        kv, _ = await self.store.get(key)
        return kv, False

    # ------------------------------------------------------------------ helpers

    async def _namespace_guard(self, rd: ResourceDef, obj: JSONObject, guess: bool) -> Guard | None:
        if not rd.namespaced:
            return None
        namespace = obj["metadata"]["namespace"]
        kv, _ = await self._current(self.table.of(resources.NAMESPACES), NAMESPACE_KEY + namespace, guess)
        if kv is None:
            raise errors.not_found(errors.GroupResource("", "namespaces"), namespace)
        ns = decode(kv)
        if (ns.get("metadata") or {}).get("deletionTimestamp"):
            name = obj["metadata"].get("name", "")
            raise errors.forbidden_error(
                rd.group_resource,
                name,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )
        return Unchanged(kv.key, kv.mod_revision)

    # ------------------------------------------------------------------ reads

    async def get(self, rd: ResourceDef, namespace: str, name: str) -> JSONObject:
        try:
            kv, _ = await self.store.get(rd.key(namespace, name))
        except StoreError as err:
            raise store_errors(err) from err
        if kv is None:
            raise errors.not_found(rd.group_resource, name)
        return decode(kv)

    async def _read(self, rd: ResourceDef, namespace: str, name: str) -> tuple[KeyValue, JSONObject]:
        kv, _ = await self.store.get(rd.key(namespace, name))
        if kv is None:
            raise errors.not_found(rd.group_resource, name)
        return kv, decode(kv)

    def matches(self, rd: ResourceDef, obj: JSONObject, options: ListOptions) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if not options.label_selector.matches(labels):
            return False
        if options.field_selector.empty:
            return True
        return options.field_selector.matches(rd.strategy.fields(obj))

    async def list(self, rd: ResourceDef, namespace: str | None, options: ListOptions) -> ListResult:
        prefix = rd.prefix(namespace)
        revision = 0
        start = prefix
        if options.continue_token:
            revision, start = decode_continue(options.continue_token, prefix)
        elif options.resource_version_match == "Exact" and options.resource_version not in ("", "0"):
            revision = parse_resource_version(options.resource_version)
        limit = max(options.limit, 0)
        filtering = not options.label_selector.empty or not options.field_selector.empty
        items: list[JSONObject] = []
        continue_key = ""
        remaining: int | None = None
        try:
            while True:
                page = await self.store.list(prefix, start=start, limit=limit, revision=revision)
                revision = page.revision
                stopped = False
                for index, kv in enumerate(page.items):
                    obj = decode(kv)
                    if self.matches(rd, obj, options):
                        items.append(obj)
                    if limit and len(items) >= limit:
                        more = index < len(page.items) - 1 or page.more
                        if more:
                            continue_key = kv.key + "\x00"
                            if not filtering:
                                remaining = page.count - index - 1
                        stopped = True
                        break
                if stopped or not limit or not page.more or not page.items:
                    break
                start = page.items[-1].key + "\x00"
        except CompactedError as err:
            if options.continue_token:
                raise errors.expired(
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter."
                ) from err
            raise errors.too_old_resource_version(revision, 0) from err
        except StoreError as err:
            raise store_errors(err) from err
        token = encode_continue(revision, continue_key, prefix) if continue_key else ""
        return ListResult(items, str(revision), token, remaining)

    # ------------------------------------------------------------------ create

    def _prepare_new(self, rd: ResourceDef, obj: JSONObject) -> None:
        meta = obj["metadata"]
        for key in (*SERVER_META, "resourceVersion", "selfLink", "managedFields"):
            meta.pop(key, None)
        strategy = rd.strategy
        strategy.default(obj)
        strategy.prepare_for_create(obj)
        errs = strategy.validate(obj)
        if errs:
            raise invalid_object(rd, obj, errs)

    async def create(
        self, rd: ResourceDef, namespace: str | None, body: Any, dry_run: bool = False
    ) -> JSONObject:
        template = object_identity(rd, body, namespace)
        self._prepare_new(rd, template)
        try:
            return await self._create(rd, template, dry_run)
        except StoreError as err:
            raise store_errors(err) from err

    async def _create(self, rd: ResourceDef, template: JSONObject, dry_run: bool) -> JSONObject:
        for attempt in range(MAX_RETRIES):
            obj = copy.deepcopy(template)
            meta = obj["metadata"]
            if not meta.get("name"):
                meta["name"] = generate_name(meta.get("generateName", ""))
            meta["uid"] = meta.get("uid") or new_uid()  # a strategy may pick it early (Job selectors)
            meta["creationTimestamp"] = rfc3339(self.clock())
            if rd.strategy.tracks_generation:
                meta["generation"] = 1
            guards: list[Guard] = []
            ns_guard = await self._namespace_guard(rd, obj, guess=attempt == 0)
            if ns_guard is not None:
                guards.append(ns_guard)
            allocation = await claims.allocate(self.store, rd, obj, None)
            key = rd.key(meta.get("namespace", ""), meta["name"])
            claim_guards, claim_writes, added = claims.writes(rd, obj, None)
            if dry_run:
                return obj
            result = await self.store.txn(
                [Absent(key), *guards, *claim_guards], [Put(key, encode(obj)), *claim_writes]
            )
            if result.succeeded:
                meta["resourceVersion"] = str(result.revision)
                return obj
            if result.current.get(key) is not None:
                if template["metadata"].get("name"):
                    raise errors.already_exists(rd.group_resource, meta["name"])
                continue  # a generated name collided: pick another
            claims.conflict(rd, obj, result, added, allocation.automatic)
        raise errors.APIError(
            500,
            errors.Reason.INTERNAL_ERROR,
            f"Internal error occurred: create of {rd.plural} kept conflicting; try again",
        )

    # ------------------------------------------------------------------ update

    def _prepare_update(
        self, rd: ResourceDef, new: JSONObject, old: JSONObject, prepare: Prepare, validate: bool
    ) -> JSONObject:
        """Apply the strategy to turn a verb's new object into what is stored."""
        strategy = rd.strategy
        new_meta = new.setdefault("metadata", {})
        old_meta = old.get("metadata") or {}
        uid = new_meta.get("uid")
        if uid and uid != old_meta.get("uid"):  # a uid in the body is a precondition
            raise invalid_object(rd, new, [invalid("metadata.uid", uid, "field is immutable")])
        for key in (*SERVER_META, "name", "namespace"):
            if key in old_meta:
                new_meta[key] = old_meta[key]
            else:
                new_meta.pop(key, None)
        new_meta.pop("selfLink", None)
        new_meta.pop("managedFields", None)
        prepare(new, old)
        strategy.default(new)
        if strategy.tracks_generation and strategy.spec_of(new) != strategy.spec_of(old):
            new_meta["generation"] = int(old_meta.get("generation") or 1) + 1
        errs = strategy.validate_update(new, old) if validate else []
        if errs:
            raise invalid_object(rd, new, errs)
        return new

    def _should_delete(self, rd: ResourceDef, obj: JSONObject) -> bool:
        """An object being deleted whose grace period is over and whose finalizers are gone."""
        meta = obj.get("metadata") or {}
        return (
            bool(meta.get("deletionTimestamp"))
            and not meta.get("finalizers")
            and int(meta.get("deletionGracePeriodSeconds") or 0) == 0
            and not rd.strategy.blocks_deletion(obj)
        )

    async def _remove(self, rd: ResourceDef, kv: KeyValue, obj: JSONObject) -> bool:
        """Delete the object read at kv.mod_revision and release its claims; False on a race."""
        _g, claim_writes, _a = claims.writes(rd, None, obj)
        result = await self.store.txn([Unchanged(kv.key, kv.mod_revision)], [Delete(kv.key), *claim_writes])
        return result.succeeded

    async def _write_update(
        self, rd: ResourceDef, kv: KeyValue, old: JSONObject, new: JSONObject, dry_run: bool
    ) -> JSONObject | None:
        """Store `new` over `old` (read at kv.mod_revision): the stored object, or None on a race."""
        allocation = await claims.allocate(self.store, rd, new, old)
        if self._should_delete(rd, new):
            if dry_run:
                return new
            return new if await self._remove(rd, kv, old) else None
        if encode(new) == encode(old):
            return old  # nothing changed: no write, no new resourceVersion
        if dry_run:
            return new
        guards, writes, added = claims.writes(rd, new, old)
        result = await self.store.txn(
            [Unchanged(kv.key, kv.mod_revision), *guards], [Put(kv.key, encode(new)), *writes]
        )
        if result.succeeded:
            new["metadata"]["resourceVersion"] = str(result.revision)
            return new
        current = result.current.get(kv.key)
        if current is not None and current.mod_revision == kv.mod_revision:
            claims.conflict(rd, new, result, added, allocation.automatic)
        return None

    async def guaranteed_update(
        self,
        rd: ResourceDef,
        namespace: str,
        name: str,
        try_update: TryUpdate,
        *,
        prepare: Prepare,
        validate: bool = True,
        dry_run: bool = False,
        create_missing: Callable[[], Awaitable[JSONObject]] | None = None,
        resource: errors.GroupResource | None = None,
    ) -> tuple[JSONObject, bool]:
        """Every write to an existing object: read it, let the verb compute the new object, store it
        guarded on what was read, and on a race start again. The verb's object may pin a
        resourceVersion: then it must be the stored one, and a race is a 409 Conflict. Returns
        (object, created); `create_missing` creates an object that is not there (PUT on a kind that
        allows it, server-side apply)."""
        gr = resource or rd.group_resource
        try:
            for attempt in range(MAX_RETRIES):
                kv, cached = await self._current(rd, rd.key(namespace, name), guess=attempt == 0)
                if kv is None:
                    if create_missing is not None:
                        return await create_missing(), True
                    raise errors.not_found(gr, name)
                old = decode(kv)
                wanted = try_update(copy.deepcopy(old))
                pinned = str((wanted.get("metadata") or {}).get("resourceVersion") or "")
                if pinned and pinned != str(kv.mod_revision):
                    if cached:
                        continue  # the cache may be behind the version the client pins: read the store
                    raise errors.modified_conflict(gr, name)
                new = self._prepare_update(rd, wanted, old, prepare, validate)
                stored = await self._write_update(rd, kv, old, new, dry_run)
                if stored is not None:
                    return stored, False
        except StoreError as err:
            raise store_errors(err) from err
        raise errors.modified_conflict(gr, name)

    def identified(self, rd: ResourceDef, body: Any, namespace: str, name: str) -> JSONObject:
        """A PUT body checked against the URL: the object to store under that name."""
        obj = object_identity(rd, body, namespace)
        body_name = obj["metadata"].get("name")
        if body_name and body_name != name:
            raise errors.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        obj["metadata"]["name"] = name
        return obj

    async def update(
        self,
        rd: ResourceDef,
        namespace: str,
        name: str,
        body: Any,
        dry_run: bool = False,
        *,
        prepare: Prepare | None = None,
    ) -> tuple[JSONObject, bool]:
        """PUT of the main resource, or with `prepare` of a subresource that writes part of it
        (which never creates). Returns (object, created)."""
        obj = self.identified(rd, body, namespace, name)
        create_missing = None
        if prepare is None and rd.strategy.allow_create_on_update:

            async def create_missing() -> JSONObject:
                if obj["metadata"].get("resourceVersion"):
                    raise errors.not_found(rd.group_resource, name)
                self._prepare_new(rd, obj)
                return await self._create(rd, obj, dry_run)

        return await self.guaranteed_update(
            rd, namespace, name, lambda _current: copy.deepcopy(obj),
            prepare=prepare or rd.strategy.prepare_for_update, dry_run=dry_run, create_missing=create_missing,
        )  # fmt: skip

    async def patch(
        self,
        rd: ResourceDef,
        namespace: str,
        name: str,
        apply: Callable[[JSONObject], JSONObject],
        *,
        prepare: Prepare | None = None,
        dry_run: bool = False,
        create_from: Callable[[], JSONObject] | None = None,
    ) -> tuple[JSONObject, bool]:
        """PATCH: `apply` maps the current object to the patched one. A patch that sets a
        resourceVersion other than the stored object's pins it. `create_from` (server-side
        apply) creates a missing object."""

        def patched(current: JSONObject) -> JSONObject:
            stored_rv = (current.get("metadata") or {}).get("resourceVersion")
            out = object_identity(rd, apply(current), namespace or None)
            if out["metadata"].get("name") != name:
                raise errors.bad_request(
                    f"the name of the object ({out['metadata'].get('name')}) does not match "
                    f"the name on the URL ({name})"
                )
            out["metadata"].setdefault("resourceVersion", stored_rv)
            return out

        create_missing = None
        if create_from is not None:

            async def create_missing() -> JSONObject:
                body = create_from()
                body.setdefault("metadata", {})
                if isinstance(body["metadata"], dict):
                    body["metadata"].setdefault("name", name)
                return await self.create(rd, namespace, body, dry_run)

        return await self.guaranteed_update(
            rd, namespace, name, patched, prepare=prepare or rd.strategy.prepare_for_update,
            dry_run=dry_run, create_missing=create_missing,
        )  # fmt: skip

    # ------------------------------------------------------------------ delete

    async def delete(
        self, rd: ResourceDef, namespace: str, name: str, options: DeleteOptions
    ) -> DeleteResult:
        errs = options.validate()
        if errs:
            raise invalid_error("meta.k8s.io", "DeleteOptions", "", errs)
        try:
            for _attempt in range(MAX_RETRIES):
                kv, obj = await self._read(rd, namespace, name)
                meta = obj.setdefault("metadata", {})
                if options.uid and options.uid != meta.get("uid"):
                    raise errors.conflict(
                        rd.group_resource,
                        name,
                        f"Precondition failed: UID in precondition: {options.uid}, "
                        f"UID in object meta: {meta.get('uid')}",
                    )
                if options.resource_version and options.resource_version != str(kv.mod_revision):
                    raise errors.conflict(
                        rd.group_resource,
                        name,
                        "Precondition failed: ResourceVersion in precondition: "
                        f"{options.resource_version}, ResourceVersion in object meta: {kv.mod_revision}",
                    )
                why = rd.strategy.deletion_forbidden(name)
                if why:
                    raise errors.forbidden_error(rd.group_resource, name, why)
                grace = rd.strategy.grace_period(obj, options.grace_period_seconds)
                current = list(meta.get("finalizers") or [])
                policy = deletion.cascade(options, current, rd.strategy.default_gc_policy)
                finalizers = deletion.with_cascade_finalizer(current, policy)
                held = bool(finalizers) or rd.strategy.blocks_deletion(obj)
                if grace == 0 and not held:
                    if options.dry_run:
                        return DeleteResult(obj, True)
                    if await self._remove(rd, kv, obj):
                        return DeleteResult(obj, True)
                    continue
                pending = deletion.begin_deletion(
                    obj, grace, finalizers, self.clock(), rd.strategy.tracks_generation
                )
                if pending is None or options.dry_run:
                    return DeleteResult(pending or obj, False)
                if not meta.get("deletionTimestamp"):
                    rd.strategy.mark_deleting(pending)
                stored = await self._write_update(rd, kv, obj, pending, dry_run=False)
                if stored is not None:
                    return DeleteResult(stored, self._should_delete(rd, stored))
        except StoreError as err:
            raise store_errors(err) from err
        raise errors.modified_conflict(rd.group_resource, name)

    async def delete_collection(
        self, rd: ResourceDef, namespace: str | None, list_options: ListOptions, options: DeleteOptions
    ) -> ListResult:
        listed = await self.list(
            rd, namespace, ListOptions(list_options.label_selector, list_options.field_selector)
        )
        deleted = []
        for obj in listed.items:
            meta = obj.get("metadata") or {}
            try:
                result = await self.delete(rd, meta.get("namespace", ""), meta.get("name", ""), options)
            except APIError as err:
                if err.code == 404:
                    continue
                raise
            deleted.append(result.obj)
        return ListResult(deleted, listed.resource_version)

    # ------------------------------------------------------------------ namespaces

    async def ensure_namespace(self, name: str) -> bool:
        """Create a namespace if missing (bootstrap); True if it exists afterwards."""
        rd = self.table.of(resources.NAMESPACES)
        try:
            await self.create(rd, None, {"metadata": {"name": name}})
        except APIError as err:
            if err.code != 409:
                raise
        return True
