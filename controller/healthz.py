"""The controller-manager's /healthz, as kube-controller-manager serves it on --secure-port (10257).

A standby is as healthy as a leader: it answers while it waits for the Lease. With leader election
the check `leaderElection` is added (client-go's HealthzAdaptor, 20 s tolerance as the
controller-manager sets it): it fails only a leader whose lease ran out without it stepping down,
a process stuck past the point where it should have exited. The body follows the apiserver's
healthz: `ok`, or one `[+]name ok` / `[-]name failed: reason withheld` line per check.

Unlike kube-controller-manager, a port already in use is logged and the manager runs on without
health serving, so that managers started side by side on one host (tests, `kubelite up` next to a
test run) never take each other down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web

log = logging.getLogger(__name__)

Check = Callable[[], "str | None"]  # None when healthy, else what is wrong
CHECKS = web.AppKey("checks", list)
ELECTION_TOLERANCE = 20.0  # seconds, kube-controller-manager's NewLeaderHealthzAdaptor(20s)


def render(results: list[tuple[str, str | None]], verbose: bool) -> tuple[int, str]:
    """(status, body) of /healthz for the named check results, as the apiserver's healthz. Pure."""
    failed = any(error is not None for _, error in results)
    if not failed and not verbose:
        return 200, "ok"
    lines = [
        f"[+]{name} ok" if error is None else f"[-]{name} failed: reason withheld" for name, error in results
    ]
    lines.append("healthz check failed" if failed else "healthz check passed")
    return (500 if failed else 200), "\n".join(lines) + "\n"


async def healthz(request: web.Request) -> web.Response:
    checks: list[tuple[str, Check]] = request.app[CHECKS]
    results = [(name, check()) for name, check in checks]
    for name, error in results:
        if error is not None:
            log.error("healthz check %s failed: %s", name, error)
    status, body = render(results, "verbose" in request.query)
    return web.Response(status=status, text=body)


def build_app(checks: list[tuple[str, Check]]) -> web.Application:
    app = web.Application()
    app[CHECKS] = [("ping", lambda: None), *checks]
    app.router.add_get("/healthz", healthz)
    return app


async def serve(checks: list[tuple[str, Check]], address: str, port: int) -> None:
    """Serve /healthz until cancelled; a port in use is logged, not fatal (see the docstring)."""
    runner = web.AppRunner(build_app(checks), shutdown_timeout=0.5, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, address, port, reuse_address=True).start()
        except OSError as exc:
            log.error("not serving healthz on %s:%d: %s", address, port, exc)
        else:
            log.info("serving healthz on http://%s:%d/healthz", address, runner.addresses[0][1])
        await asyncio.get_running_loop().create_future()  # until cancelled
    finally:
        await runner.cleanup()
