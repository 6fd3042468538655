"""Start and stop a store for integration tests: etcdlite (`python -m etcdlite`) or the real etcd binary.

The simple API, for tests that just need a store:

    with run_etcdlite(tmp_path) as endpoint:      # "http://127.0.0.1:PORT"
        ...
    with run_real_etcd(tmp_path) as endpoint:     # Debian's etcd 3.4, same shape
        ...

Both pick free ports, keep their data and log under `tmp_path`, return once the store answers a
KV Range, and SIGTERM the process (SIGKILL if it lingers) on the way out, also when the test
fails; the stop fails the test unless the store was still running and exited 0 on SIGTERM.
For tests that restart or kill a store, `start_etcdlite` / `start_real_etcd` return an
`EtcdProcess` (`.endpoint`, `.address`, `.data_dir`, `.log()`, `.stop()`, `.kill()`); start
again with the same `data_dir=` to restart on the same data. `etcdctl(endpoint, ...)` runs the
real etcdctl with ETCDCTL_API=3. A missing `etcd`/`etcdctl` binary fails loudly.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc

from kubelite.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from kubelite.ports import free_port
from kubelite.waiting import wait_for
from tests.support import stop_all

T = TypeVar("T")

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
_SERVING = re.compile(r"serving client requests on (\S+):(\d+)")
_counter = itertools.count()


def wait_until(
    condition: Callable[[], T | None], timeout: float, what: str, seen: Callable[[], str] = str
) -> T:
    """kubelite.waiting.wait_for with this module's argument order and a faster poll."""
    return wait_for(condition, what, timeout, interval=0.02, seen=seen)  # type: ignore[arg-type,return-value]


