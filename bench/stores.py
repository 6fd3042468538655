"""Start and stop the two stores under test: real etcd (Debian's `etcd` binary) and etcdlite.

A store is a `Cluster` of `members` members on free loopback ports, each with its own data
directory under one temporary directory. Both kinds get the same etcd flags (`--initial-cluster`
listing every member). Several members are checked to form one cluster (every member lists all
and sees a write made on the first); if not, `StoreUnavailable` says why the store cannot be
measured. A member that was killed (the failover part) can be restarted on its data directory.

Touches: child processes (started in their own session, killed if the harness dies, SIGTERM then
SIGKILL on stop), loopback ports, a temporary directory removed on stop.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from kubelite.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kubelite.ports import free_port

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1
_START_ATTEMPTS = 3


class StoreKind(enum.Enum):
    ETCD = "etcd"
    ETCDLITE = "etcdlite"


class StoreStartError(RuntimeError):
    """A store did not come up; the message ends with the tail of its log."""


class StoreUnavailable(StoreStartError):
    """The store refused the configuration (e.g. etcdlite before Raft, asked for 3 members)."""


@dataclass
class Member:
    """One running member process."""

    name: str
    process: subprocess.Popen[bytes]
    client_address: str  # host:port, as grpc channels and etcdctl --endpoints take it
    data_dir: Path
    log_path: Path
    argv: list[str] = field(default_factory=list)  # to restart it on the same data directory

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers; never raises for a process that is already gone."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
                return
            except subprocess.TimeoutExpired:
                log.warning("%s did not exit within %.0fs of SIGTERM; killing it", self.name, STOP_TIMEOUT)
                self.process.kill()
        self.process.wait(STOP_TIMEOUT)


@dataclass
class Cluster:
    kind: StoreKind
    members: list[Member]
    workdir: Path
    _stopped: bool = field(default=False, repr=False)

    @property
    def addresses(self) -> list[str]:
        return [m.client_address for m in self.members]

    @property
    def endpoints(self) -> str:
        """etcdctl's --endpoints value."""
        return ",".join(f"http://{a}" for a in self.addresses)

    def stop(self) -> None:
        """Stop every member and remove the data directories; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        try:
            for member in self.members:
                member.stop()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)


def die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the harness dies, so no store outlives it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def child_process(
    argv: list[str], log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A child in its own session (a terminal Ctrl-C reaches only the harness, which stops it)."""
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )


def _member_argv(
    kind: StoreKind, name: str, data_dir: Path, client_port: int, peer_urls: dict[str, str]
) -> list[str]:
    client = f"http://127.0.0.1:{client_port}"
    flags = [
        f"--name={name}",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer_urls[name]}",
        f"--initial-advertise-peer-urls={peer_urls[name]}",
        "--initial-cluster=" + ",".join(f"{n}={u}" for n, u in peer_urls.items()),
        "--initial-cluster-state=new",
        "--initial-cluster-token=bench",
    ]
    if kind is StoreKind.ETCD:
        etcd = shutil.which("etcd")
        if etcd is None:
            raise StoreStartError("etcd not found on PATH: install Debian's etcd-server package")
        return [etcd, *flags]
    return [sys.executable, "-m", "etcdlite", *flags]


def answers(address: str, timeout: float = 1.0) -> bool:
    """A linearizable Range succeeds: the member is serving and (with several) a leader exists."""
    with grpc.insecure_channel(address) as channel:
        rpc_pb2_grpc.KVStub(channel).Range(rpc_pb2.RangeRequest(key=b"health"), timeout=timeout)
    return True


def start_failure(name: str, code: int, log_tail: str) -> StoreStartError:
    """Why a member that exited while starting cannot be measured: exit code 2 is a configuration the
    store refuses (StoreUnavailable: the benchmark goes on without it), anything else a failed start."""
    error = StoreUnavailable if code == 2 else StoreStartError
    return error(f"{name} exited with {code} while starting:\n{log_tail}")


