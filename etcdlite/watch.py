"""Watches: which watcher sees which change, and the etcd watch protocol of one client stream.

`WatchHub` holds every watcher of the member and fans each applied write out to the matching
ones. `WatchStream` is the protocol of one bidirectional Watch stream (COMPAT.md B4): it
handles create/cancel/progress requests, numbers watches from 0, answers `created` before any
event, replays history from `start_revision`, and cancels watches whose start revision was
compacted. Responses leave through a `send` callback (the gRPC layer puts them on the stream's
queue), so everything here is synchronous and free of IO; a create registers the watcher and
queues its replay in one step, so no change can slip between replay and live events.
When the member's state is replaced by a newer one (a Raft snapshot from the leader),
`WatchHub.state_replaced` brings every watcher up to the new state the same way: replay from
the new state's history, or etcd's compacted cancel when that history no longer reaches back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from etcdlite.mvcc import Change, MvccStore, in_span
from kubelite.pb.etcdserverpb import rpc_pb2
from kubelite.pb.mvccpb import kv_pb2

Send = Callable[[rpc_pb2.WatchResponse], None]
HeaderFactory = Callable[[int], rpc_pb2.ResponseHeader]

EMPTY_RANGE_REASON = "mvcc: watcher range is empty"
DUPLICATE_ID_REASON = "mvcc: duplicate watch ID provided on the WatchStream"
# Replayed history goes out in responses of about this many events (whole revisions each).
REPLAY_BATCH_EVENTS = 1000

_NOPUT = rpc_pb2.WatchCreateRequest.FilterType.NOPUT
_NODELETE = rpc_pb2.WatchCreateRequest.FilterType.NODELETE


@dataclass(eq=False)
class Watcher:
    watch_id: int
    key: bytes
    range_end: bytes
    start_revision: int
    prev_kv: bool
    no_put: bool
    no_delete: bool
    progress_notify: bool
    send: Send

    def wants(self, change: Change) -> bool:
        if change.revision < self.start_revision or not in_span(change.kv.key, self.key, self.range_end):
            return False
        return not (self.no_delete if change.is_delete else self.no_put)

    def event(self, change: Change, compact_revision: int) -> kv_pb2.Event:
        """The event as sent; prev_kv only when the revision before it is not compacted (as etcd)."""
        kv = change.kv
        if change.is_delete:
            event = kv_pb2.Event(
                type=kv_pb2.Event.DELETE, kv=kv_pb2.KeyValue(key=kv.key, mod_revision=kv.mod_revision)
            )
        else:
            event = kv_pb2.Event(type=kv_pb2.Event.PUT, kv=kv.to_pb())
        if self.prev_kv and change.prev is not None and change.revision > compact_revision:
            event.prev_kv.CopyFrom(change.prev.to_pb())
        return event


def send_replay(
    watcher: Watcher, changes: list[Change], header: rpc_pb2.ResponseHeader, compact_revision: int
) -> None:
    """History for one watcher, in responses of about REPLAY_BATCH_EVENTS events (whole revisions)."""
    batch: list[kv_pb2.Event] = []
    last_revision = 0
    for change in changes:
        if len(batch) >= REPLAY_BATCH_EVENTS and change.revision != last_revision:
            watcher.send(rpc_pb2.WatchResponse(header=header, watch_id=watcher.watch_id, events=batch))
            batch = []
        if watcher.wants(change):
            batch.append(watcher.event(change, compact_revision))
            last_revision = change.revision
    if batch:
        watcher.send(rpc_pb2.WatchResponse(header=header, watch_id=watcher.watch_id, events=batch))


class WatchHub:
    """Every watcher of this member; `publish` is called once per applied write, in order."""

    def __init__(self, header: HeaderFactory) -> None:
        self._header = header
        self._watchers: dict[Watcher, None] = {}  # a dict: fan out in creation order, deterministically

    def __len__(self) -> int:
        return len(self._watchers)

    def add(self, watcher: Watcher) -> None:
        self._watchers[watcher] = None

    def remove(self, watcher: Watcher) -> None:
        self._watchers.pop(watcher, None)

    def publish(self, changes: list[Change], compact_revision: int) -> None:
        if not changes or not self._watchers:
            return
        revision = changes[-1].revision
        for watcher in self._watchers:
            events = [watcher.event(c, compact_revision) for c in changes if watcher.wants(c)]
            if events:
                watcher.send(
                    rpc_pb2.WatchResponse(
                        header=self._header(revision), watch_id=watcher.watch_id, events=events
                    )
                )

    def state_replaced(self, previous_revision: int, store: MvccStore) -> None:
        """The store now holds a newer state than `previous_revision` (a snapshot installed from the
        leader), with its history from `store.compact_revision` on. Every watcher has been sent all
        events up to `previous_revision`; it resumes at the later of that + 1 and its start revision.
        Where the new history still covers that revision the watcher gets the missed events and
        continues; where it does not, events are lost to compaction, so the watcher is cancelled as
        etcd cancels one on a compacted revision (`compact_revision` set, `canceled`): the client
        must re-list. Its id stays taken on its stream until the client cancels it, as in etcd."""
        if not self._watchers:
            return
        compact_revision = store.compact_revision
        missed = store.changes_since(previous_revision + 1) if store.revision > previous_revision else []
        header = self._header(store.revision)
        for watcher in list(self._watchers):
            if max(watcher.start_revision, previous_revision + 1) < compact_revision:
                self.remove(watcher)
                watcher.send(
                    rpc_pb2.WatchResponse(
                        header=self._header(0),
                        watch_id=watcher.watch_id,
                        canceled=True,
                        compact_revision=compact_revision,
                    )
                )
            elif missed:
                send_replay(watcher, missed, header, compact_revision)

    def notify_progress(self, revision: int) -> None:
        """The periodic empty response for watchers created with progress_notify."""
        for watcher in self._watchers:
            if watcher.progress_notify:
                watcher.send(rpc_pb2.WatchResponse(header=self._header(revision), watch_id=watcher.watch_id))


class WatchStream:
    """One client's Watch stream carrying many watches."""

    def __init__(self, hub: WatchHub, store: MvccStore, header: HeaderFactory, send: Send) -> None:
        self._hub = hub
        self._store = store
        self._header = header
        self._send = send
        self._watchers: dict[int, Watcher] = {}
        self._next_id = 0

    def handle(self, request: rpc_pb2.WatchRequest) -> None:
        kind = request.WhichOneof("request_union")
        if kind == "create_request":
            self._create(request.create_request)
        elif kind == "cancel_request":
            self._cancel(request.cancel_request.watch_id)
        elif kind == "progress_request":
            self._send(rpc_pb2.WatchResponse(header=self._header(self._store.revision), watch_id=-1))

    def close(self) -> None:
        for watcher in self._watchers.values():
            self._hub.remove(watcher)
        self._watchers.clear()

    def _create(self, create: rpc_pb2.WatchCreateRequest) -> None:
        store = self._store
        revision = store.revision
        key = create.key or b"\x00"
        range_end = create.range_end
        if range_end and range_end != b"\x00" and key >= range_end:
            self._refuse(EMPTY_RANGE_REASON)
            return
        if create.watch_id:
            if create.watch_id in self._watchers:
                self._refuse(DUPLICATE_ID_REASON)
                return
            watch_id = create.watch_id
        else:
            while self._next_id in self._watchers:
                self._next_id += 1
            watch_id = self._next_id
            self._next_id += 1
        header = self._header(revision)
        self._send(rpc_pb2.WatchResponse(header=header, watch_id=watch_id, created=True))
        start = create.start_revision
        if 0 < start < store.compact_revision:
            self._send(
                rpc_pb2.WatchResponse(
                    header=self._header(0),
                    watch_id=watch_id,
                    canceled=True,
                    compact_revision=store.compact_revision,
                )
            )
            return
        filters = set(create.filters)
        watcher = Watcher(
            watch_id=watch_id,
            key=key,
            range_end=range_end,
            start_revision=start if start > 0 else revision + 1,
            prev_kv=create.prev_kv,
            no_put=_NOPUT in filters,
            no_delete=_NODELETE in filters,
            progress_notify=create.progress_notify,
            send=self._send,
        )
        self._watchers[watch_id] = watcher
        self._hub.add(watcher)
        if 0 < start <= revision:
            send_replay(watcher, store.changes_since(start), header, store.compact_revision)

    def _refuse(self, reason: str) -> None:
        self._send(
            rpc_pb2.WatchResponse(
                header=self._header(self._store.revision),
                watch_id=-1,
                created=True,
                canceled=True,
                cancel_reason=reason,
            )
        )

    def _cancel(self, watch_id: int) -> None:
        watcher = self._watchers.pop(watch_id, None)
        if watcher is None:
            return
        self._hub.remove(watcher)
        self._send(
            rpc_pb2.WatchResponse(header=self._header(self._store.revision), watch_id=watch_id, canceled=True)
        )
