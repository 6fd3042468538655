"""`python -m scheduler`: kube-scheduler's flags, one process."""

from __future__ import annotations

import argparse
import asyncio

from kubelite import process
from scheduler.scheduler import Scheduler


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scheduler", description="kubelite scheduler (kube-scheduler)")
    process.add_client_flags(parser)
    process.add_common_flags(parser)
    return parser.parse_args(argv)


async def main(args: argparse.Namespace, stop: asyncio.Event) -> None:
    client = process.client_from_flags(args, "kubelite-scheduler")
    try:
        await process.run_until_stopped(stop, Scheduler(client).run())
    finally:
        await client.close()


if __name__ == "__main__":
    arguments = parse_args()
    process.setup_logging(arguments.verbosity, "scheduler")
    process.run(lambda stop: main(arguments, stop))
