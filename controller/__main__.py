"""`python -m controller`: kube-controller-manager's flags, one process."""

from __future__ import annotations

import argparse
import asyncio

from controller.framework.context import ControllerContext
from controller.manager import CONTROLLERS, ControllerManager, enabled
from kubelite import process
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
    for d in CONTROLLERS:
        if d.workers_option:
            flag = "--" + d.workers_option.replace("_", "-")
            parser.add_argument(
                flag,
                type=process.positive,
                default=d.default_workers,
                help=f"how many {d.name} objects are synced at once",
            )
    args = parser.parse_args(argv)
    try:
        args.controllers = enabled(args.controllers)
    except ValueError as exc:
        parser.error(str(exc))
    return args


async def main(args: argparse.Namespace, stop: asyncio.Event) -> None:
    client = process.client_from_flags(args, "kubelite-controller-manager")
    try:
        await process.run_until_stopped(stop, ControllerManager(ControllerContext(client, args)).run())
    finally:
        await client.close()


if __name__ == "__main__":
    arguments = parse_args()
    process.setup_logging(arguments.verbosity, "controller-manager")
    process.run(lambda stop: main(arguments, stop))
