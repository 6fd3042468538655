"""An in-memory MVCC store with the apiserver's EtcdStore interface: revisions, history, guarded
transactions, watches and compaction. The registry runs on it unchanged, in-process, so unit tests
get the real apiserver's semantics without etcd or sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from apiserver.storage import (
    Absent,
    CompactedError,
    Delete,
    EventType,
    Guard,
    KeyValue,
    Page,
    Put,
    StoreEvent,
    TxnResult,
    Write,
)


class FakeStore:
    def __init__(self) -> None:
        self.rev = 1
        self.compacted = 0
        self.history: list[tuple[int, str, KeyValue | None]] = []  # (revision, key, kv or None=deleted)
        self.head: dict[str, KeyValue] = {}  # the state at self.rev
        self._changed: tuple[asyncio.AbstractEventLoop, asyncio.Condition] | None = None

    @property
    def changed(self) -> asyncio.Condition:
        """One condition per event loop: each test step may run in its own asyncio.run."""
        loop = asyncio.get_running_loop()
        if self._changed is None or self._changed[0] is not loop:
            self._changed = (loop, asyncio.Condition())
        return self._changed[1]

    def _at(self, revision: int) -> dict[str, KeyValue]:
        if revision >= self.rev:
            return self.head
        state: dict[str, KeyValue] = {}
        for rev, key, kv in self.history:
            if rev > revision:
                break
            if kv is None:
                state.pop(key, None)
            else:
                state[key] = kv
        return state

    async def get(self, key: str, revision: int = 0) -> tuple[KeyValue | None, int]:
        return self._at(revision or self.rev).get(key), self.rev

    async def list(self, prefix: str, *, start: str | None = None, limit: int = 0, revision: int = 0,
                   keys_only: bool = False) -> Page:  # fmt: skip
        if revision and revision < self.compacted:
            raise CompactedError(revision, self.compacted)
        at = revision or self.rev
        state = self._at(at)
        keys = sorted(k for k in state if k.startswith(prefix) and k >= (start or prefix))
        chosen = keys[:limit] if limit else keys
        return Page([state[k] for k in chosen], at, len(chosen) < len(keys), len(keys))

    async def revision(self) -> int:
        return self.rev

    async def txn(self, guards: list[Guard], writes: list[Write]) -> TxnResult:
        state = self.head
        ok = all(
            (g.key not in state)
            if isinstance(g, Absent)
            else (g.key in state and state[g.key].mod_revision == g.mod_revision)
            for g in guards
        )
        if not ok:
            return TxnResult(False, self.rev, {g.key: state.get(g.key) for g in guards})
        self.rev += 1
        for write in writes:
            if isinstance(write, Put):
                old = state.get(write.key)
                create = old.create_revision if old else self.rev
                kv = KeyValue(write.key, write.value, create, self.rev)
                self.history.append((self.rev, write.key, kv))
                self.head[write.key] = kv
            elif isinstance(write, Delete) and write.key in state:
                self.history.append((self.rev, write.key, None))
                del self.head[write.key]
        async with self.changed:
            self.changed.notify_all()
        return TxnResult(True, self.rev)

    def events_since(self, revision: int, prefix: str = "") -> list[StoreEvent]:
        """Every change after revision (under prefix), with the value each key had before it."""
        out = []
        previous: dict[str, KeyValue] = dict(self._at(revision))
        for rev, key, kv in self.history:
            if rev <= revision:
                continue
            prev = previous.get(key)
            if kv is None:
                previous.pop(key, None)
                event = StoreEvent(EventType.DELETE, KeyValue(key, b"", 0, rev), prev)
            else:
                previous[key] = kv
                event = StoreEvent(EventType.PUT, kv, prev)
            if key.startswith(prefix):
                out.append(event)
        return out

    async def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[StoreEvent]]:
        if start_revision < self.compacted:
            raise CompactedError(start_revision, self.compacted)
        seen = start_revision - 1
        while True:
            batch = self.events_since(seen, prefix)
            seen = self.rev
            if batch:
                yield batch
            async with self.changed:
                if self.rev <= seen:
                    await self.changed.wait()
