"""HTTP handlers: the Kubernetes REST verbs on aiohttp, over the generic registry.

One catch-all route parses the path (request_info), picks the resource from the table and
the verb from the method and query, decodes the body, and renders objects, Lists, Tables or
a watch stream. Errors are raised as APIError and rendered as Status by the middleware in
app.py. Touches: HTTP requests and responses; the store only through the registry.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from apiserver import discovery, errors, tables, watchstream
from apiserver.errors import APIError, PatchError
from apiserver.jsonpatch import json_patch, merge_patch
from apiserver.meta import JSONObject, utcnow
from apiserver.negotiation import (
    JSON_CONTENT_TYPE,
    TABLE_CONTENT_TYPE,
    Output,
    PatchType,
    choose_output,
    decode_body,
    patch_type,
)
from apiserver.registry import DeleteOptions, ListOptions, ListResult, Prepare, Registry
from apiserver.request_info import RequestInfo, normalize_path, parse_resource_path
from apiserver.resources import ResourceDef, ResourceTable
from apiserver.strategicpatch import strategic_merge
from apiserver.watchcache import WatchCache
from kubelite import knownfields
from kubelite.selectors import SelectorError, parse_field_selector, parse_label_selector

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Patch:
    """A request's patch document, and how to apply it to an object."""

    kind: PatchType
    document: Any
    schema: str  # the type whose strategic-merge rules apply
    headers: dict[str, str]  # field validation warnings

    def apply(self, current: JSONObject) -> JSONObject:
        try:
            if self.kind is PatchType.JSON:
                result = json_patch(current, self.document)
            elif self.kind is PatchType.MERGE:
                result = merge_patch(current, self.document)
            else:
                result = strategic_merge(current, self.document, self.schema)
        except PatchError as err:
            if err.malformed:
                raise errors.bad_request(str(err)) from None
            raise errors.unprocessable(str(err)) from None
        if not isinstance(result, dict):
            raise errors.unprocessable("the patched object is not a JSON object")
        return result


@dataclass
class ServerContext:
    """What the handlers share: the registry, the resource table and the server's state."""

    registry: Registry
    table: ResourceTable
    server_address: str
    watch_cache: WatchCache | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


def json_response(
    data: Any, status: int = 200, content_type: str = JSON_CONTENT_TYPE, headers: dict[str, str] | None = None
) -> web.Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    response = web.Response(body=body, status=status, headers=headers)
    response.headers["Content-Type"] = content_type
    return response


def _query_int(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f"invalid value for {name}: {value!r}: must be an integer") from None


