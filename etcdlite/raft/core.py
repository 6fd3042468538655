"""The Raft state machine itself (etcd's `raft` struct): roles, elections, replication, commit.

`Raft.step(message)` and `Raft.tick()` change memory and queue outgoing messages in `msgs`;
nothing here does IO, reads a clock or uses global randomness (the election jitter comes from
the injected `Config.rand`). A role change goes through become_follower / become_pre_candidate /
become_candidate / become_leader, which swap the step and tick functions and refuse illegal
transitions. `RawNode` (node.py) wraps this into the Ready/advance interface the driver uses.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from etcdlite.raft import confchange
from etcdlite.raft.errors import (
    CompactedError,
    IllegalTransitionError,
    ProposalDroppedError,
    RaftInvariantError,
    SnapshotTemporarilyUnavailableError,
)
from etcdlite.raft.log import RaftLog
from etcdlite.raft.progress import Progress, ProgressState
from etcdlite.raft.readonly import ReadOnly
from etcdlite.raft.storage import Storage
from etcdlite.raft.types import (
    ConfChange,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Snapshot,
    SoftState,
    StateType,
)

MT = MessageType
CAMPAIGN_TRANSFER = b"CampaignTransfer"
NONE = 0


class ReadOnlyOption(enum.Enum):
    """SAFE confirms leadership with a heartbeat round for every read index (the only one we use)."""

    SAFE = "safe"


READ_ONLY_SAFE = ReadOnlyOption.SAFE


class CampaignType(enum.Enum):
    PRE_ELECTION = "pre-election"
    ELECTION = "election"
    TRANSFER = "transfer"


class VoteResult(enum.Enum):
    PENDING = 0
    LOST = 1
    WON = 2


@dataclass(kw_only=True)
class Config:
    id: int
    storage: Storage
    election_tick: int = 10
    heartbeat_tick: int = 1
    applied: int = 0
    max_size_per_msg: int = 1 << 20
    max_inflight_msgs: int = 256
    pre_vote: bool = True
    check_quorum: bool = True
    read_only_option: ReadOnlyOption = READ_ONLY_SAFE
    # The election jitter's source. Tests pass a seeded one; the default is seeded by the OS so
    # members that forget to pass one do not all time out on the same tick.
    rand: random.Random = field(default_factory=random.Random)

    def validate(self) -> None:
        if self.id == NONE:
            raise ValueError("cannot use 0 as a node id")
        if self.heartbeat_tick <= 0:
            raise ValueError("heartbeat tick must be greater than 0")
        if self.election_tick <= self.heartbeat_tick:
            raise ValueError("election tick must be greater than heartbeat tick")
        if self.max_inflight_msgs <= 0:
            raise ValueError("max inflight messages must be greater than 0")


# Tuples, not sets: `in` on a tuple tries identity first, hashing an Enum member is slow.
_VOTE_MESSAGES = (MT.VOTE, MT.VOTE_RESP, MT.PRE_VOTE, MT.PRE_VOTE_RESP)
_TERMLESS_MESSAGES = (MT.PROP, MT.READ_INDEX)


def _vote_resp_type(t: MessageType) -> MessageType:
    if t is MT.VOTE:
        return MT.VOTE_RESP
    if t is MT.PRE_VOTE:
        return MT.PRE_VOTE_RESP
    raise ValueError(f"not a vote message: {t}")


class Raft:
    def __init__(self, config: Config) -> None:
        config.validate()
        self.id = config.id
        self.log = RaftLog(config.storage, max_next_ents_size=config.max_size_per_msg)
        self.max_msg_size = config.max_size_per_msg
        self.max_inflight = config.max_inflight_msgs
        self.election_timeout = config.election_tick
        self.heartbeat_timeout = config.heartbeat_tick
        self.pre_vote = config.pre_vote
        self.check_quorum = config.check_quorum
        self.rand = config.rand

        self.term = 0
        self.vote = NONE
        self.lead = NONE
        self.state = StateType.FOLLOWER
        self.prs: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}
        self.msgs: list[Message] = []
        # Proposals or a commit since the last flush_appends: the followers are owed an append.
        self.appends_pending = False
        self.read_states: list[ReadState] = []
        self.read_only = ReadOnly()
        self.pending_read_index: list[Message] = []
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = self.election_timeout
        self.lead_transferee = NONE
        self.pending_conf_index = 0
        self._step: Callable[[Message], None] = self._step_follower
        self._tick: Callable[[], None] = self._tick_election

        hs, cs = config.storage.initial_state()
        for v in cs.voters:
            self.prs[v] = Progress(1, self.max_inflight)
        for lrn in cs.learners:
            self.prs[lrn] = Progress(1, self.max_inflight, is_learner=True)
        if hs != HardState():
            self._load_state(hs)
        if config.applied > 0:
            self.log.applied_to(config.applied)
        self.become_follower(self.term, NONE)

    # -- accessors ---------------------------------------------------------------------
    def soft_state(self) -> SoftState:
        return SoftState(lead=self.lead, state=self.state)

    def hard_state(self) -> HardState:
        return HardState(term=self.term, vote=self.vote, commit=self.log.committed)

    def voters(self) -> list[int]:
        return sorted(i for i, p in self.prs.items() if not p.is_learner)

    def learners(self) -> list[int]:
        return sorted(i for i, p in self.prs.items() if p.is_learner)

    def conf_state(self) -> ConfState:
        return ConfState(voters=tuple(self.voters()), learners=tuple(self.learners()))

    def promotable(self) -> bool:
        pr = self.prs.get(self.id)
        return pr is not None and not pr.is_learner

    def quorum(self) -> int:
        return len(self.voters()) // 2 + 1

    def _load_state(self, hs: HardState) -> None:
        if hs.commit < self.log.committed or hs.commit > self.log.last_index():
            raise RaftInvariantError(
                f"hard state commit {hs.commit} out of range [{self.log.committed}, {self.log.last_index()}]"
            )
        self.log.committed = hs.commit
        self.term = hs.term
        self.vote = hs.vote

    # -- sending -----------------------------------------------------------------------
    def send(self, m: Message) -> None:
        """Queue a message: stamps our id (unless forwarded) and our term (unless a vote or forwarded)."""
        t = m.type
        if t in _VOTE_MESSAGES:
            if m.term == 0 and t in (MT.VOTE, MT.PRE_VOTE):
                raise RaftInvariantError(f"term should be set when sending {t}")
            term = m.term
        elif t in _TERMLESS_MESSAGES:
            term = m.term
        else:
            term = self.term
        # Built field by field: dataclasses.replace is several times slower on this hot path.
        self.msgs.append(
            Message(
                t,
                m.to,
                m.frm or self.id,  # a forwarded request keeps its origin (the transferee, the proposer)
                term,
                m.log_term,
                m.index,
                m.entries,
                m.commit,
                m.snapshot,
                m.reject,
                m.reject_hint,
                m.context,
            )
        )

    def maybe_send_append(self, to: int, send_if_empty: bool = True) -> bool:
        """Send the entries `to` is missing (or a snapshot if they were compacted); True if sent."""
        pr = self.prs[to]
        if pr.is_paused():
            return False
        try:
            term = self.log.term(pr.next - 1)
            ents = self.log.entries(pr.next, self.max_msg_size)
        except CompactedError:
            return self._send_snapshot(to, pr)
        if not ents and not send_if_empty:
            return False
        pr.sent_commit = self.log.committed
        self.send(
            Message(
                type=MT.APP,
                to=to,
                index=pr.next - 1,
                log_term=term,
                entries=tuple(ents),
                commit=self.log.committed,
            )
        )
        if pr.state is ProgressState.REPLICATE:
            if ents:
                last = ents[-1].index
                pr.optimistic_update(last)
                pr.inflights.add(last)
        elif pr.state is ProgressState.PROBE:
            pr.probe_sent = True
        return True

    def _send_snapshot(self, to: int, pr: Progress) -> bool:
        if not pr.recent_active:
            return False
        try:
            snap = self.log.snapshot()
        except SnapshotTemporarilyUnavailableError:
            return False
        if snap.is_empty():
            raise RaftInvariantError("need a non-empty snapshot to catch up a follower")
        self.send(Message(type=MT.SNAP, to=to, snapshot=snap))
        pr.become_snapshot(snap.metadata.index)
        return True

    def flush_appends(self) -> None:
        """etcd's bcastAppend after proposals and commits, once per Ready rather than once per step:
        each follower gets its missing entries with the newest commit, or the commit alone when it
        holds every entry and has not been sent that commit yet."""
        if not self.appends_pending:
            return
        self.appends_pending = False
        if self.state is not StateType.LEADER:
            return
        committed = self.log.committed
        for i, pr in self.prs.items():
            if i != self.id:
                self.maybe_send_append(i, send_if_empty=pr.sent_commit < committed)

    def send_append(self, to: int) -> None:
        self.maybe_send_append(to, send_if_empty=True)

    def bcast_append(self) -> None:
        for i in self.prs:
            if i != self.id:
                self.send_append(i)

    def send_heartbeat(self, to: int, ctx: bytes = b"") -> None:
        # Never tell a follower to commit past what it is known to hold.
        commit = min(self.prs[to].match, self.log.committed)
        self.send(Message(type=MT.HEARTBEAT, to=to, commit=commit, context=ctx))

    def bcast_heartbeat(self, ctx: bytes | None = None) -> None:
        if ctx is None:
            ctx = self.read_only.last_pending_request_ctx() or b""
        for i in self.prs:
            if i != self.id:
                self.send_heartbeat(i, ctx)

    # -- role changes ------------------------------------------------------------------
    def reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.reset_randomized_election_timeout()
        self.abort_leader_transfer()
        self.votes = {}
        last = self.log.last_index()
        for i, pr in self.prs.items():
            fresh = Progress(last + 1, self.max_inflight, is_learner=pr.is_learner)
            if i == self.id:
                fresh.match = last
            self.prs[i] = fresh
        self.pending_conf_index = 0
        self.read_only = ReadOnly()
        self.pending_read_index = []

    def reset_randomized_election_timeout(self) -> None:
        self.randomized_election_timeout = self.election_timeout + self.rand.randrange(self.election_timeout)

    def become_follower(self, term: int, lead: int) -> None:
        self._step = self._step_follower
        self._tick = self._tick_election
        self.reset(term)
        self.lead = lead
        self.state = StateType.FOLLOWER

    def become_pre_candidate(self) -> None:
        if self.state is StateType.LEADER:
            raise IllegalTransitionError("invalid transition [leader -> pre-candidate]")
        # Pre-vote changes neither term nor vote: a partitioned node cannot inflate the term.
        self._step = self._step_candidate
        self._tick = self._tick_election
        self.votes = {}
        self.lead = NONE
        self.state = StateType.PRE_CANDIDATE

    def become_candidate(self) -> None:
        if self.state is StateType.LEADER:
            raise IllegalTransitionError("invalid transition [leader -> candidate]")
        self._step = self._step_candidate
        self._tick = self._tick_election
        self.reset(self.term + 1)
        self.vote = self.id
        self.state = StateType.CANDIDATE

    def become_leader(self) -> None:
        if self.state is StateType.FOLLOWER:
            raise IllegalTransitionError("invalid transition [follower -> leader]")
        self._step = self._step_leader
        self._tick = self._tick_heartbeat
        self.reset(self.term)
        self.lead = self.id
        self.state = StateType.LEADER
        self.prs[self.id].become_replicate()
        # Conservatively assume the log may hold an unapplied conf change.
        self.pending_conf_index = self.log.last_index()
        self.append_entry([Entry(term=0, index=0)])

    # -- ticks -------------------------------------------------------------------------
    def tick(self) -> None:
        self._tick()

    def past_election_timeout(self) -> bool:
        return self.election_elapsed >= self.randomized_election_timeout

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable() and self.past_election_timeout():
            self.election_elapsed = 0
            self.step(Message(type=MT.HUP, frm=self.id))

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.election_timeout:
            self.election_elapsed = 0
            if self.check_quorum:
                self.step(Message(type=MT.CHECK_QUORUM, frm=self.id))
            if self.state is StateType.LEADER and self.lead_transferee != NONE:
                self.abort_leader_transfer()
        if self.state is not StateType.LEADER:
            return
        if self.heartbeat_elapsed >= self.heartbeat_timeout:
            self.heartbeat_elapsed = 0
            self.step(Message(type=MT.BEAT, frm=self.id))

    # -- elections ---------------------------------------------------------------------
    def _has_unapplied_conf_change(self) -> bool:
        if self.log.committed <= self.log.applied:
            return False
        lo = max(self.log.applied + 1, self.log.first_index())
        ents = self.log.slice(lo, self.log.committed + 1)
        return any(e.type is EntryType.CONF_CHANGE for e in ents)

    def hup(self, t: CampaignType) -> None:
        if self.state is StateType.LEADER or not self.promotable():
            return
        # The config a committed-but-unapplied change would produce decides the quorum: wait for it.
        if self._has_unapplied_conf_change():
            return
        self.campaign(t)

    def campaign(self, t: CampaignType) -> None:
        if not self.promotable():
            # e.g. a pre-candidate that applied its own removal before winning the pre-vote
            self.become_follower(self.term, NONE)
            return
        if t is CampaignType.PRE_ELECTION:
            self.become_pre_candidate()
            vote_msg = MT.PRE_VOTE
            term = self.term + 1
        else:
            self.become_candidate()
            vote_msg = MT.VOTE
            term = self.term
        if self.poll(self.id, _vote_resp_type(vote_msg), True) is VoteResult.WON:
            # Single-voter cluster: won outright.
            if t is CampaignType.PRE_ELECTION:
                self.campaign(CampaignType.ELECTION)
            else:
                self.become_leader()
            return
        ctx = CAMPAIGN_TRANSFER if t is CampaignType.TRANSFER else b""
        for i in self.voters():
            if i == self.id:
                continue
            self.send(
                Message(
                    type=vote_msg,
                    to=i,
                    term=term,
                    index=self.log.last_index(),
                    log_term=self.log.last_term(),
                    context=ctx,
                )
            )

    def poll(self, node_id: int, t: MessageType, granted: bool) -> VoteResult:
        self.votes.setdefault(node_id, granted)
        voters = self.voters()
        yes = sum(1 for v in voters if self.votes.get(v) is True)
        no = sum(1 for v in voters if self.votes.get(v) is False)
        q = len(voters) // 2 + 1
        if yes >= q:
            return VoteResult.WON
        if len(voters) - no < q:
            return VoteResult.LOST
        return VoteResult.PENDING

    # -- stepping ----------------------------------------------------------------------
    def step(self, m: Message) -> None:
        """Handle one message: term bookkeeping common to all roles, then the role's step function."""
        if m.term == 0:
            pass  # local message or a forwarded PROP / READ_INDEX
        elif m.term > self.term:
            if m.type in (MT.VOTE, MT.PRE_VOTE):
                force = m.context == CAMPAIGN_TRANSFER
                in_lease = (
                    self.check_quorum and self.lead != NONE and self.election_elapsed < self.election_timeout
                )
                if not force and in_lease:
                    # We heard from a live leader within the minimum election timeout: do not let a
                    # (rejoining) node depose it.
                    return
            if m.type is MT.PRE_VOTE:
                pass  # never change term on a pre-vote request
            elif m.type is MT.PRE_VOTE_RESP and not m.reject:
                pass  # a granted pre-vote carries the future term; we bump it when we win
            elif m.type in (MT.APP, MT.HEARTBEAT, MT.SNAP):
                self.become_follower(m.term, m.frm)
            else:
                self.become_follower(m.term, NONE)
        elif m.term < self.term:
            if (self.check_quorum or self.pre_vote) and m.type in (MT.HEARTBEAT, MT.APP):
                # A stale leader (e.g. after a partition) learns our term and steps down; otherwise
                # it could keep a node that ignores its messages from ever re-joining.
                self.send(Message(type=MT.APP_RESP, to=m.frm))
            elif m.type is MT.PRE_VOTE:
                self.send(Message(type=MT.PRE_VOTE_RESP, to=m.frm, term=self.term, reject=True))
            return

        if m.type is MT.HUP:
            self.hup(CampaignType.PRE_ELECTION if self.pre_vote else CampaignType.ELECTION)
        elif m.type in (MT.VOTE, MT.PRE_VOTE):
            can_vote = (
                self.vote == m.frm
                or (self.vote == NONE and self.lead == NONE)
                or (m.type is MT.PRE_VOTE and m.term > self.term)
            )
            if can_vote and self.log.is_up_to_date(m.index, m.log_term):
                self.send(Message(type=_vote_resp_type(m.type), to=m.frm, term=m.term))
                if m.type is MT.VOTE:
                    self.election_elapsed = 0
                    self.vote = m.frm
            else:
                self.send(Message(type=_vote_resp_type(m.type), to=m.frm, term=self.term, reject=True))
        else:
            self._step(m)

    def _step_leader(self, m: Message) -> None:
        if m.type is MT.BEAT:
            self.bcast_heartbeat()
            return
        if m.type is MT.CHECK_QUORUM:
            if not self._quorum_active():
                self.become_follower(self.term, NONE)
            return
        if m.type is MT.PROP:
            self._leader_propose(m)
            return
        if m.type is MT.READ_INDEX:
            self._leader_read_index(m)
            return
        if m.type is MT.TRANSFER_LEADER:
            self._leader_transfer(m)
            return

        pr = self.prs.get(m.frm)
        if pr is None:
            return
        if m.type is MT.APP_RESP:
            pr.recent_active = True
            if m.reject:
                # The follower named the last entry it holds at or below the term we probed with;
                # skip every entry of ours above that term too (one round trip per term, not per entry).
                next_probe = m.reject_hint
                if m.log_term > 0:
                    next_probe, _ = self.log.find_conflict_by_term(m.reject_hint, m.log_term)
                if pr.maybe_decr_to(m.index, next_probe):
                    if pr.state is ProgressState.REPLICATE:
                        pr.become_probe()
                    self.send_append(m.frm)
                return
            old_paused = pr.is_paused()
            if not pr.maybe_update(m.index):
                return
            if pr.state is ProgressState.PROBE:
                pr.become_replicate()
            elif pr.state is ProgressState.SNAPSHOT and pr.match >= pr.pending_snapshot:
                pr.become_probe()
                pr.become_replicate()
            elif pr.state is ProgressState.REPLICATE:
                pr.inflights.free_le(m.index)
            if self.maybe_commit():
                self.appends_pending = True
            elif old_paused:
                self.send_append(m.frm)
            # Pipelining: keep sending while the inflight window allows.
            while m.frm in self.prs and self.maybe_send_append(m.frm, send_if_empty=False):
                pass
            if m.frm == self.lead_transferee and pr.match == self.log.last_index():
                self.send(Message(type=MT.TIMEOUT_NOW, to=m.frm))
        elif m.type is MT.HEARTBEAT_RESP:
            pr.recent_active = True
            pr.probe_sent = False
            if pr.state is ProgressState.REPLICATE and pr.inflights.full():
                pr.inflights.free_first_one()
            if pr.match < self.log.last_index():
                self.send_append(m.frm)
            if not m.context or pr.is_learner:
                return
            acks = self.read_only.recv_ack(m.frm, m.context)
            if acks is None or len(acks & set(self.voters())) < self.quorum():
                return
            for rs in self.read_only.advance(m.context):
                self._answer_read(rs.req, rs.index)
        elif m.type is MT.SNAP_STATUS:
            if pr.state is not ProgressState.SNAPSHOT:
                return
            if m.reject:
                pr.pending_snapshot = 0
            pr.become_probe()
            # Wait for the next heartbeat response before probing again.
            pr.probe_sent = True
        elif m.type is MT.UNREACHABLE and pr.state is ProgressState.REPLICATE:
            pr.become_probe()

    def _leader_propose(self, m: Message) -> None:
        if not m.entries:
            raise ValueError("stepped empty proposal")
        if self.id not in self.prs:
            raise ProposalDroppedError("this node was removed from the configuration")
        if self.lead_transferee != NONE:
            raise ProposalDroppedError(f"leadership transfer to {self.lead_transferee:x} in progress")
        ents = list(m.entries)
        for i, e in enumerate(ents):
            if e.type is not EntryType.CONF_CHANGE:
                continue
            if self.pending_conf_index > self.log.applied:
                # One change at a time: an unapplied change is still in flight.
                ents[i] = Entry(term=0, index=0)
            else:
                self.pending_conf_index = self.log.last_index() + i + 1
        self.append_entry(ents)
        self.appends_pending = True

    def append_entry(self, ents: list[Entry]) -> None:
        li = self.log.last_index()
        stamped = [
            Entry(term=self.term, index=li + 1 + i, type=e.type, data=e.data) for i, e in enumerate(ents)
        ]
        li = self.log.append(stamped)
        self.prs[self.id].maybe_update(li)
        self.maybe_commit()

    def maybe_commit(self) -> bool:
        matches = sorted((self.prs[v].match for v in self.voters()), reverse=True)
        if not matches:
            return False
        committed = self.log.maybe_commit(matches[self.quorum() - 1], self.term)
        if committed and self.pending_read_index and self._committed_entry_in_current_term():
            pending, self.pending_read_index = self.pending_read_index, []
            for req in pending:
                self._leader_read_index(req)
        return committed

    def _committed_entry_in_current_term(self) -> bool:
        return self.log.term_or_zero(self.log.committed) == self.term

    def _quorum_active(self) -> bool:
        active = 0
        for i, pr in self.prs.items():
            if i == self.id:
                pr.recent_active = True
            if pr.recent_active and not pr.is_learner:
                active += 1
            if i != self.id:
                pr.recent_active = False
        return active >= self.quorum()

    def _leader_read_index(self, m: Message) -> None:
        if self.voters() == [self.id]:
            self._answer_read(m, self.log.committed)
            return
        if not self._committed_entry_in_current_term():
            # Our commit index may lag the real one until we commit an entry of our own term.
            self.pending_read_index.append(m)
            return
        self.read_only.add_request(self.log.committed, m)
        self.read_only.recv_ack(self.id, m.context)
        self.bcast_heartbeat(m.context)

    def _answer_read(self, req: Message, index: int) -> None:
        if req.frm in (NONE, self.id):
            self.read_states.append(ReadState(index=index, request_ctx=req.context))
        else:
            self.send(Message(type=MT.READ_INDEX_RESP, to=req.frm, index=index, context=req.context))

    def _leader_transfer(self, m: Message) -> None:
        transferee = m.frm
        pr = self.prs.get(transferee)
        if pr is None or pr.is_learner:
            return
        if self.lead_transferee != NONE:
            if self.lead_transferee == transferee:
                return
            self.abort_leader_transfer()
        if transferee == self.id:
            return
        # The transfer must finish within one election timeout or it is aborted.
        self.election_elapsed = 0
        self.lead_transferee = transferee
        if pr.match == self.log.last_index():
            self.send(Message(type=MT.TIMEOUT_NOW, to=transferee))
        else:
            self.send_append(transferee)

    def abort_leader_transfer(self) -> None:
        self.lead_transferee = NONE

    def _step_candidate(self, m: Message) -> None:
        my_resp = MT.PRE_VOTE_RESP if self.state is StateType.PRE_CANDIDATE else MT.VOTE_RESP
        if m.type is MT.PROP:
            raise ProposalDroppedError("no leader (election in progress)")
        if m.type is MT.APP:
            self.become_follower(m.term, m.frm)
            self._handle_append(m)
        elif m.type is MT.HEARTBEAT:
            self.become_follower(m.term, m.frm)
            self._handle_heartbeat(m)
        elif m.type is MT.SNAP:
            self.become_follower(m.term, m.frm)
            self._handle_snapshot(m)
        elif m.type is my_resp:
            res = self.poll(m.frm, m.type, not m.reject)
            if res is VoteResult.WON:
                if self.state is StateType.PRE_CANDIDATE:
                    self.campaign(CampaignType.ELECTION)
                elif self.promotable():
                    self.become_leader()
                    self.bcast_append()
                else:
                    self.become_follower(self.term, NONE)  # removed while campaigning
            elif res is VoteResult.LOST:
                self.become_follower(self.term, NONE)

    def _step_follower(self, m: Message) -> None:
        if m.type is MT.PROP:
            if self.lead == NONE:
                raise ProposalDroppedError("no leader")
            self.send(replace(m, to=self.lead))
        elif m.type is MT.APP:
            self.election_elapsed = 0
            self.lead = m.frm
            self._handle_append(m)
        elif m.type is MT.HEARTBEAT:
            self.election_elapsed = 0
            self.lead = m.frm
            self._handle_heartbeat(m)
        elif m.type is MT.SNAP:
            self.election_elapsed = 0
            self.lead = m.frm
            self._handle_snapshot(m)
        elif m.type is MT.TRANSFER_LEADER:
            if self.lead != NONE:
                self.send(replace(m, to=self.lead))
        elif m.type is MT.TIMEOUT_NOW:
            if self.promotable():
                # Leader transfer skips pre-vote: the old leader asked for it.
                self.hup(CampaignType.TRANSFER)
        elif m.type is MT.READ_INDEX:
            if self.lead == NONE:
                raise ProposalDroppedError("no leader to serve a read index")
            self.send(replace(m, to=self.lead))
        elif m.type is MT.READ_INDEX_RESP:
            self.read_states.append(ReadState(index=m.index, request_ctx=m.context))

    # -- follower handlers -------------------------------------------------------------
    def _handle_append(self, m: Message) -> None:
        if m.index < self.log.committed:
            self.send(Message(type=MT.APP_RESP, to=m.frm, index=self.log.committed))
            return
        last = self.log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last is not None:
            self.send(Message(type=MT.APP_RESP, to=m.frm, index=last))
        else:
            hint_index, hint_term = self.log.find_conflict_by_term(
                min(m.index, self.log.last_index()), m.log_term
            )
            self.send(
                Message(
                    type=MT.APP_RESP,
                    to=m.frm,
                    index=m.index,
                    reject=True,
                    reject_hint=hint_index,
                    log_term=hint_term,
                )
            )

    def _handle_heartbeat(self, m: Message) -> None:
        self.log.commit_to(m.commit)
        self.send(Message(type=MT.HEARTBEAT_RESP, to=m.frm, context=m.context))

    def _handle_snapshot(self, m: Message) -> None:
        assert m.snapshot is not None
        if self.restore(m.snapshot):
            self.send(Message(type=MT.APP_RESP, to=m.frm, index=self.log.last_index()))
        else:
            self.send(Message(type=MT.APP_RESP, to=m.frm, index=self.log.committed))

    def restore(self, snap: Snapshot) -> bool:
        """Install a leader's snapshot; False if we already have everything it covers."""
        md = snap.metadata
        if md.index <= self.log.committed:
            return False
        if self.state is not StateType.FOLLOWER:
            raise RaftInvariantError("non-follower attempted to restore a snapshot")
        # The snapshot's config may predate our own addition (the leader snapshotted before the
        # change that added us): install it anyway; the entries after it add us.
        cs = md.conf_state
        if self.log.match_term(md.index, md.term):
            # We already hold the snapshot's last entry: just fast-forward the commit index.
            self.log.commit_to(md.index)
            return False
        self.log.restore(snap)
        last = self.log.last_index()
        self.prs = {}
        for v in cs.voters:
            self.prs[v] = Progress(last + 1, self.max_inflight)
        for lrn in cs.learners:
            self.prs[lrn] = Progress(last + 1, self.max_inflight, is_learner=True)
        if self.id in self.prs:
            self.prs[self.id].match = last
        return True

    # -- membership --------------------------------------------------------------------
    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        """Apply a committed change to the progress tracker; the driver calls this while applying."""
        new = confchange.apply_conf_change(self.conf_state(), cc)
        last = self.log.last_index()
        old = self.prs
        self.prs = {}
        for v in new.voters:
            pr = old.get(v)
            if pr is None:
                pr = Progress(last + 1, self.max_inflight)
                pr.recent_active = True  # do not send it a snapshot before it had a chance to answer
            pr.is_learner = False
            self.prs[v] = pr
        for lrn in new.learners:
            pr = old.get(lrn)
            if pr is None:
                pr = Progress(last + 1, self.max_inflight, is_learner=True)
                pr.recent_active = True
            pr.is_learner = True
            self.prs[lrn] = pr
        if self.state is StateType.LEADER:
            if self.lead_transferee != NONE and self.lead_transferee not in self.prs:
                self.abort_leader_transfer()
            if not self.promotable():
                # We were removed (or never a voter): tell the others the commit, then step down.
                self.bcast_append()
                self.become_follower(self.term, NONE)
            elif self.maybe_commit():
                self.bcast_append()
            else:
                for i in self.prs:
                    if i not in old:
                        self.send_append(i)
        return new
