"""Histories recorded from concurrent clients against a real single-member etcdlite and against Debian's
etcd are linearizable, and the checker catches a fault injected into a recorded history.

Each recording is bounded by LINCHECK_SECONDS (default 3) and 1500 requests per client per 3 s, except
the paused-store one, which records until its fault schedule is over (bounded too); for a
longer local run: `LINCHECK_SECONDS=30 .venv/bin/pytest tests/integration/test_lincheck_etcd.py`."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.etcd_helpers import run_etcdlite, run_real_etcd, start_etcdlite
from tests.lincheck import Budget, KVOperation, KVOutput, Operation, OpKind, Outcome, check
from tests.lincheck.faults import FaultClock, assert_each_fault_felt
from tests.lincheck.history import Recorder, record
from tests.sizes import DEFAULTS
from tests.support import free_port, record_suite_size

CLIENTS = 6
SECONDS = float(os.environ.get("LINCHECK_SECONDS", str(DEFAULTS["lincheck_seconds"])))
OPS_PER_CLIENT = int(500 * SECONDS)
KEYS = 3
BUDGET = Budget(max_seconds=10 * max(1.0, SECONDS / 3))


def record_history(endpoint: str, seed: int) -> list[KVOperation]:
    return asyncio.run(
        record(
            [endpoint],
            clients=CLIENTS,
            ops_per_client=OPS_PER_CLIENT,
            keys=KEYS,
            deadline_s=SECONDS,
            seed=seed,
        )
    )


def assert_worth_checking(history: list[KVOperation]) -> None:
    """A history that cannot show anything would make the linearizability check pass trivially."""
    completed = [op for op in history if op.output is not None]
    assert len(completed) >= 200, f"only {len(completed)} completed operations in {SECONDS}s"
    assert len({op.client for op in completed}) == CLIENTS
    swaps = [op.output.succeeded for op in completed if op.input.kind is OpKind.CAS and op.output]
    assert True in swaps and False in swaps, "need compare-and-swaps that won and that lost"
    # Reads that saw another client's write: the clients really shared the keys.
    writers = {op.input.value: op.client for op in completed if op.input.kind is not OpKind.GET}
    assert any(
        op.output and op.output.value in writers and writers[op.output.value] != op.client
        for op in completed
        if op.input.kind is OpKind.GET
    )


@pytest.fixture(scope="module")
def etcdlite_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[KVOperation]]:
    record_suite_size("lincheck_seconds", SECONDS)
    with run_etcdlite(tmp_path_factory.mktemp("lincheck-etcdlite")) as endpoint:
        yield record_history(endpoint, seed=1)


def test_etcdlite_history_is_linearizable(etcdlite_history: list[KVOperation]) -> None:
    assert_worth_checking(etcdlite_history)
    result = check(etcdlite_history, budget=BUDGET)
    assert result.ok, result.describe()


def test_real_etcd_history_is_linearizable(tmp_path: Path) -> None:
    with run_real_etcd(tmp_path) as endpoint:
        history = record_history(endpoint, seed=2)
    assert_worth_checking(history)
    result = check(history, budget=BUDGET)
    assert result.ok, result.describe()


def _replace(history: list[KVOperation], index: int, output: KVOutput) -> list[KVOperation]:
    op = history[index]
    return [
        *history[:index],
        Operation(op.client, op.call_time, op.return_time, op.input, output),
        *history[index + 1 :],
    ]


def test_an_edited_read_is_caught(etcdlite_history: list[KVOperation]) -> None:
    history = etcdlite_history
    reads = [n for n, op in enumerate(history) if op.input.kind is OpKind.GET and op.output is not None]
    n = reads[len(reads) // 2]
    read = history[n]
    assert read.output is not None

    # A value nobody wrote.
    bad = _replace(history, n, KVOutput.read("forged", read.output.mod_revision, read.output.revision))
    result = check(bad, budget=BUDGET)
    assert result.outcome is Outcome.NOT_LINEARIZABLE, result.describe()
    [violation] = result.violations
    assert violation.key == read.input.key and violation.blocked == bad[n], result.describe()

    # A stale read: the value of a write on the same key that a later completed write had replaced
    # before this read was sent, with the read's own revisions or with none at all.
    key = read.input.key
    writes = [
        op
        for op in history[:n]
        if op.input.key == key
        and op.input.kind in (OpKind.PUT, OpKind.CAS)
        and op.output is not None
        and op.output.succeeded
    ]
    overwritten = [
        w
        for w in writes
        if any(
            later.call_time > (w.return_time or 0) and (later.return_time or 0) < read.call_time
            for later in writes
        )
        and w.input.value != read.output.value
    ]
    assert overwritten, "no overwritten write before the chosen read"
    old = overwritten[-1]
    assert old.output is not None and old.input.value is not None
    for output in (
        KVOutput.read(old.input.value, old.output.revision, read.output.revision),
        KVOutput.read(old.input.value),
    ):
        result = check(_replace(history, n, output), budget=BUDGET)
        assert result.outcome is Outcome.NOT_LINEARIZABLE, result.describe()
        [violation] = result.violations
        assert violation.key == key, result.describe()


def test_clients_fail_over_from_a_dead_endpoint(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{free_port()}"  # nothing listens: UNAVAILABLE before anything is sent
    with run_etcdlite(tmp_path) as endpoint:
        recorder = Recorder([f"http://{dead}", endpoint], clients=4, keys=KEYS, seed=3)
        history = asyncio.run(recorder.run(ops_per_client=300, deadline_s=SECONDS))
    # Clients 0 and 2 started on the dead endpoint, failed there without sending, and moved on; what
    # they could not send is not in the history.
    on_dead = [f for f in recorder.failures if f.endpoint == dead]
    assert {f.client for f in on_dead} >= {0, 2}, recorder.failures
    assert not any(f.sent for f in on_dead), on_dead
    assert {op.client for op in history if op.output is not None} == {0, 1, 2, 3}
    assert all(op.output is not None for op in history), [op for op in history if op.output is None]
    result = check(history, budget=BUDGET)
    assert result.ok, result.describe()


def test_history_across_a_paused_store_is_linearizable(tmp_path: Path) -> None:
    """While the store is stopped (SIGSTOP) requests time out and are recorded with an unknown outcome;
    after SIGCONT the store may still apply those it had received, and later reads may see them."""
    proc = start_etcdlite(tmp_path)
    faults = FaultClock()

    async def pause_once() -> None:
        # A fault schedule, not synchronisation: stop the store a moment into the run, resume it,
        # and give it a moment to answer again.
        await asyncio.sleep(0.5)
        faults.begin("SIGSTOP of the store")
        os.kill(proc.process.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(1.0)
        finally:
            os.kill(proc.process.pid, signal.SIGCONT)
            faults.end("SIGSTOP of the store")
        await asyncio.sleep(1.0)

    recorder = Recorder([proc.endpoint], clients=4, keys=KEYS, seed=4, op_timeout_s=0.3)
    try:
        # bounded by the count and by a deadline far past the 2.5 s schedule
        outlasted = asyncio.run(recorder.run_during(pause_once(), 20_000, deadline_s=30.0))
    finally:
        os.kill(proc.process.pid, signal.SIGCONT)
        assert proc.stop() == 0, proc.log()
    assert outlasted, "the recording ended before the fault schedule"
    history = recorder.history
    [paused] = assert_each_fault_felt(faults.windows, history, recorder.failures)
    assert paused.unknown, f"no write timed out while the store was stopped: {paused.describe()}"
    resumed = [op for op in history if op.completed and op.call_time > paused.window.end]
    assert resumed, "no request was answered after SIGCONT"
    assert sum(op.output is not None for op in history) >= 200
    result = check(history, budget=BUDGET)
    assert result.ok, result.describe()
