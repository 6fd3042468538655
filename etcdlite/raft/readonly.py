"""Read-index bookkeeping on the leader: pending linearizable reads waiting for a heartbeat quorum.

A read is recorded with the commit index at the time it arrived; once a majority answers the
heartbeat carrying its context, that read and every read queued before it may be served at their
recorded indexes (Raft thesis §6.4). Touches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from etcdlite.raft.types import Message


@dataclass(slots=True)
class ReadIndexStatus:
    req: Message
    index: int
    acks: set[int] = field(default_factory=set)


class ReadOnly:
    def __init__(self) -> None:
        self.pending: dict[bytes, ReadIndexStatus] = {}
        self.queue: list[bytes] = []

    def add_request(self, index: int, m: Message) -> None:
        if m.context in self.pending:
            return
        self.pending[m.context] = ReadIndexStatus(req=m, index=index)
        self.queue.append(m.context)

    def recv_ack(self, node_id: int, ctx: bytes) -> set[int] | None:
        rs = self.pending.get(ctx)
        if rs is None:
            return None
        rs.acks.add(node_id)
        return rs.acks

    def advance(self, ctx: bytes) -> list[ReadIndexStatus]:
        """Release every read queued up to and including ctx."""
        if ctx not in self.pending:
            return []
        n = self.queue.index(ctx) + 1
        released = [self.pending.pop(c) for c in self.queue[:n]]
        del self.queue[:n]
        return released

    def last_pending_request_ctx(self) -> bytes | None:
        return self.queue[-1] if self.queue else None
