"""Controller-manager flags, node staleness, discovery parsing, quantities and durations."""

import argparse
import datetime as dt

import pytest

from controller.manager import ALL_CONTROLLERS, enabled
from controller.nodelifecycle import is_stale, unknown_conditions
from kubelite.discovery import served_from_list
from kubelite.duration import parse_duration
from kubelite.quantity import QuantityError, milli, parse_quantity


def test_controllers_flag_follows_kube_controller_manager():
    assert enabled("*") == tuple(sorted(ALL_CONTROLLERS))
    assert set(ALL_CONTROLLERS) == {
        "cronjob", "daemonset", "deployment", "disruption", "endpoints", "garbagecollector", "job",
        "namespace", "nodelifecycle", "podgc", "replicaset", "replicationcontroller", "statefulset",
        "ttl-after-finished",
    }  # fmt: skip
    assert "namespace" not in enabled("*,-namespace") and "deployment" in enabled("*,-namespace")
    assert enabled("endpoints,deployment") == ("deployment", "endpoints")
    with pytest.raises(ValueError, match='"bogus" is not in the list of known controllers'):
        enabled("bogus")
    with pytest.raises(ValueError, match='"bogus" is not in the list of known controllers'):
        enabled("*,-bogus")


def test_node_is_stale_only_after_the_grace_period_and_only_once():
    now = dt.datetime(2026, 1, 1, 0, 1, 0, tzinfo=dt.UTC)
    node = {
        "metadata": {"name": "n", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-01-01T00:00:00Z"}]
        },
    }
    lease = {"spec": {"renewTime": "2026-01-01T00:00:30.000000Z"}}
    assert not is_stale(node, lease, now, grace=40)
    assert is_stale(node, lease, now + dt.timedelta(seconds=11), grace=40)
    node["status"]["conditions"] = unknown_conditions(node, "2026-01-01T00:02:00Z")
    assert node["status"]["conditions"][0]["reason"] == "NodeStatusUnknown"
    assert not is_stale(node, lease, now + dt.timedelta(hours=1), grace=40)


def test_discovery_lists_top_level_resources_only():
    listing = {
        "groupVersion": "apps/v1",
        "resources": [
            {"name": "deployments", "kind": "Deployment", "namespaced": True, "verbs": ["list", "delete"]},
            {"name": "deployments/scale", "kind": "Scale", "namespaced": True, "verbs": ["get"]},
        ],
    }
    [res] = served_from_list(listing)
    assert (res.group, res.version, res.plural, res.path("ns", "x")) == (
        "apps",
        "v1",
        "deployments",
        "/apis/apps/v1/namespaces/ns/deployments/x",
    )


def test_quantities_and_durations():
    assert parse_quantity("128Mi") == 128 * 2**20
    assert milli("500m") == 500 and milli("1.5") == 1500 and milli(2) == 2000
    assert parse_quantity("1e3") == 1000 and parse_quantity("1k") == 1000
    with pytest.raises(QuantityError):
        parse_quantity("12 apples")
    assert parse_duration("40s") == 40 and parse_duration("1m30s") == 90 and parse_duration("500ms") == 0.5
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration("soon")


def test_events_about_one_object_are_limited_to_a_burst_then_one_per_five_minutes():
    from kubelite.events import SpamFilter

    now = [0.0]
    spam = SpamFilter(clock=lambda: now[0])
    rs = {"kind": "ReplicaSet", "metadata": {"namespace": "default", "name": "web", "uid": "u1"}}
    other = {"kind": "Pod", "metadata": {"namespace": "default", "name": "p", "uid": "u2"}}
    assert [spam.allow(rs) for _ in range(30)] == [True] * 25 + [False] * 5
    assert spam.allow(other), "another object has its own burst"
    now[0] += 299
    assert not spam.allow(rs)
    now[0] += 2
    assert spam.allow(rs) and not spam.allow(rs), "one more after five minutes"
