"""`python -m controller`: kube-controller-manager's flags, one process."""

from __future__ import annotations

import argparse
import asyncio

from controller.manager import ControllerManager, ManagerOptions, enabled
from kubelite import process
from kubelite.duration import parse_duration


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="controller", description="kubelite controller-manager")
    process.add_client_flags(parser)
    process.add_common_flags(parser)
    parser.add_argument("--controllers", default="*", help="controllers to enable: *, name, -name")
    parser.add_argument("--node-monitor-grace-period", default="40s", type=parse_duration)
    parser.add_argument("--concurrent-endpoint-syncs", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        args.controllers = enabled(args.controllers)
    except ValueError as exc:
        parser.error(str(exc))
    return args


async def main(args: argparse.Namespace, stop: asyncio.Event) -> None:
    client = process.client_from_flags(args, "kubelite-controller-manager")
    options = ManagerOptions(
        controllers=args.controllers,
        node_monitor_grace_period=args.node_monitor_grace_period,
        workers=args.concurrent_endpoint_syncs,
    )
    try:
        await process.run_until_stopped(stop, ControllerManager(client, options).run())
    finally:
        await client.close()


if __name__ == "__main__":
    arguments = parse_args()
    process.setup_logging(arguments.verbosity, "controller-manager")
    process.run(lambda stop: main(arguments, stop))