@dataclass
class EtcdProcess:
    """One running store process."""

    process: subprocess.Popen[bytes]
    endpoint: str  # http://127.0.0.1:PORT
    data_dir: Path
    log_path: Path
    killed: bool = False  # by the test, on purpose
    stopped: bool = False  # by stop(): a second stop() just returns the exit code
    # etcd re-raises SIGTERM on itself after shutting down (osutil.HandleInterrupts): -15 is its clean exit
    clean_exits: tuple[int, ...] = (0,)

    @property
    def address(self) -> str:
        """host:port, as etcdctl's --endpoints and grpc channels take it."""
        return self.endpoint.removeprefix("http://")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM and wait; SIGKILL (and fail) if it does not exit in time, and fail if it had died
        by itself before (a member that crashed mid-test). Returns the exit code."""
        if self.process.poll() is None:
            self.stopped = True
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(
                    f"store did not exit within {timeout}s of SIGTERM:\n{self.log()}"
                ) from None
        if not (self.killed or self.stopped):
            raise AssertionError(
                f"store {self.endpoint} had already exited with {self.process.returncode} before it was "
                f"stopped; its log ends:\n{self.log()[-3000:]}"
            )
        return self.process.returncode

    def running(self) -> bool:
        return self.process.poll() is None

    def stop_cleanly(self, timeout: float = STOP_TIMEOUT) -> None:
        """stop(), and fail unless the store was running and exited 0 (or was killed on purpose)."""
        code = self.stop(timeout)
        if code not in self.clean_exits and not self.killed:
            raise AssertionError(
                f"store {self.endpoint} exited {code} on SIGTERM; its log ends:\n{self.log()[-3000:]}"
            )

    def kill(self) -> None:
        """SIGKILL, on purpose: stop() will not count this death against the store."""
        self.killed = True
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(STOP_TIMEOUT)


def _require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise RuntimeError(f"{binary} not found on PATH: install Debian's {package} package")
    return path


def _free_port() -> int:
    return free_port()


def answers(address: str, timeout: float = 1.0) -> bool:
    """Does a KV Range (what `etcdctl endpoint health` sends) succeed?"""
    with grpc.insecure_channel(address) as channel:
        rpc_pb2_grpc.KVStub(channel).Range(rpc_pb2.RangeRequest(key=b"health"), timeout=timeout)
    return True


def all_members_published(address: str, count: int) -> bool:
    """Does MemberList show `count` started members, each with its client URLs? (A member
    publishes its name and client URLs through Raft shortly after it starts, as in etcd.)"""
    with grpc.insecure_channel(address) as channel:
        listing = rpc_pb2_grpc.ClusterStub(channel).MemberList(rpc_pb2.MemberListRequest(), timeout=2)
    return len(listing.members) == count and all(m.name and m.clientURLs for m in listing.members)


def _await_ready(proc: EtcdProcess, timeout: float) -> None:
    def ready() -> bool:
        if proc.process.poll() is not None:
            raise AssertionError(f"store exited with {proc.process.returncode} while starting:\n{proc.log()}")
        return answers(proc.address)

    try:
        wait_until(ready, timeout, f"the store at {proc.endpoint} to answer", seen=lambda: proc.log()[-2000:])
    except BaseException:
        proc.kill()
        raise


def start_etcdlite(
    tmp_path: Path,
    *extra_args: str,
    data_dir: Path | None = None,
    name: str = "default",
    timeout: float = START_TIMEOUT,
) -> EtcdProcess:
    """`python -m etcdlite` on a port the kernel picks (listen URL port 0, read back from its log)."""
    n = next(_counter)
    data_dir = data_dir or tmp_path / f"etcdlite-{n}.etcd"
    log_path = tmp_path / f"etcdlite-{n}.log"
    args = [
        sys.executable,
        "-m",
        "etcdlite",
        f"--name={name}",
        f"--data-dir={data_dir}",
        "--listen-client-urls=http://127.0.0.1:0",
        "--advertise-client-urls=http://127.0.0.1:0",
        *extra_args,
    ]
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, cwd=tmp_path)
    proc = EtcdProcess(process, "", data_dir, log_path)

    def serving() -> str | None:
        if process.poll() is not None:
            raise AssertionError(f"etcdlite exited with {process.returncode} while starting:\n{proc.log()}")
        match = _SERVING.search(proc.log())
        return f"http://{match.group(1)}:{match.group(2)}" if match else None

    try:
        proc.endpoint = wait_until(
            serving, timeout, "etcdlite to log its client port", seen=lambda: proc.log()
        )
    except BaseException:
        proc.kill()
        raise
    _await_ready(proc, timeout)
    return proc


def start_real_etcd(
    tmp_path: Path, *extra_args: str, data_dir: Path | None = None, timeout: float = START_TIMEOUT
) -> EtcdProcess:
    """Debian's etcd (3.4) as one member on free loopback ports; retried if a port got taken meanwhile."""
    etcd = _require("etcd", "etcd-server")
    n = next(_counter)
    data_dir = data_dir or tmp_path / f"etcd-{n}.etcd"
    for attempt in range(3):
        client, peer = f"http://127.0.0.1:{_free_port()}", f"http://127.0.0.1:{_free_port()}"
        log_path = tmp_path / f"etcd-{n}-{attempt}.log"
        args = [
            etcd,
            "--name=default",
            f"--data-dir={data_dir}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            *extra_args,
        ]
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, cwd=tmp_path)
        proc = EtcdProcess(process, client, data_dir, log_path, clean_exits=(0, -signal.SIGTERM))
        try:
            _await_ready(proc, timeout)
            return proc
        except AssertionError:
            if "address already in use" not in proc.log() or attempt == 2:
                raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def run_etcdlite(tmp_path: Path, *extra_args: str, **kwargs: object) -> Iterator[str]:
    """An etcdlite for the duration of the block; yields its endpoint "http://127.0.0.1:PORT"."""
    proc = start_etcdlite(tmp_path, *extra_args, **kwargs)  # type: ignore[arg-type]
    try:
        yield proc.endpoint
    finally:
        stop_stores([proc])


