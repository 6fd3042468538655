"""The generic registry against an in-process fake of the etcd store: create/update/delete
semantics, conflicts, graceful deletion, finalizers, namespaces, allocations, binding,
pagination and watch."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from apiserver.allocation import NodePortRange, ServiceIPRange
from apiserver.errors import APIError
from apiserver.registry import DeleteOptions, ListOptions, Registry
from apiserver.resources import build_resource_table
from apiserver.subresources import BINDING_RESOURCE, assign, keep_nothing
from apiserver.watch import WatchEventType, watch
from kubelite.selectors import parse_field_selector, parse_label_selector
from tests.fakestore import FakeStore

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def registry() -> Registry:
    table = build_resource_table(ServiceIPRange("10.96.0.0/28"), NodePortRange(30000, 30004))
    reg = Registry(FakeStore(), table, clock=lambda: NOW)  # type: ignore[arg-type]
    asyncio.run(reg.ensure_namespace("default"))
    return reg


def rd(registry: Registry, plural: str):
    found = registry.table.lookup("coordination.k8s.io" if plural == "leases" else "", "v1", plural)
    assert found is not None
    return found


def pod_body(name: str = "p", **spec: Any) -> dict:
    return {
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "x"}], **spec},
    }


def run(coro):
    return asyncio.run(coro)


def test_create_fills_metadata_and_refuses_duplicates(registry: Registry) -> None:
    pods = rd(registry, "pods")
    created = run(registry.create(pods, "default", {**pod_body(), "status": {"phase": "Running"}}))
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"] == "2025-01-01T00:00:00Z"
    assert meta["generation"] == 1 and meta["resourceVersion"].isdigit()
    assert created["status"]["phase"] == "Pending", "clients cannot set pod status on create"
    with pytest.raises(APIError) as err:
        run(registry.create(pods, "default", pod_body()))
    assert (err.value.code, err.value.message) == (409, 'pods "p" already exists')
    with pytest.raises(APIError) as missing:
        run(registry.create(pods, "nope", pod_body()))
    assert (missing.value.code, missing.value.message) == (404, 'namespaces "nope" not found')


def test_generate_name(registry: Registry) -> None:
    body = {"metadata": {"generateName": "web-"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    created = run(registry.create(rd(registry, "pods"), "default", body))
    assert created["metadata"]["name"].startswith("web-") and len(created["metadata"]["name"]) == 9


def test_update_conflicts_and_generation(registry: Registry) -> None:
    pods = rd(registry, "pods")
    created = run(registry.create(pods, "default", pod_body()))
    rv = created["metadata"]["resourceVersion"]
    relabeled = {**created, "metadata": {**created["metadata"], "labels": {"app": "db"}}}
    updated, _ = run(registry.update(pods, "default", "p", relabeled))
    assert updated["metadata"]["generation"] == 1, "metadata changes do not bump generation"
    with pytest.raises(APIError) as stale:
        run(registry.update(pods, "default", "p", relabeled))
    assert stale.value.code == 409
    assert stale.value.message == (
        'Operation cannot be fulfilled on pods "p": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert rv != updated["metadata"]["resourceVersion"]
    new_image = {
        **updated,
        "spec": {**updated["spec"], "containers": [{**updated["spec"]["containers"][0], "image": "y"}]},
    }
    bumped, _ = run(registry.update(pods, "default", "p", new_image))
    assert bumped["metadata"]["generation"] == 2
    same, _ = run(registry.update(pods, "default", "p", bumped))
    assert same["metadata"]["resourceVersion"] == bumped["metadata"]["resourceVersion"], (
        "a no-op writes nothing"
    )


def test_concurrent_updates_with_same_resource_version(registry: Registry) -> None:
    cms = rd(registry, "configmaps")
    created = run(registry.create(cms, "default", {"metadata": {"name": "c"}, "data": {"n": "0"}}))

    async def both() -> list[Any]:
        bodies = [{**created, "data": {"n": str(i)}} for i in (1, 2)]
        return await asyncio.gather(
            *(registry.update(cms, "default", "c", b) for b in bodies), return_exceptions=True
        )

    results = run(both())
    conflicts = [r for r in results if isinstance(r, APIError) and r.code == 409]
    assert len(conflicts) == 1, results


def test_status_subresource_and_main_resource(registry: Registry) -> None:
    pods = rd(registry, "pods")
    created = run(registry.create(pods, "default", pod_body()))
    with_status = {
        **created,
        "status": {"phase": "Running"},
        "metadata": {**created["metadata"], "labels": {"x": "y"}},
    }
    stored, _ = run(
        registry.guaranteed_update(
            pods,
            "default",
            "p",
            lambda _current: with_status,
            prepare=pods.strategy.prepare_for_status_update,
        )
    )
    assert stored["status"] == {"phase": "Running"}
    assert stored["metadata"]["labels"] == {"app": "web"}, "status writes change only status"
    main = {**stored, "status": {"phase": "Failed"}}
    main["metadata"] = {**stored["metadata"], "labels": {"app": "x"}}
    again, _ = run(registry.update(pods, "default", "p", main))
    assert again["status"] == {"phase": "Running"} and again["metadata"]["labels"] == {"app": "x"}


def test_patch_retries_and_pinned_resource_version(registry: Registry) -> None:
    pods = rd(registry, "pods")
    run(registry.create(pods, "default", pod_body()))

    def relabel(obj: dict) -> dict:
        obj["metadata"]["labels"]["tier"] = "fe"
        return obj

    patched, created = run(registry.patch(pods, "default", "p", relabel))
    assert not created and patched["metadata"]["labels"] == {"app": "web", "tier": "fe"}

    def pinned(obj: dict) -> dict:
        obj["metadata"]["resourceVersion"] = "1"
        return obj

    with pytest.raises(APIError) as err:
        run(registry.patch(pods, "default", "p", pinned))
    assert err.value.code == 409


def test_graceful_pod_deletion(registry: Registry) -> None:
    pods = rd(registry, "pods")
    run(registry.create(pods, "default", pod_body()))

    def bind(node: str):
        return registry.guaranteed_update(
            pods, "default", "p", lambda pod: assign(pod, node, {}, "2025-01-01T00:00:00Z"),
            prepare=keep_nothing, validate=False, resource=BINDING_RESOURCE,
        )  # fmt: skip

    run(bind("n1"))
    with pytest.raises(APIError) as again:
        run(bind("n2"))
    assert (
        again.value.message
        == 'Operation cannot be fulfilled on pods/binding "p": pod p is already assigned to node "n1"'
    )
    result = run(registry.delete(pods, "default", "p", DeleteOptions()))
    assert not result.deleted
    assert result.obj["metadata"]["deletionGracePeriodSeconds"] == 30
    assert result.obj["metadata"]["deletionTimestamp"] == "2025-01-01T00:00:30Z"
    assert run(registry.get(pods, "default", "p"))["metadata"]["deletionTimestamp"]
    final = run(registry.delete(pods, "default", "p", DeleteOptions(grace_period_seconds=0)))
    assert final.deleted
    with pytest.raises(APIError):
        run(registry.get(pods, "default", "p"))


def test_unbound_pod_goes_at_once(registry: Registry) -> None:
    pods = rd(registry, "pods")
    run(registry.create(pods, "default", pod_body()))
    assert run(registry.delete(pods, "default", "p", DeleteOptions())).deleted


def test_finalizers_hold_deletion(registry: Registry) -> None:
    cms = rd(registry, "configmaps")
    run(registry.create(cms, "default", {"metadata": {"name": "c", "finalizers": ["example.com/hold"]}}))
    pending = run(registry.delete(cms, "default", "c", DeleteOptions()))
    assert not pending.deleted and pending.obj["metadata"]["deletionTimestamp"]
    current = run(registry.get(cms, "default", "c"))
    current["metadata"]["finalizers"] = []
    run(registry.update(cms, "default", "c", current))
    with pytest.raises(APIError) as gone:
        run(registry.get(cms, "default", "c"))
    assert gone.value.code == 404


def test_namespace_lifecycle(registry: Registry) -> None:
    namespaces, cms = rd(registry, "namespaces"), rd(registry, "configmaps")
    ns = run(registry.create(namespaces, None, {"metadata": {"name": "t1"}}))
    assert ns["spec"]["finalizers"] == ["kubernetes"] and ns["status"]["phase"] == "Active"
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "t1"}
    pending = run(registry.delete(namespaces, "", "t1", DeleteOptions()))
    assert pending.obj["status"]["phase"] == "Terminating"
    with pytest.raises(APIError) as err:
        run(registry.create(cms, "t1", {"metadata": {"name": "c"}}))
    assert err.value.code == 403
    assert err.value.message == (
        'configmaps "c" is forbidden: '
        "unable to create new content in namespace t1 because it is being terminated"
    )
    body = run(registry.get(namespaces, "", "t1"))
    body["spec"]["finalizers"] = []
    run(
        registry.guaranteed_update(
            namespaces, "", "t1", lambda _current: body, prepare=namespaces.strategy.prepare_for_finalize
        )
    )
    with pytest.raises(APIError):
        run(registry.get(namespaces, "", "t1"))
    with pytest.raises(APIError) as protected:
        run(registry.delete(namespaces, "", "default", DeleteOptions()))
    assert protected.value.code == 403


def svc_body(name: str, node_port: int | None = None) -> dict:
    port: dict[str, Any] = {"port": 80}
    if node_port:
        port["nodePort"] = node_port
    return {
        "metadata": {"name": name},
        "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [port]},
    }


def test_service_allocations(registry: Registry) -> None:
    services = rd(registry, "services")
    first = run(registry.create(services, "default", svc_body("a", 30001)))
    assert first["spec"]["clusterIP"].startswith("10.96.0.")
    with pytest.raises(APIError) as taken:
        run(registry.create(services, "default", svc_body("b", 30001)))
    assert taken.value.code == 422
    assert (
        "spec.ports[0].nodePort: Invalid value: 30001: provided port is already allocated"
        in taken.value.message
    )
    with pytest.raises(APIError) as out_of_range:
        run(registry.create(services, "default", svc_body("b", 40000)))
    assert (
        "provided port is not in the valid range. The range of valid ports is 30000-30004"
        in out_of_range.value.message
    )

    async def many() -> list[Any]:
        return await asyncio.gather(
            *(registry.create(services, "default", svc_body(f"s{i}")) for i in range(4))
        )

    created = run(many())
    ports = {s["spec"]["ports"][0]["nodePort"] for s in created} | {30001}
    ips = {s["spec"]["clusterIP"] for s in [first, *created]}
    assert len(ports) == 5 and len(ips) == 5, "concurrent creates never share a port or an IP"
    with pytest.raises(APIError) as full:
        run(registry.create(services, "default", svc_body("full")))
    assert full.value.code == 422
    run(registry.delete(services, "default", "a", DeleteOptions()))
    again = run(registry.create(services, "default", svc_body("b", 30001)))
    assert again["spec"]["ports"][0]["nodePort"] == 30001, "delete frees the port"
    # Switching to ClusterIP releases the node port; the cluster IP stays.
    clusterip = {**again, "spec": {**again["spec"], "type": "ClusterIP"}}
    updated, _ = run(registry.update(services, "default", "b", clusterip))
    assert (
        "nodePort" not in updated["spec"]["ports"][0]
        and updated["spec"]["clusterIP"] == again["spec"]["clusterIP"]
    )
    reuse = run(registry.create(services, "default", svc_body("c", 30001)))
    assert reuse["spec"]["ports"][0]["nodePort"] == 30001


def test_list_pagination_and_selectors(registry: Registry) -> None:
    cms = rd(registry, "configmaps")
    for i in range(5):
        run(
            registry.create(
                cms, "default", {"metadata": {"name": f"c{i}", "labels": {"even": str(i % 2 == 0)}}}
            )
        )
    page = run(registry.list(cms, "default", ListOptions(limit=2)))
    assert [o["metadata"]["name"] for o in page.items] == ["c0", "c1"] and page.remaining == 3
    names = [o["metadata"]["name"] for o in page.items]
    while page.continue_token:
        page = run(registry.list(cms, "default", ListOptions(limit=2, continue_token=page.continue_token)))
        names += [o["metadata"]["name"] for o in page.items]
    assert names == [f"c{i}" for i in range(5)]
    even = run(
        registry.list(cms, None, ListOptions(label_selector=parse_label_selector("even=True"), limit=2))
    )
    assert [o["metadata"]["name"] for o in even.items] == ["c0", "c2"] and even.continue_token
    named = run(
        registry.list(cms, "default", ListOptions(field_selector=parse_field_selector("metadata.name=c3")))
    )
    assert [o["metadata"]["name"] for o in named.items] == ["c3"]


def test_watch_sees_selector_transitions(registry: Registry) -> None:
    cms = rd(registry, "configmaps")

    async def scenario() -> list[tuple[str, str]]:
        await registry.create(cms, "default", {"metadata": {"name": "a", "labels": {"x": "1"}}})
        listed = await registry.list(cms, "default", ListOptions())
        options = ListOptions(
            label_selector=parse_label_selector("x=1"), resource_version=listed.resource_version
        )
        events: list[tuple[str, str]] = []

        async def consume() -> None:
            async for event in watch(registry, cms, "default", options):
                events.append((str(event.type), event.object["metadata"].get("labels", {}).get("x", "")))
                if len(events) == 3:
                    return

        task = asyncio.create_task(consume())
        await asyncio.sleep(0)
        obj = await registry.get(cms, "default", "a")
        obj["metadata"]["labels"]["x"] = "2"
        await registry.update(cms, "default", "a", obj)  # stops matching: DELETED
        await registry.create(cms, "default", {"metadata": {"name": "b", "labels": {"x": "1"}}})  # ADDED
        await registry.delete(cms, "default", "b", DeleteOptions())  # DELETED
        await asyncio.wait_for(task, 5)
        return events

    assert run(scenario()) == [("DELETED", "1"), ("ADDED", "1"), ("DELETED", "1")]


def test_watch_from_compacted_revision_is_gone(registry: Registry) -> None:
    cms = rd(registry, "configmaps")

    async def scenario() -> list[Any]:
        for name in ("a", "b"):
            await registry.create(cms, "default", {"metadata": {"name": name}})
        registry.store.compacted = registry.store.rev  # type: ignore[attr-defined]
        return [e async for e in watch(registry, cms, "default", ListOptions(resource_version="1"))]

    events = run(scenario())
    assert len(events) == 1 and events[0].type is WatchEventType.ERROR
    assert events[0].object["code"] == 410 and events[0].object["reason"] == "Expired"
    assert events[0].object["message"].startswith("too old resource version: 1 (")
