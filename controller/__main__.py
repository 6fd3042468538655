"""`python -m controller`: kube-controller-manager's flags, one process."""

from __future__ import annotations

import argparse
import asyncio
from functools import partial

from controller import healthz
from controller.framework.context import ControllerContext
from controller.manager import CONTROLLERS, ControllerManager, LeadershipLost, enabled
from kubelite import leaderelection, process
from kubelite.duration import parse_duration


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m controller", description="kubelite controller-manager")
    process.add_client_flags(parser)
    process.add_common_flags(parser)
    names = ", ".join(d.name for d in CONTROLLERS)
    parser.add_argument(
        "--controllers", default="*", help=f"controllers to enable: * (all), name, -name; known: {names}"
    )
    parser.add_argument(
        "--node-monitor-grace-period", default="40s", type=parse_duration,
        help="how long a node's kubelet may be silent before the node is marked NotReady",
    )  # fmt: skip
    parser.add_argument(
        "--node-monitor-period", default="5s", type=parse_duration,
        help="how often the node lifecycle controller checks node health and syncs the nodes' taints",
    )  # fmt: skip
    parser.add_argument(
        "--pod-eviction-timeout", default="5m", type=parse_duration,
        help="accepted for compatibility and unused, as in current Kubernetes: pods leave a failed node "
        "when their not-ready/unreachable tolerationSeconds run out, which the apiserver's "
        "--default-not-ready-toleration-seconds and --default-unreachable-toleration-seconds set (300)",
    )  # fmt: skip
    parser.add_argument(
        "--terminated-pod-gc-threshold", default=12500, type=int,
        help="how many terminated pods may exist before pod GC deletes the oldest (<= 0: never)",
    )  # fmt: skip
    for d in CONTROLLERS:
        if d.workers_option:
            flag = "--" + d.workers_option.replace("_", "-")
            parser.add_argument(
                flag,
                type=process.positive,
                default=d.default_workers,
                help=f"how many {d.name} objects are synced at once",
            )
    leaderelection.add_flags(parser, "kube-controller-manager")
    parser.add_argument("--bind-address", default="0.0.0.0", help="address /healthz is served on")
    parser.add_argument(
        "--secure-port", type=int, default=10257, help="port /healthz is served on (plain HTTP); 0: none"
    )
    args = parser.parse_args(argv)
    try:
        args.controllers = enabled(args.controllers)
    except ValueError as exc:
        parser.error(str(exc))
    args.leader_election = leaderelection.config_from_flags(args) if args.leader_elect else None
    if args.leader_election and (errors := args.leader_election.errors()):
        parser.error("; ".join(errors))
    return args


async def main(args: argparse.Namespace, stop: asyncio.Event) -> None:
    client = process.client_from_flags(args, "kubelite-controller-manager")
    ctx = ControllerContext(client, args)
    elector = None
    checks: list[tuple[str, healthz.Check]] = []
    if args.leader_election:
        lock = leaderelection.LeaseLock(
            client, args.leader_election.namespace, args.leader_election.name,
            ctx.recorder("kube-controller-manager"),
        )  # fmt: skip
        elector = leaderelection.LeaderElector(args.leader_election, lock)
        checks.append(("leaderElection", partial(elector.check, healthz.ELECTION_TOLERANCE)))
    work = [ControllerManager(ctx, elector).run()]
    if args.secure_port:
        work.append(healthz.serve(checks, args.bind_address, args.secure_port))
    try:
        await process.run_until_stopped(stop, *work)
    except LeadershipLost:
        raise SystemExit(1) from None  # as kube-controller-manager: exit, and be restarted
    finally:
        await client.close()


if __name__ == "__main__":
    arguments = parse_args()
    process.setup_logging(arguments.verbosity, "controller-manager")
    process.run(lambda stop: main(arguments, stop))
