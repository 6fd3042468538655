"""The eviction subresource and the PodDisruptionBudget kind: the pure eviction decision (terminal,
pending and unready pods, one budget or several), spending a disruption, and the HTTP answers a
client sees (201, 429 TooManyRequests with the DisruptionBudget cause, 500 for two budgets, dry
runs), plus PDB validation, printing and the protobuf body of `kubectl create pdb`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any
from unittest import mock

import pytest
from aiohttp import streams
from aiohttp.test_utils import make_mocked_request

from apiserver.app import status_errors
from apiserver.errors import APIError
from apiserver.eviction import check_and_decrement, plan_eviction
from apiserver.handlers import APIHandlers, ServerContext
from apiserver.kinds.poddisruptionbudgets import PodDisruptionBudgetStrategy
from apiserver.protobuf import decode_envelope
from kubelite.resources import PODDISRUPTIONBUDGETS, PODS
from tests.fakeapi import FakeApi
from tests.unit.test_apiserver_protobuf import entry, envelope, field

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def pod(name: str = "a", phase: str = "Running", ready: bool = True, **meta: Any) -> dict:
    return {
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}, **meta},
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def budget(name: str = "web", allowed: int = 1, current: int = 3, desired: int = 2, **spec: Any) -> dict:
    return {
        "metadata": {"name": name, "namespace": "default", "generation": 1},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec},
        "status": {"observedGeneration": 1, "disruptionsAllowed": allowed, "currentHealthy": current,
                   "desiredHealthy": desired, "expectedPods": 3},
    }  # fmt: skip


# ------------------------------------------------------------------------------------ the decision


def test_finished_pending_and_terminating_pods_ignore_every_budget():
    closed = [budget(allowed=0)]
    assert plan_eviction(pod(phase="Succeeded"), closed).budget is None
    assert not plan_eviction(pod(phase="Failed"), closed).pin_resource_version
    pending = plan_eviction(pod(phase="Pending", ready=False), closed)
    assert pending.budget is None and pending.pin_resource_version, "a pending pod may start meanwhile"
    assert plan_eviction(pod(deletionTimestamp="2026-01-01T00:00:00Z"), closed).budget is None


def test_a_ready_pod_spends_a_disruption_of_its_one_budget():
    other = budget("other")
    other["spec"]["selector"] = {"matchLabels": {"app": "db"}}
    plan = plan_eviction(pod(), [budget(), other])
    assert (plan.budget, plan.decrement) == ("web", True)
    assert plan_eviction(pod(), []).budget is None
    with pytest.raises(APIError) as err:
        plan_eviction(pod(), [budget(), budget("web2")])
    assert err.value.code == 500
    assert err.value.message == (
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    )


def test_an_unready_pod_goes_without_spending_when_the_policy_or_a_healthy_budget_allows():
    unready = pod(ready=False)
    healthy = plan_eviction(unready, [budget(allowed=0, current=2, desired=2)])
    assert (healthy.decrement, healthy.pin_resource_version) == (False, True)
    starved = plan_eviction(unready, [budget(allowed=0, current=1, desired=2)])
    assert starved.decrement, "IfHealthyBudget: an unhealthy budget decides as for a ready pod"
    always = plan_eviction(
        unready, [budget(allowed=0, current=1, desired=2, unhealthyPodEvictionPolicy="AlwaysAllow")]
    )
    assert not always.decrement


def test_check_and_decrement_spends_records_and_refuses():
    pdb = check_and_decrement(budget(allowed=1), "a", NOW)
    status = pdb["status"]
    assert status["disruptionsAllowed"] == 0
    assert status["disruptedPods"] == {"a": "2026-01-01T00:00:00Z"}
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("DisruptionAllowed", "False", "InsufficientPods")
    ]
    dry = check_and_decrement(budget(allowed=2), "a", NOW, dry_run=True)["status"]
    assert dry["disruptionsAllowed"] == 1 and "disruptedPods" not in dry
    with pytest.raises(APIError) as refused:
        check_and_decrement(budget(allowed=0, current=2, desired=2), "a", NOW)
    assert refused.value.to_status() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Cannot evict pod as it would violate the pod's disruption budget.",
        "reason": "TooManyRequests",
        "details": {"causes": [{
            "reason": "DisruptionBudget",
            "message": "The disruption budget web needs 2 healthy pods and has 2 currently",
        }]},
        "code": 429,
    }  # fmt: skip
    stale = budget()
    stale["metadata"]["generation"] = 2
    with pytest.raises(APIError) as processing:
        check_and_decrement(stale, "a", NOW)
    assert processing.value.code == 429 and processing.value.headers == {"Retry-After": "10"}
    assert processing.value.details == {
        "causes": [{"reason": "DisruptionBudget",
                    "message": "The disruption budget web is still being processed by the server."}],
        "retryAfterSeconds": 10,
    }  # fmt: skip


# ------------------------------------------------------------------------------------ over HTTP


class Server:
    """The apiserver's handlers and error middleware on the fake API's registry, asked without a socket."""

    def __init__(self, api: FakeApi):
        self.api = api
        self.handlers = APIHandlers(ServerContext(api.registry, api.registry.table, "test"))

    async def send(self, path: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        reader = streams.StreamReader(
            mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop()
        )
        reader.feed_data(json.dumps(body).encode())
        reader.feed_eof()
        request = make_mocked_request(
            "POST", path, headers={"Content-Type": "application/json"}, payload=reader
        )
        response: Any = await status_errors(request, self.handlers.dispatch)
        return response.status, json.loads(response.body), dict(response.headers)

    def post(self, path: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        return self.api.run(self.send(path, body))

    @staticmethod
    def eviction(name: str, query: str = "", **options: Any) -> tuple[str, Any]:
        body = {
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": name, "namespace": "default"}, "deleteOptions": options,
        }  # fmt: skip
        return f"/api/v1/namespaces/default/pods/{name}/eviction{query}", body

    def evict(self, name: str, query: str = "", **options: Any) -> tuple[int, Any, dict[str, str]]:
        return self.post(*self.eviction(name, query, **options))


@pytest.fixture
def api() -> FakeApi:
    api = FakeApi()
    for name in ("a", "b"):
        api.create(PODS, {"metadata": {"name": name, "labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "c", "image": "x"}]}})  # fmt: skip
    api.set_pods()
    return api


def with_status(api: FakeApi, name: str = "web", **status: Any) -> None:
    current = api.get(PODDISRUPTIONBUDGETS, name)
    current["status"].update(observedGeneration=1, **status)
    api.run(api.client.update(PODDISRUPTIONBUDGETS, current, subresource="status"))


def test_an_eviction_spends_the_budget_then_the_next_is_refused_with_429(api):
    server = Server(api)
    api.create(
        PODDISRUPTIONBUDGETS,
        {
            "metadata": {"name": "web"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
        },
    )
    with_status(api, disruptionsAllowed=1, currentHealthy=2, desiredHealthy=1, expectedPods=2)

    code, body, _ = server.evict("a", query="?dryRun=All")
    assert code == 201
    assert api.get(PODDISRUPTIONBUDGETS, "web")["status"]["disruptionsAllowed"] == 1, (
        "a dry run spends nothing"
    )
    assert not api.get(PODS, "a")["metadata"].get("deletionTimestamp")

    code, body, _ = server.evict("a")
    assert (code, body) == (
        201,
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
    )
    status = api.get(PODDISRUPTIONBUDGETS, "web")["status"]
    assert status["disruptionsAllowed"] == 0 and list(status["disruptedPods"]) == ["a"]
    evicted = api.get(PODS, "a")
    assert evicted["metadata"]["deletionTimestamp"], "the pod is being deleted (gracefully)"
    target = [c for c in evicted["status"]["conditions"] if c["type"] == "DisruptionTarget"]
    assert [(c["status"], c["reason"], c["message"]) for c in target] == [
        ("True", "EvictionByEvictionAPI", "Eviction API: evicting")
    ]

    code, body, headers = server.evict("b")
    assert code == 429
    assert body["reason"] == "TooManyRequests"
    assert body["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert body["details"]["causes"] == [
        {
            "reason": "DisruptionBudget",
            "message": "The disruption budget web needs 1 healthy pods and has 2 currently",
        }
    ]
    assert "Retry-After" not in headers
    assert not api.get(PODS, "b")["metadata"].get("deletionTimestamp"), "a refused eviction deletes nothing"

    code, body, _ = server.evict("a")
    assert code == 201, "a pod already terminating is deleted again whatever the budget says"


def test_two_concurrent_evictions_never_spend_one_disruption_twice(api):
    server = Server(api)
    selector = {"matchLabels": {"app": "web"}}
    api.create(
        PODDISRUPTIONBUDGETS,
        {"metadata": {"name": "web"}, "spec": {"maxUnavailable": 1, "selector": selector}},
    )
    with_status(api, disruptionsAllowed=1, currentHealthy=2, desiredHealthy=1, expectedPods=2)

    async def both() -> list[tuple[int, Any, dict[str, str]]]:
        return await asyncio.gather(server.send(*server.eviction("a")), server.send(*server.eviction("b")))

    codes = sorted(code for code, _body, _headers in api.run(both()))
    assert codes == [201, 429]
    assert len(api.get(PODDISRUPTIONBUDGETS, "web")["status"]["disruptedPods"]) == 1


def test_unready_and_finished_pods_pass_a_closed_budget_as_kubernetes_allows(api):
    server = Server(api)
    selector = {"matchLabels": {"app": "web"}}
    spec = {"minAvailable": 2, "selector": selector, "unhealthyPodEvictionPolicy": "AlwaysAllow"}
    api.create(PODDISRUPTIONBUDGETS, {"metadata": {"name": "web"}, "spec": spec})
    with_status(api, disruptionsAllowed=0, currentHealthy=1, desiredHealthy=2, expectedPods=2)
    api.set_pods(ready=False)
    code, body, _ = server.evict("a")
    assert code == 201, body
    assert api.get(PODDISRUPTIONBUDGETS, "web")["status"].get("disruptedPods") is None, "nothing was spent"
    done = api.get(PODS, "b")
    done["status"]["phase"] = "Succeeded"
    api.run(api.client.update(PODS, done, subresource="status"))
    code, body, _ = server.evict("b")
    assert code == 201, "a finished pod disrupts nothing more"


def test_two_budgets_a_wrong_name_and_a_missing_pod(api):
    server = Server(api)
    for name in ("web", "web2"):
        api.create(
            PODDISRUPTIONBUDGETS, {"metadata": {"name": name}, "spec": {"maxUnavailable": 1, "selector": {}}}
        )
    code, body, _ = server.evict("a")
    assert (code, body["message"]) == (
        500,
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
    )
    code, body, _ = server.post("/api/v1/namespaces/default/pods/a/eviction", {"metadata": {"name": "b"}})
    assert (code, body["reason"], body["message"]) == (
        400,
        "BadRequest",
        "name in URL does not match name in Eviction object",
    )
    code, body, _ = server.evict("nope")
    assert (code, body["message"]) == (404, 'pods "nope" not found')


def test_a_budget_whose_status_lags_its_spec_is_retried_later(api):
    server = Server(api)
    api.create(
        PODDISRUPTIONBUDGETS,
        {
            "metadata": {"name": "web"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
        },
    )
    code, body, headers = server.evict("a")  # the controller has not written any status yet
    assert (code, headers.get("Retry-After")) == (429, "10")
    assert body["details"]["retryAfterSeconds"] == 10


# ------------------------------------------------------------------------------------ the kind


def test_both_min_available_and_max_unavailable_is_a_422_naming_the_field_and_nothing_is_created(api):
    with pytest.raises(Exception) as err:
        spec = {"minAvailable": 1, "maxUnavailable": "50%", "selector": {"matchLabels": {"app": "web"}}}
        api.create(PODDISRUPTIONBUDGETS, {"metadata": {"name": "bad"}, "spec": spec})
    status = err.value.status  # type: ignore[attr-defined]
    assert status["code"] == 422 and status["reason"] == "Invalid"
    assert status["message"].startswith(
        'PodDisruptionBudget.policy "bad" is invalid: spec: Invalid value: '
        "policy.PodDisruptionBudgetSpec{MinAvailable:(*intstr.IntOrString)(0xc"
    )
    assert status["message"].endswith(": minAvailable and maxUnavailable cannot be both set")
    assert status["details"]["causes"][0]["field"] == "spec"
    assert api.items(PODDISRUPTIONBUDGETS) == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"minAvailable": "150%"}, 'spec.minAvailable: Invalid value: 150%: must not be greater than 100%'),
        ({"maxUnavailable": -1},
         "spec.maxUnavailable: Invalid value: -1: must be greater than or equal to 0"),
        ({"minAvailable": "half"}, 'spec.minAvailable: Invalid value: half: a valid percent string must be'),
        ({"unhealthyPodEvictionPolicy": "Sometimes"},
         'spec.unhealthyPodEvictionPolicy: Unsupported value: "Sometimes": supported values: "AlwaysAllow", '
         '"IfHealthyBudget"'),
        ({"selector": {"matchExpressions": [{"key": "app", "operator": "In"}]}},
         "spec.selector.matchExpressions[0].values: Required value: "
         "must be specified when `operator` is 'In' or 'NotIn'"),
        ({"selector": {"matchExpressions": [{"key": "app", "operator": "Near", "values": ["x"]}]}},
         'spec.selector.matchExpressions[0].operator: Invalid value: "Near": not a valid selector operator'),
    ],
)  # fmt: skip
def test_validation_messages(api, spec, message):
    with pytest.raises(Exception) as err:
        api.create(PODDISRUPTIONBUDGETS, {"metadata": {"name": "bad"}, "spec": spec})
    assert message in err.value.status["message"]  # type: ignore[attr-defined]


def test_a_new_budget_has_zero_counts_and_prints_n_a_for_the_unset_bound(api):
    body = {"metadata": {"name": "web"}, "spec": {"maxUnavailable": "25%", "selector": {}}}
    created = api.create(PODDISRUPTIONBUDGETS, {**body, "status": {"disruptionsAllowed": 9}})
    assert created["status"] == {
        "disruptionsAllowed": 0,
        "currentHealthy": 0,
        "desiredHealthy": 0,
        "expectedPods": 0,
    }
    strategy = PodDisruptionBudgetStrategy(True)
    assert [c.name for c in strategy.columns] == [
        "Name",
        "Min Available",
        "Max Unavailable",
        "Allowed Disruptions",
        "Age",
    ]
    assert strategy.cells(created, NOW)[:4] == ["web", "N/A", "25%", 0]
    with pytest.raises(Exception) as err:
        current = api.get(PODDISRUPTIONBUDGETS, "web")
        current["status"]["currentHealthy"] = -1
        api.run(api.client.update(PODDISRUPTIONBUDGETS, current, subresource="status"))
    assert (
        "status.currentHealthy: Invalid value: -1: must be greater than or equal to 0"
        in err.value.status["message"]
    )  # type: ignore[attr-defined]


def test_kubectl_create_pdb_protobuf_body_decodes():
    """`kubectl create pdb web --selector=app=web --min-available=1`, with gogo's zero-valued status."""
    selector = entry(1, "app", "web")
    spec = field(1, field(1, 0) + field(2, 1)) + field(2, selector)
    status = field(3, 0) + field(4, 0) + field(5, 0) + field(6, 0) + field(1, 0)
    raw = field(1, field(1, "web") + field(3, "default")) + field(2, spec) + field(3, status)
    assert decode_envelope(envelope("policy/v1", "PodDisruptionBudget", raw)) == {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    }  # fmt: skip
    zero = field(1, field(1, 0) + field(2, 0)) + field(2, selector)
    decoded = decode_envelope(envelope("policy/v1", "PodDisruptionBudget", field(2, zero)))
    assert decoded["spec"]["minAvailable"] == 0, "--min-available=0 is a value, not an unset field"
    percent = field(3, field(1, 1) + field(3, "50%"))
    decoded = decode_envelope(envelope("policy/v1", "PodDisruptionBudget", field(2, percent)))
    assert decoded["spec"] == {"maxUnavailable": "50%"}
