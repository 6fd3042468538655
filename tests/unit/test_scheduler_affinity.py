"""Required node affinity: the matching rules (kubelite.scheduling) and the scheduler honouring them,
with the FailedScheduling wording users read, and pods that name their node looked at alone."""

from __future__ import annotations

import random

from kubelite.scheduling import (
    matches_node_affinity,
    target_node_name,
    target_node_names,
    term_matches,
    tolerates,
    untolerated_taint,
)
from scheduler.predicates import NodeInfo, failure_message, filter_node
from scheduler.scheduler import candidate_nodes, choose_node


def node(name: str, **labels: str) -> dict:
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }


def req(key: str, op: str, *values: str) -> dict:
    out: dict = {"key": key, "operator": op}
    if values:
        out["values"] = list(values)
    return out


def affinity(*terms: dict) -> dict:
    return {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}
    }


def pod(spec_affinity: dict | None = None, **spec) -> dict:
    body = {"containers": [{"name": "c", "image": "i"}], **spec}
    if spec_affinity is not None:
        body["affinity"] = spec_affinity
    return {"metadata": {"name": "p", "namespace": "default", "uid": "p"}, "spec": body}


def test_operators_on_labels():
    n = node("n1", zone="a", cores="8")
    assert term_matches({"matchExpressions": [req("zone", "In", "a", "b")]}, n)
    assert not term_matches({"matchExpressions": [req("zone", "NotIn", "a")]}, n)
    assert term_matches({"matchExpressions": [req("gpu", "NotIn", "yes")]}, n)  # absent key: not in
    assert term_matches({"matchExpressions": [req("zone", "Exists")]}, n)
    assert term_matches({"matchExpressions": [req("gpu", "DoesNotExist")]}, n)
    assert term_matches({"matchExpressions": [req("cores", "Gt", "4")]}, n)
    assert not term_matches({"matchExpressions": [req("cores", "Lt", "4")]}, n)
    assert not term_matches({"matchExpressions": [req("zone", "Gt", "4")]}, n)  # not a number
    assert not term_matches({"matchExpressions": [req("zone", "In", "a"), req("gpu", "Exists")]}, n)  # ANDed
    assert not term_matches({}, n)  # an empty term matches nothing


def test_match_fields_name_the_node():
    n = node("n1")
    assert term_matches({"matchFields": [req("metadata.name", "In", "n1")]}, n)
    assert not term_matches({"matchFields": [req("metadata.name", "In", "n2")]}, n)
    assert term_matches({"matchFields": [req("metadata.name", "NotIn", "n2")]}, n)
    assert not term_matches({"matchFields": [req("metadata.labels", "In", "n1")]}, n)  # unsupported field
    assert not term_matches({"matchFields": [req("metadata.name", "In", "n1", "n2")]}, n)  # one value only


def test_terms_are_ored_and_node_selector_anded():
    spec = pod(
        affinity(
            {"matchExpressions": [req("zone", "In", "a")]}, {"matchExpressions": [req("zone", "In", "b")]}
        )
    )
    assert matches_node_affinity(spec["spec"], node("n", zone="b"))
    assert not matches_node_affinity(spec["spec"], node("n", zone="c"))
    spec["spec"]["nodeSelector"] = {"disk": "ssd"}
    assert not matches_node_affinity(spec["spec"], node("n", zone="b"))
    assert matches_node_affinity(spec["spec"], node("n", zone="b", disk="ssd"))
    assert not matches_node_affinity(pod(affinity())["spec"], node("n"))  # no terms: no node


def test_target_nodes_of_a_daemon_pod():
    daemon = pod(affinity({"matchFields": [req("metadata.name", "In", "n2")]}))
    assert target_node_names(daemon["spec"]) == {"n2"} and target_node_name(daemon) == "n2"
    assert target_node_names(pod(affinity({"matchExpressions": [req("zone", "In", "a")]}))["spec"]) is None
    assert target_node_names(pod()["spec"]) is None
    assert target_node_name({"spec": {"nodeName": "n9"}}) == "n9"


def test_tolerations():
    taint = {"key": "k", "value": "v", "effect": "NoSchedule"}
    assert tolerates({"key": "k", "operator": "Exists"}, taint)
    assert tolerates({"operator": "Exists"}, taint)
    assert tolerates({"key": "k", "value": "v"}, taint)
    assert not tolerates({"key": "k", "value": "w"}, taint)
    assert not tolerates({"key": "k", "operator": "Exists", "effect": "NoExecute"}, taint)
    assert untolerated_taint([taint], []) == taint
    assert untolerated_taint([taint], [], ("NoExecute",)) is None


def test_scheduler_honours_required_affinity_with_the_real_wording():
    infos = [NodeInfo(node("n1", zone="a")), NodeInfo(node("n2", zone="b"))]
    p = pod(affinity({"matchExpressions": [req("zone", "In", "b")]}))
    assert filter_node(p, infos[0]) == "node(s) didn't match Pod's node affinity/selector"
    assert filter_node(p, infos[1]) is None
    chosen, _ = choose_node(p, infos, random.Random(1))
    assert chosen == "n2"
    nowhere = pod(affinity({"matchExpressions": [req("zone", "In", "c")]}))
    chosen, reasons = choose_node(nowhere, infos, random.Random(1))
    assert chosen is None
    assert failure_message(2, reasons) == (
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
    )


def test_a_pod_naming_its_node_is_weighed_against_that_node_only():
    nodes = {f"n{i}": NodeInfo(node(f"n{i}")) for i in range(100)}
    daemon = pod(affinity({"matchFields": [req("metadata.name", "In", "n42")]}))
    infos, ruled_out = candidate_nodes(daemon, nodes)
    assert [i.name for i in infos] == ["n42"] and ruled_out == 99
    chosen, _ = choose_node(daemon, infos, random.Random(1), ruled_out)
    assert chosen == "n42"
    gone = pod(affinity({"matchFields": [req("metadata.name", "In", "n100")]}))
    infos, ruled_out = candidate_nodes(gone, nodes)
    chosen, reasons = choose_node(gone, infos, random.Random(1), ruled_out)
    assert chosen is None
    assert failure_message(len(infos) + ruled_out, reasons) == (
        "0/100 nodes are available: 100 node(s) didn't match Pod's node affinity/selector."
    )
