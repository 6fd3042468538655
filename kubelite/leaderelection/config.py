"""The `--leader-elect*` options of kube-controller-manager and kube-scheduler: flags, defaults,
and the validation both apply, in their words. Pure but for the argparse wiring."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from kubelite.duration import parse_duration
from kubelite.leaderelection.record import JITTER_FACTOR, identity

RESOURCE_LOCKS = ("leases",)  # the only lock kind current Kubernetes keeps


@dataclass(frozen=True)
class LeaderElectionConfig:
    """The `--leader-elect-*` options of a component, in seconds."""

    namespace: str = "kube-system"
    name: str = "kube-controller-manager"
    identity: str = ""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    resource_lock: str = "leases"

    def errors(self) -> list[str]:
        """What kube-controller-manager and client-go refuse, in their words. Pure."""
        errs = []
        for flag, value in (
            ("leaseDuration", self.lease_duration),
            ("renewDeadline", self.renew_deadline),
            ("retryPeriod", self.retry_period),
        ):
            if value <= 0:
                errs.append(f"leaderElection.{flag}: Invalid value: {value:g}s: must be greater than zero")
        if 0 < self.lease_duration <= self.renew_deadline:
            errs.append(
                f"leaderElection.leaseDuration: Invalid value: {self.renew_deadline:g}s: "
                "LeaseDuration must be greater than RenewDeadline"
            )
        elif self.renew_deadline > 0 and self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            errs.append("renewDeadline must be greater than retryPeriod*JitterFactor")
        if self.resource_lock in ("endpoints", "configmaps"):
            errs.append(f"{self.resource_lock} lock is removed, migrate to leases")
        elif self.resource_lock not in RESOURCE_LOCKS:
            errs.append(f"Invalid lock-type {self.resource_lock}")
        if not self.name:
            errs.append('leaderElection.resourceName: Invalid value: "": resourceName is required')
        if not self.namespace:
            errs.append('leaderElection.resourceNamespace: Invalid value: "": resourceNamespace is required')
        if not self.identity:
            errs.append("Lock identity is empty")
        return errs

    @property
    def lease_seconds(self) -> int:
        """leaseDurationSeconds as written into the Lease (whole seconds, at least 1)."""
        return max(1, int(self.lease_duration))


def go_bool(text: str) -> bool:
    """A Go bool flag's value (strconv.ParseBool): `--leader-elect=false` works as in Kubernetes."""
    if text in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if text in ("0", "f", "F", "false", "FALSE", "False"):
        return False
    raise argparse.ArgumentTypeError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def add_flags(parser: argparse.ArgumentParser, component: str) -> None:
    """The --leader-elect* flags with kube-controller-manager's (and kube-scheduler's) defaults;
    the Lease is named after the component unless --leader-elect-resource-name says otherwise."""
    parser.add_argument(
        "--leader-elect", type=go_bool, nargs="?", const=True, default=True, metavar="BOOL",
        help="run only while holding the Lease, so that replicas can stand by (default true; "
        "--leader-elect=false runs at once)",
    )  # fmt: skip
    durations = (
        ("--leader-elect-lease-duration", "15s", "how long a standby waits after the last renewal "
         "it saw before it takes the Lease"),
        ("--leader-elect-renew-deadline", "10s", "how long the leader retries renewing before it "
         "stops leading; less than the lease duration"),
        ("--leader-elect-retry-period", "2s", "how long candidates wait between attempts to "
         "acquire or renew"),
    )  # fmt: skip
    for flag, default, help_text in durations:
        parser.add_argument(flag, type=parse_duration, default=parse_duration(default), help=help_text)
    parser.add_argument(
        "--leader-elect-resource-lock",
        default="leases",
        help="the kind of lock object (only leases)",
    )
    parser.add_argument(
        "--leader-elect-resource-name", default=component, help="the name of the Lease elected on"
    )
    parser.add_argument(
        "--leader-elect-resource-namespace", default="kube-system", help="the namespace of the Lease"
    )


def config_from_flags(args: argparse.Namespace, me: str | None = None) -> LeaderElectionConfig:
    """The election the flags ask for, with this process's identity `<hostname>_<uuid>`."""
    return LeaderElectionConfig(
        namespace=args.leader_elect_resource_namespace,
        name=args.leader_elect_resource_name,
        identity=me if me is not None else identity(),
        lease_duration=args.leader_elect_lease_duration,
        renew_deadline=args.leader_elect_renew_deadline,
        retry_period=args.leader_elect_retry_period,
        resource_lock=args.leader_elect_resource_lock,
    )
