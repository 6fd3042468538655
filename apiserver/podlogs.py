"""`pods/<name>/log`: a container's log, fetched from the kubelet of the pod's node.

`log_location` is the pure part: which container, which kubelet URL, or the error a user
of Kubernetes would see (a pod not started yet, a container name missing or wrong).
`proxy_log` streams the kubelet's answer back, chunk by chunk, so `kubectl logs -f` follows.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web

from apiserver import errors
from apiserver.meta import JSONObject

# kubectl's flags arrive as these query parameters; the kubelet takes the same names.
PASSED_PARAMS = ("follow", "tailLines", "timestamps", "previous", "sinceSeconds", "limitBytes")


def choose_container(pod: JSONObject, requested: str | None) -> str:
    name = pod.get("metadata", {}).get("name", "")
    containers = [c.get("name", "") for c in pod.get("spec", {}).get("containers") or []]
    init = [c.get("name", "") for c in pod.get("spec", {}).get("initContainers") or []]
    if requested:
        if requested not in containers and requested not in init:
            raise errors.bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    if len(containers) == 1:
        return containers[0]
    choices = " ".join(containers)
    raise errors.bad_request(f"a container name must be specified for pod {name}, choose one of: [{choices}]")


def waiting_reason(pod: JSONObject, container: str) -> str | None:
    """Why the container has no log yet, or None when it has started at some point."""
    statuses = pod.get("status", {}).get("containerStatuses") or []
    statuses += pod.get("status", {}).get("initContainerStatuses") or []
    status = next((s for s in statuses if s.get("name") == container), None)
    if status is None:
        return "ContainerCreating"
    state = status.get("state") or {}
    if "waiting" in state and not status.get("lastState", {}).get("terminated"):
        return (state.get("waiting") or {}).get("reason") or "ContainerCreating"
    return None


def kubelet_base(node: JSONObject) -> str:
    addresses = node.get("status", {}).get("addresses") or []
    ip = next((a["address"] for a in addresses if a.get("type") == "InternalIP"), None)
    port = node.get("status", {}).get("daemonEndpoints", {}).get("kubeletEndpoint", {}).get("Port") or 10250
    if not ip:
        raise errors.APIError(
            500, errors.Reason.INTERNAL_ERROR, f"node {node['metadata']['name']} has no InternalIP"
        )
    return f"http://{ip}:{port}"


def log_location(pod: JSONObject, node: JSONObject | None, query: dict[str, str]) -> str:
    """The kubelet URL of the requested container log."""
    meta = pod.get("metadata", {})
    container = choose_container(pod, query.get("container"))
    reason = waiting_reason(pod, container)
    if node is None or reason is not None:
        raise errors.bad_request(
            f'container "{container}" in pod "{meta.get("name")}" is waiting to start: '
            f"{reason or 'ContainerCreating'}"
        )
    path = "/containerLogs/" + "/".join(
        quote(p, safe="") for p in (meta["namespace"], meta["name"], container)
    )
    params = {k: query[k] for k in PASSED_PARAMS if k in query}
    return kubelet_base(node) + path + (f"?{urlencode(params)}" if params else "")


async def proxy_log(request: web.Request, url: str) -> web.StreamResponse:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as upstream:
            if upstream.status != 200:
                text = (await upstream.text()).strip()
                raise errors.APIError(
                    upstream.status, errors.Reason.BAD_REQUEST, text or upstream.reason or ""
                )
            response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            except ConnectionResetError:
                pass  # the client stopped following
            return response
    except aiohttp.ClientError as err:
        raise errors.APIError(
            500,
            errors.Reason.INTERNAL_ERROR,
            f"cannot reach the kubelet at {url.split('/containerLogs')[0]}: {err}",
        ) from None
