"""The generic registry: create, get, list, update, patch, delete for every kind in the
resource table, on top of the etcd store, with the per-kind strategy deciding the details.

Store contract (ARCHITECTURE.md): key `/registry/<resource>/[<namespace>/]<name>`, value the
object as JSON without `metadata.resourceVersion`, which is the key's mod_revision. Create
is guarded on the key being absent, update and delete on its mod_revision, and the Txn also
guards the namespace (so nothing is created in a namespace that began terminating) and any
allocation keys (Service IPs and ports). Touches: the store, through `EtcdStore` only.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apiserver import errors
from apiserver.errors import APIError, FieldError, invalid, invalid_error
from apiserver.kinds.namespaces import PROTECTED as PROTECTED_NAMESPACES
from apiserver.meta import JSONObject, generate_name, new_uid, rfc3339, utcnow
from apiserver.resources import ResourceDef, ResourceTable
from apiserver.storage import (
    Absent,
    CompactedError,
    Delete,
    EtcdStore,
    FutureRevisionError,
    Guard,
    KeyValue,
    Put,
    StoreError,
    StoreUnavailable,
    TxnResult,
    Unchanged,
    Write,
)
from apiserver.strategy import Allocation, Claim
from kubelite.selectors import FieldSelector, LabelSelector

log = logging.getLogger(__name__)

MAX_RETRIES = 8
NAMESPACE_KEY = "/registry/namespaces/"
# Fields only the server sets; a create or update cannot choose them.
SERVER_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")


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
class DeleteOptions:
    grace_period_seconds: int | None = None
    uid: str | None = None
    resource_version: str | None = None
    propagation_policy: str | None = None
    dry_run: bool = False


@dataclass
class DeleteResult:
    obj: JSONObject
    deleted: bool  # False: deletion is pending (graceful or finalizers)


class Subresource:
    MAIN = ""
    STATUS = "status"
    FINALIZE = "finalize"


def encode(obj: JSONObject) -> bytes:
    stored = copy.copy(obj)
    meta = dict(stored.get("metadata") or {})
    meta.pop("resourceVersion", None)
    meta.pop("selfLink", None)
    stored["metadata"] = meta
    return json.dumps(stored, separators=(",", ":"), sort_keys=False).encode()


def decode(kv: KeyValue) -> JSONObject:
    obj = json.loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


def encode_continue(revision: int, key: str, prefix: str) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": revision, "start": key[len(prefix) :]}
    return base64.urlsafe_b64encode(json.dumps(token, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_continue(token: str, prefix: str) -> tuple[int, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        revision, start = int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise errors.bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        ) from None
    if start.startswith("/") or ".." in start.split("/") or revision <= 0:
        raise errors.bad_request("continue key is not valid: key path is not valid")
    return revision, prefix + start


def store_errors(err: StoreError) -> APIError:
    """Map a store failure to what the real apiserver answers."""
    if isinstance(err, StoreUnavailable):
        return errors.service_unavailable(f"etcd is unavailable: {err}")
    if isinstance(err, CompactedError):
        return errors.expired("The resourceVersion for the provided list is too old.")
    if isinstance(err, FutureRevisionError):
        return APIError(504, errors.Reason.TIMEOUT, "Too large resource version", {"retryAfterSeconds": 1})
    return errors.internal_error(str(err))


class Registry:
    """CRUD for every resource in the table; one instance per apiserver."""

    def __init__(
        self, store: EtcdStore, table: ResourceTable, clock: Callable[[], dt.datetime] = utcnow
    ) -> None:
        self.store = store
        self.table = table
        self.clock = clock

    # ------------------------------------------------------------------ helpers

    def _object_identity(self, rd: ResourceDef, body: Any, namespace: str | None) -> JSONObject:
        """Check kind/apiVersion/namespace of a request body and fill what is missing."""
        if not isinstance(body, dict):
            raise errors.bad_request(f"the body of the request must be a JSON object describing a {rd.kind}")
        kind = body.get("kind")
        if kind and kind != rd.kind:
            raise errors.bad_request(
                f'{kind} in version "{rd.version}" cannot be handled as a {rd.kind}: '
                f'no kind "{kind}" is registered for version "{rd.group_version}"'
            )
        api_version = body.get("apiVersion")
        if api_version and api_version != rd.group_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rd.group_version})"
            )
        # apiVersion, kind and metadata first, as the real server writes them.
        obj = {"apiVersion": rd.group_version, "kind": rd.kind, "metadata": None, **copy.deepcopy(body)}
        obj["kind"] = rd.kind
        obj["apiVersion"] = rd.group_version
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        for key in (
            "creationTimestamp",
            "deletionTimestamp",
            "labels",
            "annotations",
            "finalizers",
            "ownerReferences",
        ):
            if key in meta and meta[key] is None:
                del meta[key]
        if rd.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and namespace and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace or body_ns or ""
        else:
            meta.pop("namespace", None)
        return obj

    def _invalid(self, rd: ResourceDef, obj: JSONObject, errs: list[FieldError]) -> APIError:
        name = (
            (obj.get("metadata") or {}).get("name") or (obj.get("metadata") or {}).get("generateName") or ""
        )
        return invalid_error(rd.group, rd.kind, name, errs)

    async def _taken(self, prefix: str) -> set[str]:
        page = await self.store.list(prefix, keys_only=True)
        return {kv.key for kv in page.items}

    async def _allocate(self, rd: ResourceDef, obj: JSONObject, old: JSONObject | None) -> Allocation:
        allocation = await rd.strategy.allocate(obj, old, self._taken)
        if allocation.errors:
            raise self._invalid(rd, obj, allocation.errors)
        return allocation

    def _claim_writes(
        self, rd: ResourceDef, obj: JSONObject | None, old: JSONObject | None
    ) -> tuple[list[Guard], list[Write], dict[str, Claim]]:
        new_claims = {c.key: c for c in rd.strategy.claims(obj)} if obj is not None else {}
        old_claims = {c.key: c for c in rd.strategy.claims(old)} if old is not None else {}
        meta = (obj or old or {}).get("metadata") or {}
        owner = json.dumps(
            {"resource": rd.plural, "namespace": meta.get("namespace", ""), "name": meta.get("name", "")}
        )
        guards: list[Guard] = []
        writes: list[Write] = []
        added = {k: c for k, c in new_claims.items() if k not in old_claims}
        for key in added:
            guards.append(Absent(key))
            writes.append(Put(key, owner.encode()))
        for key in old_claims:
            if key not in new_claims:
                writes.append(Delete(key))
        return guards, writes, added

    def _claim_conflict(
        self,
        rd: ResourceDef,
        obj: JSONObject,
        result: TxnResult,
        added: dict[str, Claim],
        automatic: set[str],
    ) -> None:
        """After a failed Txn: 422 for a user-chosen value someone holds; return to retry otherwise."""
        taken = [c for k, c in added.items() if result.current.get(k) is not None]
        user_taken = [c for c in taken if c.key not in automatic]
        if user_taken:
            raise self._invalid(rd, obj, [invalid(c.field, c.value, c.taken_detail) for c in user_taken])

    async def _namespace_guard(self, rd: ResourceDef, obj: JSONObject) -> Guard | None:
        if not rd.namespaced:
            return None
        namespace = obj["metadata"]["namespace"]
        kv, _ = await self.store.get(NAMESPACE_KEY + namespace)
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
            revision = _parse_rv(options.resource_version)
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
            raise self._invalid(rd, obj, errs)

    async def create(
        self, rd: ResourceDef, namespace: str | None, body: Any, dry_run: bool = False
    ) -> JSONObject:
        template = self._object_identity(rd, body, namespace)
        self._prepare_new(rd, template)
        try:
            return await self._create(rd, template, dry_run)
        except StoreError as err:
            raise store_errors(err) from err

    async def _create(self, rd: ResourceDef, template: JSONObject, dry_run: bool) -> JSONObject:
        for _attempt in range(MAX_RETRIES):
            obj = copy.deepcopy(template)
            meta = obj["metadata"]
            if not meta.get("name"):
                meta["name"] = generate_name(meta.get("generateName", ""))
            meta["uid"] = new_uid()
            meta["creationTimestamp"] = rfc3339(self.clock())
            if rd.strategy.tracks_generation:
                meta["generation"] = 1
            guards: list[Guard] = []
            ns_guard = await self._namespace_guard(rd, obj)
            if ns_guard is not None:
                guards.append(ns_guard)
            allocation = await self._allocate(rd, obj, None)
            key = rd.key(meta.get("namespace", ""), meta["name"])
            claim_guards, claim_writes, added = self._claim_writes(rd, obj, None)
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
            self._claim_conflict(rd, obj, result, added, allocation.automatic)
        raise errors.APIError(
            500,
            errors.Reason.INTERNAL_ERROR,
            f"Internal error occurred: create of {rd.plural} kept conflicting; try again",
        )

    # ------------------------------------------------------------------ update

    def _prepare_update(
        self, rd: ResourceDef, new: JSONObject, old: JSONObject, subresource: str
    ) -> JSONObject:
        """Apply the strategy to turn a client's new object into what is stored."""
        strategy = rd.strategy
        new_meta = new.setdefault("metadata", {})
        old_meta = old.get("metadata") or {}
        for key in (*SERVER_META, "name", "namespace"):
            if key in old_meta:
                new_meta[key] = old_meta[key]
            else:
                new_meta.pop(key, None)
        new_meta.pop("selfLink", None)
        new_meta.pop("managedFields", None)
        if subresource == Subresource.STATUS:
            strategy.prepare_for_status_update(new, old)
        elif subresource == Subresource.FINALIZE:
            finalize = getattr(strategy, "prepare_for_finalize", None)
            if finalize is None:
                raise errors.not_found_path()
            finalize(new, old)
        else:
            strategy.prepare_for_update(new, old)
        strategy.default(new)
        if strategy.tracks_generation and strategy.spec_of(new) != strategy.spec_of(old):
            new_meta["generation"] = int(old_meta.get("generation") or 1) + 1
        errs = strategy.validate_update(new, old)
        if errs:
            raise self._invalid(rd, new, errs)
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

    async def _write_update(
        self, rd: ResourceDef, kv: KeyValue, old: JSONObject, new: JSONObject, dry_run: bool
    ) -> tuple[JSONObject | None, TxnResult | None]:
        """Store `new` over `old` (read at kv.mod_revision). Returns (stored, None) or (None, failed txn)."""
        allocation = await self._allocate(rd, new, old)
        if self._should_delete(rd, new):
            if dry_run:
                return new, None
            _g, claim_writes, _a = self._claim_writes(rd, None, old)
            result = await self.store.txn(
                [Unchanged(kv.key, kv.mod_revision)], [Delete(kv.key), *claim_writes]
            )
            if not result.succeeded:
                return None, result
            return new, None
        if encode(new) == encode(old):
            return old, None  # nothing changed: no write, no new resourceVersion
        if dry_run:
            return new, None
        guards, writes, added = self._claim_writes(rd, new, old)
        result = await self.store.txn(
            [Unchanged(kv.key, kv.mod_revision), *guards], [Put(kv.key, encode(new)), *writes]
        )
        if result.succeeded:
            new["metadata"]["resourceVersion"] = str(result.revision)
            return new, None
        current = result.current.get(kv.key)
        if current is not None and current.mod_revision == kv.mod_revision:
            self._claim_conflict(rd, new, result, added, allocation.automatic)
        return None, result

    async def update(
        self,
        rd: ResourceDef,
        namespace: str,
        name: str,
        body: Any,
        subresource: str = Subresource.MAIN,
        dry_run: bool = False,
    ) -> tuple[JSONObject, bool]:
        """PUT. Returns (object, created)."""
        obj = self._object_identity(rd, body, namespace)
        body_name = obj["metadata"].get("name")
        if body_name and body_name != name:
            raise errors.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        obj["metadata"]["name"] = name
        wanted_rv = str(obj["metadata"].get("resourceVersion") or "")
        try:
            for _attempt in range(MAX_RETRIES):
                kv, _ = await self.store.get(rd.key(namespace, name))
                if kv is None:
                    if rd.strategy.allow_create_on_update and subresource == Subresource.MAIN:
                        if wanted_rv:
                            raise errors.not_found(rd.group_resource, name)
                        self._prepare_new(rd, obj)
                        created = await self._create(rd, obj, dry_run)
                        return created, True
                    raise errors.not_found(rd.group_resource, name)
                if wanted_rv and wanted_rv != str(kv.mod_revision):
                    raise errors.modified_conflict(rd.group_resource, name)
                old = decode(kv)
                new = self._prepare_update(rd, copy.deepcopy(obj), old, subresource)
                stored, _failed = await self._write_update(rd, kv, old, new, dry_run)
                if stored is not None:
                    return stored, False
                if wanted_rv:
                    raise errors.modified_conflict(rd.group_resource, name)
        except StoreError as err:
            raise store_errors(err) from err
        raise errors.modified_conflict(rd.group_resource, name)

    async def patch(
        self,
        rd: ResourceDef,
        namespace: str,
        name: str,
        apply: Callable[[JSONObject], JSONObject],
        subresource: str = Subresource.MAIN,
        dry_run: bool = False,
        create_from: Callable[[], JSONObject] | None = None,
    ) -> tuple[JSONObject, bool]:
        """PATCH: `apply` maps the current object to the patched one. Retries on races unless
        the patch itself pins a resourceVersion. `create_from` (server-side apply) creates a
        missing object."""
        try:
            for _attempt in range(MAX_RETRIES):
                kv, _ = await self.store.get(rd.key(namespace, name))
                if kv is None:
                    if create_from is not None and subresource == Subresource.MAIN:
                        body = create_from()
                        body.setdefault("metadata", {})
                        if isinstance(body["metadata"], dict):
                            body["metadata"].setdefault("name", name)
                        created = await self.create(rd, namespace, body, dry_run)
                        return created, True
                    raise errors.not_found(rd.group_resource, name)
                old = decode(kv)
                patched = apply(copy.deepcopy(old))
                patched = self._object_identity(rd, patched, namespace or None)
                # The patch pins a version only if it sets one other than the stored object's.
                pinned = str((patched.get("metadata") or {}).get("resourceVersion") or "")
                if pinned == str((old.get("metadata") or {}).get("resourceVersion") or ""):
                    pinned = ""
                if pinned and pinned != str(kv.mod_revision):
                    raise errors.modified_conflict(rd.group_resource, name)
                if patched["metadata"].get("name") != name:
                    raise errors.bad_request(
                        f"the name of the object ({patched['metadata'].get('name')}) does not match "
                        f"the name on the URL ({name})"
                    )
                new = self._prepare_update(rd, patched, old, subresource)
                stored, _failed = await self._write_update(rd, kv, old, new, dry_run)
                if stored is not None:
                    return stored, False
                if pinned:
                    raise errors.modified_conflict(rd.group_resource, name)
        except StoreError as err:
            raise store_errors(err) from err
        raise errors.modified_conflict(rd.group_resource, name)

    # ------------------------------------------------------------------ delete

    async def delete(
        self, rd: ResourceDef, namespace: str, name: str, options: DeleteOptions
    ) -> DeleteResult:
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
                if rd.kind == "Namespace" and name in PROTECTED_NAMESPACES:
                    raise errors.forbidden_error(rd.group_resource, name, "this namespace may not be deleted")
                grace = rd.strategy.grace_period(obj, options.grace_period_seconds)
                held = bool(meta.get("finalizers")) or rd.strategy.blocks_deletion(obj)
                if grace == 0 and not held:
                    if options.dry_run:
                        return DeleteResult(obj, True)
                    _g, claim_writes, _a = self._claim_writes(rd, None, obj)
                    result = await self.store.txn(
                        [Unchanged(kv.key, kv.mod_revision)], [Delete(kv.key), *claim_writes]
                    )
                    if result.succeeded:
                        return DeleteResult(obj, True)
                    continue
                pending = self._begin_deletion(rd, obj, grace)
                if pending is None or options.dry_run:
                    return DeleteResult(pending or obj, False)
                result = await self.store.txn(
                    [Unchanged(kv.key, kv.mod_revision)], [Put(kv.key, encode(pending))]
                )
                if result.succeeded:
                    pending["metadata"]["resourceVersion"] = str(result.revision)
                    return DeleteResult(pending, False)
        except StoreError as err:
            raise store_errors(err) from err
        raise errors.modified_conflict(rd.group_resource, name)

    def _begin_deletion(self, rd: ResourceDef, obj: JSONObject, grace: int) -> JSONObject | None:
        """Mark an object as being deleted (graceful or held by finalizers); None if nothing changes."""
        new = copy.deepcopy(obj)
        meta = new["metadata"]
        now = self.clock()
        if meta.get("deletionTimestamp"):
            current = meta.get("deletionGracePeriodSeconds")
            if current is not None and grace < int(current):
                meta["deletionTimestamp"] = rfc3339(now + dt.timedelta(seconds=grace))
                meta["deletionGracePeriodSeconds"] = grace
                return new
            return None
        meta["deletionTimestamp"] = rfc3339(now + dt.timedelta(seconds=grace))
        meta["deletionGracePeriodSeconds"] = grace
        if rd.strategy.tracks_generation:
            meta["generation"] = int(meta.get("generation") or 1) + 1
        rd.strategy.mark_deleting(new)
        return new

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

    # ------------------------------------------------------------------ pods/binding

    async def bind(
        self, rd: ResourceDef, namespace: str, name: str, binding: Any, dry_run: bool = False
    ) -> None:
        """Set spec.nodeName once, with a guarded Txn (pods/binding)."""
        if not isinstance(binding, dict):
            raise errors.bad_request("the body of the request must be a Binding")
        target = binding.get("target") or {}
        node = target.get("name") if isinstance(target, dict) else None
        binding_name = (binding.get("metadata") or {}).get("name") or name
        if not node:
            raise invalid_error("", "Binding", binding_name, [errors.required("target.name")])
        binding_gr = errors.GroupResource("", "pods/binding")
        try:
            for _attempt in range(MAX_RETRIES):
                kv, pod = await self._read(rd, namespace, name)
                meta = pod["metadata"]
                if meta.get("deletionTimestamp"):
                    raise errors.conflict(
                        binding_gr, name, f"pod {name} is being deleted, cannot be assigned to a host"
                    )
                spec = pod.setdefault("spec", {})
                if spec.get("nodeName"):
                    raise errors.conflict(
                        binding_gr, name, f'pod {name} is already assigned to node "{spec["nodeName"]}"'
                    )
                spec["nodeName"] = node
                annotations = (binding.get("metadata") or {}).get("annotations")
                if isinstance(annotations, dict) and annotations:
                    meta.setdefault("annotations", {}).update(annotations)
                status = pod.setdefault("status", {})
                conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
                conditions.append(
                    {
                        "type": "PodScheduled",
                        "status": "True",
                        "lastProbeTime": None,
                        "lastTransitionTime": rfc3339(self.clock()),
                    }
                )
                status["conditions"] = conditions
                if dry_run:
                    return
                result = await self.store.txn(
                    [Unchanged(kv.key, kv.mod_revision)], [Put(kv.key, encode(pod))]
                )
                if result.succeeded:
                    return
        except StoreError as err:
            raise store_errors(err) from err
        raise errors.modified_conflict(binding_gr, name)

    # ------------------------------------------------------------------ namespaces

    async def ensure_namespace(self, name: str) -> bool:
        """Create a namespace if missing (bootstrap); True if it exists afterwards."""
        rd = self.table.lookup("", "v1", "namespaces")
        assert rd is not None
        try:
            await self.create(rd, None, {"metadata": {"name": name}})
        except APIError as err:
            if err.code != 409:
                raise
        return True


def _parse_rv(value: str) -> int:
    try:
        revision = int(value)
    except ValueError:
        raise errors.bad_request(f'invalid resource version "{value}"') from None
    if revision < 0:
        raise errors.bad_request(f'invalid resource version "{value}"')
    return revision


parse_resource_version = _parse_rv
