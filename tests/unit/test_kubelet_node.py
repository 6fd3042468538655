"""The Node and Lease the kubelet writes, its flags, and the PLEG's change detection."""

import datetime as dt

import pytest

from kubelet import labels as lbl
from kubelet.config import parse_args, parse_labels, parse_taints
from kubelet.nodestatus import (
    KUBELET_VERSION,
    NodeSettings,
    adopt_node,
    micro_time,
    new_lease,
    new_node,
    node_status,
    renewed_lease,
)
from kubelet.pleg import changed_pods, fingerprints
from kubelet.runtime import ContainerState, NodeFacts, RuntimeContainer

FACTS = NodeFacts(
    runtime_version="docker://20.10.24",
    cpus=2,
    memory_bytes=4 * 2**30,
    os_image="Debian GNU/Linux 12 (bookworm)",
    kernel_version="6.1.0",
    operating_system="linux",
    architecture="amd64",
    machine_id="m1",
    boot_id="b1",
)
SETTINGS = NodeSettings(
    name="node-1",
    ip="127.0.0.2",
    port=10250,
    labels={"tier": "edge"},
    taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}],
    max_pods=50,
)
T1 = dt.datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=dt.UTC)
T2 = T1 + dt.timedelta(seconds=10)


def test_new_node_has_labels_taints_addresses_capacity_and_info():
    node = new_node(SETTINGS, FACTS, T1)
    assert node["metadata"]["labels"] == {
        "kubernetes.io/hostname": "node-1",
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "tier": "edge",
    }
    assert node["spec"]["taints"] == [{"key": "k", "value": "v", "effect": "NoSchedule"}]
    st = node["status"]
    assert st["addresses"] == [
        {"type": "InternalIP", "address": "127.0.0.2"},
        {"type": "Hostname", "address": "node-1"},
    ]
    assert st["capacity"] == {"cpu": "2", "memory": "4194304Ki", "pods": "50"}
    assert st["allocatable"] == st["capacity"]
    assert st["nodeInfo"]["kubeletVersion"] == KUBELET_VERSION
    assert st["nodeInfo"]["containerRuntimeVersion"] == "docker://20.10.24"
    assert all(isinstance(v, str) for v in st["nodeInfo"].values())
    assert st["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["reason"] == "KubeletReady"
    assert ready["message"] == "kubelet is posting ready status"
    types = {c["type"]: c["status"] for c in st["conditions"]}
    assert types == {
        "MemoryPressure": "False",
        "DiskPressure": "False",
        "PIDPressure": "False",
        "Ready": "True",
    }


def test_heartbeat_moves_but_transition_time_stays():
    first = node_status(SETTINGS, FACTS, None, T1)
    second = node_status(SETTINGS, FACTS, first, T2)
    ready = next(c for c in second["conditions"] if c["type"] == "Ready")
    assert ready["lastHeartbeatTime"] == "2026-01-01T00:00:10Z"
    assert ready["lastTransitionTime"] == "2026-01-01T00:00:00Z"


def test_adopting_an_existing_node_adds_our_labels_once():
    existing = {"metadata": {"name": "node-1", "labels": {"mine": "yes"}, "resourceVersion": "3"}, "spec": {}}
    adopted = adopt_node(existing, SETTINGS, FACTS)
    assert adopted["metadata"]["labels"]["mine"] == "yes"
    assert adopted["metadata"]["labels"]["tier"] == "edge"
    assert adopted["metadata"]["resourceVersion"] == "3"
    assert adopt_node(adopted, SETTINGS, FACTS) is None


def test_lease_in_micro_time_owned_by_node():
    assert micro_time(T1) == "2026-01-01T00:00:00.123456Z"
    lease = new_lease(SETTINGS, "node-uid", T1)
    assert lease["metadata"]["namespace"] == "kube-node-lease"
    assert lease["metadata"]["ownerReferences"][0]["uid"] == "node-uid"
    assert lease["spec"] == {
        "holderIdentity": "node-1",
        "leaseDurationSeconds": 40,
        "renewTime": "2026-01-01T00:00:00.123456Z",
    }
    lease["metadata"]["resourceVersion"] = "9"
    renewed = renewed_lease(lease, SETTINGS, "node-uid", T2)
    assert renewed["spec"]["renewTime"] == "2026-01-01T00:00:10.123456Z"
    assert renewed["metadata"]["resourceVersion"] == "9"


def test_flags_parse_into_config():
    _, config = parse_args(
        [
            "--master=http://127.0.0.1:6443",
            "--hostname-override=Node-1",
            "--node-ip=127.0.0.2",
            "--node-labels=a=1,b=2",
            "--register-with-taints=dedicated=gpu:NoSchedule,spot:PreferNoSchedule",
            "--node-status-update-frequency=1m30s",
            "--max-pods=7",
        ]
    )
    assert config.node_name == "node-1"
    assert config.node_labels == {"a": "1", "b": "2"}
    assert config.taints == [
        {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
        {"key": "spot", "effect": "PreferNoSchedule"},
    ]
    assert config.status_update_frequency == 90
    assert config.max_pods == 7
    assert (config.network, config.pause_image, config.port) == ("kubelite", "kubelite/pause:latest", 10250)


@pytest.mark.parametrize(
    "argv",
    [
        ["--node-ip=1.2.3.4", "--register-with-taints=k=v:Sometimes"],
        ["--node-ip=1.2.3.4", "--node-labels=novalue"],
        ["--node-ip=1.2.3.4", "--node-status-update-frequency=soon"],
        ["--node-ip=1.2.3.4", "--max-pods=0"],
    ],
)
def test_bad_flags_exit_with_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_label_and_taint_parsers():
    assert parse_labels("") == {}
    assert parse_taints("") == []
    with pytest.raises(ValueError):
        parse_taints("=v:NoSchedule")


def _ctr(uid, cid, state):
    pod = {"metadata": {"name": "p", "namespace": "d", "uid": uid}}
    return RuntimeContainer(cid, cid, lbl.container_labels(pod, "app", 0, "n", "c"), "i", "i", state)


def test_pleg_reports_pods_whose_containers_changed():
    before = fingerprints([_ctr("a", "1", ContainerState.RUNNING), _ctr("b", "2", ContainerState.RUNNING)])
    after = fingerprints([_ctr("a", "1", ContainerState.EXITED), _ctr("b", "2", ContainerState.RUNNING)])
    assert changed_pods(before, after) == {"a"}
    assert changed_pods(after, fingerprints([_ctr("b", "2", ContainerState.RUNNING)])) == {"a"}
    assert changed_pods({}, after) == {"a", "b"}
    assert changed_pods(after, after) == set()
