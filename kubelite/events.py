"""Recording core/v1 Events about objects, as components do for `kubectl describe`.

Recording is best effort: a failure is logged and never stops the caller's work.
"""

from __future__ import annotations

import logging
import secrets

from kubelite.client import ApiClient
from kubelite.objects import Object, now_rfc3339
from kubelite.resources import EVENTS

log = logging.getLogger(__name__)


def make_event(
    involved: Object, event_type: str, reason: str, message: str, component: str, host: str = ""
) -> Object:
    m = involved.get("metadata", {})
    namespace = m.get("namespace") or "default"
    now = now_rfc3339()
    source = {"component": component}
    if host:
        source["host"] = host
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{m.get('name', 'unknown')}.{secrets.token_hex(8)}", "namespace": namespace},
        "involvedObject": {
            "kind": involved.get("kind", ""),
            "apiVersion": involved.get("apiVersion", ""),
            "namespace": m.get("namespace", ""),
            "name": m.get("name", ""),
            "uid": m.get("uid", ""),
            "resourceVersion": m.get("resourceVersion", ""),
        },
        "reason": reason,
        "message": message,
        "source": source,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": event_type,
        "reportingComponent": component,
        "reportingInstance": host,
    }


class EventRecorder:
    def __init__(self, client: ApiClient, component: str, host: str = ""):
        self.client = client
        self.component = component
        self.host = host

    async def record(self, involved: Object, event_type: str, reason: str, message: str) -> None:
        event = make_event(involved, event_type, reason, message, self.component, self.host)
        try:
            await self.client.create(EVENTS, event)
        except Exception as exc:
            log.debug(
                "could not record event %s for %s: %s", reason, involved.get("metadata", {}).get("name"), exc
            )
