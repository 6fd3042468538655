"""The pure parts of `kubelite`: kubeconfig merging, local cluster commands, generated code."""

import sys

import pytest
import yaml

from kubelite import kubeconfig, protogen
from kubelite.localcluster import ClusterSpec, commands
from kubelite.waiting import ConditionFailed, WaitTimeout, wait_for


def test_kubeconfig_context_is_merged_made_current_and_removed(tmp_path):
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(kubeconfig.merged(None, "other", "http://10.0.0.1:6443")))
    kubeconfig.write_context("kubelite", "http://127.0.0.1:6443", path)
    cfg = yaml.safe_load(path.read_text())
    assert cfg["current-context"] == "kubelite"
    assert {c["name"] for c in cfg["contexts"]} == {"other", "kubelite"}
    assert kubeconfig.load_server(path) == ("http://127.0.0.1:6443", None)
    kubeconfig.write_context("kubelite", "http://127.0.0.1:7443", path)
    assert len(yaml.safe_load(path.read_text())["clusters"]) == 2
    kubeconfig.remove_context("kubelite", path)
    cfg = yaml.safe_load(path.read_text())
    assert [c["name"] for c in cfg["contexts"]] == ["other"] and cfg["current-context"] == ""


def test_local_cluster_runs_each_process_with_the_real_programs_flags(tmp_path):
    spec = ClusterSpec(
        name="t",
        nodes=2,
        api_port=7000,
        etcd_ports=(7001, 7003, 7005),
        etcd_peer_ports=(7002, 7004, 7006),
        first_node_address="127.0.5.2",
        state_dir=str(tmp_path),
    )
    procs = dict(commands(spec))
    assert list(procs) == [
        "etcd-1", "etcd-2", "etcd-3", "apiserver", "scheduler", "controller-manager", "controller-manager-2",
        "kubelet-node-1", "proxy-node-1", "kubelet-node-2", "proxy-node-2",
    ]  # fmt: skip
    # a controller-manager exits when it loses its Lease: its supervisor starts it again
    assert procs["controller-manager-2"][2:] == [
        "kubelite.supervise", "--name", "controller-manager-2", "--", sys.executable, "-m",
        "controller", "--master", "http://127.0.0.1:7000",
        "--bind-address", "127.0.0.1", "--secure-port", "10258",
    ]  # fmt: skip
    assert procs["apiserver"][2:] == [
        "apiserver", "--etcd-servers", "http://127.0.0.1:7001,http://127.0.0.1:7003,http://127.0.0.1:7005",
        "--bind-address", "127.0.0.1",
        "--secure-port", "7000", "--advertise-address", "127.0.0.1",
        "--service-node-port-range", "30000-32767",
    ]  # fmt: skip
    etcd2 = procs["etcd-2"]
    assert etcd2[etcd2.index("--initial-cluster") + 1] == (
        "etcd-1=http://127.0.0.1:7002,etcd-2=http://127.0.0.1:7004,etcd-3=http://127.0.0.1:7006"
    )
    assert etcd2[etcd2.index("--listen-peer-urls") + 1] == "http://127.0.0.1:7004"
    kubelet2 = procs["kubelet-node-2"]
    assert kubelet2[kubelet2.index("--node-ip") + 1] == "127.0.5.3"
    assert kubelet2[kubelet2.index("--docker-network") + 1] == "t"
    proxy1 = procs["proxy-node-1"]
    assert proxy1[proxy1.index("--bind-address") + 1] == "127.0.5.2"


def test_generated_grpc_code_is_fresh():
    generated = protogen.generate()
    assert protogen.stale_files(generated) == [], "run `python -m kubelite.protogen`"


def test_wait_for_gives_up_at_once_when_the_condition_can_no_longer_be_met():
    calls = []

    def dead() -> bool:
        calls.append(1)
        raise ConditionFailed("etcd-3 exited")

    with pytest.raises(ConditionFailed, match="etcd-3 exited"):
        wait_for(dead, "the apiserver", timeout=5, interval=0.01)
    assert len(calls) == 1, "asked again after the condition could no longer be met"
    with pytest.raises(WaitTimeout, match=r"waiting for nothing; last seen: 'ValueError: not yet'"):
        wait_for(lambda: (_ for _ in ()).throw(ValueError("not yet")), "nothing", timeout=0.3, interval=0.1)
