"""An asyncio client of the Kubernetes REST API, used by every process but the apiserver.

It speaks plain JSON over aiohttp and turns error responses into `ApiError`s carrying the
Kubernetes `Status`. It touches the network only; caching lives in `informer`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from kubelite.objects import Object
from kubelite.resources import Resource

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class ApiError(Exception):
    """A non-2xx answer from the apiserver, with its Status body."""

    def __init__(self, code: int, status: dict[str, Any]):
        self.code = code
        self.status = status
        self.reason = status.get("reason", "")
        super().__init__(f"{code} {self.reason}: {status.get('message', '')}")

    @property
    def not_found(self) -> bool:
        return self.code == 404

    @property
    def conflict(self) -> bool:
        return self.code == 409 and self.reason == "Conflict"

    @property
    def already_exists(self) -> bool:
        return self.code == 409 and self.reason == "AlreadyExists"

    @property
    def gone(self) -> bool:
        return self.code == 410


@dataclass
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
    object: Object


class ApiClient:
    """One connection pool to one apiserver; create it inside a running event loop."""

    def __init__(self, server: str, token: str | None = None, user_agent: str = "kubelite"):
        self.server = server.rstrip("/")
        headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._session = aiohttp.ClientSession(
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float = 30,
    ) -> Object:
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else None
        async with self._session.request(
            method,
            self.server + path,
            params=params,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            text = await resp.text()
            payload = _parse_json(text)
            if resp.status >= 400:
                if not isinstance(payload, dict) or payload.get("kind") != "Status":
                    payload = {"kind": "Status", "status": "Failure", "message": text, "code": resp.status}
                raise ApiError(resp.status, payload)
            return payload if isinstance(payload, dict) else {}

    async def get_path(self, path: str) -> Object:
        """GET any path, e.g. a discovery document."""
        return await self._request("GET", path)

    async def put_path(self, path: str, body: Object) -> Object:
        return await self._request("PUT", path, body=body)

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> Object:
        return await self._request("GET", res.path(namespace, name))

    async def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        limit: int | None = None,
        continue_: str | None = None,
    ) -> Object:
        params = _selector_params(label_selector, field_selector)
        if resource_version is not None:
            params["resourceVersion"] = resource_version
        if limit:
            params["limit"] = str(limit)
        if continue_:
            params["continue"] = continue_
        return await self._request("GET", res.path(namespace), params=params)

    async def create(self, res: Resource, obj: Object, namespace: str | None = None) -> Object:
        ns = namespace or obj.get("metadata", {}).get("namespace")
        return await self._request("POST", res.path(ns), body=obj)

    async def update(self, res: Resource, obj: Object, subresource: str | None = None) -> Object:
        m = obj["metadata"]
        return await self._request("PUT", res.path(m.get("namespace"), m["name"], subresource), body=obj)

    async def patch(
        self,
        res: Resource,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        subresource: str | None = None,
        content_type: str = MERGE_PATCH,
    ) -> Object:
        path = res.path(namespace, name, subresource)
        return await self._request("PATCH", path, body=patch, content_type=content_type)

    async def delete(
        self,
        res: Resource,
        name: str,
        namespace: str | None = None,
        *,
        grace_period_seconds: int | None = None,
        propagation_policy: str | None = None,
        preconditions: dict[str, str] | None = None,
    ) -> Object:
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if preconditions:
            options["preconditions"] = preconditions
        return await self._request("DELETE", res.path(namespace, name), body=options)

    async def post_subresource(
        self, res: Resource, name: str, subresource: str, body: Object, namespace: str | None = None
    ) -> Object:
        return await self._request("POST", res.path(namespace, name, subresource), body=body)

    async def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
        allow_bookmarks: bool = True,
    ) -> AsyncIterator[WatchEvent]:
        """Yield events until the server ends the stream; raise ApiError on an ERROR event."""
        params = _selector_params(label_selector, field_selector)
        params["watch"] = "true"
        params["timeoutSeconds"] = str(timeout_seconds)
        if allow_bookmarks:
            params["allowWatchBookmarks"] = "true"
        if resource_version is not None:
            params["resourceVersion"] = resource_version
        timeout = aiohttp.ClientTimeout(total=timeout_seconds + 30, sock_connect=10)
        url = self.server + res.path(namespace)
        async with self._session.get(url, params=params, timeout=timeout) as resp:
            if resp.status >= 400:
                payload = _parse_json(await resp.text())
                raise ApiError(resp.status, payload if isinstance(payload, dict) else {})
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        raise ApiError(int(status.get("code", 500)), status)
                    yield WatchEvent(event["type"], event["object"])


def _selector_params(label_selector: str | None, field_selector: str | None) -> dict[str, str]:
    params: dict[str, str] = {}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    return params


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text) if text else {}
    except json.JSONDecodeError:
        return text