def _await_ready(members: list[Member], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(members)
    last_error = ""
    while pending:
        member = pending[0]
        code = member.process.poll()
        if code is not None:
            raise start_failure(member.name, code, member.log_tail())
        try:
            answers(member.client_address)
            pending.pop(0)
            continue
        except grpc.RpcError as exc:
            last_error = f"{exc.code()}: {exc.details()}"
        if time.monotonic() > deadline:
            raise StoreStartError(
                f"{member.name} did not answer a Range on {member.client_address} within {timeout:.0f}s "
                f"(last: {last_error}):\n{member.log_tail()}"
            )
        time.sleep(0.1)


def restart_member(member: Member, timeout: float = START_TIMEOUT) -> None:
    """Start a member that exited (e.g. SIGKILLed) again on its data directory and flags; returns once
    it answers a linearizable Range (so it found a leader)."""
    if member.process.poll() is None:
        raise StoreStartError(f"{member.name} is still running (pid {member.pid}); stop it first")
    if not member.argv:
        raise StoreStartError(f"{member.name} has no command line to restart it with")
    member.process = child_process(member.argv, member.log_path)
    _await_ready([member], timeout)


def one_cluster_problem(
    cluster: Cluster, member: str, listed: int, values: list[bytes], written: bytes
) -> str | None:
    """What one member's answers show wrong with `cluster`: it lists `listed` members and reads
    `values` for the key the first member wrote `written` to. None when it is one replicating cluster."""
    if listed != len(cluster.members):
        return (
            f"{cluster.kind.value} member {member} lists {listed} member(s), "
            f"not {len(cluster.members)}: the members do not form one cluster"
        )
    if values != [written]:
        return (
            f"{cluster.kind.value} member {member} does not see a write made on "
            f"{cluster.members[0].name}: the members do not replicate"
        )
    return None


def _verify_one_cluster(cluster: Cluster) -> None:
    """Refuse members that serve but do not replicate to each other (several single-member stores
    started with one --initial-cluster): every member must list them all and see a write made on
    the first one."""
    key, value = b"/bench/cluster-check", os.urandom(16)
    with grpc.insecure_channel(cluster.addresses[0]) as channel:
        rpc_pb2_grpc.KVStub(channel).Put(rpc_pb2.PutRequest(key=key, value=value), timeout=5)
    for member in cluster.members:
        with grpc.insecure_channel(member.client_address) as channel:
            listed = rpc_pb2_grpc.ClusterStub(channel).MemberList(rpc_pb2.MemberListRequest(), timeout=5)
            got = rpc_pb2_grpc.KVStub(channel).Range(rpc_pb2.RangeRequest(key=key), timeout=5)
        problem = one_cluster_problem(
            cluster, member.name, len(listed.members), [kv.value for kv in got.kvs], value
        )
        if problem is not None:
            raise StoreUnavailable(problem)
    with grpc.insecure_channel(cluster.addresses[0]) as channel:
        rpc_pb2_grpc.KVStub(channel).DeleteRange(rpc_pb2.DeleteRangeRequest(key=key), timeout=5)


def worth_retrying(exc: StoreStartError) -> bool:
    """Only a port taken between choosing it and binding it is worth another start on new ports."""
    return not isinstance(exc, StoreUnavailable) and "address already in use" in str(exc)


def start_cluster(kind: StoreKind, members: int = 1, timeout: float = START_TIMEOUT) -> Cluster:
    """`members` members of `kind` on free loopback ports, returned once every one answers a Range."""
    if members < 1:
        raise ValueError(f"a cluster needs at least one member, not {members}")
    last: StoreStartError | None = None
    for attempt in range(_START_ATTEMPTS):
        workdir = Path(tempfile.mkdtemp(prefix=f"bench-{kind.value}-"))
        names = [f"m{i}" for i in range(members)]
        peer_urls = {n: f"http://127.0.0.1:{free_port()}" for n in names}
        started: list[Member] = []
        cluster = Cluster(kind, started, workdir)
        try:
            for name in names:
                port = free_port()
                data_dir = workdir / f"{name}.etcd"
                log_path = workdir / f"{name}.log"
                argv = _member_argv(kind, name, data_dir, port, peer_urls)
                process = child_process(argv, log_path)
                started.append(Member(name, process, f"127.0.0.1:{port}", data_dir, log_path, argv))
            _await_ready(started, timeout)
            if members > 1:
                _verify_one_cluster(cluster)
            log.info("%s: %d member(s) serving on %s", kind.value, members, ", ".join(cluster.addresses))
            return cluster
        except StoreStartError as exc:
            cluster.stop()
            if not worth_retrying(exc):
                raise
            last = exc
            log.info("%s: a port was taken while starting (attempt %d); retrying", kind.value, attempt + 1)
        except BaseException:
            cluster.stop()
            raise
    assert last is not None
    raise last


@contextlib.contextmanager
def running_cluster(kind: StoreKind, members: int = 1) -> Iterator[Cluster]:
    """A fresh cluster for the block; stopped and its directory removed afterwards, also on errors."""
    cluster = start_cluster(kind, members)
    try:
        yield cluster
    finally:
        cluster.stop()


def etcdctl_env() -> dict[str, str]:
    return dict(os.environ, ETCDCTL_API="3")
