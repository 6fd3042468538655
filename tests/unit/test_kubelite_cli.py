"""The pure parts of `kubelite`: kubeconfig merging, local cluster commands, generated code."""

import yaml

from kubelite import kubeconfig, protogen
from kubelite.localcluster import ClusterSpec, commands


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
    spec = ClusterSpec(name="t", nodes=2, api_port=7000, etcd_port=7001, first_node_address="127.0.5.2",
                       state_dir=str(tmp_path))  # fmt: skip
    procs = dict(commands(spec))
    assert list(procs) == [
        "etcd", "apiserver", "scheduler", "controller-manager",
        "kubelet-node-1", "proxy-node-1", "kubelet-node-2", "proxy-node-2",
    ]  # fmt: skip
    assert procs["apiserver"][2:] == [
        "apiserver", "--etcd-servers", "http://127.0.0.1:7001", "--bind-address", "127.0.0.1",
        "--secure-port", "7000", "--advertise-address", "127.0.0.1",
        "--service-node-port-range", "30000-32767",
    ]  # fmt: skip
    kubelet2 = procs["kubelet-node-2"]
    assert kubelet2[kubelet2.index("--node-ip") + 1] == "127.0.5.3"
    assert kubelet2[kubelet2.index("--docker-network") + 1] == "t"
    proxy1 = procs["proxy-node-1"]
    assert proxy1[proxy1.index("--bind-address") + 1] == "127.0.5.2"


def test_generated_grpc_code_is_fresh():
    generated = protogen.generate()
    assert protogen.stale_files(generated) == [], "run `python -m kubelite.protogen`"
