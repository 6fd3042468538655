"""What the member's callers wait on while the Raft driver works, and how each wait ends (etcd's
pkg/wait and its request timeouts).

A proposal waits until this member applies its entry, or fails with etcd's "request timed out";
a membership change waits until it is applied; a linearizable read waits for a read index that
Raft confirmed, asked again while unanswered; anyone may wait until an index is applied.
Futures and counters only, resolved by the driver's task: no IO, and no clock (callers pass
`now`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from etcdlite.errors import Code, Failure
from etcdlite.mvcc import Applied
from etcdlite.raft.types import ConfChange, ConfChangeType, ConfState

TIMEOUT = Failure(Code.UNAVAILABLE, "etcdserver: request timed out")
TIMEOUT_LEADER_FAIL = Failure(
    Code.UNAVAILABLE, "etcdserver: request timed out, possibly due to previous leader failure"
)
READ_INDEX_RETRY = 0.5  # etcd's readIndexRetryTime


def timeout_failure(started: float, elected: float, election_timeout: float) -> Failure:
    """etcd's parseProposeCtxErr: a proposal made while the previous leader was failing (within two
    election timeouts before this member saw the current leader elected) was most likely lost with it."""
    if elected - 2 * election_timeout < started < elected:
        return TIMEOUT_LEADER_FAIL
    return TIMEOUT


class Proposals:
    """Proposals in flight, by request id. All share one timeout, so their deadlines come in order
    and one sweep per tick expires them, instead of a timer per request."""

    def __init__(self, first_id: int, timeout: float) -> None:
        self.timeout = timeout
        self._ids = itertools.count(first_id)
        self._pending: dict[int, asyncio.Future[Applied | None]] = {}
        self._deadlines: deque[tuple[float, int]] = deque()  # (when, request id), oldest first

    def add(self, now: float) -> tuple[int, asyncio.Future[Applied | None]]:
        request_id = next(self._ids)
        future: asyncio.Future[Applied | None] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._deadlines.append((now + self.timeout, request_id))
        return request_id, future

    def forget(self, request_id: int) -> None:
        """The caller stopped waiting; its deadline stays behind and finds nothing."""
        self._pending.pop(request_id, None)

    def answer(self, request_id: int, result: Applied | None) -> None:
        future = self._pending.pop(request_id, None)
        if future is not None and not future.done():
            future.set_result(result)

    def fail(self, request_id: int, failure: Failure) -> None:
        future = self._pending.pop(request_id, None)
        if future is not None and not future.done():
            future.set_exception(failure())

    def fail_all(self, failure: Failure) -> None:
        for future in list(self._pending.values()):
            if not future.done():
                future.set_exception(failure())

    def expire(self, now: float, leader_elected_at: float, election_timeout: float) -> None:
        """etcd's "request timed out" for proposals not applied within the timeout."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            deadline, request_id = deadlines.popleft()
            future = self._pending.pop(request_id, None)
            if future is not None and not future.done():
                started = deadline - self.timeout
                future.set_exception(timeout_failure(started, leader_elected_at, election_timeout)())


class ConfChanges:
    """Membership changes proposed here, by (type, member id), until they are applied."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[ConfChangeType, int], list[asyncio.Future[ConfState]]] = {}

    def add(self, cc: ConfChange, future: asyncio.Future[ConfState]) -> None:
        self._waiting.setdefault((cc.type, cc.node_id), []).append(future)

    def answer(self, cc: ConfChange, conf_state: ConfState) -> None:
        for future in self._waiting.pop((cc.type, cc.node_id), []):
            if not future.done():
                future.set_result(conf_state)


@dataclass
class _ReadRound:
    waiters: list[asyncio.Future[int]]
    issued: float


class ReadRounds:
    """Linearizable reads, gathered into rounds: one read index serves every read queued since
    the last Ready. A round is identified by a context the core hands back in its read state."""

    def __init__(self) -> None:
        self._ctx = itertools.count(1)
        self._rounds: dict[bytes, _ReadRound] = {}

    def due(self, reads: Sequence[asyncio.Future[int]], now: float) -> list[bytes]:
        """The contexts to ask the core about now: a new round for the `reads` still waiting, and
        each round unanswered for READ_INDEX_RETRY (its request or answer may have been lost)."""
        due = []
        waiting = [f for f in reads if not f.done()]
        if waiting:
            ctx = next(self._ctx).to_bytes(8, "big")
            self._rounds[ctx] = _ReadRound(waiting, now)
            due.append(ctx)
        for ctx, round_ in list(self._rounds.items()):
            if all(f.done() for f in round_.waiters):
                del self._rounds[ctx]
            elif now - round_.issued > READ_INDEX_RETRY:
                round_.issued = now
                due.append(ctx)
        return due

    def answer(self, ctx: bytes, index: int) -> None:
        round_ = self._rounds.pop(ctx, None)
        if round_ is not None:
            for future in round_.waiters:
                if not future.done():
                    future.set_result(index)


class AppliedWaits:
    """Callers waiting until the applied index reaches theirs."""

    def __init__(self) -> None:
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def add(self, index: int) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((index, future))
        return future

    def release(self, applied: int) -> None:
        if not self._waiters:
            return
        still = []
        for index, future in self._waiters:
            if index <= applied:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((index, future))
        self._waiters = still
