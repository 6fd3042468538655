"""Assemble and run the apiserver: flags, the aiohttp application, startup and shutdown.

Startup (cleanup_ctx): open the store client, then a bootstrap task creates the default
namespaces (retrying until the store answers) and marks the server ready. Shutdown on
SIGTERM/SIGINT: stop accepting connections, end watch streams, cancel the bootstrap task,
close the gRPC channel. Touches: the listening socket, signals, the store client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, fields

from aiohttp import web

from apiserver import errors
from apiserver.admission import DEFAULT_TOLERATION_SECONDS, DefaultTolerationSeconds
from apiserver.allocation import NodePortRange, ServiceIPRange
from apiserver.errors import APIError
from apiserver.handlers import APIHandlers, ServerContext, render_error
from apiserver.registry import Registry
from apiserver.resources import build_resource_table
from apiserver.storage import EtcdStore, StoreError, TLSFiles
from apiserver.watchcache import WatchCache

log = logging.getLogger("apiserver")

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
MAX_BODY_BYTES = 3 * 1024 * 1024
SHUTDOWN_TIMEOUT = 2.0

CONTEXT = web.AppKey("context", ServerContext)


@dataclass(frozen=True)
class ServerOptions:
    """kube-apiserver flags this server honours."""

    etcd_servers: str
    bind_address: str
    secure_port: int
    advertise_address: str
    service_cluster_ip_range: str
    service_node_port_range: str
    tls_cert_file: str | None = None
    tls_private_key_file: str | None = None
    etcd_cafile: str | None = None
    etcd_certfile: str | None = None
    etcd_keyfile: str | None = None
    default_not_ready_toleration_seconds: int = DEFAULT_TOLERATION_SECONDS
    default_unreachable_toleration_seconds: int = DEFAULT_TOLERATION_SECONDS


def parse_args(argv: list[str] | None = None) -> ServerOptions:
    parser = argparse.ArgumentParser(prog="python -m apiserver", description="kubelite Kubernetes API server")
    parser.add_argument("--etcd-servers", default="http://127.0.0.1:2379", help="comma-separated etcd URLs")
    parser.add_argument("--bind-address", default="0.0.0.0", help="address to serve the API on")
    parser.add_argument(
        "--secure-port", type=int, default=6443, help="port to serve the API on (0: any free port, logged)"
    )
    parser.add_argument(
        "--advertise-address", default="127.0.0.1", help="address clients are told to reach the API on"
    )
    parser.add_argument(
        "--service-cluster-ip-range", default="10.96.0.0/12", help="CIDR that Service cluster IPs come from"
    )
    parser.add_argument(
        "--service-node-port-range", default="30000-32767", help="port range that NodePorts come from"
    )
    parser.add_argument("--tls-cert-file", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-private-key-file", help="the private key of --tls-cert-file (PEM)")
    parser.add_argument("--etcd-cafile", help="CA bundle to verify the etcd servers with")
    parser.add_argument("--etcd-certfile", help="client certificate for etcd (PEM)")
    parser.add_argument("--etcd-keyfile", help="the private key of --etcd-certfile (PEM)")
    parser.add_argument(
        "--default-not-ready-toleration-seconds", type=int, default=DEFAULT_TOLERATION_SECONDS,
        help="tolerationSeconds of the node.kubernetes.io/not-ready:NoExecute toleration added to every pod "
        "that does not already have such a toleration (DefaultTolerationSeconds admission)",
    )  # fmt: skip
    parser.add_argument(
        "--default-unreachable-toleration-seconds", type=int, default=DEFAULT_TOLERATION_SECONDS,
        help="tolerationSeconds of the node.kubernetes.io/unreachable:NoExecute toleration added to every "
        "pod that does not already have such a toleration (DefaultTolerationSeconds admission)",
    )  # fmt: skip
    parser.add_argument("-v", "--v", type=int, default=0, dest="verbosity", help="log verbosity (>=4: debug)")
    args = parser.parse_args(argv)
    logging.getLogger().setLevel(logging.DEBUG if args.verbosity >= 4 else logging.INFO)
    try:
        ServiceIPRange(args.service_cluster_ip_range).network  # noqa: B018 - validates the flag
        NodePortRange.parse(args.service_node_port_range)
    except ValueError as err:
        parser.error(str(err))
    if bool(args.tls_cert_file) != bool(args.tls_private_key_file):
        parser.error("--tls-cert-file and --tls-private-key-file go together")
    # Every ServerOptions field is the flag of the same name.
    return ServerOptions(**{f.name: getattr(args, f.name) for f in fields(ServerOptions)})


@web.middleware
async def status_errors(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    """Render every failure as a Kubernetes Status."""
    try:
        response = await handler(request)
        log.debug("%s %s -> %d", request.method, request.path_qs, response.status)
        return response
    except APIError as err:
        log.debug("%s %s -> %d %s", request.method, request.path_qs, err.code, err.message)
        return render_error(err)
    except web.HTTPRequestEntityTooLarge:
        return render_error(APIError(413, errors.Reason.REQUEST_ENTITY_TOO_LARGE, "the request is too large"))
    except StoreError as err:
        log.warning("store error on %s %s: %s", request.method, request.path, err)
        return render_error(errors.service_unavailable(str(err)))
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except web.HTTPException:
        raise
    except Exception as err:
        log.exception("internal error on %s %s", request.method, request.path)
        return render_error(errors.internal_error(str(err)))


async def bootstrap(ctx: ServerContext) -> None:
    """Create the default namespaces, retrying until the store answers; then become ready."""
    delay = 0.2
    while True:
        try:
            for name in DEFAULT_NAMESPACES:
                await ctx.registry.ensure_namespace(name)
            ctx.ready.set()
            log.info("default namespaces present; ready")
            return
        except (APIError, StoreError) as err:
            log.warning("bootstrap: store not ready yet (%s); retrying in %.1fs", err, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def build_app(options: ServerOptions) -> web.Application:
    app = web.Application(middlewares=[status_errors], client_max_size=MAX_BODY_BYTES)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        store = EtcdStore(
            options.etcd_servers, TLSFiles(options.etcd_cafile, options.etcd_certfile, options.etcd_keyfile)
        )
        table = build_resource_table(
            ServiceIPRange(options.service_cluster_ip_range),
            NodePortRange.parse(options.service_node_port_range),
            DefaultTolerationSeconds(
                options.default_not_ready_toleration_seconds, options.default_unreachable_toleration_seconds
            ),
        )
        cache = WatchCache(store)
        ctx = ServerContext(
            Registry(store, table, cache=cache),
            table,
            f"{options.advertise_address}:{options.secure_port}",
            cache,
        )
        app[CONTEXT] = ctx
        handlers = APIHandlers(ctx)
        app["dispatch"] = handlers.dispatch
        task = asyncio.create_task(bootstrap(ctx), name="bootstrap")
        try:
            yield
        finally:
            ctx.stopping.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await cache.close()
            await store.close()
            log.info("store client closed")

    async def on_shutdown(app: web.Application) -> None:
        # End watch streams before aiohttp waits for in-flight handlers.
        if CONTEXT in app:
            app[CONTEXT].stopping.set()

    async def dispatch(request: web.Request) -> web.StreamResponse:
        return await request.app["dispatch"](request)

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(on_shutdown)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app


def _ssl_context(options: ServerOptions) -> ssl.SSLContext | None:
    if not options.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(options.tls_cert_file, options.tls_private_key_file)
    return context


async def serve(options: ServerOptions) -> None:
    app = build_app(options)
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT, access_log=None, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(
            runner,
            options.bind_address,
            options.secure_port,
            ssl_context=_ssl_context(options),
            reuse_address=True,
        )
        await site.start()
        port = runner.addresses[0][1]  # the kernel's choice when --secure-port is 0
        if port != options.secure_port and CONTEXT in app:
            app[CONTEXT].server_address = f"{options.advertise_address}:{port}"
        scheme = "https" if options.tls_cert_file else "http"
        log.info("serving on %s://%s:%d (etcd %s)", scheme, options.bind_address, port, options.etcd_servers)
        await stop.wait()
        log.info("shutting down")
    finally:
        if CONTEXT in app:
            app[CONTEXT].stopping.set()
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("stopped")
