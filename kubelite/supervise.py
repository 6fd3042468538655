"""`python -m kubelite.supervise --name NAME -- COMMAND...`: run a component and start it again
when it exits with a failure, as systemd's `Restart=on-failure` or compose's restart policy do.

kube-controller-manager exits when it loses its leader Lease and counts on whatever runs it to
start it again as a standby. `kubelite up` has no systemd, so it runs each controller-manager
under this supervisor. SIGTERM and SIGINT go to the component and the supervisor exits with its
status; the component gets SIGTERM if the supervisor itself dies (PR_SET_PDEATHSIG), so it is
never left behind. Each restart is one log line ending `restarting in Ns`, which `kubelite down`
counts and reports, as it reports a container compose had to restart.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import signal
import subprocess
import sys
import threading
import time
from types import FrameType

from kubelite import process

log = logging.getLogger("kubelite.supervise")

RESTART_MARK = "restarting in "
PR_SET_PDEATHSIG = 1


def restart_delay(restarts: int, initial: float, cap: float) -> float:
    """Seconds before restart number restarts + 1: initial, doubling, at most cap. Pure."""
    return float(min(initial * 2**restarts, cap))


def restarts_in_log(text: str) -> int:
    """How many times the supervisor restarted its component, from the component's log. Pure."""
    return sum(1 for line in text.splitlines() if RESTART_MARK in line and "supervisor" in line)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m kubelite.supervise",
        description="run a component; start it again when it exits with a failure",
    )
    parser.add_argument("--name", required=True, help="the component's name, for the log")
    parser.add_argument(
        "--initial-delay", type=float, default=1.0, help="seconds before the first restart (then doubling)"
    )
    parser.add_argument("--max-delay", type=float, default=30.0, help="the longest wait before a restart")
    parser.add_argument(
        "--reset-after", type=float, default=60.0,
        help="a run at least this many seconds long starts the doubling over",
    )  # fmt: skip
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the component's command line")
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        parser.error("give the component's command after --")
    return args


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the supervisor dies, however it dies."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.stop = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop.set()
        self._forward()

    def _forward(self) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)

    def run(self) -> int:
        restarts = 0
        while True:
            started = time.monotonic()
            self.child = subprocess.Popen(self.args.command, preexec_fn=_die_with_parent)
            if self.stop.is_set():  # a signal that came before the child existed
                self._forward()
            status = self.child.wait()
            if self.stop.is_set() or status == 0:
                return status
            if time.monotonic() - started >= self.args.reset_after:
                restarts = 0
            delay = restart_delay(restarts, self.args.initial_delay, self.args.max_delay)
            restarts += 1
            log.warning(
                "supervisor: %s exited with status %d; %s%gs", self.args.name, status, RESTART_MARK, delay
            )
            if self.stop.wait(delay):
                return status


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    process.setup_logging(0, f"{args.name}-supervisor")
    supervisor = Supervisor(args)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, supervisor.on_signal)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
