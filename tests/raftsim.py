"""A deterministic, in-process simulation of a Raft cluster for the tests of etcdlite's Raft core.

Each simulated member is a `RawNode` plus the state a real member would keep on disk (a
`MemoryStorage` standing for the fsynced WAL) and an in-memory state machine. The driver here
follows the driver contract exactly: on each Ready it persists hard state, entries and snapshot,
then sends the messages, then applies the snapshot and committed entries, then advances. Handling
a Ready is a separate event from stepping a message, so a crash can hit a node whose memory is
ahead of its disk; the restarted node sees only what was persisted.

The network drops, delays, duplicates, reorders and partitions messages; everything random comes
from one seeded `random.Random`, so a seed reproduces a run exactly. After every event the
`SafetyChecker` checks election safety, log matching, leader completeness, state-machine safety,
read-index linearizability and (at crashes and at the end) durability of committed entries.
Touches nothing outside the process.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import random
from dataclasses import dataclass, field

from etcdlite.raft.errors import CompactedError, ProposalDroppedError, UnavailableError
from etcdlite.raft.node import Config, RawNode
from etcdlite.raft.storage import MemoryStorage
from etcdlite.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    Ready,
    StateType,
)


class SafetyViolation(AssertionError):
    """A Raft safety property failed; the message says which and where."""


@dataclass
class StateMachine:
    """A digest chain of applied entries: cheap to snapshot, and any divergence changes it."""

    index: int = 0
    digest: bytes = b""

    def apply(self, e: Entry) -> None:
        self.index = e.index
        self.digest = hashlib.blake2b(self.digest + e.data, digest_size=8).digest()

    def encode(self) -> bytes:
        return self.index.to_bytes(8, "big") + self.digest

    @classmethod
    def decode(cls, data: bytes) -> StateMachine:
        if not data:
            return cls()
        return cls(int.from_bytes(data[:8], "big"), data[8:])


@dataclass
class SimNode:
    id: int
    storage: MemoryStorage
    node: RawNode | None
    sm: StateMachine
    conf_state: ConfState
    incarnation: int = 0
    read_states: list = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.node is not None


@dataclass(order=True)
class InFlight:
    deliver_at: int
    seq: int
    msg: Message = field(compare=False)
    sender_incarnation: int = field(compare=False, default=0)


@dataclass
class Faults:
    drop: float = 0.0
    duplicate: float = 0.0
    max_delay: int = 0
    crash: float = 0.0
    restart: float = 0.0
    partition: float = 0.0
    heal: float = 0.0


class SafetyChecker:
    """Global knowledge across all nodes, checked incrementally after every event."""

    def __init__(self) -> None:
        self.leaders: dict[int, int] = {}  # term -> leader id (election safety)
        self.entries: dict[tuple[int, int], tuple[EntryType, bytes, int]] = {}  # log matching
        self.applied: dict[int, tuple[int, bytes]] = {}  # index -> (term, data): state-machine safety
        self.max_applied = 0
        self.bound_index: list[int] = []
        self.bound_term: list[int] = []
        self.digests: dict[int, bytes] = {}

    def see_leader(self, term: int, node_id: int) -> None:
        other = self.leaders.setdefault(term, node_id)
        if other != node_id:
            raise SafetyViolation(f"election safety: nodes {other} and {node_id} both lead term {term}")

    def see_entries(self, node_id: int, prev_term: int, ents: list[Entry]) -> None:
        for e in ents:
            seen = self.entries.setdefault((e.index, e.term), (e.type, e.data, prev_term))
            if seen != (e.type, e.data, prev_term):
                raise SafetyViolation(
                    f"log matching: node {node_id} holds entry {e.index}@{e.term} = {e.data!r} "
                    f"after term {prev_term}, another node holds {seen}"
                )
            prev_term = e.term

    def see_applied(self, node_id: int, e: Entry, node_term: int) -> None:
        seen = self.applied.setdefault(e.index, (e.term, e.data))
        if seen != (e.term, e.data):
            raise SafetyViolation(
                f"state-machine safety: node {node_id} applied {e.index}@{e.term}={e.data!r}, "
                f"another node applied {seen}"
            )
        if e.index > self.max_applied:
            self.max_applied = e.index
            # The applier learned of the commit in a term <= its own: every leader of a later term
            # must hold this entry. Bounds never decrease with the index (first applications are in
            # index order), so bisect finds the entries a leader of a given term must hold.
            self.bound_index.append(e.index)
            self.bound_term.append(max(node_term, self.bound_term[-1] if self.bound_term else 0))

    def see_state(self, node_id: int, index: int, digest: bytes) -> None:
        """The state machine after `index` is the same on every node (covers snapshot installs too)."""
        seen = self.digests.setdefault(index, digest)
        if seen != digest:
            raise SafetyViolation(f"state-machine safety: node {node_id} has a different state at {index}")

    def must_hold(self, leader_term: int) -> int:
        """Highest applied index that a leader of leader_term must have in its log (0 if none)."""
        k = bisect.bisect_left(self.bound_term, leader_term)
        return self.bound_index[k - 1] if k else 0


class Cluster:
    """Members, network and checker; every decision comes from `self.rng`."""

    def __init__(
        self,
        ids: list[int],
        seed: int,
        faults: Faults | None = None,
        *,
        election_tick: int = 10,
        heartbeat_tick: int = 1,
        snapshot_every: int = 0,
        max_size_per_msg: int = 1 << 20,
        max_inflight_msgs: int = 256,
        pre_vote: bool = True,
        check_quorum: bool = True,
        spares: list[int] | None = None,
        conf_change_prob: float = 0.0,
        transfer_prob: float = 0.0,
    ) -> None:
        self.ids = list(ids)  # every started member, including removed ones that still run
        self.bootstrap_size = len(self.ids)
        self.spares = list(spares or [])  # ids that may be added later; they start empty
        self.conf_change_prob = conf_change_prob
        self.transfer_prob = transfer_prob
        self.membership_changed = False
        self.seed = seed
        self.rng = random.Random(seed)
        self.faults = faults or Faults()
        self.election_tick = election_tick
        self.heartbeat_tick = heartbeat_tick
        self.snapshot_every = snapshot_every
        self.max_size_per_msg = max_size_per_msg
        self.max_inflight_msgs = max_inflight_msgs
        self.pre_vote = pre_vote
        self.check_quorum = check_quorum
        self.time = 0
        self.seq = 0
        self.inflight: list[InFlight] = []
        self.cut: set[frozenset[int]] = set()  # pairs that cannot talk
        self.checker = SafetyChecker()
        self.proposed: dict[bytes, int] = {}  # data -> time proposed
        self.reads: dict[bytes, int] = {}  # read ctx -> max applied index when the read was asked
        self.answered_reads = 0
        self.nodes: dict[int, SimNode] = {}
        for i in self.ids:
            sn = SimNode(i, MemoryStorage(), None, StateMachine(), ConfState())
            self.nodes[i] = sn
            sn.node = self._new_raw_node(sn)
            sn.node.bootstrap(self.ids)
        self.quorum = len(self.ids) // 2 + 1
        for i in self.ids:
            # A member persists its bootstrap entries before it does anything else.
            self.handle_ready(i)

    # -- members -----------------------------------------------------------------------
    def _new_raw_node(self, sn: SimNode) -> RawNode:
        rand = random.Random(self.seed * 1_000_003 + sn.id * 1009 + sn.incarnation)
        cfg = Config(
            id=sn.id,
            storage=sn.storage,
            election_tick=self.election_tick,
            heartbeat_tick=self.heartbeat_tick,
            applied=sn.storage.snapshot().metadata.index,
            max_size_per_msg=self.max_size_per_msg,
            max_inflight_msgs=self.max_inflight_msgs,
            pre_vote=self.pre_vote,
            check_quorum=self.check_quorum,
            rand=rand,
        )
        return RawNode(cfg)

    def _start_spare(self, node_id: int) -> None:
        """A member added by a conf change starts with an empty log and learns it all from the leader."""
        self.spares.remove(node_id)
        self.ids.append(node_id)
        sn = SimNode(node_id, MemoryStorage(), None, StateMachine(), ConfState())
        self.nodes[node_id] = sn
        sn.node = self._new_raw_node(sn)

    def members(self) -> list[int]:
        """The configuration according to the current leader (every started node without a leader)."""
        lead = self.leader()
        if lead is None:
            return list(self.ids)
        r = self.nodes[lead].node
        assert r is not None
        return sorted(r.raft.prs)

    def random_membership_change(self) -> None:
        """Propose a random add/remove/learner change, or a leader transfer, to the current leader."""
        lead = self.leader()
        if lead is None:
            return
        node = self.nodes[lead].node
        assert node is not None
        rng = self.rng
        if rng.random() < self.transfer_prob:
            voters = [v for v in node.raft.voters() if v != lead]
            if voters:
                node.transfer_leader(rng.choice(voters))
            return
        if rng.random() >= self.conf_change_prob:
            return
        voters, learners = node.raft.voters(), node.raft.learners()
        choices: list[ConfChange] = []
        if len(voters) > 3:
            choices.append(ConfChange(ConfChangeType.REMOVE_NODE, rng.choice(voters)))
        if self.spares:
            kind = rng.choice([ConfChangeType.ADD_NODE, ConfChangeType.ADD_LEARNER_NODE])
            choices.append(ConfChange(kind, self.spares[0]))
        if learners:
            choices.append(ConfChange(ConfChangeType.ADD_NODE, rng.choice(learners)))
        if not choices:
            return
        with contextlib.suppress(ProposalDroppedError, ValueError):
            node.propose_conf_change(rng.choice(choices))

    def crash(self, node_id: int) -> None:
        """Lose everything not persisted: the RawNode's memory and the state machine."""
        sn = self.nodes[node_id]
        sn.node = None
        sn.read_states = []
        self.check_durability(f"after crashing node {node_id}")

    def restart(self, node_id: int) -> None:
        sn = self.nodes[node_id]
        sn.incarnation += 1
        snap = sn.storage.snapshot()
        sn.sm = StateMachine.decode(snap.data)
        sn.conf_state = snap.metadata.conf_state
        sn.node = self._new_raw_node(sn)

    def leader(self) -> int | None:
        """The live leader with the highest term, if any."""
        best: tuple[int, int] | None = None
        for sn in self.nodes.values():
            if sn.node is not None and sn.node.raft.state is StateType.LEADER:
                t = sn.node.raft.term
                if best is None or t > best[0]:
                    best = (t, sn.id)
        return None if best is None else best[1]

    # -- the driver contract -----------------------------------------------------------
    def handle_ready(self, node_id: int) -> None:
        sn = self.nodes[node_id]
        node = sn.node
        assert node is not None
        while node.has_ready():
            rd = node.ready()
            self._persist(sn, rd)  # 1. persist (the fsync)
            for m in rd.messages:  # 2. send, only after persisting
                self.send(m, sn.incarnation)
            self._apply(sn, rd)  # 3. apply snapshot, committed entries, answer reads
            node.advance(rd)  # 4. advance
            self._maybe_snapshot(sn)
            self.check_node(sn)

    def _persist(self, sn: SimNode, rd: Ready) -> None:
        st = sn.storage
        if rd.snapshot is not None:
            st.apply_snapshot(rd.snapshot)
        if rd.entries:
            try:
                prev_term: int | None = st.term(rd.entries[0].index - 1)
            except (CompactedError, UnavailableError):
                prev_term = None  # starts inside the snapshot: nothing to match against
            if prev_term is not None:
                self.checker.see_entries(sn.id, prev_term, rd.entries)
            st.append(rd.entries)
        if rd.hard_state is not None:
            st.set_hard_state(rd.hard_state)

    def _apply(self, sn: SimNode, rd: Ready) -> None:
        assert sn.node is not None
        if rd.snapshot is not None:
            sn.sm = StateMachine.decode(rd.snapshot.data)
            sn.conf_state = rd.snapshot.metadata.conf_state
            self.checker.see_state(sn.id, sn.sm.index, sn.sm.digest)
        for e in rd.committed_entries:
            if e.index != sn.sm.index + 1:
                raise SafetyViolation(f"node {sn.id} applied {e.index} after {sn.sm.index}")
            self.checker.see_applied(sn.id, e, sn.node.raft.term)
            if e.type is EntryType.CONF_CHANGE:
                cc = ConfChange.decode(e.data)
                sn.conf_state = sn.node.apply_conf_change(cc)
                if e.index > self.bootstrap_size:
                    self.membership_changed = True
                if cc.node_id in self.spares:
                    self._start_spare(cc.node_id)
            sn.sm.apply(e)
            self.checker.see_state(sn.id, sn.sm.index, sn.sm.digest)
        for rs in rd.read_states:
            sn.read_states.append(rs)
        # A ReadState may be answered once applied >= its index; check linearizability now.
        keep = []
        for rs in sn.read_states:
            if rs.index > sn.sm.index:
                keep.append(rs)
                continue
            required = self.reads.pop(rs.request_ctx, None)
            if required is not None and rs.index < required:
                raise SafetyViolation(
                    f"read index: node {sn.id} served read {rs.request_ctx!r} at {rs.index}, but "
                    f"{required} was applied before the read was asked"
                )
            self.answered_reads += 1
        sn.read_states = keep

    def _maybe_snapshot(self, sn: SimNode) -> None:
        """Compact the persisted log like the driver does every snapshot_every applied entries."""
        st = sn.storage
        if not self.snapshot_every or sn.sm.index - st.snapshot().metadata.index < self.snapshot_every:
            return
        st.create_snapshot(sn.sm.index, sn.conf_state, sn.sm.encode())
        st.compact(sn.sm.index)

    # -- network -----------------------------------------------------------------------
    def send(self, m: Message, incarnation: int) -> None:
        f = self.faults
        copies = 1
        if self.rng.random() < f.drop:
            copies = 0
        elif self.rng.random() < f.duplicate:
            copies = 2
        if copies == 0 and m.type is MessageType.SNAP:
            self._report_snapshot(m, ok=False, incarnation=incarnation)
        for _ in range(copies):
            self.seq += 1
            delay = 1 + (self.rng.randrange(f.max_delay + 1) if f.max_delay else 0)
            self.inflight.append(InFlight(self.time + delay, self.seq, m, incarnation))

    def _report_snapshot(self, m: Message, ok: bool, incarnation: int) -> None:
        sender = self.nodes[m.frm]
        if sender.node is not None and sender.incarnation == incarnation:
            sender.node.report_snapshot(m.to, ok)

    def deliver_due(self, ready_prob: float = 0.5) -> None:
        """Deliver every message that is due, in random order (reordering)."""
        due = [f for f in self.inflight if f.deliver_at <= self.time]
        if not due:
            return
        self.inflight = [f for f in self.inflight if f.deliver_at > self.time]
        self.rng.shuffle(due)
        for f in due:
            m = f.msg
            dst = self.nodes[m.to]
            reachable = dst.node is not None and not (self.cut and frozenset((m.frm, m.to)) in self.cut)
            if m.type is MessageType.SNAP:
                self._report_snapshot(m, ok=reachable, incarnation=f.sender_incarnation)
            if not reachable:
                continue
            assert dst.node is not None
            dst.node.step(m)
            self.check_node(dst)
            if self.rng.random() < ready_prob:
                self.handle_ready(m.to)

    # -- faults and workload -------------------------------------------------------------
    def propose(self, node_id: int, data: bytes) -> bool:
        sn = self.nodes[node_id]
        if sn.node is None:
            return False
        try:
            sn.node.propose(data)
        except ProposalDroppedError:
            return False
        self.proposed[data] = self.time
        return True

    def read(self, node_id: int, ctx: bytes) -> bool:
        sn = self.nodes[node_id]
        if sn.node is None:
            return False
        try:
            sn.node.read_index(ctx)
        except ProposalDroppedError:
            return False
        self.reads[ctx] = self.checker.max_applied
        return True

    def partition(self, groups: list[list[int]]) -> None:
        self.cut = set()
        for gi, g in enumerate(groups):
            for h in groups[gi + 1 :]:
                for a in g:
                    for b in h:
                        self.cut.add(frozenset((a, b)))

    def heal(self) -> None:
        self.cut = set()

    def random_faults(self) -> None:
        f, rng = self.faults, self.rng
        alive = [i for i in self.ids if self.nodes[i].alive]
        dead = [i for i in self.ids if not self.nodes[i].alive]
        if alive and rng.random() < f.crash:
            self.crash(rng.choice(alive))
        if dead and rng.random() < f.restart:
            self.restart(rng.choice(dead))
        if rng.random() < f.partition:
            ids = self.ids[:]
            rng.shuffle(ids)
            k = rng.randrange(1, len(ids))
            self.partition([ids[:k], ids[k:]])
        if self.cut and rng.random() < f.heal:
            self.heal()

    def round(self, propose_prob: float = 0.3, read_prob: float = 0.1, ready_prob: float = 0.6) -> None:
        """One tick of simulated time: faults, workload, ticks, some Readies, due deliveries."""
        rng = self.rng
        self.time += 1
        self.random_faults()
        if rng.random() < propose_prob:
            self.propose(rng.choice(self.ids), f"v{self.seed}-{self.time}".encode())
        if rng.random() < read_prob:
            self.read(rng.choice(self.ids), f"r{self.time}".encode())
        if propose_prob and (self.conf_change_prob or self.transfer_prob):
            self.random_membership_change()
        for i in self.ids:
            sn = self.nodes[i]
            if sn.node is not None:
                sn.node.tick()
                self.check_node(sn)
        for i in self.ids:
            if self.nodes[i].alive and rng.random() < ready_prob:
                self.handle_ready(i)
        self.deliver_due(ready_prob)

    # -- checks ------------------------------------------------------------------------
    def check_node(self, sn: SimNode) -> None:
        node = sn.node
        if node is None or node.raft.state is not StateType.LEADER:
            return
        r = node.raft
        self.checker.see_leader(r.term, sn.id)
        # Leader completeness, for the entries committed before this leader's term (a stale leader
        # of an older term may lack newer ones); log matching lets the highest stand for all below.
        m = self.checker.must_hold(r.term)
        if m and m >= r.log.first_index():
            term = self.checker.applied[m][0]
            if r.log.term_or_zero(m) != term:
                raise SafetyViolation(
                    f"leader completeness: leader {sn.id} of term {r.term} lacks applied entry {m}@{term}"
                )

    def check_durability(self, when: str) -> None:
        """Every applied entry is on the disk of a majority (else a crash set could lose it).

        Checked while the membership is the bootstrap one: after a change "a majority" depends on
        the configuration; leader completeness and state-machine safety still cover those runs."""
        if self.membership_changed:
            return
        for index, (term, _) in self.checker.applied.items():
            holders = 0
            for sn in self.nodes.values():
                st = sn.storage
                snap_index = st.snapshot().metadata.index
                if index <= snap_index or (index <= st.last_index() and st.term(index) == term):
                    holders += 1
            if holders < self.quorum:
                raise SafetyViolation(
                    f"durability {when}: applied entry {index}@{term} on only {holders} disks"
                )

    # -- liveness ----------------------------------------------------------------------
    def settle(self, max_rounds: int) -> int:
        """Heal everything and wait for one leader that every member has followed for a while.

        "A while" is two election timeouts, so a leader that is about to step down because its
        quorum check covered the partitioned period is not mistaken for a stable one."""
        self.heal()
        self.faults = Faults()
        for i in self.ids:
            if not self.nodes[i].alive:
                self.restart(i)
        seen = ""
        stable_since: tuple[int, int, int] | None = None  # (leader, term, round)
        for k in range(max_rounds):
            self.round(propose_prob=0.0, read_prob=0.0, ready_prob=1.0)
            lead = self.leader()
            if lead is None:
                seen, stable_since = "no leader", None
                continue
            lr = self.nodes[lead].node
            assert lr is not None
            term = lr.raft.term
            follows = all(
                (sn := self.nodes[i]).node is not None
                and sn.node.raft.lead == lead
                and sn.node.raft.term == term
                for i in self.members()
            )
            seen = f"leader {lead} term {term}, all follow: {follows}"
            if not follows:
                stable_since = None
                continue
            if stable_since is None or stable_since[:2] != (lead, term):
                stable_since = (lead, term, k)
            if k - stable_since[2] >= 2 * self.election_tick:
                return lead
        raise SafetyViolation(f"liveness: no stable leader {max_rounds} rounds after healing ({seen})")

    def commit_all(self, lead: int, values: list[bytes], max_rounds: int) -> None:
        for v in values:
            if not self.propose(lead, v):
                raise SafetyViolation(f"liveness: leader {lead} dropped proposal {v!r}")
        want = set(values)
        for _ in range(max_rounds):
            self.round(propose_prob=0.0, read_prob=0.0, ready_prob=1.0)
            applied = {d for _, d in self.checker.applied.values()}
            if want <= applied and all(
                self.nodes[i].sm.index >= self.checker.max_applied for i in self.members()
            ):
                return
        applied = {d for _, d in self.checker.applied.values()}
        raise SafetyViolation(
            f"liveness: proposals {sorted(want - applied)} to leader {lead} not applied everywhere after "
            f"{max_rounds} rounds (applied indexes {[sn.sm.index for sn in self.nodes.values()]})"
        )


