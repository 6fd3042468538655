"""The decisions of leader election on a Lease, as client-go's `tools/leaderelection` makes them.

A candidate may take the Lease only when it names no holder, or when the record it last saw has
not changed for `leaseDurationSeconds` of the candidate's *own* monotonic clock: expiry is never
judged from the timestamps in the record, so skewed clocks cannot make two leaders. Every function
here is pure: the record read and the clock are arguments.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import uuid
from dataclasses import dataclass

from kubelite.objects import Object, micro_time, parse_rfc3339

JITTER_FACTOR = 1.2  # client-go's leaderelection.JitterFactor: acquire retries wait 1x..2.2x retry


def identity() -> str:
    """`<hostname>_<uuid>`, the identity kube-controller-manager and kube-scheduler elect with."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


@dataclass(frozen=True)
class LeaderElectionRecord:
    """What a Lease's spec says about leadership (client-go's resourcelock.LeaderElectionRecord)."""

    holder_identity: str
    lease_duration_seconds: int
    acquire_time: dt.datetime | None
    renew_time: dt.datetime | None
    leader_transitions: int

    @classmethod
    def from_spec(cls, spec: Object) -> LeaderElectionRecord:
        def moment(field: str) -> dt.datetime | None:
            value = spec.get(field)
            return parse_rfc3339(value) if value else None

        return cls(
            holder_identity=spec.get("holderIdentity") or "",
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=moment("acquireTime"),
            renew_time=moment("renewTime"),
            leader_transitions=int(spec.get("leaseTransitions") or 0),
        )

    def to_spec(self) -> Object:
        spec: Object = {
            "holderIdentity": self.holder_identity,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "leaseTransitions": self.leader_transitions,
        }
        if self.acquire_time is not None:
            spec["acquireTime"] = micro_time(self.acquire_time)
        if self.renew_time is not None:
            spec["renewTime"] = micro_time(self.renew_time)
        return spec


def raw_of(spec: Object) -> str:
    """The form in which two reads of a Lease are compared: changed bytes mean a live holder."""
    return json.dumps(spec, sort_keys=True)


@dataclass(frozen=True)
class Observed:
    """The record a candidate last saw change, and when (its own monotonic clock)."""

    record: LeaderElectionRecord | None = None
    raw: str = ""
    time: float = 0.0

    def leader(self, me: str) -> bool:
        return self.record is not None and self.record.holder_identity == me

    def lease_valid(self, now: float) -> bool:
        """Whether the lease seen is still in force: it changed less than its duration ago."""
        return self.record is not None and self.time + self.record.lease_duration_seconds > now


def observe(observed: Observed, record: LeaderElectionRecord, raw: str, now: float) -> Observed:
    """The observation after reading `record`: only a change restarts the expiry clock. Pure."""
    if raw == observed.raw:
        return observed
    return Observed(record, raw, now)


def next_record(
    me: str,
    lease_duration: int,
    observed: Observed,
    current: LeaderElectionRecord,
    wall: dt.datetime,
    now: float,
) -> LeaderElectionRecord | None:
    """The record to write to take or keep the lease, or None while another holder's lease is in
    force (client-go's tryAcquireOrRenew after the read; `observed` already includes it). Pure."""
    if current.holder_identity and observed.lease_valid(now) and not observed.leader(me):
        return None
    if observed.leader(me):
        kept = current.acquire_time
        return LeaderElectionRecord(me, lease_duration, kept, wall, current.leader_transitions)
    return LeaderElectionRecord(me, lease_duration, wall, wall, current.leader_transitions + 1)


def first_record(me: str, lease_duration: int, wall: dt.datetime) -> LeaderElectionRecord:
    """The record that creates a missing Lease. Pure."""
    return LeaderElectionRecord(me, lease_duration, wall, wall, 0)


def release_record(observed: Observed, me: str, wall: dt.datetime) -> LeaderElectionRecord | None:
    """What a leader writes to step down on shutdown (ReleaseOnCancel): no holder and a 1 s lease,
    so a standby takes over at its next retry; None when it does not lead. Pure."""
    if not observed.leader(me) or observed.record is None:
        return None
    return LeaderElectionRecord("", 1, wall, wall, observed.record.leader_transitions)


def leader_health(
    observed: Observed, me: str, name: str, lease_duration: float, tolerable: float, now: float
) -> str | None:
    """client-go's HealthzAdaptor: a standby is healthy; a leader whose lease ran out `tolerable`
    seconds ago without it stepping down (a stuck process) is not. The error, or None. Pure."""
    if not observed.leader(me):
        return None
    if now - observed.time > lease_duration + tolerable:
        return f"failed election to renew leadership on lease {name}"
    return None
