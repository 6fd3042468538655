"""Placement decisions and the FailedScheduling wording users read in `kubectl describe`."""

import random
from collections import Counter

from scheduler.predicates import NodeInfo, failure_message, filter_node, pod_requests
from scheduler.scheduler import choose_node, wants_scheduling


def node(name, ready=True, unschedulable=False, taints=None, labels=None, cpu="2", memory="4Gi", pods="110"):
    return {
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"unschedulable": unschedulable, "taints": taints or []},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pod(name="p", cpu=None, memory=None, node_name="", tolerations=None, node_selector=None):
    requests = {}
    if cpu:
        requests["cpu"] = cpu
    if memory:
        requests["memory"] = memory
    return {
        "metadata": {"name": name, "namespace": "default", "uid": name},
        "spec": {
            "nodeName": node_name,
            "containers": [{"name": "c", "image": "i", "resources": {"requests": requests}}],
            "tolerations": tolerations or [],
            "nodeSelector": node_selector or {},
        },
        "status": {"phase": "Pending"},
    }


def test_requests_add_up_over_containers_and_init_containers_count_as_max():
    p = pod(cpu="250m", memory="64Mi")
    p["spec"]["containers"].append({"name": "d", "resources": {"requests": {"cpu": "0.5"}}})
    p["spec"]["initContainers"] = [{"name": "i", "resources": {"requests": {"cpu": "1", "memory": "1Mi"}}}]
    assert pod_requests(p) == (1000, 64 * 2**20)


def test_not_ready_cordoned_tainted_and_selector_mismatch_are_filtered_with_real_reasons():
    assert filter_node(pod(), NodeInfo(node("n", ready=False))) == (
        "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
    )
    assert filter_node(pod(), NodeInfo(node("n", unschedulable=True))) == "node(s) were unschedulable"
    tainted = node("n", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])
    assert filter_node(pod(), NodeInfo(tainted)) == "node(s) had untolerated taint {dedicated: gpu}"
    tolerating = pod(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu"}])
    assert filter_node(tolerating, NodeInfo(tainted)) is None
    assert filter_node(pod(tolerations=[{"operator": "Exists"}]), NodeInfo(tainted)) is None
    assert filter_node(pod(node_selector={"disk": "ssd"}), NodeInfo(node("n"))) == (
        "node(s) didn't match Pod's node affinity/selector"
    )
    assert (
        filter_node(pod(node_selector={"disk": "ssd"}), NodeInfo(node("n", labels={"disk": "ssd"}))) is None
    )


def test_resources_and_pod_count_are_checked_against_allocatable():
    info = NodeInfo(node("n", cpu="1", memory="1Gi", pods="2"), pods=[pod("a", cpu="600m")])
    assert filter_node(pod(cpu="500m"), info) == "Insufficient cpu"
    assert filter_node(pod(cpu="400m"), info) is None
    assert filter_node(pod(memory="2Gi"), info) == "Insufficient memory"
    info.add(pod("b"))
    assert filter_node(pod(), info) == "Too many pods"
    info.remove("a")
    assert info.requested() == (0, 0) and filter_node(pod(cpu="900m"), info) is None


def test_failure_message_counts_reasons_like_kube_scheduler():
    reasons = Counter({"node(s) were unschedulable": 1, "Insufficient cpu": 2})
    assert failure_message(3, reasons) == (
        "0/3 nodes are available: 2 Insufficient cpu, 1 node(s) were unschedulable."
    )
    assert failure_message(0, Counter()) == "no nodes available to schedule pods"


def test_choose_node_prefers_the_least_loaded_feasible_node():
    busy = NodeInfo(node("busy"), pods=[pod("x", cpu="1500m")])
    idle = NodeInfo(node("idle"))
    cordoned = NodeInfo(node("cordoned", unschedulable=True))
    chosen, reasons = choose_node(pod(cpu="100m"), [busy, idle, cordoned], random.Random(1))
    assert chosen == "idle"
    assert reasons == Counter({"node(s) were unschedulable": 1})
    chosen, reasons = choose_node(pod(cpu="8"), [busy, idle], random.Random(1))
    assert chosen is None and reasons == Counter({"Insufficient cpu": 2})


def test_only_pending_unbound_pods_for_the_default_scheduler_are_scheduled():
    assert wants_scheduling(pod())
    assert not wants_scheduling(pod(node_name="n"))
    other = pod()
    other["spec"]["schedulerName"] = "my-scheduler"
    assert not wants_scheduling(other)
    deleting = pod()
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not wants_scheduling(deleting)


def test_the_cache_counts_bound_and_assumed_pods_on_their_nodes_once():
    from scheduler.cache import SchedulerCache

    cache = SchedulerCache()
    cache.set_node(node("n1", cpu="1"))
    cache.set_node(node("n2", cpu="1"))
    bound = pod("a", cpu="600m", node_name="n1")
    cache.set_pod(bound)
    waiting = pod("b", cpu="300m")
    cache.set_pod(waiting)  # not bound: counts nowhere
    cache.assume(waiting, "n2")  # bound by the scheduler, not yet seen bound
    cache.set_pod(waiting)  # the informer still shows it unbound: the assumption holds
    by_name = {i.name: i for i in cache.nodes.values()}
    assert by_name["n1"].requested() == (600, 0) and by_name["n2"].requested() == (300, 0)
    cache.set_pod({**waiting, "spec": {**waiting["spec"], "nodeName": "n2"}})  # seen bound: no double count
    assert by_name["n2"].requested() == (300, 0) and cache.assumed == {}
    cache.set_pod({**bound, "status": {"phase": "Succeeded"}})  # finished pods free their node
    assert by_name["n1"].requested() == (0, 0)
    cache.remove_pod(waiting)
    assert by_name["n2"].pod_count == 0
    failed = pod("c", cpu="100m")
    cache.assume(failed, "n1")
    cache.forget(failed)  # a binding that failed
    assert by_name["n1"].pod_count == 0


def test_pods_listed_before_their_node_count_once_the_node_arrives():
    from scheduler.cache import SchedulerCache

    cache = SchedulerCache()
    cache.set_pod(pod("early", cpu="500m", node_name="late"))
    cache.set_node(node("late"))
    [info] = cache.nodes.values()
    assert info.requested() == (500, 0) and info.pod_count == 1