def run_simulation(
    seed: int,
    n: int,
    rounds: int = 300,
    faults: Faults | None = None,
    snapshot_every: int = 0,
    spares: int = 0,
    conf_change_prob: float = 0.0,
    transfer_prob: float = 0.0,
) -> Cluster:
    """One seeded chaos run followed by the liveness check; raises SafetyViolation on a bug."""
    c = Cluster(
        list(range(1, n + 1)),
        seed,
        faults,
        snapshot_every=snapshot_every,
        spares=list(range(n + 1, n + 1 + spares)),
        conf_change_prob=conf_change_prob,
        transfer_prob=transfer_prob,
    )
    for _ in range(rounds):
        c.round()
    lead = c.settle(max_rounds=200)
    c.commit_all(lead, [f"final-{seed}-{k}".encode() for k in range(3)], max_rounds=100)
    c.check_durability("at the end")
    return c


class Network:
    """A synchronous network for focused tests: deliver everything until quiet (etcd's raft_test).

    Each member follows the driver contract on every Ready like `Cluster` does, but messages are
    delivered at once and in order unless cut, isolated or filtered by type."""

    def __init__(
        self,
        ids: list[int],
        *,
        bootstrap: bool = True,
        election_tick: int = 10,
        heartbeat_tick: int = 1,
        pre_vote: bool = True,
        check_quorum: bool = True,
        max_size_per_msg: int = 1 << 20,
        max_inflight_msgs: int = 256,
        seed: int = 0,
    ) -> None:
        self.kw = {
            "election_tick": election_tick,
            "heartbeat_tick": heartbeat_tick,
            "pre_vote": pre_vote,
            "check_quorum": check_quorum,
            "max_size_per_msg": max_size_per_msg,
            "max_inflight_msgs": max_inflight_msgs,
        }
        self.seed = seed
        self.storage: dict[int, MemoryStorage] = {}
        self.nodes: dict[int, RawNode] = {}
        self.applied: dict[int, list[Entry]] = {}
        self.read_states: dict[int, list] = {}
        self.conf_states: dict[int, ConfState] = {}
        self.queue: list[Message] = []
        self.sent: list[Message] = []  # every message that left a node, for assertions
        self.cut: set[frozenset[int]] = set()
        self.drop_types: set[MessageType] = set()
        self.crashed: set[int] = set()
        for i in ids:
            self.add(i, MemoryStorage())
            if bootstrap:
                self.nodes[i].bootstrap(ids)
        self.stabilize()

    def add(self, node_id: int, storage: MemoryStorage, applied: int = 0) -> RawNode:
        cfg = Config(
            id=node_id, storage=storage, applied=applied, rand=random.Random(self.seed + node_id), **self.kw
        )
        node = RawNode(cfg)
        self.storage[node_id] = storage
        self.nodes[node_id] = node
        self.applied.setdefault(node_id, [])
        self.read_states.setdefault(node_id, [])
        self.crashed.discard(node_id)
        return node

    def raft(self, node_id: int):
        return self.nodes[node_id].raft

    def handle_ready(self, node_id: int) -> None:
        node, st = self.nodes[node_id], self.storage[node_id]
        while node.has_ready():
            rd = node.ready()
            if rd.snapshot is not None:
                st.apply_snapshot(rd.snapshot)
                self.conf_states[node_id] = rd.snapshot.metadata.conf_state
            st.append(rd.entries)
            if rd.hard_state is not None:
                st.set_hard_state(rd.hard_state)
            self.sent.extend(rd.messages)
            self.queue.extend(rd.messages)
            for e in rd.committed_entries:
                if e.type is EntryType.CONF_CHANGE:
                    self.conf_states[node_id] = node.apply_conf_change(ConfChange.decode(e.data))
                self.applied[node_id].append(e)
            self.read_states[node_id].extend(rd.read_states)
            node.advance(rd)

    def stabilize(self, max_steps: int = 100_000) -> None:
        for _ in range(max_steps):
            for i in self.nodes:
                if i not in self.crashed:
                    self.handle_ready(i)
            if not self.queue:
                return
            batch, self.queue = self.queue, []
            for m in batch:
                if m.to in self.crashed or m.to not in self.nodes:
                    continue
                if frozenset((m.frm, m.to)) in self.cut or m.type in self.drop_types:
                    continue
                self.nodes[m.to].step(m)
        raise AssertionError("network did not become quiet")

    def tick(self, node_id: int, n: int = 1) -> None:
        for _ in range(n):
            self.nodes[node_id].tick()
            self.stabilize()

    def tick_all(self, n: int = 1) -> None:
        for _ in range(n):
            for i in self.nodes:
                if i not in self.crashed:
                    self.nodes[i].tick()
            self.stabilize()

    def campaign(self, node_id: int) -> None:
        self.nodes[node_id].campaign()
        self.stabilize()

    def propose(self, node_id: int, data: bytes) -> None:
        self.nodes[node_id].propose(data)
        self.stabilize()

    def isolate(self, node_id: int) -> None:
        for j in self.nodes:
            if j != node_id:
                self.cut.add(frozenset((node_id, j)))

    def heal(self) -> None:
        self.cut = set()

    def crash(self, node_id: int) -> None:
        self.crashed.add(node_id)

    def restart(self, node_id: int) -> RawNode:
        """A new RawNode from the persisted storage only."""
        st = self.storage[node_id]
        self.applied[node_id] = []
        return self.add(node_id, st, applied=st.snapshot().metadata.index)

    def leader(self) -> int | None:
        leads = [
            i for i, n in self.nodes.items() if i not in self.crashed and n.raft.state is StateType.LEADER
        ]
        return max(leads, key=lambda i: self.nodes[i].raft.term) if leads else None

    def data_applied(self, node_id: int) -> list[bytes]:
        return [e.data for e in self.applied[node_id] if e.type is EntryType.NORMAL and e.data]
