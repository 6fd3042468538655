"""The watch protocol of one stream: ids, created-before-events, replay, compaction, filters, cancel."""

from __future__ import annotations

from etcdlite.mvcc import MvccStore
from etcdlite.watch import EMPTY_RANGE_REASON, WatchHub, WatchStream
from kubelite.pb.etcdserverpb import rpc_pb2
from kubelite.pb.mvccpb import kv_pb2

Filter = rpc_pb2.WatchCreateRequest.FilterType


class Member:
    """A store, a hub and the apply-then-publish step the server performs."""

    def __init__(self) -> None:
        self.store = MvccStore()
        self.hub = WatchHub(lambda revision: rpc_pb2.ResponseHeader(revision=revision))

    def write(self, request) -> None:
        applied = self.store.apply(self.store.applied_index + 1, request)
        assert applied.error is None
        self.hub.publish(applied.changes, self.store.compact_revision)

    def put(self, key: bytes, value: bytes = b"v") -> None:
        self.write(rpc_pb2.PutRequest(key=key, value=value))

    def stream(self) -> tuple[WatchStream, list[rpc_pb2.WatchResponse]]:
        sent: list[rpc_pb2.WatchResponse] = []
        header = lambda revision: rpc_pb2.ResponseHeader(revision=revision)  # noqa: E731
        return WatchStream(self.hub, self.store, header, sent.append), sent


def create(key: bytes, range_end: bytes = b"", **kw) -> rpc_pb2.WatchRequest:
    return rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(key=key, range_end=range_end, **kw))


def events(responses: list[rpc_pb2.WatchResponse]) -> list[tuple[int, int, bytes, int]]:
    return [(r.watch_id, e.type, e.kv.key, e.kv.mod_revision) for r in responses for e in r.events]


def test_ids_count_from_zero_and_created_comes_first():
    member = Member()
    stream, sent = member.stream()
    stream.handle(create(b"a"))
    stream.handle(create(b"b"))
    assert [(r.watch_id, r.created, r.header.revision) for r in sent] == [(0, True, 1), (1, True, 1)]
    other, other_sent = member.stream()
    other.handle(create(b"a"))
    assert other_sent[0].watch_id == 0, "ids are per stream"
    member.put(b"a")
    member.put(b"b")
    assert events(sent[2:]) == [(0, kv_pb2.Event.PUT, b"a", 2), (1, kv_pb2.Event.PUT, b"b", 3)]
    assert events(other_sent[1:]) == [(0, kv_pb2.Event.PUT, b"a", 2)]


def test_history_replay_then_live_without_gaps_or_duplicates():
    member = Member()
    member.put(b"p/1", b"1")  # 2
    member.put(b"q", b"x")  # 3
    member.put(b"p/2", b"2")  # 4
    member.write(rpc_pb2.DeleteRangeRequest(key=b"p/1"))  # 5
    stream, sent = member.stream()
    stream.handle(create(b"p/", b"p0", start_revision=3, prev_kv=True))
    assert sent[0].created and not sent[0].events
    replay = sent[1]
    assert events([replay]) == [(0, kv_pb2.Event.PUT, b"p/2", 4), (0, kv_pb2.Event.DELETE, b"p/1", 5)]
    deleted = replay.events[1]
    assert deleted.kv == kv_pb2.KeyValue(key=b"p/1", mod_revision=5), "a DELETE kv has only key and revision"
    assert deleted.prev_kv.value == b"1"
    member.put(b"p/3")
    assert events(sent[2:]) == [(0, kv_pb2.Event.PUT, b"p/3", 6)]
    assert sent[2].header.revision == 6


def test_a_compacted_start_revision_is_created_then_canceled():
    member = Member()
    for i in range(4):
        member.put(b"k", b"%d" % i)  # revisions 2..5
    member.write(rpc_pb2.CompactionRequest(revision=4))
    stream, sent = member.stream()
    stream.handle(create(b"k", start_revision=3))
    assert [(r.created, r.canceled, r.compact_revision, r.watch_id) for r in sent] == [
        (True, False, 0, 0),
        (False, True, 4, 0),
    ]
    member.put(b"k")
    assert len(sent) == 2, "a canceled watch gets nothing more"
    stream.handle(create(b"k", start_revision=4))
    assert [e[3] for e in events(sent[2:])] == [4, 5, 6], "watching from the compact revision itself is fine"


def test_empty_key_means_from_nul_and_empty_ranges_are_refused():
    member = Member()
    stream, sent = member.stream()
    stream.handle(create(b"", b"\x00"))
    stream.handle(create(b"z", b"a"))
    assert sent[1].watch_id == -1 and sent[1].canceled and sent[1].cancel_reason == EMPTY_RANGE_REASON
    member.put(b"\x01anything")
    assert events(sent[2:]) == [(0, kv_pb2.Event.PUT, b"\x01anything", 2)]


