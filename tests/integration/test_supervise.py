"""`kubelite.supervise`, the supervisor `kubelite up` runs each controller-manager under: a
component that exits with a failure is started again after a back-off, SIGTERM reaches the
component and ends both with its status, and a supervisor that dies takes its component along.
Real processes; the component is a small Python program that counts its runs in a file.
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path

from kubelite.supervise import restart_delay, restarts_in_log
from tests.support import Process, wait_until

# Exits 3 on its first run; on later runs waits for SIGTERM and exits 0 (a component that lost its
# Lease once, then stands by).
COMPONENT = textwrap.dedent(
    """
    import os, signal, sys, time
    runs = sys.argv[1]
    with open(runs, "a") as f:
        f.write(f"{os.getpid()}\\n")
    if len(open(runs).read().split()) == 1:
        sys.exit(3)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()
    """
)


def start(tmp_path: Path) -> tuple[Process, Path]:
    program, runs = tmp_path / "component.py", tmp_path / "runs"
    program.write_text(COMPONENT)
    args = ["--name", "demo", "--initial-delay", "0.2", "--", sys.executable, str(program), str(runs)]
    return Process("kubelite.supervise", args, tmp_path / "logs", name="supervisor"), runs


def pids(runs: Path) -> list[int]:
    return [int(p) for p in runs.read_text().split()] if runs.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][:1] != "Z"


def test_restart_delay_doubles_up_to_its_cap():
    assert [restart_delay(n, 1, 30) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    log = "x supervisor WARNING: supervisor: demo exited with status 3; restarting in 1s\nother\n"
    assert restarts_in_log(log) == 1 and restarts_in_log("restarting in 1s") == 0


def test_a_failed_component_is_restarted_and_sigterm_ends_both_cleanly(tmp_path):
    supervisor, runs = start(tmp_path)
    try:
        wait_until(lambda: len(pids(runs)) == 2, "the component's second run, after its exit 3")
        second = pids(runs)[1]
        assert alive(second)
        assert restarts_in_log(supervisor.log_path.read_text()) == 1, supervisor.log_tail()
    finally:
        status = supervisor.stop()
    assert status == 0, supervisor.log_tail()
    wait_until(lambda: not alive(second), "the component to exit with its supervisor")


def test_a_killed_supervisor_takes_its_component_along(tmp_path):
    supervisor, runs = start(tmp_path)
    try:
        wait_until(lambda: len(pids(runs)) == 2, "the component's second run")
        component = pids(runs)[1]
        os.kill(supervisor.proc.pid, signal.SIGKILL)
        supervisor.killed = True
        wait_until(lambda: not alive(component), "the component to get SIGTERM when its supervisor died")
    finally:
        supervisor.kill()
