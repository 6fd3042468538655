"""Controller history (controller/framework/history.py) against the shared fake API: revision data
and names, equality, numbering, collisions, renumbering, deletion, claiming."""

from __future__ import annotations

import argparse

import pytest

from controller.framework import history
from controller.framework.history import History
from kubelite.objects import controller_ref
from kubelite.resources import CONTROLLERREVISIONS, DAEMONSETS
from tests.fakeapi import FakeApi


def daemonset(image: str = "kubelite/whoami:1.0", name: str = "agent") -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "agent", "image": image}]},
            },
        },
    }


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


def test_revision_data_is_the_patch_that_replaces_the_template():
    data = history.revision_data(daemonset())
    assert data["spec"]["template"]["$patch"] == "replace"
    assert data["spec"]["template"]["spec"]["containers"][0]["image"] == "kubelite/whoami:1.0"
    assert history.template_of(data) == daemonset()["spec"]["template"]
    assert list(data) == ["spec"] and list(data["spec"]) == ["template"]


def test_hash_is_stable_depends_on_data_and_collision_count():
    one, two = history.revision_data(daemonset()), history.revision_data(daemonset("kubelite/whoami:2.0"))
    assert history.hash_of(one) == history.hash_of(history.revision_data(daemonset()))
    assert history.hash_of(one) != history.hash_of(two)
    assert history.hash_of(one, 0) != history.hash_of(one, 1)
    assert set(history.hash_of(one)) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_new_revision_is_named_labelled_and_owned():
    ds = {**daemonset(), "metadata": {"name": "agent", "namespace": "default", "uid": "u1"}}
    data = history.revision_data(ds)
    rev = history.new_revision(ds, data, 3, 0, hash_label=history.POD_REVISION_LABEL)
    hash_ = history.hash_of(data, 0)
    assert rev["metadata"]["name"] == f"agent-{hash_}"
    assert rev["metadata"]["labels"] == {"app": "agent", "controller-revision-hash": hash_}
    assert rev["revision"] == 3 and rev["data"] == data
    ref = controller_ref(rev)
    assert ref and ref["uid"] == "u1" and ref["kind"] == "DaemonSet" and ref["apiVersion"] == "apps/v1"


def test_equal_revisions_numbering_and_order():
    a = {"metadata": {"name": "a"}, "revision": 2, "data": {"spec": {"template": {"x": 1, "y": []}}}}
    b = {"metadata": {"name": "b"}, "revision": 1, "data": {"spec": {"template": {"x": 2}}}}
    c = {"metadata": {"name": "c"}, "revision": 5, "data": {"spec": {"template": {"x": 1}}}}
    assert [r["metadata"]["name"] for r in history.sort_revisions([a, b, c])] == ["b", "a", "c"]
    assert history.equal_revision([a, b, c], {"spec": {"template": {"x": 1}}}) == [a, c]
    assert history.next_revision_number([a, b, c]) == 6
    assert history.next_revision_number([]) == 1


def test_truncation_keeps_the_limit_and_revisions_still_in_use():
    revs = [{"metadata": {"name": f"r{n}"}, "revision": n} for n in range(1, 6)]
    doomed = history.revisions_to_truncate(revs, live={"r1"}, limit=2)
    assert [r["metadata"]["name"] for r in doomed] == ["r2", "r3", "r4"]
    assert history.revisions_to_truncate(revs, live=set(), limit=10) == []


def test_create_is_idempotent_and_steps_around_a_collision(api):
    ds = api.create(DAEMONSETS, daemonset())
    hist = History(api.context(argparse.Namespace()), DAEMONSETS)
    data = history.revision_data(ds)
    rev = history.new_revision(ds, data, 1, 0)
    created, count = api.run(hist.create(ds, rev, 0))
    assert count == 0 and created["metadata"]["name"] == rev["metadata"]["name"]
    again, count = api.run(hist.create(ds, rev, 0))
    assert count == 0 and again["metadata"]["uid"] == created["metadata"]["uid"]
    assert [r["metadata"]["name"] for r in hist.owned(ds)] == [created["metadata"]["name"]]

    # another template whose name is already taken (by forging the collision)
    other = history.revision_data(daemonset("kubelite/whoami:2.0"))
    taken = history.new_revision(ds, other, 2, 0)
    taken["metadata"]["name"] = history.revision_name("agent", history.hash_of(other, 0))
    api.run(
        api.client.create(CONTROLLERREVISIONS, {**taken, "data": {"spec": {"template": {"forged": True}}}})
    )
    made, count = api.run(hist.create(ds, taken, 0))
    assert count == 1
    assert made["metadata"]["name"] == f"agent-{history.hash_of(other, 1)}"
    assert made["metadata"]["labels"][history.CONTROLLER_REVISION_HASH_LABEL] == history.hash_of(other, 1)


def test_update_revision_number_and_delete(api):
    ds = api.create(DAEMONSETS, daemonset())
    hist = History(api.context(argparse.Namespace()), DAEMONSETS)
    created, _ = api.run(hist.create(ds, history.new_revision(ds, history.revision_data(ds), 1, 0), 0))
    moved = api.run(hist.update_revision(created, 4))
    assert moved["revision"] == 4 and hist.owned(ds)[0]["revision"] == 4
    api.run(hist.delete(moved))
    api.run(hist.delete(moved))  # gone already: no error
    assert hist.owned(ds) == [] and api.items(CONTROLLERREVISIONS) == []


def test_data_is_immutable_and_columns(api):
    ds = api.create(DAEMONSETS, daemonset())
    hist = History(api.context(argparse.Namespace()), DAEMONSETS)
    created, _ = api.run(hist.create(ds, history.new_revision(ds, history.revision_data(ds), 1, 0), 0))
    from kubelite.client import ApiError

    with pytest.raises(ApiError) as err:
        api.run(api.client.update(CONTROLLERREVISIONS, {**created, "data": {"spec": {}}}))
    assert err.value.code == 422 and "data: Invalid value" in err.value.status["message"]
    assert "field is immutable" in err.value.status["message"]
    strategy = api.registry.table.of(CONTROLLERREVISIONS).strategy
    row = strategy.cells(created, api.clock.now())
    assert row[:3] == [created["metadata"]["name"], "daemonset.apps/agent", 1]


def test_claim_adopts_orphans_matching_and_releases_the_rest(api):
    ds = api.create(DAEMONSETS, daemonset())
    hist = History(api.context(argparse.Namespace()), DAEMONSETS)
    orphan = {"metadata": {"name": "agent-old", "labels": {"app": "agent"}}, "data": {}, "revision": 1}
    api.create(CONTROLLERREVISIONS, orphan)
    stranger = {"metadata": {"name": "other", "labels": {"app": "other"}}, "data": {}, "revision": 1}
    api.create(CONTROLLERREVISIONS, stranger)
    claimed = api.run(hist.claim(ds, lambda labels: labels.get("app") == "agent"))
    assert [r["metadata"]["name"] for r in claimed] == ["agent-old"]
    assert controller_ref(api.get(CONTROLLERREVISIONS, "agent-old"))["uid"] == ds["metadata"]["uid"]
    assert controller_ref(api.get(CONTROLLERREVISIONS, "other")) is None