@contextlib.contextmanager
def run_real_etcd(tmp_path: Path, *extra_args: str, **kwargs: object) -> Iterator[str]:
    """A real etcd for the duration of the block; yields its endpoint "http://127.0.0.1:PORT"."""
    proc = start_real_etcd(tmp_path, *extra_args, **kwargs)  # type: ignore[arg-type]
    try:
        yield proc.endpoint
    finally:
        stop_stores([proc])


@contextlib.contextmanager
def run_etcdlite_cluster(tmp_path: Path, members: int = 3) -> Iterator[str]:
    """A Raft cluster of etcdlite members on free loopback ports for the block; yields their client
    endpoints joined by commas, as `--etcd-servers` and `--endpoints` take them."""
    ports = [(_free_port(), _free_port()) for _ in range(members)]
    initial = ",".join(f"m{i}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(ports))
    procs: list[EtcdProcess] = []
    try:
        for i, (client, peer) in enumerate(ports):
            data_dir = tmp_path / f"m{i}.etcd"
            log_path = tmp_path / f"m{i}.log"
            args = [
                sys.executable, "-m", "etcdlite", f"--name=m{i}", f"--data-dir={data_dir}",
                f"--listen-client-urls=http://127.0.0.1:{client}",
                f"--advertise-client-urls=http://127.0.0.1:{client}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster={initial}", "--initial-cluster-state=new",
            ]  # fmt: skip
            with open(log_path, "wb") as log_file:
                process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT, cwd=tmp_path)
            procs.append(EtcdProcess(process, f"http://127.0.0.1:{client}", data_dir, log_path))
        for proc in procs:
            _await_ready(proc, START_TIMEOUT)
        wait_until(
            lambda: all_members_published(procs[0].address, members),
            START_TIMEOUT,
            f"all {members} members to publish their names and client URLs",
            seen=lambda: procs[0].log()[-2000:],
        )
        yield ",".join(proc.endpoint for proc in procs)
    finally:
        stop_stores(procs)


def stop_stores(procs: list[EtcdProcess]) -> None:
    """Stop every store, first started first; fail naming each one that had died or did not exit 0
    on SIGTERM."""
    stop_all(procs[::-1], STOP_TIMEOUT)  # stop_all stops the last one first


def etcdctl(
    endpoint: str, *args: str, input: str | None = None, timeout: float = 15.0, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the real etcdctl (API v3) against `endpoint`; with check, fail showing its output."""
    binary = _require("etcdctl", "etcd-client")
    env = dict(os.environ, ETCDCTL_API="3")
    result = subprocess.run(
        [binary, f"--endpoints={endpoint}", *args],
        input=input,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        command = " ".join(args)
        output = f"stdout: {result.stdout}\nstderr: {result.stderr}"
        raise AssertionError(f"etcdctl {command} exited {result.returncode}\n{output}")
    return result


class RunningCommand:
    """A long-running command (e.g. `etcdctl watch`) whose stdout is collected by a reader thread."""

    def __init__(self, argv: Sequence[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line.rstrip("\n"))

    @property
    def lines(self) -> list[str]:
        return list(self._lines)

    def wait_for_lines(self, expected: list[str], timeout: float = 10.0) -> list[str]:
        """Wait until the output, from its start, begins with `expected`; returns all lines so far."""
        wait_until(
            lambda: self.lines[: len(expected)] == expected or None,
            timeout,
            f"output {expected}",
            seen=lambda: f"output so far: {self.lines}",
        )
        return self.lines

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(STOP_TIMEOUT)


@contextlib.contextmanager
def running_etcdctl(endpoint: str, *args: str) -> Iterator[RunningCommand]:
    """`etcdctl <args>` running in the background for the block (for watch, lease keep-alive)."""
    argv = [_require("etcdctl", "etcd-client"), f"--endpoints={endpoint}", *args]
    command = RunningCommand(argv, dict(os.environ, ETCDCTL_API="3"))
    try:
        yield command
    finally:
        command.stop()
