"""Log replication and commit: majority rule, the Figure 8 rule, forwarding, batching, pipelining."""

from __future__ import annotations

from etcdlite.raft.core import Config, Raft
from etcdlite.raft.progress import ProgressState
from etcdlite.raft.storage import MemoryStorage
from etcdlite.raft.types import (
    ConfState,
    Entry,
    HardState,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
    StateType,
    entry_size,
)
from tests.raftsim import Network


def test_entry_commits_only_with_a_majority() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.isolate(1)
    net.propose(1, b"x")
    assert b"x" not in net.data_applied(1)
    net.heal()
    net.tick(1)  # heartbeat -> response -> the leader resends what 2 and 3 lack
    assert all(net.data_applied(i) == [b"x"] for i in (1, 2, 3))


def test_minority_partition_commits_nothing_majority_keeps_going() -> None:
    net = Network([1, 2, 3, 4, 5])
    net.campaign(1)
    net.cut = {frozenset((a, b)) for a in (1, 2) for b in (3, 4, 5)}
    net.propose(1, b"minority")
    net.tick_all(3 * net.raft(3).election_timeout)
    new = net.leader()
    assert new in (3, 4, 5)
    assert net.raft(1).state is not StateType.LEADER  # check-quorum made the minority leader step down
    net.propose(new, b"majority")
    assert net.data_applied(3) == [b"majority"]
    assert net.data_applied(1) == []


def figure8_leader() -> Raft:
    """Leader of term 4 whose log ends with an entry from term 2 that it did not create."""
    st = MemoryStorage()
    st.apply_snapshot(
        Snapshot(SnapshotMetadata(index=1, term=1, conf_state=ConfState(voters=(1, 2, 3, 4, 5))))
    )
    st.append([Entry(term=2, index=2, data=b"old")])
    st.set_hard_state(HardState(term=3, commit=1))
    r = Raft(Config(id=1, storage=st))
    r.become_candidate()
    r.become_leader()  # appends the empty entry 3@4
    r.msgs.clear()
    return r


def test_figure8_old_term_entry_is_not_committed_by_counting_replicas() -> None:
    r = figure8_leader()
    assert (r.term, r.log.last_index()) == (4, 3)
    for peer in (2, 3):
        r.step(Message(type=MessageType.APP_RESP, to=1, frm=peer, term=4, index=2))
    assert r.log.committed == 1  # 2@2 is on a majority but is not from this term
    r.step(Message(type=MessageType.APP_RESP, to=1, frm=2, term=4, index=3))
    assert r.log.committed == 1
    r.step(Message(type=MessageType.APP_RESP, to=1, frm=3, term=4, index=3))
    assert r.log.committed == 3  # committing 3@4 commits 2@2 with it


def test_proposal_on_follower_is_forwarded_and_commits() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.propose(3, b"from-follower")
    assert [net.data_applied(i) for i in (1, 2, 3)] == [[b"from-follower"]] * 3
    assert any(m.type is MessageType.PROP and m.frm == 3 and m.to == 1 for m in net.sent)


def test_appends_are_batched_up_to_max_size_per_msg() -> None:
    payload = b"p" * 100
    size = entry_size(Entry(term=1, index=1, data=payload))
    net = Network([1, 2, 3], max_size_per_msg=2 * size)
    net.campaign(1)
    net.cut = {frozenset((1, 2))}
    for i in range(10):
        net.nodes[1].propose(payload + bytes([i]))
    net.stabilize()
    net.sent.clear()
    net.heal()
    net.tick(1)
    apps = [m for m in net.sent if m.type is MessageType.APP and m.to == 2 and m.entries]
    assert apps and all(len(m.entries) <= 2 for m in apps)
    assert len(net.data_applied(2)) == 10


def test_replicate_state_pipelines_within_the_inflight_window() -> None:
    net = Network([1, 2, 3], max_inflight_msgs=2)
    net.campaign(1)
    assert net.raft(1).prs[2].state is ProgressState.REPLICATE
    net.drop_types = {MessageType.APP_RESP}
    net.sent.clear()
    for i in range(5):
        net.nodes[1].propose(bytes([i]))
        net.stabilize()
    to2 = [m for m in net.sent if m.type is MessageType.APP and m.to == 2 and m.entries]
    assert len(to2) == 2  # sent without waiting for acks, but no more than the window
    assert net.raft(1).prs[2].inflights.full()
    net.drop_types = set()
    net.tick_all(3)
    assert len(net.data_applied(2)) == 5


def test_probe_state_sends_one_append_until_answered() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.isolate(2)
    net.propose(1, b"a")
    pr = net.raft(1).prs[2]
    pr.become_probe()
    net.sent.clear()
    net.nodes[1].propose(b"b")
    net.nodes[1].propose(b"c")
    net.stabilize()
    to2 = [m for m in net.sent if m.type is MessageType.APP and m.to == 2]
    assert len(to2) == 1 and pr.probe_sent


def test_follower_rejection_backs_off_next_to_its_last_index() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.isolate(3)
    for i in range(5):
        net.propose(1, bytes([i]))
    net.heal()
    net.tick(1)
    assert net.raft(3).log.last_index() == net.raft(1).log.last_index()
    assert net.raft(1).prs[3].match == net.raft(1).log.last_index()


def test_proposals_stepped_together_go_to_each_follower_in_one_append() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    net.sent.clear()
    net.nodes[3].propose(b"a", b"b", b"c")  # a follower forwards them as one MsgProp
    net.stabilize()
    props = [m for m in net.sent if m.type is MessageType.PROP]
    assert len(props) == 1 and len(props[0].entries) == 3
    for follower in (2, 3):
        apps = [m for m in net.sent if m.type is MessageType.APP and m.to == follower and m.entries]
        assert [len(m.entries) for m in apps] == [3]
    assert all(net.data_applied(i) == [b"a", b"b", b"c"] for i in (1, 2, 3))


def test_a_commit_is_sent_once_per_ready_and_only_to_followers_that_lack_it() -> None:
    net = Network([1, 2, 3])
    net.campaign(1)
    leader = net.raft(1)
    net.nodes[1].propose(b"x")
    net.handle_ready(1)  # persists x and sends it to 2 and 3
    apps, net.queue = net.queue, []
    for app in apps:
        net.nodes[app.to].step(app)
        net.handle_ready(app.to)  # each follower appends x and acks it
    acks, net.queue = net.queue, []
    assert sorted(m.frm for m in acks if m.type is MessageType.APP_RESP) == [2, 3]
    for ack in acks:
        net.nodes[1].step(ack)
    assert leader.log.committed == leader.log.last_index()
    rd = net.nodes[1].ready()
    commits = [m for m in rd.messages if m.type is MessageType.APP]
    assert sorted(m.to for m in commits) == [2, 3]  # one empty append each, not one per ack
    assert all(not m.entries and m.commit == leader.log.committed for m in commits)
    net.nodes[1].advance(rd)
    leader.appends_pending = True  # nothing new since: no follower is owed an append
    assert [m for m in net.nodes[1].ready().messages if m.type is MessageType.APP] == []
