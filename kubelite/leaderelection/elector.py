"""The IO of leader election: `LeaseLock` reads and writes the Lease, `LeaderElector` runs
client-go's acquire / renew / release loops around the pure decisions of `record`.

Writes carry the resourceVersion last read or written, so two candidates racing for an expired
Lease cannot both win: one gets 409 Conflict and tries again at its next retry. The clock, sleep
and jitter are injected so tests run the loops on a fake clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Protocol

from kubelite.client import ApiClient, ApiError
from kubelite.events import EventRecorder
from kubelite.leaderelection.config import LeaderElectionConfig
from kubelite.leaderelection.record import (
    JITTER_FACTOR,
    LeaderElectionRecord,
    Observed,
    first_record,
    leader_health,
    next_record,
    observe,
    raw_of,
    release_record,
)
from kubelite.objects import Object
from kubelite.resources import LEASES, NAMESPACES

log = logging.getLogger(__name__)


class Clock(Protocol):
    def now(self) -> dt.datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class LeaseLock:
    """The Lease behind an election: get, create, and update guarded by the resourceVersion last
    read or written, so a write based on a stale read is refused with 409 Conflict."""

    def __init__(self, client: ApiClient, namespace: str, name: str, recorder: EventRecorder | None = None):
        self.client = client
        self.namespace = namespace
        self.name = name
        self.recorder = recorder
        self.lease: Object | None = None

    def describe(self) -> str:
        return f"{self.namespace}/{self.name}"

    async def get(self) -> tuple[LeaderElectionRecord, str] | None:
        """The record and its raw form, or None when the Lease does not exist."""
        try:
            self.lease = await self.client.get(LEASES, self.name, self.namespace)
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        spec = self.lease.get("spec") or {}
        return LeaderElectionRecord.from_spec(spec), raw_of(spec)

    async def create(self, record: LeaderElectionRecord) -> str:
        body: Object = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": record.to_spec(),
        }
        try:
            self.lease = await self.client.create(LEASES, body, self.namespace)
        except ApiError as exc:
            if not exc.not_found:
                raise
            # the namespace is missing: make it, as the apiserver's system-namespaces controller would
            await self._ensure_namespace()
            self.lease = await self.client.create(LEASES, body, self.namespace)
        return raw_of(self.lease.get("spec") or {})

    async def _ensure_namespace(self) -> None:
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
        try:
            await self.client.create(NAMESPACES, ns)
        except ApiError as exc:
            if not exc.already_exists:
                raise

    async def update(self, record: LeaderElectionRecord) -> str:
        if self.lease is None:
            raise RuntimeError("lease not initialized, call get or create first")
        body = {**self.lease, "spec": record.to_spec()}
        self.lease = await self.client.update(LEASES, body)
        return raw_of(self.lease.get("spec") or {})

    async def record_event(self, message: str, who: str, timeout: float) -> None:
        """An event on the Lease, `<identity> <message>`, reason LeaderElection: best effort and
        bounded, so an unreachable apiserver never delays stepping down."""
        if self.recorder is None:
            return
        meta = (self.lease or {}).get("metadata") or {"name": self.name, "namespace": self.namespace}
        subject = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta}
        try:
            async with asyncio.timeout(timeout):
                await self.recorder.record(subject, "Normal", "LeaderElection", f"{who} {message}")
        except TimeoutError:
            log.warning("could not record the event %r on lease %s in time", message, self.describe())


Sleep = Callable[[float], Awaitable[Any]]


class LeaderElector:
    """client-go's LeaderElector: `acquire()` returns once this candidate leads, `renew()` returns
    when it has failed to renew for the renew deadline (leadership lost), `release()` steps down."""

    def __init__(
        self,
        config: LeaderElectionConfig,
        lock: LeaseLock,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ):
        self.config = config
        self.lock = lock
        self.clock: Clock = clock or SystemClock()
        self.sleep = sleep
        self.jitter = jitter
        self.observed = Observed()

    @property
    def me(self) -> str:
        return self.config.identity

    def is_leader(self) -> bool:
        return self.observed.leader(self.me)

    def leader(self) -> str:
        """The holder last seen ("" for none)."""
        return self.observed.record.holder_identity if self.observed.record else ""

    def check(self, tolerable: float = 20.0) -> str | None:
        """The healthz check: an error while a leader is stuck past its lease, else None."""
        now, config = self.clock.monotonic(), self.config
        return leader_health(self.observed, self.me, config.name, config.lease_duration, tolerable, now)

    def _written(self, record: LeaderElectionRecord, raw: str) -> None:
        self.observed = Observed(record, raw, self.clock.monotonic())

    async def try_acquire_or_renew(self) -> bool:
        """One attempt to take or keep the lease; True when this candidate holds it afterwards."""
        wall, now = self.clock.now(), self.clock.monotonic()
        seconds = self.config.lease_seconds
        if self.is_leader() and self.observed.lease_valid(now) and self.observed.record is not None:
            # fast path: the leader writes on top of what it last wrote, without reading first
            mine = self.observed.record
            renewed = replace(mine, lease_duration_seconds=seconds, renew_time=wall)
            try:
                self._written(renewed, await self.lock.update(renewed))
                return True
            except Exception as exc:
                log.error("Failed to update lock optimistically: %s, falling back to slow path", exc)
        try:
            got = await self.lock.get()
        except Exception as exc:
            log.error("error retrieving resource lock %s: %s", self.lock.describe(), exc)
            return False
        if got is None:
            first = first_record(self.me, seconds, wall)
            try:
                self._written(first, await self.lock.create(first))
            except Exception as exc:
                log.error("error initially creating leader election record: %s", exc)
                return False
            return True
        current, raw = got
        self.observed = observe(self.observed, current, raw, self.clock.monotonic())
        record = next_record(self.me, seconds, self.observed, current, wall, self.clock.monotonic())
        if record is None:
            log.debug("lock is held by %s and has not yet expired", current.holder_identity)
            return False
        try:
            self._written(record, await self.lock.update(record))
        except Exception as exc:
            log.error("Failed to update lock: %s", exc)
            return False
        return True

    async def acquire(self) -> None:
        """Retry every retry period (jittered up to 2.2x) until this candidate leads."""
        desc = self.lock.describe()
        log.info("attempting to acquire leader lease %s...", desc)
        while True:
            acquired = False
            with contextlib.suppress(TimeoutError):
                # each attempt is bounded as kube-controller-manager bounds its election client
                async with asyncio.timeout(self.config.renew_deadline):
                    acquired = await self.try_acquire_or_renew()
            if acquired:
                await self.lock.record_event("became leader", self.me, self.config.retry_period)
                log.info("successfully acquired lease %s", desc)
                return
            log.debug("failed to acquire lease %s", desc)
            await self.sleep(self.config.retry_period * (1 + JITTER_FACTOR * self.jitter()))

    async def _renew_round(self) -> bool:
        """Try at once, then every retry period, until a renewal succeeds or the deadline passes."""
        deadline = self.clock.monotonic() + self.config.renew_deadline
        while True:
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                return False
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                async with asyncio.timeout(remaining):
                    if await self.try_acquire_or_renew():
                        return True
            except TimeoutError:
                return False
            await self.sleep(min(self.config.retry_period, max(0.0, deadline - self.clock.monotonic())))

    async def renew(self) -> None:
        """Keep the lease every retry period; return when it could not be renewed in time."""
        while await self._renew_round():
            log.debug("successfully renewed lease %s", self.lock.describe())
            await self.sleep(self.config.retry_period)
        log.info("failed to renew lease %s: timed out waiting for the condition", self.lock.describe())

    async def stopped_leading(self) -> None:
        """Record that this candidate stopped leading, once the work the lease protected stopped."""
        await self.lock.record_event("stopped leading", self.me, self.config.retry_period)

    async def release(self) -> bool:
        """Step down (ReleaseOnCancel): only after the work the lease protects has stopped."""
        record = release_record(self.observed, self.me, self.clock.now())
        if record is None:
            return True
        try:
            self._written(record, await self.lock.update(record))
        except Exception as exc:
            log.error("Failed to release lock: %s", exc)
            return False
        log.info("released lease %s", self.lock.describe())
        return True
