"""A watch request as a stream: the events `watch.watch` yields for it, rendered as the client asked
(the plain object, one-row Tables for `kubectl get -w`, or PartialObjectMetadata), one JSON line
each, with bookmarks while it is quiet, until its timeout, the client leaving or the server
stopping. Touches: the HTTP response, and the store through `watch`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

from aiohttp import web

from apiserver import tables
from apiserver.meta import utcnow
from apiserver.negotiation import JSON_CONTENT_TYPE, Output, choose_output
from apiserver.registry import ListOptions, Registry
from apiserver.resources import ResourceDef
from apiserver.watch import WatchEvent, WatchEventType, bookmark, encode_line, watch
from apiserver.watchcache import WatchCache

log = logging.getLogger(__name__)

MIN_REQUEST_TIMEOUT = 1800  # seconds; watches without timeoutSeconds last 1x to 2x this
BOOKMARK_INTERVAL = 60.0


async def stream(
    request: web.Request,
    registry: Registry,
    cache: WatchCache | None,
    stopping: asyncio.Event,
    rd: ResourceDef,
    namespace: str | None,
    options: ListOptions,
    timeout: int | None,
) -> web.StreamResponse:
    output = choose_output(request.headers.get("Accept"))
    if timeout is None or timeout <= 0:
        timeout = int(MIN_REQUEST_TIMEOUT * (1 + random.random()))
    bookmarks = (
        request.query.get("allowWatchBookmarks", "").lower() in ("true", "1") and output is Output.OBJECT
    )
    send_initial = request.query.get("sendInitialEvents")
    initial = None if send_initial is None else send_initial.lower() == "true"
    include = request.query.get("includeObject", "Metadata")

    queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue(maxsize=1000)

    async def produce() -> None:
        try:
            async for event in watch(
                registry,
                rd,
                namespace,
                options,
                send_initial_events=initial,
                bookmarks=bookmarks,
                cache=cache,
            ):
                await queue.put(event)
        finally:
            await queue.put(None)

    producer = asyncio.create_task(produce(), name=f"watch {rd.plural}")
    stopper = asyncio.create_task(stopping.wait(), name="watch stop signal")
    response = web.StreamResponse(status=200, headers={"Content-Type": JSON_CONTENT_TYPE})
    response.enable_chunked_encoding()
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    first_table = True
    last_revision = 0
    if options.resource_version not in ("", "0"):
        with contextlib.suppress(ValueError):
            last_revision = int(options.resource_version)
    try:
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            getter = asyncio.ensure_future(queue.get())
            done, _pending = await asyncio.wait(
                {getter, stopper},
                timeout=min(remaining, BOOKMARK_INTERVAL),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if getter not in done:
                getter.cancel()
                if stopper in done:
                    break
                if bookmarks and last_revision:
                    await send_event(
                        response,
                        rd,
                        bookmark(rd, last_revision),
                        output,
                        include,
                        False,
                    )
                continue
            event = getter.result()
            if event is None:
                break
            if event.revision:
                last_revision = max(last_revision, event.revision)
            await send_event(response, rd, event, output, include, first_table)
            if output is Output.TABLE and event.type is not WatchEventType.ERROR:
                first_table = False
            if event.type is WatchEventType.ERROR:
                break
    except ConnectionResetError:
        log.debug("watch %s: client went away", rd.plural)
        return response
    finally:
        producer.cancel()
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await producer
        with contextlib.suppress(asyncio.CancelledError):
            await stopper
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


async def send_event(
    response: web.StreamResponse,
    rd: ResourceDef,
    event: WatchEvent,
    output: Output,
    include: str,
    first: bool,
) -> None:
    if output is Output.OBJECT:
        await response.write(event.encoded())
        return
    obj: Any = event.object
    if event.type not in (WatchEventType.ERROR, WatchEventType.BOOKMARK):
        if output is Output.TABLE:
            obj = tables.table(
                rd.strategy.columns,
                [(rd.strategy.cells(event.object, utcnow()), event.object)],
                include_object=include,
                resource_version=str(event.object.get("metadata", {}).get("resourceVersion", "")),
                with_definitions=first,
            )
        elif output is Output.PARTIAL:
            obj = tables.partial_metadata(event.object)
    await response.write(encode_line(event.type, obj))
