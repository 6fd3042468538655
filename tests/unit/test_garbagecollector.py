"""The garbage collector on the fake API: background, foreground and orphan cascades over objects
made by hand, a cache that lags, owners it cannot look up, discovery; and its pure parts."""

from __future__ import annotations

import asyncio
import copy
import logging

import pytest

from controller.framework.controllerref import remove_owner_refs_patch
from controller.garbagecollector import GarbageCollector
from controller.garbagecollector.decide import (
    Decision,
    Owners,
    Verdict,
    decide,
    unblock_patch,
    without_finalizer_patch,
)
from controller.garbagecollector.graph import AbsentOwners, DependencyGraph, Identity, OwnerRef, OwnerState
from controller.garbagecollector.monitors import DELETABLE_VERBS
from kubelite.client import ApiError
from kubelite.discovery import served_from_list, served_resources
from kubelite.objects import Object
from kubelite.resources import (
    BINDINGS,
    CONFIGMAPS,
    DEPLOYMENTS,
    NODES,
    PODS,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    Resource,
)
from tests.fakeapi import FakeApi

WATCHED = [PODS, NODES, CONFIGMAPS, REPLICATIONCONTROLLERS, DEPLOYMENTS, REPLICASETS]
WIDGETS = Resource("example.com", "v1", "widgets", "Widget", True, "widget")
TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


# ---------------------------------------------------------------------------- objects by hand


def ref(owner: Object, *, controller: bool = True, block: bool = True) -> Object:
    m = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": m["name"],
        "uid": m["uid"],
        "controller": controller,
        "blockOwnerDeletion": block,
    }


def meta(name: str, owners: tuple[Object, ...], namespace: str | None = None) -> Object:
    m: Object = {"name": name, "labels": {"app": "web"}}
    if owners:
        m["ownerReferences"] = list(owners)
    if namespace:
        m["namespace"] = namespace
    return m


