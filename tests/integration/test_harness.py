"""The test harness itself: a process that dies or stops badly fails the test that started it,
naming it, and fixtures started side by side never share a port.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kubelite.ports import NODE_PORTS, ephemeral_range
from tests.conftest import ControlPlane
from tests.integration.etcd_helpers import EtcdProcess, stop_stores
from tests.support import Process, ProcessFailure, http_ok, stop_all, wait_until

MISBEHAVE = "tests.programs.misbehave"


def started(tmp_path: Path, name: str, *args: str) -> Process:
    proc = Process(MISBEHAVE, list(args), tmp_path / "logs", name)
    if "--on-sigterm" in args:
        proc.wait_log("ready", timeout=20)
    return proc


def test_a_process_that_exits_1_on_sigterm_fails_the_teardown_by_name(tmp_path):
    good = started(tmp_path, "good", "--on-sigterm", "0")
    bad = started(tmp_path, "member-2", "--on-sigterm", "1")
    with pytest.raises(ProcessFailure) as failed:
        stop_all([good, bad])
    assert "member-2 exited 1 on SIGTERM" in str(failed.value)
    assert "ready" in str(failed.value), "the failure shows the tail of the process's log"
    assert "good" not in str(failed.value).replace("log ends", "")
    assert not good.running() and not bad.running(), "every process is stopped even when one fails"


def test_a_process_that_died_before_the_teardown_fails_it(tmp_path):
    crashed = started(tmp_path, "scheduler", "--exit-now", "0")
    wait_until(lambda: not crashed.running(), "the stand-in to exit", timeout=20)
    with pytest.raises(ProcessFailure, match="scheduler had already exited with 0 before it was stopped"):
        stop_all([crashed])


def test_a_process_killed_on_purpose_does_not_fail_the_teardown(tmp_path):
    victim = started(tmp_path, "victim", "--on-sigterm", "1")
    victim.kill()
    stop_all([victim])


def test_a_store_that_exits_1_on_sigterm_fails_the_store_fixture(tmp_path):
    log = tmp_path / "store.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", MISBEHAVE, "--on-sigterm", "1"], stdout=out, stderr=subprocess.STDOUT
        )
    store = EtcdProcess(process, "http://127.0.0.1:1", tmp_path, log)
    wait_until(lambda: "ready" in store.log(), "the stand-in store to start", timeout=20)
    with pytest.raises(AssertionError, match=r"store http://127.0.0.1:1 exited 1 on SIGTERM"):
        stop_stores([store])
    assert process.poll() == 1


def test_free_ports_from_concurrent_processes_never_collide():
    """Two processes (two pytest runs, say) take ports at the same time: no port is given twice,
    none from the kernel's ephemeral range (an outgoing connection could take it meanwhile), none
    from the NodePort range."""
    script = (
        "import sys\nfrom kubelite.ports import free_port\n"
        "print(' '.join(str(free_port()) for _ in range(300)), flush=True)\n"
        "sys.stdin.read()  # hold the reservations until the test has both answers\n"
    )
    takers = [
        subprocess.Popen(
            [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        outputs = [taker.stdout.readline() for taker in takers]  # type: ignore[union-attr]
    finally:
        for taker in takers:
            taker.communicate(timeout=60)
    assert all(taker.returncode == 0 for taker in takers)
    first, second = ([int(p) for p in out.split()] for out in outputs)
    assert len(set(first)) == len(first) == 300 and len(set(second)) == 300
    assert not set(first) & set(second), sorted(set(first) & set(second))
    ephemeral = ephemeral_range()
    assert not [p for p in first + second if p in ephemeral or p in NODE_PORTS]


@pytest.mark.parametrize("round_", range(3))
def test_control_planes_started_side_by_side_never_collide(tmp_path, round_):
    planes: list[ControlPlane | None] = [None, None]
    errors: list[BaseException] = []

    def start(i: int) -> None:
        try:
            plane = ControlPlane(tmp_path / f"cp{i}")
            planes[i] = plane
            plane.wait_ready()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    try:
        assert not errors, errors
        a, b = planes
        assert a is not None and b is not None
        assert a.server != b.server and a.etcd != b.etcd
        assert http_ok(a.server + "/readyz") and http_ok(b.server + "/readyz")
    finally:
        for plane in planes:
            if plane is not None:
                plane.close()
