"""`python -m tests.programs.misbehave --on-sigterm N | --exit-now N`: a process that stops badly.

With --on-sigterm it logs "ready" and exits with N when it gets SIGTERM (a member that exits 1 on
SIGTERM); with --exit-now it exits with N at once (a component that crashed before the test ended).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading


def main() -> None:
    parser = argparse.ArgumentParser(prog="misbehave")
    parser.add_argument("--on-sigterm", type=int, help="exit with this status on SIGTERM")
    parser.add_argument("--exit-now", type=int, help="exit with this status at once")
    args = parser.parse_args()
    if args.exit_now is not None:
        sys.exit(args.exit_now)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print("ready", flush=True)
    stopped.wait()
    sys.exit(args.on_sigterm or 0)


if __name__ == "__main__":
    main()