def test_filters_future_start_cancel_and_progress():
    member = Member()
    stream, sent = member.stream()
    stream.handle(create(b"a", filters=[Filter.NOPUT]))
    stream.handle(create(b"a", start_revision=4))
    member.put(b"a")  # 2
    member.put(b"a")  # 3
    member.write(rpc_pb2.DeleteRangeRequest(key=b"a"))  # 4
    assert events(sent[2:]) == [(0, kv_pb2.Event.DELETE, b"a", 4), (1, kv_pb2.Event.DELETE, b"a", 4)]
    sent.clear()
    stream.handle(rpc_pb2.WatchRequest(cancel_request=rpc_pb2.WatchCancelRequest(watch_id=0)))
    assert [(r.watch_id, r.canceled) for r in sent] == [(0, True)]
    stream.handle(rpc_pb2.WatchRequest(cancel_request=rpc_pb2.WatchCancelRequest(watch_id=42)))
    stream.handle(rpc_pb2.WatchRequest(progress_request=rpc_pb2.WatchProgressRequest()))
    assert (sent[-1].watch_id, sent[-1].header.revision, len(sent)) == (-1, 4, 2)
    stream.close()
    member.put(b"a")
    assert len(sent) == 2 and len(member.hub) == 0


def test_progress_notify_goes_only_to_watchers_that_asked():
    member = Member()
    stream, sent = member.stream()
    stream.handle(create(b"a", progress_notify=True))
    stream.handle(create(b"b"))
    member.hub.notify_progress(1)
    assert [(r.watch_id, list(r.events)) for r in sent[2:]] == [(0, [])]


def leader_and_follower(writes: int) -> tuple[Member, Member]:
    """Two members that applied the same first `writes` puts of key b"k" (revisions 2..writes+1)."""
    leader, follower = Member(), Member()
    for i in range(writes):
        leader.put(b"k", b"%d" % i)
        follower.put(b"k", b"%d" % i)
    return leader, follower


def install(follower: Member, leader: Member) -> None:
    """What the server does when the driver installs the leader's snapshot: replace the store in place."""
    previous = follower.store.revision
    follower.store.__dict__.update(MvccStore.restore(leader.store.snapshot()).__dict__)
    follower.hub.state_replaced(previous, follower.store)


def test_a_snapshot_past_a_watchers_next_revision_cancels_it_as_compacted():
    leader, follower = leader_and_follower(2)  # both at revision 3
    stream, sent = follower.stream()
    stream.handle(create(b"k"))  # next revision 4
    stream.handle(create(b"other", start_revision=3))  # replays nothing; next revision 4 too
    stream.handle(create(b"k", start_revision=7))  # a future start, still covered after the snapshot
    for i in range(5):
        leader.put(b"k", b"new%d" % i)  # 4..8
    leader.write(rpc_pb2.CompactionRequest(revision=6))
    sent.clear()
    install(follower, leader)
    assert [(r.watch_id, r.canceled, r.compact_revision, r.header.revision) for r in sent[:2]] == [
        (0, True, 6, 0),
        (1, True, 6, 0),
    ], "revisions 4 and 5 are gone: both watchers must re-list"
    assert events(sent[2:]) == [(2, kv_pb2.Event.PUT, b"k", 7), (2, kv_pb2.Event.PUT, b"k", 8)]
    assert len(follower.hub) == 1
    sent.clear()
    follower.put(b"k")  # 9: only the surviving watcher hears it
    assert events(sent) == [(2, kv_pb2.Event.PUT, b"k", 9)]
    stream.handle(rpc_pb2.WatchRequest(cancel_request=rpc_pb2.WatchCancelRequest(watch_id=0)))
    assert (sent[-1].watch_id, sent[-1].canceled) == (0, True), "the id stays taken until the client cancels"


def test_a_snapshot_that_still_covers_a_watcher_replays_what_it_missed_once():
    leader, follower = leader_and_follower(3)  # both at revision 4
    stream, sent = follower.stream()
    stream.handle(create(b"k", prev_kv=True))  # next revision 5
    stream.handle(create(b"k", start_revision=2, filters=[Filter.NODELETE]))  # replays 2..4, next 5
    leader.put(b"k", b"a")  # 5
    leader.write(rpc_pb2.CompactionRequest(revision=5))  # compacted exactly to the next revision
    leader.write(rpc_pb2.DeleteRangeRequest(key=b"k"))  # 6
    leader.put(b"k", b"b")  # 7
    sent.clear()
    install(follower, leader)
    assert not any(r.canceled for r in sent), sent
    assert events(sent) == [
        (0, kv_pb2.Event.PUT, b"k", 5),
        (0, kv_pb2.Event.DELETE, b"k", 6),
        (0, kv_pb2.Event.PUT, b"k", 7),
        (1, kv_pb2.Event.PUT, b"k", 5),
        (1, kv_pb2.Event.PUT, b"k", 7),
    ], "every missed event once, none from before the snapshot, filters kept"
    replayed = [e for r in sent if r.watch_id == 0 for e in r.events]
    assert not replayed[0].HasField("prev_kv"), "the revision before 5 is compacted"
    assert replayed[1].prev_kv.value == b"a"
    assert {r.header.revision for r in sent} == {7}
    sent.clear()
    follower.put(b"k", b"c")  # 8
    assert events(sent) == [(0, kv_pb2.Event.PUT, b"k", 8), (1, kv_pb2.Event.PUT, b"k", 8)]


def test_a_snapshot_with_nothing_new_sends_nothing():
    leader, follower = leader_and_follower(2)
    stream, sent = follower.stream()
    stream.handle(create(b"k"))
    sent.clear()
    install(follower, leader)
    assert sent == [] and len(follower.hub) == 1
