"""Recording core/v1 Events about objects, as components do for `kubectl describe`.

Recording is best effort: a failure is logged and never stops the caller's work. As client-go's
recorder does (EventSourceObjectSpamFilter), each component may record a burst of 25 events about
one object, then one every 5 minutes: a ReplicaSet that creates 1,000 pods records 25
`SuccessfulCreate` events, not 1,000, and the apiserver is not flooded.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

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


SPAM_BURST = 25
SPAM_REFILL_SECONDS = 300.0  # one more event per object every 5 minutes after the burst


@dataclass
class _Bucket:
    tokens: float
    at: float


class SpamFilter:
    """A token bucket per involved object: True while the object may get another event. Pure; the
    clock is injected."""

    def __init__(
        self,
        burst: int = SPAM_BURST,
        refill: float = SPAM_REFILL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.refill = refill
        self.clock = clock
        self._buckets: dict[tuple[str, ...], _Bucket] = {}

    def allow(self, involved: Object) -> bool:
        m = involved.get("metadata", {})
        key = (involved.get("kind", ""), m.get("namespace", ""), m.get("name", ""), m.get("uid", ""))
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) / self.refill)
        bucket.at = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        if len(self._buckets) > 4096:  # forget full buckets of objects long quiet
            self._buckets = {k: b for k, b in self._buckets.items() if b.tokens < self.burst}
        return True


class EventRecorder:
    def __init__(self, client: ApiClient, component: str, host: str = "", spam: SpamFilter | None = None):
        self.client = client
        self.component = component
        self.host = host
        self.spam = spam or SpamFilter()

    async def record(self, involved: Object, event_type: str, reason: str, message: str) -> None:
        if not self.spam.allow(involved):
            log.debug(
                "event %s for %s dropped: too many events", reason, involved.get("metadata", {}).get("name")
            )
            return
        event = make_event(involved, event_type, reason, message, self.component, self.host)
        try:
            await self.client.create(EVENTS, event)
        except Exception as exc:
            log.debug(
                "could not record event %s for %s: %s", reason, involved.get("metadata", {}).get("name"), exc
            )
