"""RawNode: the Raft core behind the Ready/advance interface the driver loop uses (etcd's RawNode).

The driver ticks it, steps peer messages into it, proposes, then repeatedly takes a `Ready` and
handles it in the contract's order: (1) persist hard_state, entries and snapshot (fsync);
(2) send messages; (3) apply the snapshot, then committed_entries (CONF_CHANGE entries through
`apply_conf_change`), and answer read_states once applied >= their index; (4) `advance`.

Restart: build the RawNode from the durable storage with `Config.applied` = the snapshot index
(or 0). Committed entries after it come back in the first Readies; call `apply_conf_change` for
every CONF_CHANGE among them even if the state machine already holds that entry, because the
core rebuilds its configuration from the snapshot's ConfState plus those replays.
Pure and synchronous; touches nothing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from etcdlite.raft.confchange import check_conf_change
from etcdlite.raft.core import READ_ONLY_SAFE, Config, Raft, ReadOnlyOption
from etcdlite.raft.errors import ProposalDroppedError, RaftInvariantError
from etcdlite.raft.progress import ProgressView
from etcdlite.raft.types import (
    RESPONSE_MESSAGES,
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Ready,
    SoftState,
    StateType,
)

__all__ = ["READ_ONLY_SAFE", "Config", "ProposalDroppedError", "RawNode", "ReadOnlyOption", "Status"]


@dataclass(frozen=True, slots=True)
class Status:
    id: int
    term: int
    vote: int
    lead: int
    state: StateType
    commit: int
    applied: int
    progress: dict[int, ProgressView]


class RawNode:
    def __init__(self, config: Config) -> None:
        self.raft = Raft(config)
        self._prev_soft = self.raft.soft_state()
        self._prev_hard = self.raft.hard_state()

    # -- bootstrap ---------------------------------------------------------------------
    def bootstrap(self, peers: list[int]) -> None:
        """Start a brand-new cluster: one committed ADD_NODE entry per peer (etcd's StartNode).

        The entries go to the unstable log, so the first Ready persists them like any other
        entries, and carries them as committed entries for the driver to apply."""
        if not peers:
            raise ValueError("bootstrap needs at least one peer")
        r = self.raft
        if r.log.last_index() != 0 or r.term != 0:
            raise RaftInvariantError("can only bootstrap an empty storage")
        r.become_follower(1, 0)
        ents = [
            Entry(
                term=1,
                index=i + 1,
                type=EntryType.CONF_CHANGE,
                data=ConfChange(ConfChangeType.ADD_NODE, p).encode(),
            )
            for i, p in enumerate(peers)
        ]
        r.log.append(ents)
        r.log.committed = len(ents)
        for p in peers:
            r.apply_conf_change(ConfChange(ConfChangeType.ADD_NODE, p))

    # -- inputs ------------------------------------------------------------------------
    def tick(self) -> None:
        self.raft.tick()

    def campaign(self) -> None:
        self.raft.step(Message(type=MessageType.HUP, frm=self.raft.id))

    def propose(self, *data: bytes) -> None:
        """Propose normal entries, as one message (one append to each follower for all of them);
        ProposalDroppedError if there is no leader or a transfer is on."""
        entries = tuple(Entry(0, 0, data=d) for d in data)
        self.raft.step(Message(type=MessageType.PROP, frm=self.raft.id, entries=entries))

    def propose_conf_change(self, cc: ConfChange) -> None:
        """Propose a membership change; ValueError for one that can never apply to the current config."""
        check_conf_change(self.raft.conf_state(), cc)
        entry = Entry(0, 0, type=EntryType.CONF_CHANGE, data=cc.encode())
        self.raft.step(Message(type=MessageType.PROP, frm=self.raft.id, entries=(entry,)))

    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        return self.raft.apply_conf_change(cc)

    def step(self, m: Message) -> None:
        """Step a message from a peer. Local message types are refused; dropped proposals are dropped."""
        t = m.type
        if t is MessageType.HUP or t is MessageType.BEAT or t is MessageType.CHECK_QUORUM:
            raise ValueError(f"cannot step local message {t.name} from the network")
        if m.frm not in self.raft.prs and t in RESPONSE_MESSAGES:
            return  # a response from a peer that is no longer a member
        # A forwarded proposal or read that cannot be accepted is dropped; its client times out.
        with contextlib.suppress(ProposalDroppedError):
            self.raft.step(m)

    def read_index(self, ctx: bytes) -> None:
        """Ask for a linearizable read point; the answer arrives as a ReadState carrying ctx."""
        self.raft.step(Message(type=MessageType.READ_INDEX, frm=self.raft.id, context=ctx))

    def transfer_leader(self, to: int) -> None:
        self.raft.step(Message(type=MessageType.TRANSFER_LEADER, frm=to))

    def report_unreachable(self, node_id: int) -> None:
        self.raft.step(Message(type=MessageType.UNREACHABLE, frm=node_id))

    def report_snapshot(self, node_id: int, ok: bool) -> None:
        self.raft.step(Message(type=MessageType.SNAP_STATUS, frm=node_id, reject=not ok))

    # -- output ------------------------------------------------------------------------
    def has_ready(self) -> bool:
        # Field by field rather than building SoftState/HardState: this runs after every step.
        r, soft, hard = self.raft, self._prev_soft, self._prev_hard
        if r.lead != soft.lead or r.state is not soft.state:
            return True
        if (r.term != hard.term or r.vote != hard.vote or r.log.committed != hard.commit) and (
            r.term or r.vote or r.log.committed
        ):
            return True
        unstable = r.log.unstable
        if unstable.snapshot is not None or unstable.entries:
            return True
        return bool(r.msgs or r.appends_pending or r.read_states or r.log.has_next_committed_entries())

    def ready(self) -> Ready:
        r = self.raft
        r.flush_appends()
        soft = r.soft_state()
        hard = r.hard_state()
        entries = r.log.unstable_entries()
        rd = Ready(
            soft_state=soft if soft != self._prev_soft else None,
            hard_state=hard if hard != self._prev_hard and hard != HardState() else None,
            read_states=r.read_states,
            entries=entries,
            snapshot=r.log.unstable.snapshot,
            committed_entries=r.log.next_committed_entries(),
            messages=r.msgs,
            must_sync=bool(entries) or hard.term != self._prev_hard.term or hard.vote != self._prev_hard.vote,
        )
        r.msgs = []
        r.read_states = []
        self._prev_soft = soft
        return rd

    def advance(self, rd: Ready) -> None:
        """The driver has persisted, sent and applied everything in rd."""
        r = self.raft
        if rd.hard_state is not None:
            self._prev_hard = rd.hard_state
        if rd.committed_entries:
            r.log.applied_to(rd.committed_entries[-1].index)
        elif rd.snapshot is not None:
            r.log.applied_to(rd.snapshot.metadata.index)
        if rd.entries:
            r.log.stable_to(rd.entries[-1].index, rd.entries[-1].term)
        if rd.snapshot is not None:
            r.log.stable_snap_to(rd.snapshot.metadata.index)

    def status(self) -> Status:
        r = self.raft
        progress: dict[int, ProgressView] = {}
        if r.state is StateType.LEADER:
            progress = {i: ProgressView(p.match, p.next, p.state, p.is_learner) for i, p in r.prs.items()}
        return Status(
            id=r.id,
            term=r.term,
            vote=r.vote,
            lead=r.lead,
            state=r.state,
            commit=r.log.committed,
            applied=r.log.applied,
            progress=progress,
        )

    def soft_state(self) -> SoftState:
        return self.raft.soft_state()
