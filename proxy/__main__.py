"""`python -m proxy`: the node's service proxy (kube-proxy's userspace mode, NodePorts over TCP).

Runs until SIGTERM/SIGINT, then closes its listeners and open connections and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import socket

from aiohttp import web

from kubelite.process import (
    add_client_flags,
    add_common_flags,
    client_from_flags,
    run,
    run_until_stopped,
    setup_logging,
)
from proxy.proxier import Proxier

log = logging.getLogger("proxy")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m proxy", description="kubelite service proxy")
    add_client_flags(parser)
    add_common_flags(parser)
    parser.add_argument("--hostname-override", default="", help="node name (default: the host name)")
    parser.add_argument("--bind-address", default="0.0.0.0", help="address NodePorts listen on")
    parser.add_argument(
        "--healthz-bind-address", default="", help="host:port to serve /healthz on (default: not served)"
    )
    return parser


def _split_host_port(parser: argparse.ArgumentParser, text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        parser.error(f"--healthz-bind-address must be host:port, got {text!r}")
    return host or "0.0.0.0", int(port)


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        ipaddress.ip_address(args.bind_address)
    except ValueError:
        parser.error(f"--bind-address must be an IP address, got {args.bind_address!r}")
    healthz = _split_host_port(parser, args.healthz_bind_address) if args.healthz_bind_address else None
    node = (args.hostname_override or socket.gethostname()).lower()
    setup_logging(args.verbosity, "proxy")

    async def amain(stop: asyncio.Event) -> None:
        client = client_from_flags(args, f"kube-proxy/{node}")
        runner = None
        try:
            if healthz:
                app = web.Application()
                app.router.add_get("/healthz", lambda _r: web.Response(text="ok"))
                runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
                await runner.setup()
                await web.TCPSite(runner, *healthz, reuse_address=True).start()
            log.info("proxy for node %s: NodePorts on %s", node, args.bind_address)
            await run_until_stopped(stop, Proxier(client, args.bind_address).run())
        finally:
            if runner is not None:
                await runner.cleanup()
            await client.close()
        log.info("proxy stopped")

    run(amain)


if __name__ == "__main__":
    main()
