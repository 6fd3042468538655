"""The fake API every controller unit test shares: the real apiserver registry (defaults,
validation, generateName, finalizers, cascades, scale) on an in-memory store, behind a client with
`kubelite.client.ApiClient`'s methods, and informers that see each write as soon as it is made.

    api = FakeApi()
    ctx = api.context(options)            # a ControllerContext on the fake client and clock
    controller = ReplicaSetController(ctx)
    api.run(api.client.create(REPLICASETS, rs))
    api.run(controller.sync("default/web"))
    api.clock.advance(30)                 # time moves only when the test says so
    controller.queue = api.work_queue()   # its add_after timers fire as the fake clock passes them

Deterministic: no sockets, no threads, no sleeps. Writes made by the controller reach its own
informers before the write call returns, as if the watch were instant; `hold_events()` delays them
to model an informer that is behind. The fake's informers can be run like real ones (their `run`
only waits to be cancelled), `get_path` answers the discovery documents of the registry's resource
table, and `api.failures` makes chosen calls fail as the apiserver would.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from apiserver import deletion, errors
from apiserver import discovery as served
from apiserver.allocation import NodePortRange, ServiceIPRange
from apiserver.codec import decode
from apiserver.errors import APIError
from apiserver.jsonpatch import json_patch, merge_patch
from apiserver.registry import ListOptions, Registry
from apiserver.resources import build_resource_table
from apiserver.storage import EventType
from apiserver.strategicpatch import strategic_merge
from controller.framework.context import ControllerContext, QueueController
from kubelite import resources
from kubelite.client import JSON_PATCH, MERGE_PATCH, ApiError
from kubelite.informer import Informer
from kubelite.objects import Object
from kubelite.resources import Resource
from kubelite.selectors import parse_field_selector, parse_label_selector
from kubelite.workqueue import WorkQueue
from tests.fakestore import FakeStore

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

C = TypeVar("C", bound=QueueController)


class FakeTimer:
    """What FakeClock.call_later returns: a callback due at a monotonic time, until cancelled."""

    def __init__(self, due: float, callback: Callable[[], None]):
        self.due = due
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """Wall and monotonic time that move only when a test advances them, and timers (an injectable
    `call_later`, as WorkQueue takes) that fire, in due order, when time passes them."""

    def __init__(self, start: dt.datetime = START):
        self.current = start
        self.elapsed = 0.0
        self.timers: list[FakeTimer] = []

    def now(self) -> dt.datetime:
        return self.current

    def monotonic(self) -> float:
        return self.elapsed

    def call_later(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(self.elapsed + delay, callback)
        self.timers.append(timer)
        return timer

    def pending(self) -> list[float]:
        """Seconds from now until each timer still waiting, soonest first."""
        return sorted(t.due - self.elapsed for t in self.timers if not t.cancelled)

    def advance(self, seconds: float) -> None:
        self.current += dt.timedelta(seconds=seconds)
        self.elapsed += seconds
        while True:
            due = [t for t in self.timers if not t.cancelled and t.due <= self.elapsed]
            if not due:
                break
            timer = min(due, key=lambda t: t.due)
            self.timers.remove(timer)
            timer.callback()
        self.timers = [t for t in self.timers if not t.cancelled]


def _api_error(err: APIError) -> ApiError:
    return ApiError(err.code, err.to_status())


class FedInformer(Informer):
    """An informer the fake fills and feeds itself. `run` only waits to be cancelled, as a real
    informer's list-and-watch loop does, so code that runs informers runs on the fake unchanged."""

    async def run(self) -> None:
        await asyncio.get_running_loop().create_future()


