"""The kubelet's HTTP server (port 10250): /healthz, /pods and /containerLogs for the apiserver.

Reads the pod cache and the runtime (logs); changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp import web

from kubelet.runtime import ContainerRuntimeError, Runtime, RuntimeContainer
from kubelite.objects import Object

log = logging.getLogger(__name__)

RUNTIME = web.AppKey("runtime", Runtime)  # type: ignore[type-abstract]
PODS = web.AppKey("pods", Callable[[], list[Object]])


async def healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def pods(request: web.Request) -> web.Response:
    items = request.app[PODS]()
    return web.json_response({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})


def _int_param(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer, got {value!r}\n") from None


def _truthy(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1", "yes")


def pick_instance(
    containers: list[RuntimeContainer], namespace: str, pod: str, container: str, previous: bool
) -> RuntimeContainer | None:
    """The container's current instance, or the one before it for `previous`."""
    instances = [
        c
        for c in containers
        if (ident := c.identity) is not None
        and (ident.namespace, ident.pod_name, ident.container_name) == (namespace, pod, container)
    ]
    instances.sort(key=lambda c: (c.identity.attempt if c.identity else -1, c.created_at), reverse=True)
    index = 1 if previous else 0
    return instances[index] if len(instances) > index else None


async def container_logs(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    ns, pod, name = (request.match_info[k] for k in ("namespace", "pod", "container"))
    tail = _int_param(request, "tailLines")
    since_seconds = _int_param(request, "sinceSeconds")
    limit = _int_param(request, "limitBytes")
    follow = _truthy(request, "follow")
    previous = _truthy(request, "previous")
    instance = pick_instance(await runtime.list_containers(), ns, pod, name, previous)
    if instance is None:
        which = "previous terminated container" if previous else "container"
        raise web.HTTPNotFound(text=f'{which} "{name}" in pod "{pod}" not found\n')
    since = None
    if since_seconds is not None:
        since = int(time.time()) - max(since_seconds, 0)
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    sent = 0
    try:
        async for chunk in runtime.logs(
            instance.id, tail=tail, timestamps=_truthy(request, "timestamps"), follow=follow, since=since
        ):
            if limit is not None:
                chunk = chunk[: max(limit - sent, 0)]
            if chunk:
                await response.write(chunk)
                sent += len(chunk)
            if limit is not None and sent >= limit:
                break
    except ContainerRuntimeError as e:
        log.warning("logs of %s/%s/%s: %s", ns, pod, name, e)
    except ConnectionResetError:
        return response
    await response.write_eof()
    return response


def make_app(runtime: Runtime, list_pods: Callable[[], list[Object]]) -> web.Application:
    app = web.Application()
    app[RUNTIME] = runtime
    app[PODS] = list_pods
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/pods", pods)
    app.router.add_get("/pods/", pods)
    app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", container_logs)
    return app


async def start_server(app: web.Application, address: str, port: int) -> web.AppRunner:
    """Serve the app; the caller cleans the runner up (open log streams end at once)."""
    runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, address, port, reuse_address=True)
    await site.start()
    log.info("serving on %s:%d", address, port)
    return runner
