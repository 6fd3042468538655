"""Leader failover under load: how long a 3-member store is without a leader, and without
acknowledged writes, after its leader is SIGKILLed. Same procedure for real etcd and etcdlite.

One run: a few clients Put steadily, each spread over all members and moving to the next member's
endpoint when a call fails; the leader (Maintenance.Status: the member whose `header.member_id`
equals the `leader` every member reports) gets SIGKILL; then
  election  = kill -> every surviving member reports the same new leader (polled every 20 ms);
  write gap = the longest pause between two acknowledged Puts from 1 s before the kill to the
              end of the run (the write unavailability a client sees); it includes up to one
              Put deadline (PUT_TIMEOUT_S) spent on a member that has no leader yet.
The killed member is restarted on its data directory and must catch up (its revision reaches the
others') before the next run. Runs are repeated `kills` times; the figures are median and max.
Target (issue 3): under 2 s with default timeouts (heartbeat 100 ms, election 1000 ms).

Pure helpers (leader detection, gaps, median) are apart from the IO (`measure_failover`), which
touches the cluster's processes (SIGKILL, restart) and the network. Every wait and loop is bounded
by count and time; the load threads are stopped and joined on every exit path.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc

from bench.stats import Summary, summarize
from bench.stores import Cluster, Member, restart_member
from kubelite.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc

TARGET_SECONDS = 2.0
MEMBERS = 3
KILLS = 5
CLIENTS = 4
WARM_UP_S = 1.0
AFTER_ELECTION_S = 2.0  # load keeps running this long after the new leader, so the gap closes
GAP_WINDOW_BEFORE_KILL_S = 1.0
POLL_S = 0.02
STATUS_TIMEOUT_S = 0.5
# A Put sent to a follower whose leader died hangs until its deadline (the forwarded proposal is
# lost), so this deadline is the resolution of the write gap: short, but ~10x the loaded p99.
PUT_TIMEOUT_S = 0.25
LEADER_TIMEOUT_S = 20.0
CATCH_UP_TIMEOUT_S = 30.0
MAX_PUTS_PER_CLIENT = 200_000
VALUE = b"x" * 256


# ---- pure helpers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberStatus:
    """What Maintenance.Status says about one member: who it is, whom it follows, how far it is."""

    member_id: int
    leader: int  # 0: no leader known
    revision: int = 0


def agreed_leader(statuses: Sequence[MemberStatus], expected_members: int) -> int | None:
    """The leader id when `expected_members` members answered and all name the same leader,
    and that leader is one of them; None otherwise (no answer, no leader, or disagreement)."""
    if len(statuses) < expected_members:
        return None
    leaders = {s.leader for s in statuses}
    if len(leaders) != 1:
        return None
    leader = leaders.pop()
    if leader == 0 or leader not in {s.member_id for s in statuses}:
        return None
    return leader


def new_leader(statuses: Sequence[MemberStatus], survivors: int, old_leader: int) -> int | None:
    """The leader every survivor agrees on, if it is not the killed one."""
    leader = agreed_leader(statuses, survivors)
    return None if leader is None or leader == old_leader else leader


def longest_gap(times: Sequence[float], start: float, end: float) -> float | None:
    """Longest pause between consecutive times within [start, end] (inclusive), or None if fewer
    than two times fall there."""
    window = sorted(t for t in times if start <= t <= end)
    if len(window) < 2:
        return None
    return max(b - a for a, b in itertools.pairwise(window))


# ---- IO -----------------------------------------------------------------------------------------


@dataclass
class FailoverRun:
    killed: str
    election_s: float
    write_gap_s: float
    puts_ok: int
    puts_failed: int
    rejoin_s: float
    leader_kept_on_rejoin: bool


@dataclass
class FailoverResult:
    runs: list[FailoverRun] = field(default_factory=list)

    @property
    def election(self) -> Summary:
        return summarize([r.election_s for r in self.runs])

    @property
    def write_gap(self) -> Summary:
        return summarize([r.write_gap_s for r in self.runs])


def status(member: Member) -> MemberStatus | None:
    """The member's Status, or None if it does not answer in time."""
    try:
        with grpc.insecure_channel(member.client_address) as channel:
            answer = rpc_pb2_grpc.MaintenanceStub(channel).Status(
                rpc_pb2.StatusRequest(), timeout=STATUS_TIMEOUT_S
            )
    except grpc.RpcError:
        return None
    return MemberStatus(answer.header.member_id, answer.leader, answer.header.revision)


def statuses(members: Sequence[Member]) -> dict[str, MemberStatus]:
    return {m.name: s for m in members if (s := status(m)) is not None}


def wait_for_leader(members: Sequence[Member], timeout: float) -> tuple[Member, MemberStatus]:
    """The member all `members` agree leads, once they do; RuntimeError after `timeout`."""
    deadline = time.monotonic() + timeout
    seen: dict[str, MemberStatus] = {}
    while time.monotonic() < deadline:
        seen = statuses(members)
        leader = agreed_leader(list(seen.values()), len(members))
        if leader is not None:
            name = next(n for n, s in seen.items() if s.member_id == leader)
            return next(m for m in members if m.name == name), seen[name]
        time.sleep(POLL_S)
    raise RuntimeError(f"no leader agreed by {[m.name for m in members]} within {timeout:.0f}s; saw {seen}")


