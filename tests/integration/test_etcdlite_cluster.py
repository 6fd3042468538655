"""A 3-member etcdlite cluster of real `python -m etcdlite` processes on loopback, with real etcdctl.

Each member has its own client and peer port and the same --initial-cluster. The tests kill
(SIGKILL), pause (SIGSTOP/SIGCONT) and restart members and check that no acknowledged write is
lost, that reads through any member are linearizable, and that membership changes work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from etcdlite.raftdriver import TIMEOUT, TIMEOUT_LEADER_FAIL
from kubelite.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.integration.etcd_helpers import (
    START_TIMEOUT,
    STOP_TIMEOUT,
    _free_port,
    all_members_published,
    etcdctl,
    wait_until,
)
from tests.lincheck.checker import check
from tests.lincheck.faults import FaultClock, assert_each_fault_felt
from tests.lincheck.history import Recorder
from tests.support import stop_all

# Faster than etcd's defaults so failover fits the test budget; the ratio is etcd's (1:10).
TIMING = ["--heartbeat-interval=50", "--election-timeout=500"]
# The chaos test records until its fault schedule is over: about 11 s of sleeps, plus two restarts
# (up to START_TIMEOUT each) and three leader look-ups (up to 10 s each) on a slow machine; this
# bounds the recording if the schedule hangs.
RECORDING_LIMIT_S = 11.0 + 2 * START_TIMEOUT + 3 * 10.0 + 10.0


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    ended_on_purpose: bool = False  # killed or stopped by the test (and not started again since)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}-{self.starts}.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, initial_cluster: str, *extra: str, state: str = "new") -> None:
        self.starts += 1
        self.ended_on_purpose = False
        args = [
            sys.executable,
            "-m",
            "etcdlite",
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls=http://{self.address}",
            f"--advertise-client-urls=http://{self.address}",
            f"--listen-peer-urls={self.peer_url}",
            f"--initial-advertise-peer-urls={self.peer_url}",
            f"--initial-cluster={initial_cluster}",
            f"--initial-cluster-state={state}",
            *TIMING,
            *extra,
        ]
        with open(self.log_path, "wb") as log_file:
            self.process = subprocess.Popen(args, stdout=log_file, stderr=subprocess.STDOUT)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL, on purpose (a member that had already died by itself stays a crash for close())."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)
            self.ended_on_purpose = True

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM and wait; fail if it does not exit in time. Returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.ended_on_purpose = True
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                log_tail = self.log()[-4000:]
                raise AssertionError(
                    f"{self.name} did not exit within {timeout}s of SIGTERM; its log ends:\n{log_tail}"
                ) from None
        return self.process.returncode

    def stop_cleanly(self, timeout: float = STOP_TIMEOUT) -> None:
        """At the end of a test: SIGTERM a member the test did not end itself, and fail saying what is
        wrong if it had already died (a crash that the quorum of the others hid) or did not exit 0."""
        if self.process is None or self.ended_on_purpose:
            return
        if self.process.poll() is not None:
            raise AssertionError(
                f"{self.name} had exited with {self.process.returncode} before the end of the test, "
                f"though the test neither killed nor stopped it; its log ends:\n{self.log()[-3000:]}"
            )
        code = self.stop(timeout)
        if code != 0:
            raise AssertionError(
                f"{self.name} exited {code} on SIGTERM, not 0; its log ends:\n{self.log()[-3000:]}"
            )


class Cluster:
    def __init__(self, tmp_path: Path, names: list[str]) -> None:
        self.tmp_path = tmp_path
        self.members = [
            Member(name, _free_port(), _free_port(), tmp_path / f"{name}.etcd", tmp_path) for name in names
        ]
        self.extra: list[str] = []

    def initial_cluster(self, members: list[Member] | None = None) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in members or self.members)

    def start(self, *extra: str) -> None:
        self.extra = list(extra)
        for member in self.members:
            member.start(self.initial_cluster(), *extra)
        for member in self.members:
            self.await_serving(member)

    def restart(self, member: Member) -> None:
        member.start(self.initial_cluster(), *self.extra)
        self.await_serving(member)

    def await_serving(self, member: Member, timeout: float = START_TIMEOUT) -> None:
        def serving() -> bool:
            if not member.running():
                raise AssertionError(f"{member.name} exited while starting:\n{member.log()}")
            return status(member) is not None

        wait_until(serving, timeout, f"{member.name} to answer Status", seen=lambda: member.log()[-2000:])

    @property
    def endpoints(self) -> str:
        return ",".join(m.address for m in self.members)

    def leader(self, among: list[Member] | None = None, timeout: float = 10.0) -> Member:
        """The member that all running members of `among` agree leads, once they agree."""
        among = [m for m in (among or self.members) if m.running()]
        by_id = {}

        def agreed() -> Member | None:
            statuses = [status(m) for m in among]
            if any(s is None for s in statuses):
                return None
            for m, s in zip(among, statuses, strict=True):
                by_id[s.header.member_id] = m
            leaders = {s.leader for s in statuses}
            if len(leaders) != 1 or 0 in leaders:
                return None
            return by_id.get(leaders.pop())

        return wait_until(
            agreed, timeout, "the running members to agree on a leader", seen=lambda: self.logs()
        )

    def logs(self) -> str:
        return "\n".join(f"--- {m.name}:\n{m.log()[-1500:]}" for m in self.members)

    def close(self) -> None:
        """Stop every member; fail naming each one that had crashed or did not exit 0 on SIGTERM."""
        stop_all(self.members[::-1], STOP_TIMEOUT)  # stop_all stops the last one first


def status(member: Member, timeout: float = 1.0) -> rpc_pb2.StatusResponse | None:
    try:
        with grpc.insecure_channel(member.address) as channel:
            return rpc_pb2_grpc.MaintenanceStub(channel).Status(rpc_pb2.StatusRequest(), timeout=timeout)
    except grpc.RpcError:
        return None


def put(member: Member, key: str, value: str, timeout: float = 5.0) -> rpc_pb2.PutResponse:
    with grpc.insecure_channel(member.address) as channel:
        return rpc_pb2_grpc.KVStub(channel).Put(
            rpc_pb2.PutRequest(key=key.encode(), value=value.encode()), timeout=timeout
        )


def get(member: Member, key: str, serializable: bool = False, timeout: float = 5.0) -> bytes | None:
    with grpc.insecure_channel(member.address) as channel:
        response = rpc_pb2_grpc.KVStub(channel).Range(
            rpc_pb2.RangeRequest(key=key.encode(), serializable=serializable), timeout=timeout
        )
    return response.kvs[0].value if response.kvs else None


def put_eventually(cluster: Cluster, key: str, value: str, timeout: float = 10.0) -> None:
    """Write through whichever running member takes it (a client retrying during an election)."""

    def attempt() -> bool:
        for member in cluster.members:
            if member.running():
                try:
                    put(member, key, value, timeout=2.0)
                    return True
                except grpc.RpcError:
                    continue
        return False

    wait_until(attempt, timeout, f"a member to accept put {key}", seen=cluster.logs)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, ["m1", "m2", "m3"])
    try:
        yield c
    finally:
        c.close()


def test_writes_through_any_member_are_read_linearizably_from_the_others(cluster):
    cluster.start()
    m1, m2, m3 = cluster.members
    for i, writer in enumerate(cluster.members):
        put(writer, f"/k{i}", f"from-{writer.name}")
        for reader in cluster.members:
            assert get(reader, f"/k{i}") == f"from-{writer.name}".encode(), (writer.name, reader.name)
    # the write was answered by the member it was sent to, after it applied it
    response = put(m2, "/k", "v")
    assert response.header.member_id == status(m2).header.member_id
    assert response.header.raft_term >= 1

    # names and client URLs are published through Raft just after start, as in etcd
    wait_until(lambda: all_members_published(m1.address, 3), 10, "all members to publish their attributes")
    listing = json.loads(etcdctl(m1.address, "member", "list", "-w", "json").stdout)
    names = {m["name"]: (m["peerURLs"], m["clientURLs"]) for m in listing["members"]}
    assert names == {m.name: ([m.peer_url], [f"http://{m.address}"]) for m in cluster.members}, listing

    statuses = json.loads(etcdctl(m3.address, "endpoint", "status", "--cluster", "-w", "json").stdout)
    assert len(statuses) == 3, statuses
    leaders = {s["Status"]["leader"] for s in statuses}
    assert len(leaders) == 1 and leaders != {0}, statuses
    assert {s["Status"]["raftTerm"] for s in statuses} == {statuses[0]["Status"]["raftTerm"]}
    health = etcdctl(m2.address, "endpoint", "health", "--cluster")
    assert health.stderr.count("is healthy") + health.stdout.count("is healthy") == 3, health


def test_leader_killed_new_leader_continues_and_restarted_member_catches_up_by_snapshot(cluster):
    cluster.start("--snapshot-count=20", "--experimental-snapshot-catchup-entries=5")
    old = cluster.leader()
    put(old, "/before", "1")
    old.kill()
    survivors = [m for m in cluster.members if m is not old]
    new = cluster.leader(survivors, timeout=5.0)
    assert new is not old
    for i in range(60):  # past several snapshots and compactions on the survivors
        put_eventually(cluster, f"/after/{i:02d}", str(i))
    assert get(new, "/before") == b"1"
    cluster.restart(old)
    wait_until(
        lambda: get(old, "/after/59", serializable=True) == b"59",
        10.0,
        "the restarted member to catch up",
        seen=lambda: old.log()[-2000:],
    )
    assert "installed the leader's snapshot" in old.log(), old.log()
    assert get(old, "/before") == b"1"
    assert get(old, "/after/00") == b"0"
    # and it keeps up with new writes, read linearizably through it
    put(new, "/later", "x")
    assert get(old, "/later") == b"x"


def test_paused_follower_loses_no_acknowledged_write(cluster):
    cluster.start()
    leader = cluster.leader()
    paused, other = [m for m in cluster.members if m is not leader]
    paused.signal(signal.SIGSTOP)
    acknowledged = []
    for i in range(20):
        put(leader, f"/p/{i}", str(i))
        acknowledged.append(i)
    paused.signal(signal.SIGCONT)
    other.kill()  # the two left must both have every acknowledged write
    for i in acknowledged:
        assert get(paused, f"/p/{i}", timeout=10.0) == str(i).encode(), i
    cluster.restart(other)
    for i in acknowledged:
        assert get(other, f"/p/{i}") == str(i).encode(), i


def test_a_write_lost_with_a_paused_leader_is_answered_with_etcds_timeout(cluster):
    cluster.start()
    leader = cluster.leader()
    follower = next(m for m in cluster.members if m is not leader)
    leader.signal(signal.SIGSTOP)
    try:
        # forwarded to the paused leader, then lost when the other two elect a new one
        with pytest.raises(grpc.RpcError) as failed:
            put(follower, "/lost", "x", timeout=15.0)
    finally:
        leader.signal(signal.SIGCONT)
    assert failed.value.code() is grpc.StatusCode.UNAVAILABLE
    assert failed.value.details() in (TIMEOUT().message, TIMEOUT_LEADER_FAIL().message), failed.value
    put_eventually(cluster, "/after", "y")  # and the cluster goes on


def test_every_acknowledged_write_survives_sigkill_of_the_whole_cluster(cluster):
    cluster.start("--snapshot-count=25")
    acknowledged = {}
    for i in range(60):
        writer = cluster.members[i % 3]
        put(writer, f"/crash/{i:02d}", f"v{i}")
        acknowledged[f"/crash/{i:02d}"] = f"v{i}".encode()
    for member in cluster.members:
        member.kill()
    for member in cluster.members:
        member.start(cluster.initial_cluster(), *cluster.extra)
    for member in cluster.members:
        cluster.await_serving(member)
    for member in cluster.members:
        for key, value in acknowledged.items():
            assert get(member, key) == value, (member.name, key)


def test_a_nospace_alarm_holds_for_the_whole_cluster_until_disarmed_even_across_restarts(cluster):
    cluster.start("--quota-backend-bytes=20000", "--snapshot-count=10")  # snapshots carry it too
    m1, m2, m3 = cluster.members
    put(m1, "/marker", "m")
    with pytest.raises(grpc.RpcError) as full:
        for i in range(40):
            put(m1, f"/q/{i:02d}", "x" * 1000)
    assert full.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert full.value.details() == "etcdserver: mvcc: database space exceeded"
    with pytest.raises(grpc.RpcError) as refused:  # raised through Raft: every member refuses now
        put(m3, "/tiny", "x")
    assert refused.value.details() == "etcdserver: mvcc: database space exceeded"
    for member in cluster.members:
        assert member.stop() == 0
    for member in cluster.members:
        member.start(cluster.initial_cluster(), *cluster.extra)
    for member in cluster.members:
        cluster.await_serving(member)
    raised_by = f"memberID:{leader_id(m1)} alarm:NOSPACE"
    assert raised_by in etcdctl(m2.address, "alarm", "list").stdout
    assert any(raised_by in e for e in status(m3).errors), status(m3)
    etcdctl(m2.address, "del", "/q", "--prefix")
    etcdctl(m2.address, "del", "/marker")  # a later revision, so compacting drops what /q held
    revision = json.loads(etcdctl(m2.address, "get", "x", "-w", "json").stdout)["header"]["revision"]
    etcdctl(m2.address, "compaction", str(revision))
    disarmed = etcdctl(m3.address, "alarm", "disarm")
    assert raised_by in disarmed.stdout, disarmed.stdout
    for member in cluster.members:
        wait_until(
            lambda member=member: etcdctl(member.address, "alarm", "list").stdout == "",
            5.0,
            f"{member.name} to see the alarm cleared",
        )
    put_eventually(cluster, "/tiny", "x")


def join(cluster: Cluster, member: Member, key: str, value: bytes) -> None:
    """Start a member added by `member add` (or restart it) and wait until it replicated `key`."""
    member.start(cluster.initial_cluster([*cluster.members, member]), state="existing")
    cluster.await_serving(member)
    wait_until(
        lambda: get(member, key, serializable=True) == value,
        10.0,
        f"{member.name} to replicate {key}",
        seen=lambda: member.log()[-2000:],
    )


def test_member_add_then_join_then_remove(cluster, tmp_path):
    cluster.start()
    m1 = cluster.members[0]
    put(m1, "/existing", "yes")
    new = Member("m4", _free_port(), _free_port(), tmp_path / "m4.etcd", tmp_path)
    added = etcdctl(m1.address, "member", "add", "m4", f"--peer-urls={new.peer_url}")
    assert 'ETCD_INITIAL_CLUSTER_STATE="existing"' in added.stdout, added.stdout
    try:
        join(cluster, new, "/existing", b"yes")
        assert get(new, "/existing") == b"yes"
        listing = json.loads(etcdctl(m1.address, "member", "list", "-w", "json").stdout)
        m4 = [m for m in listing["members"] if m["peerURLs"] == [new.peer_url]]
        assert len(m4) == 1 and len(listing["members"]) == 4, listing
        # a joined member publishes its name and client URL through Raft shortly after it starts
        wait_until(
            lambda: all_members_published(m1.address, 4),
            10.0,
            "m4 to publish its name and client URL",
            seen=lambda: etcdctl(m1.address, "member", "list").stdout,
        )
        listing = json.loads(etcdctl(m1.address, "member", "list", "-w", "json").stdout)
        [m4] = [m for m in listing["members"] if m["peerURLs"] == [new.peer_url]]
        assert (m4["name"], m4["clientURLs"]) == ("m4", [f"http://{new.address}"]), m4
        member_id = f"{m4['ID']:x}"
        etcdctl(m1.address, "member", "remove", member_id)
        listing = json.loads(etcdctl(m1.address, "member", "list", "-w", "json").stdout)
        assert len(listing["members"]) == 3, listing
        wait_until(
            lambda: not new.running(), 10.0, "the removed member to stop", seen=lambda: new.log()[-1000:]
        )
        put(m1, "/after-remove", "ok")  # the three left still have a quorum
    finally:
        new.kill()


def test_a_learner_joins_is_promoted_through_a_follower_and_moves_its_peer_url(cluster, tmp_path):
    cluster.start()
    m1 = cluster.members[0]
    put(m1, "/existing", "yes")
    new = Member("m4", _free_port(), _free_port(), tmp_path / "m4.etcd", tmp_path)
    added = etcdctl(m1.address, "member", "add", "m4", "--learner", f"--peer-urls={new.peer_url}")
    assert "Member" in added.stdout and "added" in added.stdout, added.stdout
    listing = json.loads(etcdctl(m1.address, "member", "list", "-w", "json").stdout)
    [m4] = [m for m in listing["members"] if m["peerURLs"] == [new.peer_url]]
    assert m4.get("isLearner") is True, m4
    member_id = f"{m4['ID']:x}"
    not_ready = etcdctl(m1.address, "member", "promote", member_id, check=False)
    assert not_ready.returncode != 0
    assert "can only promote a learner member which is in sync with leader" in not_ready.stderr, not_ready
    try:
        join(cluster, new, "/existing", b"yes")  # a learner serves serializable reads...
        for refused_call in (lambda: put(new, "/from-learner", "x"), lambda: get(new, "/existing")):
            with pytest.raises(grpc.RpcError) as refused:  # ...and nothing else, as in etcd 3.4
                refused_call()
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
            assert refused.value.details() == "etcdserver: rpc not supported for learner"
        leader = cluster.leader(cluster.members[:3])
        follower = next(m for m in cluster.members[:3] if m is not leader)
        promoted = etcdctl(follower.address, "member", "promote", member_id)  # forwarded to the leader
        # etcdctl prints the ID with %16x: space-padded
        assert f"Member {int(member_id, 16):16x} promoted in cluster" in promoted.stdout, promoted.stdout
        listing = json.loads(etcdctl(m1.address, "member", "list", "-w", "json").stdout)
        [m4] = [m for m in listing["members"] if m["ID"] == int(member_id, 16)]
        assert not m4.get("isLearner"), m4
        wait_until(lambda: put(new, "/from-m4", "voter"), 10.0, "m4 to take writes as a voter")
        voter = etcdctl(m1.address, "member", "promote", f"{leader_id(leader):x}", check=False)
        assert "can only promote a learner member" in voter.stderr, voter

        # a new peer URL for m4, replicated; m4 restarted there catches up with a new write
        taken = etcdctl(m1.address, "member", "update", member_id, f"--peer-urls={m1.peer_url}", check=False)
        assert "Peer URLs already exists" in taken.stderr, taken
        new.kill()
        new.peer_port = _free_port()
        etcdctl(m1.address, "member", "update", member_id, f"--peer-urls={new.peer_url}")
        listing = json.loads(etcdctl(m1.address, "member", "list", "-w", "json").stdout)
        assert [m["peerURLs"] for m in listing["members"] if m["ID"] == int(member_id, 16)] == [
            [new.peer_url]
        ]
        put(m1, "/moved", "yes")
        join(cluster, new, "/moved", b"yes")  # restarted on its new peer URL, it catches up
    finally:
        new.kill()


def leader_id(member: Member) -> int:
    answer = status(member)
    assert answer is not None, f"{member.name} does not answer Status"
    return answer.header.member_id


def test_lease_calls_through_a_follower_and_move_leader(cluster):
    cluster.start()
    leader = cluster.leader()
    follower = next(m for m in cluster.members if m is not leader)
    granted = etcdctl(follower.address, "lease", "grant", "30").stdout.split()[1]
    kept = etcdctl(follower.address, "lease", "keep-alive", "--once", granted)
    assert "TTL(30)" in kept.stdout, kept.stdout
    ttl = etcdctl(follower.address, "lease", "timetolive", granted)
    assert "granted with TTL(30s)" in ttl.stdout, ttl.stdout

    target = status(follower).header.member_id
    moved = etcdctl(cluster.endpoints, "move-leader", f"{target:x}")
    assert "Leadership transferred" in moved.stdout, moved.stdout
    assert cluster.leader() is follower


def test_history_under_kills_pauses_and_restarts_is_linearizable(cluster):
    cluster.start()
    faults = FaultClock()

    async def down_and_back(victim: Member, name: str) -> None:
        """SIGKILL `victim`, leave it down a moment, restart it: one fault window, until it serves."""
        faults.begin(name)
        await asyncio.to_thread(victim.kill)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(cluster.restart, victim)
        faults.end(name)

    async def chaos(recorder: Recorder) -> None:
        """The fault schedule: SIGKILL a follower that clients are on, then the leader, restarting
        each; then SIGSTOP the leader and SIGCONT it; then a moment to recover. The sleeps space the
        faults; they synchronise nothing. The follower goes first: clients are spread evenly over
        the members until a failure moves one, so it surely has clients to fail."""
        await asyncio.sleep(1.5)
        leader = await asyncio.to_thread(cluster.leader)
        follower = max(
            (m for m in cluster.members if m is not leader), key=lambda m: recorder.clients_on(m.address)
        )
        await down_and_back(follower, f"SIGKILL of follower {follower.name}")
        await asyncio.sleep(1.5)
        leader = await asyncio.to_thread(cluster.leader)
        await down_and_back(leader, f"SIGKILL of leader {leader.name}")
        await asyncio.sleep(1.0)
        paused = await asyncio.to_thread(cluster.leader)
        name = f"SIGSTOP of leader {paused.name}"
        faults.begin(name)
        paused.signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(2.0)
        finally:
            paused.signal(signal.SIGCONT)
            faults.end(name)
        await asyncio.sleep(1.0)

    recorder = Recorder([m.address for m in cluster.members], clients=6, keys=3, seed=7, op_timeout_s=0.5)
    outlasted = asyncio.run(
        recorder.run_during(chaos(recorder), ops_per_client=100_000, deadline_s=RECORDING_LIMIT_S)
    )
    assert outlasted, f"the recording ended before the fault schedule: {faults.windows}"
    history = recorder.history
    felt = assert_each_fault_felt(faults.windows, history, recorder.failures)
    completed = [op for op in history if op.completed]
    assert len(completed) > 100, f"only {len(completed)} operations completed:\n{cluster.logs()}"
    recovered = [op for op in completed if op.call_time > faults.windows[-1].end]
    assert recovered, f"no operation completed after the last fault:\n{cluster.logs()}"
    result = check(history)
    print(f"{len(history)} operations, {len(completed)} completed: {result.outcome.value}")
    print("\n".join(f.describe() for f in felt))
    assert result.ok, result.describe()


class WatchClient:
    """One raw Watch stream to one member (no client keepalive, so the stream outlives a pause)."""

    def __init__(self, member: Member) -> None:
        self.channel = grpc.insecure_channel(member.address)
        self.requests: queue.Queue[rpc_pb2.WatchRequest | None] = queue.Queue()
        self.call = rpc_pb2_grpc.WatchStub(self.channel).Watch(iter(self.requests.get, None))
        self.responses: list[rpc_pb2.WatchResponse] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        with contextlib.suppress(grpc.RpcError):
            for response in self.call:
                self.responses.append(response)

    def create(self, **fields: object) -> None:
        self.requests.put(rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(**fields)))

    def revisions(self) -> list[int]:
        return [e.kv.mod_revision for r in list(self.responses) for e in r.events]

    def close(self) -> None:
        self.call.cancel()
        self.requests.put(None)
        self.reader.join(STOP_TIMEOUT)
        self.channel.close()


def test_watch_on_a_follower_that_installs_a_snapshot_is_canceled_as_compacted(cluster):
    cluster.start("--snapshot-count=20", "--experimental-snapshot-catchup-entries=5")
    leader = cluster.leader()
    follower = next(m for m in cluster.members if m is not leader)
    watch = WatchClient(follower)
    try:
        watch.create(key=b"/w/", range_end=b"/w0")
        first = put(leader, "/w/first", "0").header.revision
        wait_until(lambda: watch.revisions() == [first], 5.0, "the follower's watch to see /w/first")
        follower.signal(signal.SIGSTOP)
        # More sequential writes than the leader's inflight window (256 appends) holds for the
        # paused follower, so its log is compacted past what the follower will have received.
        with grpc.insecure_channel(leader.address) as channel:
            kv = rpc_pb2_grpc.KVStub(channel)
            for i in range(320):
                kv.Put(rpc_pb2.PutRequest(key=b"/w/%03d" % i, value=b"v"), timeout=5.0)
            compacted = kv.Put(rpc_pb2.PutRequest(key=b"/w/last", value=b"x"), timeout=5.0).header.revision
            kv.Compact(rpc_pb2.CompactionRequest(revision=compacted), timeout=5.0)
            for i in range(30):  # a snapshot after the compaction carries it
                kv.Put(rpc_pb2.PutRequest(key=b"/z/%02d" % i, value=b"v"), timeout=5.0)
        follower.signal(signal.SIGCONT)
        canceled = wait_until(
            lambda: next((r for r in list(watch.responses) if r.canceled), None),
            15.0,
            "the follower's watch to be canceled",
            seen=lambda: f"revisions {watch.revisions()[-3:]}\n{follower.log()[-2000:]}",
        )
        assert "installed the leader's snapshot" in follower.log(), follower.log()[-3000:]
        assert canceled.compact_revision == compacted, canceled
        seen = watch.revisions()
        assert seen == list(range(first, seen[-1] + 1)), "events before the cancel have no gap"
        assert seen[-1] < compacted - 1, "the snapshot skipped events, which is what the cancel reports"
        put(leader, "/w/after", "y")
        wait_until(
            lambda: get(follower, "/w/after", serializable=True) == b"y",
            5.0,
            "the follower to apply /w/after",
        )
        assert watch.responses[-1] is canceled, "a canceled watch gets nothing more"
    finally:
        watch.close()
