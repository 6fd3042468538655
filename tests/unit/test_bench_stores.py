"""The benchmark's store harness without starting a store: the command lines both stores get, which
start failures end the benchmark and which are retried, the one-cluster check, and the refusals of a
restart."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bench.stores import (
    Cluster,
    Member,
    StoreKind,
    StoreStartError,
    StoreUnavailable,
    _member_argv,
    one_cluster_problem,
    restart_member,
    start_cluster,
    start_failure,
    worth_retrying,
)

PEERS = {"m0": "http://127.0.0.1:7001", "m1": "http://127.0.0.1:7002", "m2": "http://127.0.0.1:7003"}
FLAGS = [
    "--name=m1",
    "--data-dir=/data/m1.etcd",
    "--listen-client-urls=http://127.0.0.1:6002",
    "--advertise-client-urls=http://127.0.0.1:6002",
    "--listen-peer-urls=http://127.0.0.1:7002",
    "--initial-advertise-peer-urls=http://127.0.0.1:7002",
    "--initial-cluster=m0=http://127.0.0.1:7001,m1=http://127.0.0.1:7002,m2=http://127.0.0.1:7003",
    "--initial-cluster-state=new",
    "--initial-cluster-token=bench",
]


class ExitedProcess:
    """Stands in for a child process, running (code None) or exited; nothing here starts one."""

    pid = 4242

    def __init__(self, code: int | None) -> None:
        self.code = code

    def poll(self) -> int | None:
        return self.code


def member(name: str, code: int | None, argv: list[str], tmp_path: Path) -> Member:
    process = ExitedProcess(code)
    return Member(name, process, "127.0.0.1:0", tmp_path / f"{name}.etcd", tmp_path / f"{name}.log", argv)  # type: ignore[arg-type]


def test_both_stores_get_the_same_etcd_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_etcd = tmp_path / "etcd"
    fake_etcd.write_text("#!/bin/sh\n")
    fake_etcd.chmod(fake_etcd.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tmp_path))
    lite = _member_argv(StoreKind.ETCDLITE, "m1", Path("/data/m1.etcd"), 6002, PEERS)
    etcd = _member_argv(StoreKind.ETCD, "m1", Path("/data/m1.etcd"), 6002, PEERS)
    assert lite[1:3] == ["-m", "etcdlite"] and lite[3:] == FLAGS
    assert etcd == [str(fake_etcd), *FLAGS]


def test_a_missing_etcd_binary_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StoreStartError, match="etcd not found on PATH: install Debian's etcd-server package"):
        _member_argv(StoreKind.ETCD, "m0", Path("/data/m0.etcd"), 6001, PEERS)


def test_exit_code_2_is_a_refused_configuration_anything_else_a_failed_start() -> None:
    refused = start_failure("m0", 2, "etcdlite: --initial-cluster lists 3 members")
    assert type(refused) is StoreUnavailable
    assert str(refused) == "m0 exited with 2 while starting:\netcdlite: --initial-cluster lists 3 members"
    for code in (1, -9, 3):
        failed = start_failure("m2", code, "Traceback ...")
        assert type(failed) is StoreStartError, code
        assert str(failed).startswith(f"m2 exited with {code} while starting:")


def test_only_a_port_taken_meanwhile_is_worth_another_start() -> None:
    taken = start_failure("m1", 1, "cannot listen on http://127.0.0.1:7002: address already in use")
    assert worth_retrying(taken)
    assert not worth_retrying(start_failure("m1", 1, "Traceback: ValueError"))
    # a refused configuration stays refused, whatever its log says
    assert not worth_retrying(start_failure("m1", 2, "address already in use"))
    assert not worth_retrying(StoreStartError("m0 did not answer a Range within 30s"))


def test_one_cluster_check_names_the_member_that_lists_too_few_or_does_not_replicate(tmp_path: Path) -> None:
    cluster = Cluster(StoreKind.ETCDLITE, [member(n, None, [], tmp_path) for n in PEERS], tmp_path)
    assert one_cluster_problem(cluster, "m2", 3, [b"token"], b"token") is None
    assert one_cluster_problem(cluster, "m1", 1, [b"token"], b"token") == (
        "etcdlite member m1 lists 1 member(s), not 3: the members do not form one cluster"
    )
    for seen in ([], [b"other"], [b"token", b"token"]):
        assert one_cluster_problem(cluster, "m2", 3, seen, b"token") == (
            "etcdlite member m2 does not see a write made on m0: the members do not replicate"
        ), seen


def test_cluster_endpoints_and_a_stop_that_removes_its_directory_once(tmp_path: Path) -> None:
    workdir = tmp_path / "bench-etcd-x"
    workdir.mkdir()
    (workdir / "m0.log").write_text("started\n")
    members = [member("m0", 0, [], tmp_path), member("m1", 0, [], tmp_path)]
    members[0].client_address, members[1].client_address = "127.0.0.1:6001", "127.0.0.1:6002"
    cluster = Cluster(StoreKind.ETCD, members, workdir)
    assert cluster.addresses == ["127.0.0.1:6001", "127.0.0.1:6002"]
    assert cluster.endpoints == "http://127.0.0.1:6001,http://127.0.0.1:6002"
    empty = Cluster(StoreKind.ETCD, [], workdir)
    empty.stop()
    assert not workdir.exists()
    workdir.mkdir()
    empty.stop()  # the second stop does nothing
    assert workdir.exists()


def test_log_tail_is_the_last_lines_or_nothing(tmp_path: Path) -> None:
    m = member("m0", 0, [], tmp_path)
    assert m.log_tail() == ""
    m.log_path.write_text("".join(f"line {i}\n" for i in range(50)))
    assert m.log_tail(3) == "line 47\nline 48\nline 49"
    assert len(m.log_tail().splitlines()) == 30


def test_a_restart_is_refused_for_a_running_member_or_one_without_a_command_line(tmp_path: Path) -> None:
    running = member("m1", None, ["etcd", "--name=m1"], tmp_path)
    with pytest.raises(StoreStartError, match=r"m1 is still running \(pid 4242\); stop it first"):
        restart_member(running)
    with pytest.raises(StoreStartError, match="m2 has no command line to restart it with"):
        restart_member(member("m2", -9, [], tmp_path))


def test_a_cluster_needs_a_member() -> None:
    with pytest.raises(ValueError, match="at least one member, not 0"):
        start_cluster(StoreKind.ETCDLITE, 0)
