"""One NodePort listener: accept TCP on bind-address:nodePort and splice to a ready backend.

Backends are taken round-robin from the route current at accept time, so endpoint changes
need no restart. Both directions are copied with asyncio streams; an EOF on one side is
passed on as a half-close, an error closes both. A route without backends gets its
connections closed at once. The listener owns its connection tasks and cancels them on
close. It touches only sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from proxy.routing import Backend, NodePortRoute

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
_CHUNK = 64 * 1024


class RoundRobin:
    """Picks backends in turn; the position survives changes of the backend list."""

    def __init__(self) -> None:
        self._next = 0

    def order(self, backends: tuple[Backend, ...]) -> list[Backend]:
        """All backends, starting with the one whose turn it is."""
        if not backends:
            return []
        start = self._next % len(backends)
        self._next = start + 1
        return [*backends[start:], *backends[:start]]


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Copy until EOF (then half-close the writer) and return True; False on a broken connection."""
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof() and not writer.is_closing():
            writer.write_eof()
        return True
    except (ConnectionError, OSError):
        return False


def _abort(writer: asyncio.StreamWriter) -> None:
    writer.transport.abort()


async def splice(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    backend_reader: asyncio.StreamReader,
    backend_writer: asyncio.StreamWriter,
) -> None:
    """Copy both ways until both directions ended; a broken side aborts both."""

    async def direction(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not await _pump(reader, writer):
            _abort(client_writer)
            _abort(backend_writer)

    try:
        await asyncio.gather(
            direction(client_reader, backend_writer), direction(backend_reader, client_writer)
        )
    finally:
        for writer in (client_writer, backend_writer):
            writer.close()
        for writer in (client_writer, backend_writer):
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


class NodePortListener:
    def __init__(self, bind_address: str, node_port: int, route: Callable[[], NodePortRoute | None]):
        self.bind_address = bind_address
        self.node_port = node_port
        self._route = route
        self._balancer = RoundRobin()
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], list[asyncio.StreamWriter]] = {}
        self._closing = False
        self._warned_empty = False

    async def start(self) -> None:
        """Listen; raises OSError (e.g. address in use) and then holds nothing."""
        self._server = await asyncio.start_server(
            self._handle, self.bind_address, self.node_port, reuse_address=True
        )

    @property
    def connections(self) -> int:
        return len(self._connections)

    async def close(self) -> None:
        """Stop listening and cut every open connection.

        Transports are aborted as well as tasks cancelled: a cancellation can be lost in a race
        with a connect that just finished, but an aborted socket always ends the splice.
        """
        self._closing = True
        if self._server is not None:
            self._server.close()
        tasks = list(self._connections)
        for task, writers in list(self._connections.items()):
            for writer in writers:
                _abort(writer)
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._closing:
            _abort(writer)
            return
        self._connections[task] = [writer]
        try:
            await self._serve(reader, writer, self._connections[task])
        except asyncio.CancelledError:
            # Only close() cancels a connection; ending quietly keeps asyncio's stream callback
            # from logging the cancellation as an error (Python 3.11).
            _abort(writer)
        finally:
            self._connections.pop(task, None)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, writers: list[asyncio.StreamWriter]
    ) -> None:
        route = self._route()
        backends = route.backends if route else ()
        if not backends:
            if not self._warned_empty:
                what = route.display if route else f"nodePort {self.node_port}"
                log.warning("service %s has no ready endpoints; closing connections to it", what)
                self._warned_empty = True
            writer.close()
            return
        self._warned_empty = False
        for backend in self._balancer.order(backends):
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    backend_reader, backend_writer = await asyncio.open_connection(backend.ip, backend.port)
            except (OSError, TimeoutError) as e:
                log.warning("%s: cannot reach endpoint %s: %s", route.display if route else "", backend, e)
                continue
            writers.append(backend_writer)
            if self._closing:
                _abort(backend_writer)
                _abort(writer)
                return
            await splice(reader, writer, backend_reader, backend_writer)
            return
        writer.close()