class WriteLoad:
    """`clients` threads doing sequential Puts over all endpoints until stopped (or capped)."""

    def __init__(self, addresses: Sequence[str], clients: int, time_limit: float) -> None:
        self.addresses = list(addresses)
        self.ok_times: list[float] = []  # completion time of every acknowledged Put (monotonic)
        self.failed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._deadline = time.monotonic() + time_limit
        self._threads = [
            threading.Thread(target=self._client, args=(i,), name=f"failover-put-{i}", daemon=True)
            for i in range(clients)
        ]

    def __enter__(self) -> WriteLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(PUT_TIMEOUT_S * 5)

    def _client(self, index: int) -> None:
        channels = [grpc.insecure_channel(a) for a in self.addresses]
        try:
            stubs = [rpc_pb2_grpc.KVStub(c) for c in channels]
            endpoint = index % len(stubs)
            for i in range(MAX_PUTS_PER_CLIENT):
                if self._stop.is_set() or time.monotonic() > self._deadline:
                    return
                request = rpc_pb2.PutRequest(key=b"/bench/failover/%d/%d" % (index, i % 1000), value=VALUE)
                try:
                    stubs[endpoint].Put(request, timeout=PUT_TIMEOUT_S)
                except grpc.RpcError:
                    with self._lock:
                        self.failed += 1
                    endpoint = (endpoint + 1) % len(stubs)  # fail over to the next member
                    continue
                done = time.monotonic()
                with self._lock:
                    self.ok_times.append(done)
        finally:
            for channel in channels:
                channel.close()


def _wait_caught_up(cluster: Cluster, member: Member, timeout: float) -> None:
    """The restarted member serves and its revision reached the highest of the others'."""
    deadline = time.monotonic() + timeout
    seen: dict[str, MemberStatus] = {}
    while time.monotonic() < deadline:
        seen = statuses(cluster.members)
        mine = seen.get(member.name)
        complete = mine is not None and len(seen) == len(cluster.members)
        if complete and mine.leader != 0 and mine.revision >= max(s.revision for s in seen.values()):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{member.name} did not catch up within {timeout:.0f}s; saw {seen}")


def one_failover(cluster: Cluster) -> FailoverRun:
    """Kill the leader under load once, measure, restart it and wait until it caught up."""
    leader, leader_status = wait_for_leader(cluster.members, LEADER_TIMEOUT_S)
    survivors = [m for m in cluster.members if m is not leader]
    time_limit = WARM_UP_S + LEADER_TIMEOUT_S + AFTER_ELECTION_S + 5
    with WriteLoad(cluster.addresses, CLIENTS, time_limit) as load:
        time.sleep(WARM_UP_S)  # a steady load before the kill (not synchronisation: a fixed warm-up)
        if not load.ok_times:
            raise RuntimeError(f"{cluster.kind.value}: no Put succeeded during the warm-up")
        killed_at = time.monotonic()
        leader.process.kill()
        leader.process.wait(10)
        seen: dict[str, MemberStatus] = {}
        elected_at: float | None = None
        while time.monotonic() < killed_at + LEADER_TIMEOUT_S:
            seen = statuses(survivors)
            if new_leader(list(seen.values()), len(survivors), leader_status.member_id) is not None:
                elected_at = time.monotonic()
                break
            time.sleep(POLL_S)
        if elected_at is None:
            raise RuntimeError(
                f"{cluster.kind.value}: no new leader within {LEADER_TIMEOUT_S:.0f}s of killing "
                f"{leader.name}; survivors said {seen}"
            )
        # let writes resume, bounded: until a Put succeeded after the election, then a little more
        resume_deadline = elected_at + LEADER_TIMEOUT_S
        while time.monotonic() < resume_deadline and not (load.ok_times and load.ok_times[-1] > elected_at):
            time.sleep(POLL_S)
        time.sleep(AFTER_ELECTION_S)
    ended = time.monotonic()
    gap = longest_gap(load.ok_times, killed_at - GAP_WINDOW_BEFORE_KILL_S, ended)
    if gap is None or not any(t > killed_at for t in load.ok_times):
        raise RuntimeError(f"{cluster.kind.value}: no Put succeeded after killing {leader.name}")
    new_leader_id = agreed_leader(list(seen.values()), len(survivors))
    restarted_at = time.monotonic()
    restart_member(leader)
    _wait_caught_up(cluster, leader, CATCH_UP_TIMEOUT_S)
    rejoin = time.monotonic() - restarted_at
    _, after = wait_for_leader(cluster.members, LEADER_TIMEOUT_S)
    return FailoverRun(
        killed=leader.name,
        election_s=elected_at - killed_at,
        write_gap_s=gap,
        puts_ok=len(load.ok_times),
        puts_failed=load.failed,
        rejoin_s=rejoin,
        leader_kept_on_rejoin=after.member_id == new_leader_id,
    )


def measure_failover(cluster: Cluster, kills: int = KILLS) -> FailoverResult:
    """`kills` failovers in a row on a running cluster of MEMBERS members."""
    if len(cluster.members) != MEMBERS:
        raise ValueError(f"failover needs {MEMBERS} members, not {len(cluster.members)}")
    result = FailoverResult()
    for _ in range(kills):
        result.runs.append(one_failover(cluster))
    return result