def _query_bool(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


def _dry_run(request: web.Request, body_values: Any = None) -> bool:
    values = request.query.getall("dryRun", [])
    if isinstance(body_values, list):
        values = [*values, *body_values]
    for value in values:
        if value != "All":
            raise errors.bad_request(f'Invalid dry run value: "{value}": supported values: "All"')
    return bool(values)


class APIHandlers:
    """Routes every request; one instance per application."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    # ------------------------------------------------------------------ entry

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = normalize_path(request.path)
        simple = await self._non_resource(request, path)
        if simple is not None:
            return simple
        info = parse_resource_path(path)
        if info is None:
            raise errors.not_found_path()
        rd = self.ctx.table.lookup(info.group, info.version, info.resource)
        if rd is None:
            raise errors.not_found_path()
        return await self._resource(request, rd, info)

    async def _non_resource(self, request: web.Request, path: str) -> web.StreamResponse | None:
        if path in ("/healthz", "/livez"):
            return web.Response(text="ok", content_type="text/plain")
        if path == "/readyz":
            return await self._readyz()
        if request.method != "GET":
            if path in ("/version", "/api", "/apis", "/openapi/v3") or path.startswith("/openapi"):
                raise errors.method_not_supported(path)
            return None
        document = discovery.document(self.ctx.table, self.ctx.server_address, path)
        return None if document is None else json_response(document)

    async def _readyz(self) -> web.Response:
        if not self.ctx.ready.is_set():
            return web.Response(
                status=500, text="[-]bootstrap: default namespaces not created yet\nreadyz check failed\n"
            )
        try:
            async with asyncio.timeout(2.0):
                await self.ctx.registry.store.revision()
        except Exception as err:  # any store failure means not ready
            return web.Response(status=500, text=f"[-]etcd failed: {err}\nreadyz check failed\n")
        return web.Response(text="ok", content_type="text/plain")

    async def _resource(self, request: web.Request, rd: ResourceDef, info: RequestInfo) -> web.StreamResponse:
        method = request.method
        if info.subresource:
            handler = rd.handlers.get(info.subresource)
            if handler is None or not info.name:
                raise errors.not_found_path()
            return await handler.handle(self, request, rd, info)
        if info.watch_prefix:
            if method != "GET":
                raise errors.method_not_allowed(method, rd.kind)
            return await self._watch(request, rd, info)
        if method == "GET":
            if info.name:
                return await self.get(request, rd, info)
            if _query_bool(request, "watch"):
                return await self._watch(request, rd, info)
            return await self._list(request, rd, info)
        if method == "POST" and not info.name:
            self._check_verb(rd, "create")
            if rd.create_handler is not None:
                return await rd.create_handler.handle(self, request, rd, info)
            return await self._create(request, rd, info)
        if method == "PUT" and info.name:
            self._check_verb(rd, "update")
            return await self.update(request, rd, info)
        if method == "PATCH" and info.name:
            self._check_verb(rd, "patch")
            return await self.patch(request, rd, info)
        if method == "DELETE" and info.name:
            self._check_verb(rd, "delete")
            return await self._delete(request, rd, info)
        if method == "DELETE":
            self._check_verb(rd, "deletecollection")
            return await self._delete_collection(request, rd, info)
        raise errors.method_not_allowed(method, rd.kind)

    def _check_verb(self, rd: ResourceDef, verb: str) -> None:
        if verb not in rd.verbs:
            raise errors.method_not_supported()

    def respond(self, data: Any, status: int = 200) -> web.Response:
        """JSON that is not an object of the resource (a Scale, a Status)."""
        return json_response(data, status)

    def dry_run(self, request: web.Request, body_values: Any = None) -> bool:
        return _dry_run(request, body_values)

    # ------------------------------------------------------------------ reads

    def _namespace(self, rd: ResourceDef, info: RequestInfo) -> str:
        if rd.namespaced and not info.namespace and info.name:
            raise errors.not_found_path()
        return info.namespace if rd.namespaced else ""

    async def get(self, request: web.Request, rd: ResourceDef, info: RequestInfo) -> web.Response:
        obj = await self.ctx.registry.get(rd, self._namespace(rd, info), info.name)
        return self._render_one(request, rd, obj)

    def _render_one(
        self, request: web.Request, rd: ResourceDef, obj: JSONObject, status: int = 200
    ) -> web.Response:
        output = choose_output(request.headers.get("Accept"))
        if output is Output.TABLE:
            include = request.query.get("includeObject", "Metadata")
            now = utcnow()
            data = tables.table(
                rd.strategy.columns,
                [(rd.strategy.cells(obj, now), obj)],
                include_object=include,
                resource_version=str((obj.get("metadata") or {}).get("resourceVersion", "")),
            )
            return json_response(data, status, TABLE_CONTENT_TYPE)
        if output is Output.PARTIAL:
            return json_response(tables.partial_metadata(obj), status)
        return json_response(obj, status)

    def _list_options(self, request: web.Request, rd: ResourceDef, info: RequestInfo) -> ListOptions:
        query = request.query
        try:
            labels = parse_label_selector(query.get("labelSelector"))
            fields = parse_field_selector(query.get("fieldSelector"))
        except SelectorError as err:
            raise errors.bad_request(str(err)) from None
        known = rd.strategy.field_names()
        for name in sorted(fields.fields()):
            if name not in known:
                raise errors.bad_request(f"field label not supported: {name}")
        if info.watch_prefix and info.name:
            fields = parse_field_selector(",".join(filter(None, [str(fields), f"metadata.name={info.name}"])))
        limit = _query_int(request, "limit") or 0
        return ListOptions(
            label_selector=labels,
            field_selector=fields,
            limit=limit,
            continue_token=query.get("continue", ""),
            resource_version=query.get("resourceVersion", ""),
            resource_version_match=query.get("resourceVersionMatch", ""),
        )

    async def _list(self, request: web.Request, rd: ResourceDef, info: RequestInfo) -> web.Response:
        self._check_verb(rd, "list")
        options = self._list_options(request, rd, info)
        result = await self.ctx.registry.list(rd, info.namespace or None, options)
        return self._render_list(request, rd, result)

    def _render_list(self, request: web.Request, rd: ResourceDef, result: ListResult) -> web.Response:
        output = choose_output(request.headers.get("Accept"))
        if output is Output.TABLE:
            include = request.query.get("includeObject", "Metadata")
            now = utcnow()
            rows = [(rd.strategy.cells(obj, now), obj) for obj in result.items]
            data = tables.table(
                rd.strategy.columns,
                rows,
                include_object=include,
                resource_version=result.resource_version,
                continue_token=result.continue_token,
                remaining=result.remaining,
            )
            return json_response(data, content_type=TABLE_CONTENT_TYPE)
        meta: JSONObject = {"resourceVersion": result.resource_version}
        if result.continue_token:
            meta["continue"] = result.continue_token
        if result.remaining is not None:
            meta["remainingItemCount"] = result.remaining
        if output is Output.PARTIAL:
            items = [tables.partial_metadata(obj) for obj in result.items]
            return json_response(
                {
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": tables.TABLE_API_VERSION,
                    "metadata": meta,
                    "items": items,
                }
            )
        return json_response(
            {
                "kind": f"{rd.kind}List",
                "apiVersion": rd.group_version,
                "metadata": meta,
                "items": result.items,
            }
        )

    # ------------------------------------------------------------------ watch

    async def _watch(self, request: web.Request, rd: ResourceDef, info: RequestInfo) -> web.StreamResponse:
        self._check_verb(rd, "watch")
        return await watchstream.stream(
            request, self.ctx.registry, self.ctx.watch_cache, self.ctx.stopping, rd, info.namespace or None,
            self._list_options(request, rd, info), _query_int(request, "timeoutSeconds"),
        )  # fmt: skip

    # ------------------------------------------------------------------ writes

    async def read_body(self, request: web.Request) -> Any:
        raw = await request.read()
        return decode_body(raw, request.headers.get("Content-Type"))

    def _field_validation(self, request: web.Request, rd: ResourceDef, body: Any) -> dict[str, str]:
        """Fields the kind does not declare, anywhere in the body (patch directives aside): dropped,
        as Kubernetes' decoder drops them; Strict -> 400 naming them, Warn (the default) ->
        a Warning header kubectl prints, Ignore -> nothing."""
        mode = request.query.get("fieldValidation", "Warn")
        if mode not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(
                f'fieldValidation parameter unsupported: "{mode}"; '
                'supported values: "Ignore", "Warn", "Strict"'
            )
        unknown = [p for p in knownfields.unknown_fields(rd.kind, body) if "$" not in p]
        for path in unknown:
            knownfields.drop(body, path)
        if not unknown:
            return {}
        if mode == "Strict":
            detail = ", ".join(f'unknown field "{p}"' for p in unknown)
            prefix = f'{rd.kind} in version "{rd.version}" cannot be handled as a {rd.kind}'
            raise errors.bad_request(f"{prefix}: strict decoding error: {detail}")
        if mode == "Warn":
            return {"Warning": ", ".join(f'299 - "unknown field \\"{p}\\""' for p in unknown)}
        return {}

    async def _create(self, request: web.Request, rd: ResourceDef, info: RequestInfo) -> web.Response:
        if rd.namespaced and not info.namespace:
            raise errors.method_not_allowed("POST", rd.kind)
        body = await self.read_body(request)
        headers = self._field_validation(request, rd, body)
        obj = await self.ctx.registry.create(rd, info.namespace or None, body, _dry_run(request))
        response = self._render_one(request, rd, obj, 201)
        response.headers.update(headers)
        return response

    async def update(
        self, request: web.Request, rd: ResourceDef, info: RequestInfo, *, prepare: Prepare | None = None
    ) -> web.Response:
        """PUT of the object, or with `prepare` of a subresource that writes part of it."""
        body = await self.read_body(request)
        headers = self._field_validation(request, rd, body)
        obj, created = await self.ctx.registry.update(
            rd, self._namespace(rd, info), info.name, body, _dry_run(request), prepare=prepare
        )
        response = self._render_one(request, rd, obj, 201 if created else 200)
        response.headers.update(headers)
        return response

    async def patch_function(self, request: web.Request, schema: str, rd: ResourceDef | None = None) -> Patch:
        """The request's patch document as a function current -> patched. `schema` names the type
        whose strategic-merge rules apply; with `rd`, unknown fields are checked as
        fieldValidation asks."""
        kind = patch_type(request.headers.get("Content-Type"))
        raw = await request.read()
        document = decode_body(raw, request.headers.get("Content-Type"))
        if document is None:
            raise errors.bad_request("the body of the request was empty: a patch document is required")
        if kind is PatchType.JSON and not isinstance(document, list):
            raise errors.bad_request(
                "json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp"
            )
        if kind is not PatchType.JSON and not isinstance(document, dict):
            raise errors.bad_request("the patch document must be a JSON object")
        headers = {}
        if rd is not None and kind is not PatchType.JSON:
            headers = self._field_validation(request, rd, document)
        return Patch(kind, document, schema, headers)

    async def patch(
        self, request: web.Request, rd: ResourceDef, info: RequestInfo, *, prepare: Prepare | None = None
    ) -> web.Response:
        """PATCH of the object (server-side apply may create it), or with `prepare` of a subresource."""
        patch = await self.patch_function(request, rd.strategy.patch_schema, rd)
        create_from = None
        if patch.kind is PatchType.APPLY and prepare is None:
            applied = copy.deepcopy(patch.document)

            def create_from() -> JSONObject:
                return copy.deepcopy(applied)

        obj, created = await self.ctx.registry.patch(
            rd, self._namespace(rd, info), info.name, patch.apply, prepare=prepare, dry_run=_dry_run(request),
            create_from=create_from,
        )  # fmt: skip
        response = self._render_one(request, rd, obj, 201 if created else 200)
        response.headers.update(patch.headers)
        return response

    def delete_options(self, request: web.Request, body: Any) -> DeleteOptions:
        """DeleteOptions from the body (or an Eviction's deleteOptions) and the query."""
        options = body if isinstance(body, dict) else {}
        if body is not None and not isinstance(body, dict):
            raise errors.bad_request("the body of a delete must be DeleteOptions")
        grace = _query_int(request, "gracePeriodSeconds")
        if grace is None and options.get("gracePeriodSeconds") is not None:
            try:
                grace = int(options["gracePeriodSeconds"])
            except (TypeError, ValueError):
                raise errors.bad_request("gracePeriodSeconds must be an integer") from None
        preconditions = options.get("preconditions") or {}
        orphan_dependents = options.get("orphanDependents")
        if request.query.get("orphanDependents") is not None:
            orphan_dependents = request.query["orphanDependents"].lower() == "true"
        return DeleteOptions(
            grace_period_seconds=grace,
            uid=preconditions.get("uid"),
            resource_version=preconditions.get("resourceVersion"),
            propagation_policy=request.query.get("propagationPolicy") or options.get("propagationPolicy"),
            orphan_dependents=orphan_dependents if isinstance(orphan_dependents, bool) else None,
            dry_run=_dry_run(request, options.get("dryRun")),
        )

    async def _delete(self, request: web.Request, rd: ResourceDef, info: RequestInfo) -> web.Response:
        options = self.delete_options(request, await self.read_body(request))
        result = await self.ctx.registry.delete(rd, self._namespace(rd, info), info.name, options)
        if not result.deleted or rd.strategy.return_deleted_object:
            return self._render_one(request, rd, result.obj)
        meta = result.obj.get("metadata") or {}
        return json_response(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": info.name,
                    "group": rd.group,
                    "kind": rd.plural,
                    "uid": meta.get("uid", ""),
                },
            }
        )

    async def _delete_collection(
        self, request: web.Request, rd: ResourceDef, info: RequestInfo
    ) -> web.Response:
        list_options = self._list_options(request, rd, info)
        options = self.delete_options(request, await self.read_body(request))
        result = await self.ctx.registry.delete_collection(rd, info.namespace or None, list_options, options)
        return json_response(
            {
                "kind": f"{rd.kind}List",
                "apiVersion": rd.group_version,
                "metadata": {"resourceVersion": result.resource_version},
                "items": result.items,
            }
        )


def render_error(err: APIError) -> web.Response:
    return json_response(err.to_status(), err.code, headers=err.headers or None)
