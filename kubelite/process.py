"""How every kubelite process starts and stops: logging, client flags, SIGTERM.

`run(main)` gives `main` an event that SIGTERM or SIGINT sets; `main` shuts its own tasks
down and returns, and the process exits 0. Every component's last log line is
`exiting with status N` (`exit_with`), so whoever stopped it (`kubelite down`, a test) can tell a
clean stop from a crash even when it is not the process's parent.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import NoReturn

from kubelite import kubeconfig
from kubelite.client import ApiClient


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--v", dest="verbosity", type=int, default=0, help="log verbosity (0-5)")


def add_client_flags(parser: argparse.ArgumentParser) -> None:
    """--master and --kubeconfig, as kube-scheduler, kube-controller-manager and kubelet take them."""
    parser.add_argument("--master", default="", help="address of the apiserver (overrides kubeconfig)")
    parser.add_argument("--kubeconfig", default="", help="kubeconfig file with the apiserver address")


def positive(text: str) -> int:
    """An argparse type for a count that must be at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def client_from_flags(args: argparse.Namespace, user_agent: str) -> ApiClient:
    server, token = args.master, None
    if args.kubeconfig:
        cfg_server, token = kubeconfig.load_server(args.kubeconfig)
        server = server or cfg_server
    if not server:
        raise SystemExit("error: one of --master or --kubeconfig is required")
    return ApiClient(server, token=token, user_agent=user_agent)


def setup_logging(verbosity: int, name: str) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbosity >= 4 else logging.INFO,
        format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if verbosity < 5:
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def run(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run main(stop) to completion; SIGTERM and SIGINT set stop. A failure exits 1."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    try:
        asyncio.run(runner())
    except SystemExit as exc:
        exit_with(exc.code if isinstance(exc.code, int) else 1)
    except Exception as exc:
        logging.getLogger(__name__).error("exiting after a failure: %r", exc, exc_info=exc)
        exit_with(1)
    exit_with(0)


EXIT_LINE = re.compile(r"exiting with status (-?\d+)\s*$", re.MULTILINE)


def exit_with(code: int) -> NoReturn:
    """Log the exit status as the process's last line, then exit with it."""
    logging.getLogger("kubelite.process").info("exiting with status %d", code)
    logging.shutdown()
    sys.exit(code)


def exit_status_in_log(text: str) -> int | None:
    """The status a component logged on its way out (the last one, after restarts), or None if
    it never got to say: it was killed, or is still running."""
    found = EXIT_LINE.findall(text)
    return int(found[-1]) if found else None


async def run_until_stopped(stop: asyncio.Event, *coros: Awaitable[None]) -> None:
    """Run coroutines as owned tasks until stop is set or one of them ends, then cancel and
    await all of them. The first failure is raised again, so the process exits non-zero."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    stopper = asyncio.ensure_future(stop.wait())
    failure: BaseException | None = None
    try:
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopper and not task.cancelled() and task.exception() is not None:
                failure = failure or task.exception()
    finally:
        for task in [*tasks, stopper]:
            task.cancel()
        await asyncio.gather(*tasks, stopper, return_exceptions=True)
    if failure is not None:
        raise failure