class FakeApiClient:
    """ApiClient's methods, answered by the registry in-process."""

    def __init__(self, api: FakeApi):
        self.api = api
        self.calls: list[tuple[str, str, str]] = []  # (verb, plural, name): what the controller asked

    async def _call(self, verb: str, res: Resource, name: str, coro: Coroutine[Any, Any, Any]) -> Any:
        self.calls.append((verb, res.plural, name))
        failure = self.api.failures.get((verb, res.plural))
        if failure is not None:
            coro.close()
            raise failure
        try:
            return await coro
        except APIError as err:
            raise _api_error(err) from None
        finally:
            self.api.deliver()

    def _rd(self, res: Resource):
        return self.api.registry.table.of(res)

    async def close(self) -> None:
        return None

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> Object:
        return await self._call("get", res, name, self.api.registry.get(self._rd(res), namespace or "", name))

    async def list(
        self, res: Resource, namespace: str | None = None, *, label_selector: str | None = None,
        field_selector: str | None = None, **_: Any,
    ) -> Object:  # fmt: skip
        options = ListOptions(parse_label_selector(label_selector), parse_field_selector(field_selector))
        result = await self._call("list", res, "", self.api.registry.list(self._rd(res), namespace, options))
        return {"metadata": {"resourceVersion": result.resource_version}, "items": result.items}

    async def create(self, res: Resource, obj: Object, namespace: str | None = None) -> Object:
        ns = namespace or obj.get("metadata", {}).get("namespace")
        name = obj.get("metadata", {}).get("name") or obj.get("metadata", {}).get("generateName", "")
        return await self._call("create", res, name, self.api.registry.create(self._rd(res), ns, obj))

    async def update(self, res: Resource, obj: Object, subresource: str | None = None) -> Object:
        m = obj["metadata"]
        rd = self._rd(res)
        registry = self.api.registry
        prepare = rd.strategy.prepare_for_status_update if subresource == "status" else None
        coro = registry.update(rd, m.get("namespace", ""), m["name"], obj, prepare=prepare)
        stored, _created = await self._call("update", res, m["name"], coro)
        return stored

    async def patch(
        self, res: Resource, name: str, patch: Any, namespace: str | None = None, *,
        subresource: str | None = None, content_type: str = MERGE_PATCH,
    ) -> Object:  # fmt: skip
        rd = self._rd(res)

        def apply(current: Object) -> Object:
            if content_type == JSON_PATCH:
                return json_patch(current, patch)
            if content_type == MERGE_PATCH:
                return merge_patch(current, patch)
            return strategic_merge(current, patch, rd.strategy.patch_schema)

        prepare = rd.strategy.prepare_for_status_update if subresource == "status" else None
        coro = self.api.registry.patch(rd, namespace or "", name, apply, prepare=prepare)
        stored, _created = await self._call("patch", res, name, coro)
        return stored

    async def delete(
        self, res: Resource, name: str, namespace: str | None = None, *,
        grace_period_seconds: int | None = None, propagation_policy: str | None = None,
        preconditions: dict[str, str] | None = None,
    ) -> Object:  # fmt: skip
        pre = preconditions or {}
        options = deletion.DeleteOptions(
            grace_period_seconds=grace_period_seconds, propagation_policy=propagation_policy,
            uid=pre.get("uid"), resource_version=pre.get("resourceVersion"),
        )  # fmt: skip
        result = await self._call(
            "delete", res, name, self.api.registry.delete(self._rd(res), namespace or "", name, options)
        )
        return result.obj

    async def get_path(self, path: str) -> Object:
        """The discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/<g>`, `/apis/<g>/<v>`), built
        from the registry's resource table as the apiserver builds them; no other raw path."""
        table = self.api.registry.table
        parts = path.strip("/").split("/")
        found: Object | None
        if parts == ["api"]:
            found = served.api_versions("fake")
        elif parts == ["apis"]:
            found = served.api_groups(table)
        elif parts[0] == "api" and len(parts) == 2:
            found = served.resource_list(table, "", parts[1])
        elif parts[0] == "apis" and len(parts) == 2:
            found = served.api_group(table, parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            found = served.resource_list(table, parts[1], parts[2])
        else:
            raise NotImplementedError(f"the fake API serves no raw path ({path})")
        self.calls.append(("get", "discovery", path))
        if found is None:
            raise _api_error(errors.not_found_path())
        return found


class FakeApi:
    """The registry on a fake store, its client, a clock, and informers fed from the store's history."""

    def __init__(self, namespaces: tuple[str, ...] = ("default",)):
        self.clock = FakeClock()
        table = build_resource_table(ServiceIPRange("10.96.0.0/24"), NodePortRange(30000, 30099))
        self.store = FakeStore()
        self.registry = Registry(self.store, table, clock=self.clock.now)  # type: ignore[arg-type]
        self.client = FakeApiClient(self)
        self.informers: list[Informer] = []
        # (verb, plural) -> the error every such call raises, e.g. ("list", "configmaps"): ApiError(403, ...)
        self.failures: dict[tuple[str, str], ApiError] = {}
        self._delivered = self.store.rev
        self._held = False
        for namespace in namespaces:
            self.run(self.registry.ensure_namespace(namespace))

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run one step to completion (each step in its own event loop, as asyncio.run does)."""
        return asyncio.run(coro)

    def context(self, options: Any = None) -> ControllerContext:
        ctx = ControllerContext(self.client, options, clock=self.clock.now)  # type: ignore[arg-type]
        api = self

        def informer(resource: Resource, namespace: str | None = None) -> Informer:
            key = (resource, namespace)
            if key not in ctx.informers:
                ctx.informers[key] = api.informer(resource, namespace)
            return ctx.informers[key]

        ctx.informer = informer  # type: ignore[method-assign]
        return ctx

    def controller(self, make: Callable[[ControllerContext], C], options: Any = None) -> C:
        """A controller on this API (options: the manager's flags, none by default) whose work
        queue's delayed adds wait on the fake clock."""
        controller = make(self.context(argparse.Namespace() if options is None else options))
        controller.queue = self.work_queue()
        return controller

    def work_queue(self) -> WorkQueue:
        """A controller work queue whose delayed adds wait on the fake clock."""
        return WorkQueue(call_later=self.clock.call_later)

    def informer(self, resource: Resource, namespace: str | None = None) -> Informer:
        """An informer filled with what the store holds now, then fed each change."""
        inf = FedInformer(None, resource, namespace)
        rd = self.registry.table.of(resource)
        prefix = rd.prefix(namespace)
        items = [decode(kv) for key, kv in sorted(self.store.head.items()) if key.startswith(prefix)]
        inf.replace(items, str(self.store.rev))
        self.informers.append(inf)
        return inf

    def hold_events(self) -> None:
        """Informers stop seeing writes until `deliver(force=True)`: a watch that lags."""
        self._held = True

    def deliver(self, force: bool = False) -> None:
        """Hand every change since the last delivery to the informers of its resource."""
        if self._held and not force:
            return
        self._held = False
        for event in self.store.events_since(self._delivered):
            plural = event.kv.key.split("/")[2]
            if event.type == EventType.DELETE:
                obj = decode(event.prev) if event.prev else None
                kind = "DELETED"
            else:
                obj = decode(event.kv)
                kind = "MODIFIED" if event.prev else "ADDED"
            if obj is None:
                continue
            for inf in self.informers:
                if inf.resource.plural != plural:
                    continue
                if inf.namespace and obj.get("metadata", {}).get("namespace") != inf.namespace:
                    continue
                inf.apply(kind, json.loads(json.dumps(obj)))
        self._delivered = self.store.rev

    # ------------------------------------------------------------------ conveniences for tests

    def get(self, res: Resource, name: str, namespace: str = "default") -> Object:
        return self.run(self.client.get(res, name, namespace))

    def items(self, res: Resource, namespace: str | None = "default", **selectors: str) -> list[Object]:
        listed = self.run(self.client.list(res, namespace, **selectors))
        return listed["items"]

    def live_pods(self, namespace: str = "default", **labels: str) -> list[Object]:
        """The pods (matching labels) that are not being deleted."""
        selector = ",".join(f"{k}={v}" for k, v in labels.items()) or None
        pods = self.items(resources.PODS, namespace, label_selector=selector)
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")]

    def create(self, res: Resource, obj: Object, namespace: str | None = "default") -> Object:
        return self.run(self.client.create(res, obj, namespace if res.namespaced else None))

    def force_update(
        self, res: Resource, name: str, change: Callable[[Object], Object], namespace: str = "default"
    ) -> Object:
        """Store what `change` makes of the stored object, past the kind's strategy and validation
        (a kubelet's status, an object stored before a rule existed). Informers see it on deliver()."""
        rd = self.registry.table.of(res)
        return self.run(
            self.registry.guaranteed_update(
                rd, namespace, name, change, prepare=lambda n, o: None, validate=False
            )
        )

    def set_pods(
        self, namespace: str = "default", *, ready: bool = True, node: str = "node-1", **labels: str
    ) -> int:
        """Play kubelet and scheduler: bind the pods (matching labels) that have no node, and make
        every one Running and Ready (or Running and not Ready) as of now. How many changed."""
        changed = 0
        now = self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        selector = ",".join(f"{k}={v}" for k, v in labels.items()) or None
        for pod in self.items(resources.PODS, namespace, label_selector=selector):
            if pod["metadata"].get("deletionTimestamp"):
                continue
            pod["spec"]["nodeName"] = pod["spec"].get("nodeName") or node
            status = "True" if ready else "False"
            old = next(
                (c for c in pod.get("status", {}).get("conditions") or [] if c["type"] == "Ready"), None
            )
            since = old["lastTransitionTime"] if old and old["status"] == status else now
            ready_condition = {"type": "Ready", "status": status, "lastTransitionTime": since}
            wanted = {"phase": "Running", "conditions": [ready_condition], "podIP": "10.0.0.1"}
            if pod.get("status", {}).get("conditions") == wanted["conditions"] and pod["spec"]["nodeName"]:
                continue
            bound = {**pod, "status": {**pod.get("status", {}), **wanted}}
            self.force_update(resources.PODS, pod["metadata"]["name"], lambda _c, b=bound: b, namespace)
            changed += 1
        self.deliver()
        return changed

    def finish_deletions(self, namespace: str = "default") -> int:
        """Play kubelet once a pod being deleted has stopped: confirm the deletion (grace period 0),
        so the pod is gone. How many went."""
        gone = 0
        for pod in self.items(resources.PODS, namespace):
            meta = pod["metadata"]
            if not meta.get("deletionTimestamp"):
                continue
            options = deletion.DeleteOptions(grace_period_seconds=0, uid=meta.get("uid"))
            rd = self.registry.table.of(resources.PODS)
            self.run(self.registry.delete(rd, namespace, meta["name"], options))
            gone += 1
        self.deliver()
        return gone


__all__ = ["FakeApi", "FakeApiClient", "FakeClock", "FedInformer", "errors", "resources"]
