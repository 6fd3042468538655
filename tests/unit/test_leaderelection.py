"""Leader election on a Lease: the pure decisions (take when empty, expired or ours; never while
another holder's lease is in force; step down on release), the flags and their validation, and
the elector and the controller-manager's leadership loop on the fake API and its fake clock."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
from types import SimpleNamespace

import pytest

from controller.healthz import render
from controller.manager import ControllerManager, LeadershipLost
from kubelite.client import ApiError
from kubelite.events import EventRecorder
from kubelite.leaderelection import (
    LeaderElectionConfig,
    LeaderElectionRecord,
    LeaderElector,
    LeaseLock,
    Observed,
    add_flags,
    config_from_flags,
)
from kubelite.leaderelection.record import (
    leader_health,
    next_record,
    observe,
    raw_of,
    release_record,
)
from kubelite.resources import EVENTS, LEASES, NAMESPACES, PODS
from tests.fakeapi import START, FakeApi

T0 = START


def rec(
    holder: str, duration: int = 15, transitions: int = 0, acquired: dt.datetime = T0
) -> LeaderElectionRecord:
    return LeaderElectionRecord(holder, duration, acquired, acquired, transitions)


def seen(record: LeaderElectionRecord, at: float) -> Observed:
    return Observed(record, raw_of(record.to_spec()), at)


# --- the pure decisions ---------------------------------------------------------------------------


def test_a_lease_without_holder_is_taken_at_once_and_counts_a_transition():
    current = rec("", duration=1, transitions=3)
    observed = seen(current, at=100.0)  # just released: no wait, even though it was seen just now
    wall = T0 + dt.timedelta(seconds=5)
    taken = next_record("b", 15, observed, current, wall, now=100.0)
    assert taken == LeaderElectionRecord("b", 15, wall, wall, 4)


def test_another_holders_lease_is_respected_until_it_has_not_changed_for_its_duration():
    current = rec("a", duration=15, transitions=2)
    observed = seen(current, at=100.0)
    assert next_record("b", 15, observed, current, T0, now=100.0) is None
    assert next_record("b", 15, observed, current, T0, now=114.9) is None
    wall = T0 + dt.timedelta(seconds=15)
    assert next_record("b", 15, observed, current, wall, now=115.0) == LeaderElectionRecord(
        "b", 15, wall, wall, 3
    )


def test_expiry_is_judged_by_the_candidates_own_clock_not_by_the_renew_time_in_the_record():
    # the holder's clock is an hour behind: its renewTime looks stale, yet it renewed just now
    stale = LeaderElectionRecord("a", 15, T0, T0 - dt.timedelta(hours=1), 0)
    observed = observe(Observed(), stale, raw_of(stale.to_spec()), now=50.0)
    assert next_record("b", 15, observed, stale, T0, now=51.0) is None


def test_only_a_change_of_the_record_restarts_the_expiry_clock():
    first = rec("a")
    observed = observe(Observed(), first, raw_of(first.to_spec()), now=10.0)
    same = observe(observed, first, raw_of(first.to_spec()), now=20.0)
    assert same.time == 10.0, "reading the same record again must not extend the holder's lease"
    renewed = LeaderElectionRecord("a", 15, T0, T0 + dt.timedelta(seconds=2), 0)
    assert observe(same, renewed, raw_of(renewed.to_spec()), now=20.0).time == 20.0


def test_the_holder_renews_its_own_lease_keeping_acquire_time_and_transitions():
    current = rec("a", transitions=4, acquired=T0)
    observed = seen(current, at=0.0)
    wall = T0 + dt.timedelta(seconds=30)
    renewed = next_record("a", 15, observed, current, wall, now=30.0)  # even when past its duration
    assert renewed == LeaderElectionRecord("a", 15, T0, wall, 4)


def test_release_empties_the_holder_with_a_one_second_lease_and_only_for_the_leader():
    observed = seen(rec("a", transitions=2), at=0.0)
    wall = T0 + dt.timedelta(seconds=7)
    assert release_record(observed, "a", wall) == LeaderElectionRecord("", 1, wall, wall, 2)
    assert release_record(observed, "b", wall) is None
    spec = LeaderElectionRecord("", 1, wall, wall, 2).to_spec()
    assert spec["holderIdentity"] == "" and spec["leaseDurationSeconds"] == 1
    assert spec["renewTime"] == "2026-01-01T00:00:07.000000Z"


def test_healthz_fails_only_a_leader_stuck_past_its_lease_and_the_tolerance():
    observed = seen(rec("a"), at=0.0)
    assert leader_health(observed, "b", "kcm", 15, 20, now=1000.0) is None, "a standby is healthy"
    assert leader_health(observed, "a", "kcm", 15, 20, now=35.0) is None
    assert leader_health(observed, "a", "kcm", 15, 20, now=35.1) == (
        "failed election to renew leadership on lease kcm"
    )


def test_the_record_round_trips_through_a_lease_spec():
    record = LeaderElectionRecord("host_1", 15, T0, T0 + dt.timedelta(microseconds=5), 9)
    spec = record.to_spec()
    assert spec == {
        "holderIdentity": "host_1", "leaseDurationSeconds": 15, "leaseTransitions": 9,
        "acquireTime": "2026-01-01T00:00:00.000000Z", "renewTime": "2026-01-01T00:00:00.000005Z",
    }  # fmt: skip
    assert LeaderElectionRecord.from_spec(spec) == record


# --- flags and validation -------------------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_flags(parser, "kube-controller-manager")
    return parser.parse_args(list(argv))


def test_flags_default_as_kube_controller_manager_and_take_go_bools():
    args = parse()
    assert args.leader_elect is True
    config = config_from_flags(args, "me")
    assert config == LeaderElectionConfig(
        "kube-system", "kube-controller-manager", "me", 15.0, 10.0, 2.0, "leases"
    )
    assert config.errors() == []
    assert parse("--leader-elect=false").leader_elect is False
    assert parse("--leader-elect").leader_elect is True
    assert parse("--leader-elect=0").leader_elect is False
    short = config_from_flags(
        parse("--leader-elect-lease-duration", "4s", "--leader-elect-renew-deadline", "3s",
              "--leader-elect-retry-period", "1s"), "me",
    )  # fmt: skip
    assert (short.lease_duration, short.renew_deadline, short.retry_period) == (4.0, 3.0, 1.0)
    assert config_from_flags(parse(), None).identity.count("_") == 1  # <hostname>_<uuid>


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"lease_duration": 10.0}, "LeaseDuration must be greater than RenewDeadline"),
        ({"retry_period": 9.0}, "renewDeadline must be greater than retryPeriod*JitterFactor"),
        ({"retry_period": 0.0}, "leaderElection.retryPeriod: Invalid value: 0s: must be greater than zero"),
        ({"resource_lock": "endpoints"}, "endpoints lock is removed, migrate to leases"),
        ({"resource_lock": "endpointsleases"}, "Invalid lock-type endpointsleases"),
        ({"identity": ""}, "Lock identity is empty"),
    ],
)
def test_bad_election_options_are_refused_in_kubernetes_words(changes, error):
    config = LeaderElectionConfig(**{"identity": "me", **changes})
    assert error in "; ".join(config.errors())


# --- the elector on the fake API ------------------------------------------------------------------


class Cluster:
    """The fake API with Leases in kube-system, and electors whose sleeps advance the fake clock."""

    def __init__(self, namespaces: tuple[str, ...] = ("default", "kube-system")):
        self.api = FakeApi(namespaces=namespaces)

    def elector(self, me: str, lease: float = 15, renew: float = 10, retry: float = 2) -> LeaderElector:
        config = LeaderElectionConfig(
            identity=me, lease_duration=lease, renew_deadline=renew, retry_period=retry
        )
        recorder = EventRecorder(self.api.client, "kube-controller-manager")  # type: ignore[arg-type]
        lock = LeaseLock(self.api.client, config.namespace, config.name, recorder)  # type: ignore[arg-type]
        return LeaderElector(config, lock, clock=self.api.clock, sleep=self.sleep, jitter=lambda: 0.0)

    async def sleep(self, seconds: float) -> None:
        self.api.clock.advance(seconds)
        await asyncio.sleep(0)

    def lease(self) -> dict:
        return self.api.get(LEASES, "kube-controller-manager", "kube-system")

    def spec(self) -> dict:
        return self.lease()["spec"]


def test_the_first_candidate_creates_the_lease_and_records_that_it_became_leader():
    c = Cluster()
    a = c.elector("host_a")
    c.api.run(a.acquire())
    assert a.is_leader()
    spec = c.spec()
    assert spec["holderIdentity"] == "host_a"
    assert spec["leaseDurationSeconds"] == 15 and spec["leaseTransitions"] == 0
    assert spec["acquireTime"] == spec["renewTime"] == "2026-01-01T00:00:00.000000Z"
    events = c.api.items(EVENTS, "kube-system")
    assert [(e["reason"], e["message"], e["involvedObject"]["kind"]) for e in events] == [
        ("LeaderElection", "host_a became leader", "Lease")
    ]


def test_a_standby_waits_while_the_leader_renews_and_takes_over_once_renewals_stop():
    c = Cluster()
    a, b = c.elector("host_a"), c.elector("host_b")

    async def scenario() -> float:
        await a.acquire()
        for _ in range(20):  # 40 s of renewals by a, and b trying in between
            assert await b.try_acquire_or_renew() is False
            await c.sleep(2)
            assert await a.try_acquire_or_renew() is True
        stopped = c.api.clock.monotonic()  # a dies here
        await b.acquire()
        return c.api.clock.monotonic() - stopped

    waited = c.api.run(scenario())
    assert b.is_leader() and c.spec()["holderIdentity"] == "host_b"
    assert 15 <= waited <= 15 + 2, "the standby takes over within lease duration + one retry"
    assert c.spec()["leaseTransitions"] == 1


def test_a_leader_that_cannot_renew_within_the_renew_deadline_loses_before_the_lease_expires():
    c = Cluster()
    a = c.elector("host_a")

    async def scenario() -> float:
        await a.acquire()
        c.api.failures[("update", "leases")] = ApiError(503, {"reason": "ServiceUnavailable"})
        c.api.failures[("get", "leases")] = ApiError(503, {"reason": "ServiceUnavailable"})
        start = c.api.clock.monotonic()
        await a.renew()  # returns only when leadership is lost
        return c.api.clock.monotonic() - start

    lost_after = c.api.run(scenario())
    assert 10 <= lost_after < 15, f"gave up after {lost_after}s: by the renew deadline, inside the lease"


def test_a_released_lease_is_taken_by_the_standby_at_its_next_retry():
    c = Cluster()
    a, b = c.elector("host_a"), c.elector("host_b")

    async def scenario() -> None:
        await a.acquire()
        assert await b.try_acquire_or_renew() is False
        assert await a.release() is True
        assert await b.try_acquire_or_renew() is True  # no waiting for the 15 s lease

    c.api.run(scenario())
    assert not a.is_leader() and b.is_leader()
    assert c.spec()["holderIdentity"] == "host_b" and c.spec()["leaseTransitions"] == 1


def test_two_candidates_racing_for_an_expired_lease_cannot_both_win():
    c = Cluster()
    a, b, old = c.elector("host_a"), c.elector("host_b"), c.elector("host_old")

    async def scenario() -> None:
        await old.acquire()
        assert await a.try_acquire_or_renew() is False and await b.try_acquire_or_renew() is False
        await c.sleep(16)
        stale = await b.lock.get()  # b reads the expired lease ...
        assert await a.try_acquire_or_renew() is True  # ... a takes it meanwhile ...
        assert stale is not None
        with pytest.raises(ApiError) as conflict:  # ... and b's write on its stale read is refused
            await b.lock.update(LeaderElectionRecord("host_b", 15, T0, T0, 2))
        assert conflict.value.conflict
        assert await b.try_acquire_or_renew() is False, "b sees a's fresh lease and waits"

    c.api.run(scenario())
    assert c.spec()["holderIdentity"] == "host_a"


def test_the_lease_namespace_is_created_when_missing():
    c = Cluster(namespaces=("default",))
    a = c.elector("host_a")
    c.api.run(a.acquire())
    assert c.api.get(NAMESPACES, "kube-system", None)["metadata"]["name"] == "kube-system"
    assert c.spec()["holderIdentity"] == "host_a"


# --- the controller-manager's leadership loop -----------------------------------------------------


def manager(c: Cluster, elector: LeaderElector) -> ControllerManager:
    ctx = c.api.context(SimpleNamespace(controllers=()))
    ctx.informer(PODS)  # an informer keeps the controllers running until they are cancelled
    return ControllerManager(ctx, elector)


def test_the_manager_runs_controllers_only_while_leading_and_stops_when_it_loses_the_lease():
    c = Cluster()
    a = c.elector("host_a")
    m = manager(c, a)

    async def scenario() -> None:
        run = asyncio.ensure_future(m.run())
        for _ in range(5):
            await asyncio.sleep(0)
        assert a.is_leader() and not run.done()
        c.api.failures[("update", "leases")] = ApiError(503, {"reason": "ServiceUnavailable"})
        c.api.failures[("get", "leases")] = ApiError(503, {"reason": "ServiceUnavailable"})
        with pytest.raises(LeadershipLost):
            await asyncio.wait_for(run, 5)

    c.api.run(scenario())


def test_a_stopping_leader_stops_its_controllers_then_releases_the_lease():
    c = Cluster()
    a = c.elector("host_a")
    m = manager(c, a)

    async def scenario() -> None:
        run = asyncio.ensure_future(m.run())
        for _ in range(5):
            await asyncio.sleep(0)
        lease = await c.api.client.get(LEASES, "kube-controller-manager", "kube-system")
        assert lease["spec"]["holderIdentity"] == "host_a"
        run.cancel()  # SIGTERM
        with pytest.raises(asyncio.CancelledError):
            await run

    c.api.run(scenario())
    assert c.spec()["holderIdentity"] == "" and c.spec()["leaseDurationSeconds"] == 1


def test_a_standby_manager_starts_no_informer_until_it_leads():
    c = Cluster()
    a, b = c.elector("host_a"), c.elector("host_b")
    mb = manager(c, b)
    started: list[str] = []
    for inf in mb.ctx.informers.values():
        original = inf.run

        async def recording(original=original) -> None:
            started.append("informer")
            await original()

        inf.run = recording  # type: ignore[method-assign]

    async def scenario() -> None:
        await a.acquire()
        run = asyncio.ensure_future(mb.run())
        for _ in range(3):
            await asyncio.sleep(0)
            assert await a.try_acquire_or_renew()
        assert started == [] and not b.is_leader()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    c.api.run(scenario())
    assert c.spec()["holderIdentity"] == "host_a", "a standby that never led releases nothing"


def test_healthz_answers_ok_or_names_the_failed_check_as_the_apiserver_does():
    assert render([("ping", None), ("leaderElection", None)], verbose=False) == (200, "ok")
    assert render([("ping", None), ("leaderElection", None)], verbose=True) == (
        200, "[+]ping ok\n[+]leaderElection ok\nhealthz check passed\n",
    )  # fmt: skip
    assert render([("ping", None), ("leaderElection", "stuck")], verbose=False) == (
        500, "[+]ping ok\n[-]leaderElection failed: reason withheld\nhealthz check failed\n",
    )  # fmt: skip


def test_an_unreachable_apiserver_is_a_failed_attempt_for_a_candidate_and_for_the_leader():
    """A connection error or a timeout from the lock is one failed acquire/renew attempt (retried
    a retry period later); it never escapes the elector."""
    import aiohttp

    c = Cluster()
    a = c.elector("host_a")
    down = aiohttp.ClientConnectionError("Cannot connect to host")

    async def scenario() -> tuple[float, float]:
        c.api.failures[("get", "leases")] = down  # type: ignore[assignment]
        c.api.failures[("create", "leases")] = TimeoutError()  # type: ignore[assignment]
        assert await a.try_acquire_or_renew() is False
        start = c.api.clock.monotonic()
        acquiring = asyncio.ensure_future(a.acquire())
        while c.api.clock.monotonic() - start < 6:
            await asyncio.sleep(0)
        c.api.failures.clear()  # the apiserver is back
        await acquiring
        acquired_after = c.api.clock.monotonic() - start
        c.api.failures[("update", "leases")] = down  # type: ignore[assignment]
        c.api.failures[("get", "leases")] = down  # type: ignore[assignment]
        start = c.api.clock.monotonic()
        await a.renew()  # returns only when leadership is lost
        c.api.failures.clear()
        return acquired_after, c.api.clock.monotonic() - start

    acquired_after, lost_after = c.api.run(scenario())
    assert 6 <= acquired_after <= 8, "acquired at the first retry after the apiserver came back"
    assert 10 <= lost_after < 15, "renewals failing by connection errors lose the lease by the renew deadline"
    assert c.spec()["holderIdentity"] == "host_a"
