"""`python -m etcdlite [etcd flags]`: start one member and serve the etcd v3 API until SIGTERM/SIGINT.

Parses etcd's flags, recovers the data directory, binds the client URLs, logs
`serving client requests on HOST:PORT` for each (with the real port when the URL said 0), and
shuts down cleanly on a signal: stop taking requests, let in-flight ones finish for a moment,
stop the member's tasks, close the log. Exit codes: 0 after a signal, 1 when the member cannot
start (corrupt data, data dir in use, address in use), 2 for bad flags.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import io
import logging
import os
import signal
import sys
from collections.abc import Sequence

from etcdlite import identity
from etcdlite import request as requests
from etcdlite.config import ConfigError, EtcdConfig, parse_flags, with_bound_port
from etcdlite.grpc_api import ListenError, start_grpc_server
from etcdlite.raft.durable import SnapshotFileCorruptError
from etcdlite.raft.transport import PeerListenError
from etcdlite.server import DataDirInUseError, EtcdServer
from etcdlite.snapshot import SnapshotCorruptError
from etcdlite.wal import WalCorruptError
from kubelite.process import exit_with

log = logging.getLogger("etcdlite")

SHUTDOWN_GRACE_SECONDS = 1.0
# A stop that takes longer than this reports what it waits for: every pending task, and every
# thread's stack (faulthandler's own thread, so that also works when the loop is blocked).
SLOW_STOP_SECONDS = 5.0
# The collector's third threshold (default 10): a member keeps hundreds of thousands of long-lived
# containers (key histories, log entries), and with the default every few seconds of writes
# triggered a full collection that walks them all, pausing the member up to 0.5 s at 100k keys.
# Young generations are still collected as usual; the store makes no reference cycles of its own.
GC_THRESHOLDS = (700, 10, 1000)
_STARTUP_ERRORS = (
    WalCorruptError,
    SnapshotCorruptError,
    SnapshotFileCorruptError,
    identity.IdentityCorruptError,
    PeerListenError,
    DataDirInUseError,
    ListenError,
    requests.EntryDecodeError,
    OSError,
)
_LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "panic": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


async def run(config: EtcdConfig) -> int:
    """Serve until a signal (exit code 0) or until the member fails (1)."""
    server = EtcdServer(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await server.start()
    try:
        client_server = await start_grpc_server(server)
        try:
            first_port = int(client_server.addresses[0].rsplit(":", 1)[1])
            server.serving(with_bound_port(config.advertise_client_urls, first_port))
            log.info(
                "member %s (%016x) of cluster %016x ready; data dir %s",
                config.name,
                server.member_id,
                server.cluster_id,
                config.data_dir,
            )
            for address in client_server.addresses:
                log.info("serving client requests on %s", address)
            waits = [asyncio.create_task(stop.wait()), asyncio.create_task(server.failed.wait())]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
                await asyncio.gather(*waits, return_exceptions=True)
            code = 1 if server.failed.is_set() else 0
            log.info("%s; shutting down", "the member failed" if code else "received a stop signal")
        finally:
            faulthandler.dump_traceback_later(SLOW_STOP_SECONDS)
            loop.call_later(SLOW_STOP_SECONDS, _log_pending_tasks)
            await client_server.stop(SHUTDOWN_GRACE_SECONDS)
    finally:
        await server.stop()
    log.info("stopped")
    return code


def _log_pending_tasks() -> None:
    for task in asyncio.all_tasks():
        stack = io.StringIO()
        task.print_stack(limit=10, file=stack)
        log.warning("still stopping after %.0fs: %s", SLOW_STOP_SECONDS, stack.getvalue())


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = parse_flags(sys.argv[1:] if argv is None else argv, os.environ)
    except ConfigError as exc:
        print(f"etcdlite: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=_LOG_LEVELS[config.log_level],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        return asyncio.run(run(identity.recorded(config)))
    except _STARTUP_ERRORS as exc:
        log.error("%s", exc)
        return 1
    finally:
        faulthandler.cancel_dump_traceback_later()


if __name__ == "__main__":
    exit_with(main())