def deployment(name: str) -> Object:
    spec = {"selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}
    return {"metadata": meta(name, ()), "spec": spec}


def replicaset(name: str, *owners: Object) -> Object:
    spec = {"selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}
    return {"metadata": meta(name, owners), "spec": spec}


def replicationcontroller(name: str) -> Object:
    return {"metadata": meta(name, ()), "spec": {"selector": {"app": "web"}, "template": TEMPLATE}}


def pod(name: str, *owners: Object, node: str | None = None) -> Object:
    spec: Object = {"containers": [{"name": "c", "image": "nginx"}]}
    if node:
        spec["nodeName"] = node  # bound: deleting it is graceful, and waits for its kubelet
    return {"metadata": meta(name, owners), "spec": spec}


def configmap(name: str, *owners: Object, namespace: str | None = None) -> Object:
    return {"metadata": meta(name, owners, namespace), "data": {"k": "v"}}


# ---------------------------------------------------------------------------- driving the collector


def fixed(resources: list[Resource]):
    """A discovery seam that answers whatever the list holds when it is called."""

    async def discover() -> list[Resource]:
        return list(resources)

    return discover


def collector(api: FakeApi, resources: list[Resource] | None = None) -> GarbageCollector:
    gc = GarbageCollector(api.context(), discover=fixed(WATCHED if resources is None else resources))
    api.run(gc.resync())
    return gc


def drain(api: FakeApi, gc: GarbageCollector, limit: int = 500) -> list[str]:
    """Sync queued uids, as the workers would, until the queue is empty; the uids synced."""

    async def work() -> list[str]:
        synced: list[str] = []
        while len(gc.queue):
            assert len(synced) < limit, f"the queue never emptied; last synced: {synced[-10:]}"
            key = await gc.queue.get()
            assert key is not None
            try:
                await gc.sync(key)
            finally:
                gc.queue.done(key)
            synced.append(key)
        return synced

    return api.run(work())


def delete(api: FakeApi, res: Resource, name: str, policy: str | None = None, **options) -> None:
    namespace = "default" if res.namespaced else None
    api.run(api.client.delete(res, name, namespace, propagation_policy=policy, **options))


def names(api: FakeApi, res: Resource, namespace: str | None = "default") -> list[str]:
    return sorted(item["metadata"]["name"] for item in api.items(res, namespace))


def lookup(api: FakeApi, res: Resource, name: str, namespace: str = "default") -> Object | None:
    try:
        return api.get(res, name, namespace)
    except ApiError as exc:
        assert exc.not_found, exc
        return None


def writes(api: FakeApi) -> list[tuple[str, str, str]]:
    return [call for call in api.client.calls if call[0] in ("delete", "patch", "update")]


# ---------------------------------------------------------------------------- background


def test_background_cascade_deployment_replicaset_pods(caplog):
    api = FakeApi()
    web = api.create(DEPLOYMENTS, deployment("web"))
    rs = api.create(REPLICASETS, replicaset("web-1", ref(web)))
    for i in range(3):
        api.create(PODS, pod(f"web-1-{i}", ref(rs)))
    api.create(PODS, pod("lonely"))
    gc = collector(api)
    drain(api, gc)
    asked = {call[0] for call in api.client.calls}
    assert asked <= {"create", "list"}, f"a cache that vouches for every owner needs no GET: {asked}"

    caplog.set_level(logging.INFO)
    delete(api, DEPLOYMENTS, "web", "Background")
    drain(api, gc)
    assert names(api, REPLICASETS) == []
    assert names(api, PODS) == ["lonely"]
    assert "deleting ReplicaSet default/web-1 (Background)" in caplog.text
    assert "deleting Pod default/web-1-0 (Background)" in caplog.text


def test_a_dependent_of_two_owners_loses_only_the_deleted_one():
    api = FakeApi()
    a = api.create(REPLICASETS, replicaset("a"))
    b = api.create(REPLICASETS, replicaset("b"))
    api.create(CONFIGMAPS, configmap("shared", ref(a), ref(b, controller=False)))
    gc = collector(api)
    delete(api, REPLICASETS, "a", "Background")
    drain(api, gc)
    shared = lookup(api, CONFIGMAPS, "shared")
    assert shared is not None, "an object with an owner left is kept"
    assert [r["uid"] for r in shared["metadata"]["ownerReferences"]] == [b["metadata"]["uid"]]


def test_an_owner_replaced_under_the_same_name_counts_as_gone():
    api = FakeApi()
    old = api.create(DEPLOYMENTS, deployment("web"))
    api.create(REPLICASETS, replicaset("web-1", ref(old)))
    delete(api, DEPLOYMENTS, "web", "Background")
    new = api.create(DEPLOYMENTS, deployment("web"))
    gc = collector(api)  # it never saw the old one go: only a live GET can tell
    drain(api, gc)
    assert names(api, REPLICASETS) == [], "the replica set's owner is the deleted uid, not its namesake"
    assert api.get(DEPLOYMENTS, "web")["metadata"]["uid"] == new["metadata"]["uid"]


# ---------------------------------------------------------------------------- foreground


def test_foreground_keeps_the_owner_until_its_blocking_dependents_are_gone_over_two_levels():
    api = FakeApi()
    web = api.create(DEPLOYMENTS, deployment("web"))
    rs = api.create(REPLICASETS, replicaset("web-1", ref(web)))
    for i in range(2):
        api.create(PODS, pod(f"web-1-{i}", ref(rs), node="node-1"))
    api.create(CONFIGMAPS, configmap("notes", ref(web, block=False)))
    gc = collector(api)

    delete(api, DEPLOYMENTS, "web", "Foreground")
    drain(api, gc)
    rs_now = api.get(REPLICASETS, "web-1")
    assert rs_now["metadata"]["finalizers"] == ["foregroundDeletion"], "a dependent with dependents cascades"
    assert all(p["metadata"].get("deletionTimestamp") for p in api.items(PODS)), "pods are being deleted"
    assert api.get(DEPLOYMENTS, "web")["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert names(api, CONFIGMAPS) == [], "a non-blocking dependent is deleted too, without waiting for it"

    delete(api, PODS, "web-1-0", grace_period_seconds=0)  # the kubelet confirms one pod is gone
    drain(api, gc)
    assert lookup(api, REPLICASETS, "web-1") is not None, "one blocking pod is left"
    delete(api, PODS, "web-1-1", grace_period_seconds=0)
    drain(api, gc)
    assert names(api, PODS) == []
    assert names(api, REPLICASETS) == []
    assert names(api, DEPLOYMENTS) == [], "with no blocking dependent left the owner goes"


def test_a_dependent_with_another_owner_leaves_a_foreground_deletion_without_being_deleted():
    api = FakeApi()
    a = api.create(REPLICASETS, replicaset("a"))
    b = api.create(REPLICASETS, replicaset("b"))
    api.create(CONFIGMAPS, configmap("shared", ref(a), ref(b, controller=False)))
    gc = collector(api)
    delete(api, REPLICASETS, "a", "Foreground")
    drain(api, gc)
    assert names(api, REPLICASETS) == ["b"]
    shared = api.get(CONFIGMAPS, "shared")
    assert [r["uid"] for r in shared["metadata"]["ownerReferences"]] == [b["metadata"]["uid"]]


# ---------------------------------------------------------------------------- orphan


def test_orphan_keeps_the_dependents_running_without_the_owner_reference():
    api = FakeApi()
    rs = api.create(REPLICASETS, replicaset("web-1"))
    other = api.create(REPLICASETS, replicaset("other"))
    api.create(PODS, pod("web-1-0", ref(rs), node="node-1"))
    api.create(PODS, pod("web-1-1", ref(rs), ref(other, controller=False), node="node-1"))
    gc = collector(api)
    delete(api, REPLICASETS, "web-1", "Orphan")
    drain(api, gc)
    assert names(api, REPLICASETS) == ["other"]
    pods = {p["metadata"]["name"]: p["metadata"] for p in api.items(PODS)}
    assert sorted(pods) == ["web-1-0", "web-1-1"]
    assert not any(m.get("deletionTimestamp") for m in pods.values())
    assert not pods["web-1-0"].get("ownerReferences")
    assert [r["name"] for r in pods["web-1-1"]["ownerReferences"]] == ["other"]


def test_a_replication_controller_orphans_its_pods_by_default():
    api = FakeApi()
    rc = api.create(REPLICATIONCONTROLLERS, replicationcontroller("rc"))
    api.create(PODS, pod("rc-0", ref(rc)))
    gc = collector(api)
    delete(api, REPLICATIONCONTROLLERS, "rc")
    drain(api, gc)
    assert names(api, REPLICATIONCONTROLLERS) == []
    assert not api.get(PODS, "rc-0")["metadata"].get("ownerReferences")


# ---------------------------------------------------------------------------- a cache that lags


def test_a_cache_that_is_behind_never_deletes_a_dependent_whose_owner_exists():
    api = FakeApi()
    gc = collector(api)
    api.hold_events()
    web = api.create(DEPLOYMENTS, deployment("web"))
    rs = api.create(REPLICASETS, replicaset("web-1", ref(web)))
    # the replica sets' watch is ahead of the deployments' watch: only the dependent is seen
    gc.monitors.watched[REPLICASETS].informer.apply("ADDED", copy.deepcopy(rs))
    assert gc.graph.node(web["metadata"]["uid"]) is None
    drain(api, gc)
    assert ("get", "deployments", "web") in api.client.calls, "the owner was looked up live"
    assert writes(api) == [], "nothing was deleted or patched"
    api.deliver(force=True)
    drain(api, gc)
    assert names(api, REPLICASETS) == ["web-1"]
    assert writes(api) == []


def test_a_deleted_owner_seen_by_the_informer_costs_no_get_per_dependent():
    api = FakeApi()
    rs = api.create(REPLICASETS, replicaset("web-1"))
    for i in range(5):
        api.create(PODS, pod(f"web-1-{i}", ref(rs)))
    gc = collector(api)
    delete(api, REPLICASETS, "web-1", "Background")
    api.client.calls.clear()
    drain(api, gc)
    assert names(api, PODS) == []
    assert ("get", "replicasets", "web-1") not in api.client.calls, "its deletion was observed"


# ---------------------------------------------------------------------------- owners it cannot look up


def test_an_owner_of_a_kind_not_served_is_left_alone_and_logged_once(caplog):
    api = FakeApi()
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "uid": "w-uid"}}
    cm = api.create(CONFIGMAPS, configmap("config", ref(widget)))
    gc = collector(api)
    drain(api, gc)
    gc.queue.add(cm["metadata"]["uid"])
    drain(api, gc)
    assert names(api, CONFIGMAPS) == ["config"]
    assert writes(api) == []
    warnings = [r for r in caplog.records if "Widget (example.com/v1) is not served" in r.getMessage()]
    assert len(warnings) == 1, caplog.text


def test_a_cluster_scoped_owner_of_a_namespaced_dependent_is_looked_up_by_name():
    api = FakeApi()
    node = api.create(NODES, {"metadata": {"name": "node-1"}}, None)
    api.create(CONFIGMAPS, configmap("node-info", ref(node)))
    gc = collector(api)
    drain(api, gc)
    assert names(api, CONFIGMAPS) == ["node-info"]
    assert writes(api) == []
    delete(api, NODES, "node-1")
    drain(api, gc)
    assert names(api, CONFIGMAPS) == []


def test_a_namespaced_owner_is_looked_up_in_the_dependents_namespace():
    api = FakeApi(namespaces=("default", "other"))
    web = api.create(DEPLOYMENTS, deployment("web"))
    api.create(CONFIGMAPS, configmap("here", ref(web)))
    api.create(CONFIGMAPS, configmap("there", ref(web), namespace="other"), "other")
    gc = collector(api)
    drain(api, gc)
    assert names(api, CONFIGMAPS) == ["here"]
    assert names(api, CONFIGMAPS, "other") == [], "no deployment web in its namespace: its owner is gone"


# ---------------------------------------------------------------------------- discovery


def test_the_discovery_seam_picks_up_a_kind_and_drops_one():
    api = FakeApi()
    rs = api.create(REPLICASETS, replicaset("web-1"))
    api.create(PODS, pod("web-1-0", ref(rs)))
    discovered = [PODS]
    gc = GarbageCollector(api.context(), discover=fixed(discovered))
    api.run(gc.resync())
    drain(api, gc)
    assert names(api, PODS) == ["web-1-0"], "an owner whose kind is not served is left alone"

    discovered.append(REPLICASETS)
    api.run(gc.resync())
    assert REPLICASETS in gc.monitors
    delete(api, REPLICASETS, "web-1", "Background")
    drain(api, gc)
    assert names(api, PODS) == []

    discovered.remove(REPLICASETS)
    api.run(gc.resync())
    assert REPLICASETS not in gc.monitors
    assert (REPLICASETS, None) not in gc.monitors.ctx.informers, "the informer it made is dropped"


def test_a_kind_the_apiserver_serves_later_is_watched_through_discovery():
    api = FakeApi()
    gc = GarbageCollector(api.context())  # the fake's discovery documents
    api.run(gc.resync())
    assert {PODS, DEPLOYMENTS, NODES} <= set(gc.monitors.watched)
    assert BINDINGS not in gc.monitors, "bindings cannot be listed, watched or deleted"

    from apiserver.resources import ResourceDef
    from apiserver.strategy import Strategy

    api.registry.table.resources.append(ResourceDef(WIDGETS, Strategy(True)))
    widget = api.create(WIDGETS, {"metadata": {"name": "w"}, "spec": {}})
    api.create(CONFIGMAPS, configmap("config", ref(widget)))
    drain(api, gc)
    assert names(api, CONFIGMAPS) == ["config"]

    api.run(gc.resync())
    assert WIDGETS in gc.monitors
    drain(api, gc)
    assert names(api, CONFIGMAPS) == ["config"], "its owner exists"
    delete(api, WIDGETS, "w")
    drain(api, gc)
    assert names(api, CONFIGMAPS) == []


def test_a_kind_that_cannot_be_listed_is_skipped_and_the_rest_carries_on(caplog):
    api = FakeApi()
    rs = api.create(REPLICASETS, replicaset("web-1"))
    api.create(PODS, pod("web-1-0", ref(rs)))
    status = {"kind": "Status", "reason": "Forbidden", "message": "configmaps is forbidden", "code": 403}
    api.failures[("list", "configmaps")] = ApiError(403, status)
    gc = collector(api, [PODS, CONFIGMAPS, REPLICASETS])
    assert CONFIGMAPS not in gc.monitors
    assert "cannot list configmaps" in caplog.text
    delete(api, REPLICASETS, "web-1", "Background")
    drain(api, gc)
    assert names(api, PODS) == []

    del api.failures[("list", "configmaps")]
    api.run(gc.resync())
    assert CONFIGMAPS in gc.monitors


def test_served_resources_reads_the_discovery_documents():
    api = FakeApi()
    served = api.run(served_resources(api.client))
    by_plural = {r.plural: r for r in served}
    assert by_plural["pods"] is PODS, "a known kind is its kubelite.resources entry"
    assert by_plural["bindings"].verbs == ("create",)
    deletable = {r.plural for r in served if set(r.verbs) >= DELETABLE_VERBS}
    assert {"pods", "namespaces", "deployments", "replicasets", "leases"} <= deletable
    assert "bindings" not in deletable


def test_served_from_list_keeps_verbs_of_kinds_it_does_not_know():
    listing = {
        "groupVersion": "example.com/v1",
        "resources": [
            {"name": "widgets", "kind": "Widget", "namespaced": True, "verbs": ["get", "list"]},
            {"name": "widgets/status", "kind": "Widget", "namespaced": True, "verbs": ["get"]},
        ],
    }
    [widgets] = served_from_list(listing)
    assert (widgets.api_version, widgets.plural, widgets.kind) == ("example.com/v1", "widgets", "Widget")
    assert widgets.verbs == ("get", "list")


# ---------------------------------------------------------------------------- running


def test_run_owns_the_informers_it_starts_and_follows_discovery():
    api = FakeApi()
    web = api.create(DEPLOYMENTS, deployment("web"))
    rs = api.create(REPLICASETS, replicaset("web-1", ref(web)))
    api.create(PODS, pod("web-1-0", ref(rs)))
    ctx = api.context()
    ctx.informer(PODS)  # another controller's: the manager runs it
    discovered = [PODS, DEPLOYMENTS]

    async def settle(done, what: str) -> None:
        for _ in range(200):
            if done():
                return
            await asyncio.sleep(0)  # a turn of the loop, not a wait on time
        raise AssertionError(f"never saw {what}")

    async def scenario() -> None:
        tick = asyncio.Event()

        async def sleep(_seconds: float) -> None:
            await tick.wait()
            tick.clear()

        gc = GarbageCollector(ctx, discover=fixed(discovered), sleep=sleep)
        running = asyncio.create_task(gc.run(workers=2))
        await settle(lambda: DEPLOYMENTS in gc.monitors, "deployments watched")
        assert gc.monitors.watched[PODS].task is None, "a shared informer is left to the manager"
        deployments = gc.monitors.watched[DEPLOYMENTS].task
        assert deployments is not None and not deployments.done()

        discovered.append(REPLICASETS)
        tick.set()
        await settle(lambda: REPLICASETS in gc.monitors, "replica sets watched after a resync")
        await api.client.delete(DEPLOYMENTS, "web", "default", propagation_policy="Background")
        await settle(lambda: not api.store.head.get("/registry/pods/default/web-1-0"), "the pod collected")
        assert "/registry/replicasets/default/web-1" not in api.store.head

        owned = [m.task for m in gc.monitors.watched.values() if m.task is not None]
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert owned and all(task.done() for task in owned), "every informer it started is stopped"

    api.run(scenario())


# ---------------------------------------------------------------------------- pure parts


def owner(name: str, block: bool = True) -> OwnerRef:
    return OwnerRef("apps/v1", "ReplicaSet", name, f"uid-{name}", block)


@pytest.mark.parametrize(
    ("owners", "finalizers", "has_dependents", "expected"),
    [
        (Owners(solid=(owner("a"),)), [], False, (Verdict.KEEP, None, ())),
        (
            Owners(solid=(owner("a"),), dangling=(owner("b"),)),
            [],
            False,
            (Verdict.REMOVE_REFS, None, ("uid-b",)),
        ),
        (
            Owners(solid=(owner("a"),), waiting=(owner("w"),)),
            [],
            True,
            (Verdict.REMOVE_REFS, None, ("uid-w",)),
        ),
        (Owners(dangling=(owner("b"),)), [], True, (Verdict.DELETE, "Background", ())),
        (Owners(dangling=(owner("b"),)), ["orphan"], False, (Verdict.DELETE, "Orphan", ())),
        (Owners(dangling=(owner("b"),)), ["foregroundDeletion"], False, (Verdict.DELETE, "Foreground", ())),
        (Owners(waiting=(owner("w"),)), [], True, (Verdict.DELETE, "Foreground", ())),
        (Owners(waiting=(owner("w"),)), [], False, (Verdict.DELETE, "Background", ())),
    ],
)
def test_decide(owners, finalizers, has_dependents, expected):
    decision: Decision = decide(
        owners, finalizers, has_dependents=has_dependents, dependent_deleting_dependents=False
    )
    assert (decision.verdict, decision.policy, decision.remove_uids) == expected
    assert decision.reason


def test_decide_unblocks_an_object_whose_own_dependent_waits_in_the_foreground():
    decision = decide(
        Owners(waiting=(owner("w"),)), [], has_dependents=True, dependent_deleting_dependents=True
    )
    assert (decision.verdict, decision.policy, decision.unblock) == (Verdict.DELETE, "Foreground", True)


def test_patches():
    assert remove_owner_refs_patch("me", ["a", "b"]) == {
        "metadata": {
            "uid": "me",
            "ownerReferences": [{"$patch": "delete", "uid": "a"}, {"$patch": "delete", "uid": "b"}],
        }
    }
    assert unblock_patch("me", [owner("a"), owner("b", block=False)]) == {
        "metadata": {"uid": "me", "ownerReferences": [{"uid": "uid-a", "blockOwnerDeletion": False}]}
    }
    obj = {"metadata": {"resourceVersion": "7", "finalizers": ["example.com/keep", "orphan"]}}
    assert without_finalizer_patch(obj, "orphan") == {
        "metadata": {"resourceVersion": "7", "finalizers": ["example.com/keep"]}
    }


def obj(kind_res: Resource, name: str, *owners: OwnerRef, **meta_fields) -> Object:
    refs = [
        {
            "apiVersion": o.api_version,
            "kind": o.kind,
            "name": o.name,
            "uid": o.uid,
            "blockOwnerDeletion": o.block_owner_deletion,
        }
        for o in owners
    ]
    metadata = {
        "name": name,
        "namespace": "default",
        "uid": f"uid-{name}",
        "ownerReferences": refs,
        **meta_fields,
    }
    return {"metadata": metadata}


def test_graph_queues_a_dependent_until_its_owner_is_seen():
    graph = DependencyGraph()
    pod_obj = obj(PODS, "p", owner("a"))
    assert graph.observe(PODS, pod_obj) == {"uid-p"}, "an owner not seen yet is to be checked"
    assert graph.observe(REPLICASETS, obj(REPLICASETS, "a")) == set()
    dependent = graph.node("uid-p")
    assert dependent is not None
    assert graph.cached_state(dependent, owner("a")) is OwnerState.SOLID
    assert graph.observe(PODS, pod_obj) == set(), "an object whose owners are all there is left alone"
    assert [d.identity.name for d in graph.dependents("uid-a")] == ["p"]


def test_graph_forget_queues_dependents_and_remembers_the_owner_as_absent():
    graph = DependencyGraph()
    graph.observe(REPLICASETS, obj(REPLICASETS, "a"))
    graph.observe(PODS, obj(PODS, "p", owner("a")))
    graph.observe(PODS, obj(PODS, "q", owner("a")))
    assert graph.forget(REPLICASETS, obj(REPLICASETS, "a")) == {"uid-p", "uid-q"}
    assert Identity("apps/v1", "ReplicaSet", "default", "a", "uid-a") in graph.absent


def test_graph_frees_a_foreground_owner_when_a_blocking_reference_goes():
    graph = DependencyGraph()
    deleting = {"deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": ["foregroundDeletion"]}
    assert graph.observe(REPLICASETS, obj(REPLICASETS, "a", **deleting)) == {"uid-a"}
    graph.observe(PODS, obj(PODS, "p", owner("a")))
    assert [d.identity.name for d in graph.blocking_dependents("uid-a")] == ["p"]
    assert "uid-a" in graph.observe(PODS, obj(PODS, "p", owner("a", block=False)))
    assert graph.blocking_dependents("uid-a") == []
    graph.observe(PODS, obj(PODS, "q", owner("a")))
    assert "uid-a" in graph.forget(PODS, obj(PODS, "q", owner("a"))), "a waiting owner hears of each deletion"


def test_graph_does_not_vouch_for_an_owner_named_differently_or_elsewhere():
    graph = DependencyGraph()
    graph.observe(REPLICASETS, obj(REPLICASETS, "a"))
    graph.observe(PODS, obj(PODS, "p"))
    dependent = graph.node("uid-p")
    assert dependent is not None
    renamed = OwnerRef("apps/v1", "ReplicaSet", "b", "uid-a")
    assert graph.cached_state(dependent, renamed) is OwnerState.UNKNOWN
    elsewhere = obj(PODS, "x")
    elsewhere["metadata"]["namespace"] = "other"
    graph.observe(PODS, elsewhere)
    far = graph.node("uid-x")
    assert far is not None
    assert graph.cached_state(far, owner("a")) is OwnerState.UNKNOWN


def test_absent_owners_forget_the_least_recently_used():
    absent = AbsentOwners(capacity=2)
    one, two, three = (Identity("v1", "Pod", "default", n, n) for n in ("1", "2", "3"))
    absent.add(one)
    absent.add(two)
    assert one in absent  # used: now the most recent
    absent.add(three)
    assert one in absent and three in absent and two not in absent
