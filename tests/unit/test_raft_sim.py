"""Deterministic simulation of etcdlite's Raft core: 3- and 5-member clusters under chaos.

Each seed runs a cluster (tests/raftsim.py) on a network that drops, delays, duplicates,
reorders and partitions messages, with crashes and restarts from persisted state only, random
proposals and read-index requests; safety is checked after every event, then the network is
healed and the test waits for a stable leader and for proposals made to it to be applied
everywhere (liveness).

Seeds are spread over one worker process per CPU (the core is pure Python, about 30 ms a seed).
Sizes:
- default: 2,000 seeds (about 35 s on this 2-core machine, 64 s in one process);
- long mode: `RAFT_SIM_SEEDS=20000 .venv/bin/pytest tests/unit/test_raft_sim.py -q` (about 6 minutes);
- one seed: `RAFT_SIM_SEED=1234 .venv/bin/pytest tests/unit/test_raft_sim.py -q` (what a failure prints).
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from concurrent.futures import ProcessPoolExecutor

import pytest

from etcdlite.raft.storage import MemoryStorage
from etcdlite.raft.types import HardState
from tests.raftsim import Cluster, Faults, SafetyViolation, run_simulation
from tests.sizes import DEFAULTS
from tests.support import record_suite_size

CHUNK = 50
ROUNDS = 150  # chaos rounds (ticks) per seed before healing

# Profiles rotate with the seed so every size of run covers every kind of fault.
# (name, faults, run_simulation keyword arguments)
PROFILES: list[tuple[str, Faults, dict]] = [
    (
        "mixed",
        Faults(drop=0.05, duplicate=0.05, max_delay=3, crash=0.01, restart=0.05, partition=0.01, heal=0.05),
        {"snapshot_every": 20},
    ),
    ("lossy", Faults(drop=0.2, duplicate=0.1, max_delay=5, crash=0.005, restart=0.05), {}),
    ("partitions", Faults(drop=0.02, max_delay=2, partition=0.03, heal=0.03), {"snapshot_every": 10}),
    (
        "crashes",
        Faults(drop=0.02, duplicate=0.02, max_delay=2, crash=0.03, restart=0.1),
        {"snapshot_every": 5},
    ),
    (
        "membership",
        Faults(drop=0.05, duplicate=0.05, max_delay=3, crash=0.01, restart=0.05, partition=0.01, heal=0.05),
        {"snapshot_every": 10, "spares": 2, "conf_change_prob": 0.05, "transfer_prob": 0.02},
    ),
]


def seeds() -> list[int]:
    one = os.environ.get("RAFT_SIM_SEED")
    if one:
        return [int(one)]
    return list(range(int(os.environ.get("RAFT_SIM_SEEDS", str(DEFAULTS["raft_sim_seeds"])))))


def profile_of(seed: int) -> tuple[int, str, Faults, dict]:
    n = 5 if seed % 3 == 0 else 3
    name, faults, kwargs = PROFILES[seed % len(PROFILES)]
    return n, name, faults, kwargs


def reproduce(seed: int) -> str:
    n, name, _, _ = profile_of(seed)
    return (
        f"seed {seed} ({n} members, profile {name}); "
        f"reproduce: RAFT_SIM_SEED={seed} .venv/bin/pytest tests/unit/test_raft_sim.py -q"
    )


def simulate(seed: int) -> Cluster:
    n, _, faults, kwargs = profile_of(seed)
    return run_simulation(seed, n, rounds=ROUNDS, faults=faults, **kwargs)


def run_seed(seed: int) -> Cluster:
    try:
        return simulate(seed)
    except Exception as exc:
        pytest.fail(f"{reproduce(seed)} failed: {type(exc).__name__}: {exc}", pytrace=True)


def run_chunk(chunk: list[int]) -> tuple[int, list[str]]:
    """In a worker process: the entries applied over the chunk, and a report per failed seed."""
    applied, failures = 0, []
    for seed in chunk:
        try:
            applied += simulate(seed).checker.max_applied
        except Exception:
            failures.append(f"{reproduce(seed)} failed:\n{traceback.format_exc()}")
    return applied, failures


ALL = seeds()
CHUNKS = [ALL[i : i + CHUNK] for i in range(0, len(ALL), CHUNK)]


@pytest.mark.timeout(max(600, len(ALL) // 10))  # the long mode outgrows the suite's 600 s per test
def test_seeded_chaos_keeps_raft_safe_and_live() -> None:
    record_suite_size("raft_sim_seeds", len(ALL))
    if len(ALL) == 1:
        run_seed(ALL[0])
        return
    # spawn, not fork: other tests in this pytest process may have started grpc's threads
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1, mp_context=context) as pool:
        results = list(pool.map(run_chunk, CHUNKS))
    failures = [f for _, chunk_failures in results for f in chunk_failures]
    assert not failures, f"{len(failures)} of {len(ALL)} seeds failed; first:\n{failures[0]}"
    # The runs did real work: every run commits at least the bootstrap entries and the final proposals.
    applied = sum(a for a, _ in results)
    assert applied >= len(ALL) * 6, f"{len(ALL)} seeds applied only {applied} entries in all"
    assert ALL, "RAFT_SIM_SEEDS=0 runs no simulation at all"


def test_simulation_exercises_every_fault() -> None:
    """Guard against a simulation that quietly stops injecting faults (and so can no longer fail)."""
    crashes = snapshots = reads = changes = 0
    for seed in range(10):
        c = run_seed(seed)
        crashes += sum(sn.incarnation for sn in c.nodes.values())
        snapshots += sum(1 for sn in c.nodes.values() if sn.storage.snapshot().metadata.index > 0)
        reads += c.answered_reads
        changes += c.membership_changed
    assert crashes > 0 and snapshots > 0 and reads > 0 and changes > 0, (crashes, snapshots, reads, changes)


class _ForgetfulStorage(MemoryStorage):
    """A broken driver that never persists term and vote: the bug of the known-bad Python Rafts."""

    def set_hard_state(self, hs: HardState) -> None:
        self.hard_state = HardState(commit=hs.commit)


def test_simulation_catches_a_driver_that_forgets_its_vote() -> None:
    faults = Faults(drop=0.02, max_delay=2, crash=0.05, restart=0.3, partition=0.02, heal=0.05)
    caught = []
    for seed in range(200):
        c = Cluster([1, 2, 3], seed, faults)
        for sn in c.nodes.values():
            broken = _ForgetfulStorage()
            broken.append(sn.storage.entries(1, sn.storage.last_index() + 1))
            broken.set_hard_state(sn.storage.hard_state)
            sn.storage = broken
            c.restart(sn.id)
        try:
            for _ in range(200):
                c.round()
        except SafetyViolation as exc:
            caught.append((seed, str(exc)))
            break
    assert caught, "200 seeds of a vote-forgetting cluster found no safety violation"
