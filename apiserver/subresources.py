"""Subresources as objects: each one knows the verbs it answers and how (Kubernetes' per-subresource
REST storage). `status` writes status only, `scale` reads and writes replicas through an
autoscaling/v1 Scale, `binding` assigns a pod to a node once, `eviction` deletes a pod within its
disruption budget (`apiserver.eviction`), `log` proxies to the pod's kubelet, `finalize` writes a
namespace's finalizers.

The HTTP plumbing they share (bodies, patches, rendering) is `APIHandlers`'; the writes go through
the registry's one guaranteed-update loop. Touches: HTTP and the store, through those two.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from apiserver import errors, podlogs
from apiserver.errors import invalid, invalid_error, required
from apiserver.eviction import EvictionHandler
from apiserver.meta import JSONObject, rfc3339
from kubelite import resources

if TYPE_CHECKING:
    from apiserver.handlers import APIHandlers
    from apiserver.request_info import RequestInfo
    from apiserver.resources import ResourceDef

SCALE_API_VERSION = "autoscaling/v1"
SUCCESS_CREATED = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


class SubresourceHandler(Protocol):
    async def handle(
        self, api: APIHandlers, request: web.Request, rd: ResourceDef, info: RequestInfo
    ) -> web.StreamResponse: ...


class StatusHandler:
    """`<kind>/status`: GET the object; PUT and PATCH change its status and nothing else."""

    async def handle(
        self, api: APIHandlers, request: web.Request, rd: ResourceDef, info: RequestInfo
    ) -> web.StreamResponse:
        prepare = rd.strategy.prepare_for_status_update
        if request.method == "GET":
            return await api.get(request, rd, info)
        if request.method == "PUT":
            return await api.update(request, rd, info, prepare=prepare)
        if request.method == "PATCH":
            return await api.patch(request, rd, info, prepare=prepare)
        raise errors.method_not_supported()


class FinalizeHandler:
    """`namespaces/<name>/finalize`: PUT writes spec.finalizers only."""

    async def handle(
        self, api: APIHandlers, request: web.Request, rd: ResourceDef, info: RequestInfo
    ) -> web.StreamResponse:
        finalize = getattr(rd.strategy, "prepare_for_finalize", None)
        if request.method != "PUT" or finalize is None:
            raise errors.method_not_supported()
        return await api.update(request, rd, info, prepare=finalize)


def scale_of(rd: ResourceDef, obj: JSONObject) -> JSONObject:
    """The autoscaling/v1 Scale view of a Deployment, ReplicaSet or ReplicationController."""
    meta = obj.get("metadata") or {}
    return {
        "kind": "Scale",
        "apiVersion": SCALE_API_VERSION,
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": int((obj.get("spec") or {}).get("replicas") or 0)},
        "status": {
            "replicas": int((obj.get("status") or {}).get("replicas") or 0),
            "selector": rd.strategy.scale_selector(obj),
        },
    }


def scaled_replicas(scale: Any, name: str) -> int:
    """spec.replicas of a Scale a client sent, or the 422 the real server gives."""
    if not isinstance(scale, dict):
        raise errors.bad_request("the body of the request must be a Scale object")
    replicas = (scale.get("spec") or {}).get("replicas")
    if replicas is None:
        replicas = 0
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        raise invalid_error(
            "autoscaling", "Scale", name, [invalid("spec.replicas", replicas, "must be an integer")]
        )
    if replicas < 0:
        raise invalid_error(
            "autoscaling", "Scale", name,
            [invalid("spec.replicas", replicas, "must be greater than or equal to 0")],
        )  # fmt: skip
    return replicas


class ScaleHandler:
    """`<kind>/scale`: the replica count as an autoscaling/v1 Scale (kubectl scale, HPA)."""

    async def handle(
        self, api: APIHandlers, request: web.Request, rd: ResourceDef, info: RequestInfo
    ) -> web.StreamResponse:
        registry = api.ctx.registry
        if request.method == "GET":
            obj = await registry.get(rd, info.namespace, info.name)
            return api.respond(scale_of(rd, obj))
        if request.method == "PUT":
            body = await api.read_body(request)
            replicas = scaled_replicas(body, info.name)
            pinned = str(((body or {}).get("metadata") or {}).get("resourceVersion") or "")

            def set_replicas(current: JSONObject) -> JSONObject:
                current.setdefault("spec", {})["replicas"] = replicas
                current["metadata"]["resourceVersion"] = pinned or current["metadata"]["resourceVersion"]
                return current

        elif request.method == "PATCH":
            apply = (await api.patch_function(request, "Scale")).apply

            def set_replicas(current: JSONObject) -> JSONObject:
                stored_rv = current["metadata"]["resourceVersion"]
                patched = apply(scale_of(rd, current))
                current.setdefault("spec", {})["replicas"] = scaled_replicas(patched, info.name)
                current["metadata"]["resourceVersion"] = (
                    str((patched.get("metadata") or {}).get("resourceVersion") or "") or stored_rv
                )
                return current

        else:
            raise errors.method_not_supported()
        obj, _created = await registry.guaranteed_update(
            rd, info.namespace, info.name, set_replicas, prepare=rd.strategy.prepare_for_update,
            dry_run=api.dry_run(request),
        )  # fmt: skip
        return api.respond(scale_of(rd, obj))


BINDING_RESOURCE = errors.GroupResource("", "pods/binding")


def keep_nothing(new: JSONObject, old: JSONObject) -> None:
    """The prepare step of writes the server computes itself in full (a binding)."""


def assign(pod: JSONObject, node: str, annotations: dict[str, str], now: str) -> JSONObject:
    """The pod bound to node, once: its PodScheduled condition set, the binding's annotations kept."""
    name = pod["metadata"].get("name", "")
    if pod["metadata"].get("deletionTimestamp"):
        raise errors.conflict(
            BINDING_RESOURCE, name, f"pod {name} is being deleted, cannot be assigned to a host"
        )
    spec = pod.setdefault("spec", {})
    if spec.get("nodeName"):
        assigned = spec["nodeName"]
        raise errors.conflict(BINDING_RESOURCE, name, f'pod {name} is already assigned to node "{assigned}"')
    spec["nodeName"] = node
    if annotations:
        pod["metadata"].setdefault("annotations", {}).update(annotations)
    status = pod.setdefault("status", {})
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
    conditions.append(
        {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
    )
    status["conditions"] = conditions
    return pod


async def posted_object(api: APIHandlers, request: web.Request, what: str) -> JSONObject:
    """The object a POST-only subresource was sent, or the error for another verb or body."""
    if request.method != "POST":
        raise errors.method_not_supported()
    body = await api.read_body(request)
    if not isinstance(body, dict):
        raise errors.bad_request(f"the body of the request must be {what}")
    return body


class BindingHandler:
    """`pods/<name>/binding` (and the old `bindings` collection): set spec.nodeName once."""

    async def handle(
        self, api: APIHandlers, request: web.Request, rd: ResourceDef, info: RequestInfo
    ) -> web.StreamResponse:
        binding = await posted_object(api, request, "a Binding")
        meta = binding.get("metadata") or {}
        name = info.name if info.subresource else meta.get("name") or ""
        if not name:
            raise errors.bad_request("a Binding needs metadata.name: the name of the pod to bind")
        target = binding.get("target") or {}
        node = target.get("name") if isinstance(target, dict) else None
        if not node:
            raise invalid_error("", "Binding", name, [required("target.name")])
        registry = api.ctx.registry
        annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}

        def bind(pod: JSONObject) -> JSONObject:
            return assign(pod, node, annotations, rfc3339(registry.clock()))

        pods = api.ctx.table.of(resources.PODS)
        await registry.guaranteed_update(
            pods, info.namespace, name, bind, prepare=keep_nothing, validate=False,
            dry_run=api.dry_run(request), resource=BINDING_RESOURCE,
        )  # fmt: skip
        return api.respond(SUCCESS_CREATED, 201)


class LogHandler:
    """`pods/<name>/log`: the container's log, proxied from the kubelet of the pod's node."""

    async def handle(
        self, api: APIHandlers, request: web.Request, rd: ResourceDef, info: RequestInfo
    ) -> web.StreamResponse:
        if request.method != "GET":
            raise errors.method_not_supported()
        registry = api.ctx.registry
        pod = await registry.get(rd, info.namespace, info.name)
        node = None
        node_name = pod.get("spec", {}).get("nodeName")
        if node_name:
            with contextlib.suppress(errors.APIError):
                node = await registry.get(api.ctx.table.of(resources.NODES), "", node_name)
        return await podlogs.proxy_log(request, podlogs.log_location(pod, node, dict(request.query)))


HANDLERS: dict[str, SubresourceHandler] = {
    "status": StatusHandler(),
    "scale": ScaleHandler(),
    "binding": BindingHandler(),
    "eviction": EvictionHandler(),
    "log": LogHandler(),
    "finalize": FinalizeHandler(),
}


def handler_for(name: str) -> SubresourceHandler:
    return HANDLERS[name]
