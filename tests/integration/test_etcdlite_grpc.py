"""etcdlite over gRPC as the apiserver uses it, and the same requests answered byte for byte like etcd 3.4."""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from kubelite.pb.etcdserverpb import rpc_pb2, rpc_pb2_grpc
from tests.integration.etcd_helpers import EtcdProcess, run_etcdlite, run_real_etcd, start_etcdlite

Compare = rpc_pb2.Compare


@pytest.fixture(scope="module")
def member(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdProcess]:
    proc = start_etcdlite(tmp_path_factory.mktemp("etcdlite-grpc"))
    try:
        yield proc
    finally:
        assert proc.stop() == 0, proc.log()


@pytest.fixture(scope="module")
def channel(member: EtcdProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(member.address) as channel:
        yield channel


class WatchClient:
    """One bidirectional Watch stream driven from the test thread."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._requests: queue.Queue[rpc_pb2.WatchRequest | None] = queue.Queue()
        self._responses = rpc_pb2_grpc.WatchStub(channel).Watch(iter(self._requests.get, None), timeout=30)

    def send(self, **kwargs) -> None:
        self._requests.put(rpc_pb2.WatchRequest(**kwargs))

    def create(self, key: bytes, range_end: bytes = b"", **kwargs) -> None:
        self.send(create_request=rpc_pb2.WatchCreateRequest(key=key, range_end=range_end, **kwargs))

    def next(self) -> rpc_pb2.WatchResponse:
        result: list[rpc_pb2.WatchResponse] = []
        reader = threading.Thread(target=lambda: result.append(next(self._responses)), daemon=True)
        reader.start()
        reader.join(10)
        assert result, "no watch response within 10 s"
        return result[0]

    def close(self) -> None:
        self._requests.put(None)
        self._responses.cancel()


@pytest.fixture
def watch(channel: grpc.Channel) -> Iterator[WatchClient]:
    client = WatchClient(channel)
    try:
        yield client
    finally:
        client.close()


def guarded_put(kv: rpc_pb2_grpc.KVStub, key: bytes, value: bytes, compare: Compare) -> rpc_pb2.TxnResponse:
    return kv.Txn(
        rpc_pb2.TxnRequest(
            compare=[compare],
            success=[rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=value))],
            failure=[rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=key))],
        ),
        timeout=10,
    )


def test_concurrent_guarded_creates_and_updates_have_exactly_one_winner(channel):
    kv = rpc_pb2_grpc.KVStub(channel)
    key = b"/registry/pods/default/race"
    absent = Compare(key=key, target=Compare.CREATE, result=Compare.EQUAL, create_revision=0)
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        creates = list(pool.map(lambda i: guarded_put(kv, key, b"creator-%d" % i, absent), range(20)))
    winners = [r for r in creates if r.succeeded]
    assert len(winners) == 1
    revision = winners[0].header.revision
    losers = [r.responses[0].response_range.kvs[0].mod_revision for r in creates if not r.succeeded]
    assert set(losers) == {revision}, "losers see the winner's object"

    same_version = Compare(key=key, target=Compare.MOD, result=Compare.EQUAL, mod_revision=revision)
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        updates = list(pool.map(lambda i: guarded_put(kv, key, b"updater-%d" % i, same_version), range(20)))
    assert sum(r.succeeded for r in updates) == 1, "no lost update"


def test_list_with_limit_count_only_and_revision(channel):
    kv = rpc_pb2_grpc.KVStub(channel)
    for i in range(5):
        kv.Put(rpc_pb2.PutRequest(key=b"/registry/list/%d" % i, value=b"%d" % i), timeout=5)
    prefix = dict(key=b"/registry/list/", range_end=b"/registry/list0")
    page = kv.Range(rpc_pb2.RangeRequest(limit=2, **prefix), timeout=5)
    assert (len(page.kvs), page.more, page.count) == (2, True, 5)
    rest = kv.Range(
        rpc_pb2.RangeRequest(key=page.kvs[-1].key + b"\x00", range_end=prefix["range_end"]), timeout=5
    )
    assert [k.key[-1:] for k in rest.kvs] == [b"2", b"3", b"4"]
    assert kv.Range(rpc_pb2.RangeRequest(count_only=True, **prefix), timeout=5).count == 5
    kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=b"/registry/list/0"), timeout=5)
    then = kv.Range(rpc_pb2.RangeRequest(revision=page.header.revision, **prefix), timeout=5)
    assert then.count == 5 and then.header.revision == page.header.revision + 1


def test_one_stream_carries_many_watches_with_replay_prev_kv_progress_and_cancel(channel, watch):
    kv = rpc_pb2_grpc.KVStub(channel)
    first = kv.Put(rpc_pb2.PutRequest(key=b"/registry/w/a", value=b"1"), timeout=5).header.revision
    kv.Put(rpc_pb2.PutRequest(key=b"/registry/w/a", value=b"2"), timeout=5)
    watch.create(b"/registry/w/", b"/registry/w0", start_revision=first, prev_kv=True)
    created = watch.next()
    assert (created.watch_id, created.created, created.header.revision) == (0, True, first + 1)
    replay = watch.next()
    assert [(e.kv.value, e.prev_kv.value) for e in replay.events] == [(b"1", b""), (b"2", b"1")]
    watch.create(b"/registry/w/b")
    assert watch.next().watch_id == 1
    kv.Put(rpc_pb2.PutRequest(key=b"/registry/w/b", value=b"x"), timeout=5)
    got = {watch.next().watch_id, watch.next().watch_id}
    assert got == {0, 1}, "both watches on the stream see the put"
    watch.send(progress_request=rpc_pb2.WatchProgressRequest())
    progress = watch.next()
    assert (progress.watch_id, list(progress.events), progress.header.revision) == (-1, [], first + 2)
    watch.send(cancel_request=rpc_pb2.WatchCancelRequest(watch_id=0))
    canceled = watch.next()
    assert (canceled.watch_id, canceled.canceled) == (0, True)
    kv.Put(rpc_pb2.PutRequest(key=b"/registry/w/b", value=b"y"), timeout=5)
    only = watch.next()
    assert only.watch_id == 1 and only.events[0].kv.value == b"y"


def test_a_resumed_watch_misses_nothing(channel):
    kv = rpc_pb2_grpc.KVStub(channel)
    first = WatchClient(channel)
    first.create(b"/resume/", b"/resume0")
    start = first.next().header.revision
    kv.Put(rpc_pb2.PutRequest(key=b"/resume/1", value=b"a"), timeout=5)
    last_seen = first.next().events[-1].kv.mod_revision
    first.close()
    kv.Put(rpc_pb2.PutRequest(key=b"/resume/2", value=b"b"), timeout=5)  # while disconnected
    kv.DeleteRange(rpc_pb2.DeleteRangeRequest(key=b"/resume/1"), timeout=5)
    second = WatchClient(channel)
    try:
        second.create(b"/resume/", b"/resume0", start_revision=last_seen + 1)
        assert second.next().created
        events = second.next().events
        assert [(e.type, e.kv.key) for e in events] == [(0, b"/resume/2"), (1, b"/resume/1")]
        assert events[0].kv.mod_revision == start + 2
    finally:
        second.close()


def test_an_idle_watch_outlives_a_client_that_pings_all_the_time(member, channel):
    """etcdctl pings every 2 s (--keepalive-time) even when nothing is in flight; grpc-core's
    default policy answers the third such ping with GOAWAY (too_many_pings), which ends every
    stream on the connection. Like etcd, the server allows them: here about 12 pings go out in
    6 s of silence on the watch, which then still delivers the next write."""
    pinging_options = [
        ("grpc.keepalive_time_ms", 500),
        ("grpc.keepalive_timeout_ms", 5000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_sent_ping_interval_without_data_ms", 500),
    ]
    with grpc.insecure_channel(member.address, options=pinging_options) as pinging:
        watch = WatchClient(pinging)
        try:
            watch.create(b"/idle/key")
            assert watch.next().created
            time.sleep(6.0)  # the condition under test is time passing with nothing on the stream
            kv = rpc_pb2_grpc.KVStub(channel)
            kv.Put(rpc_pb2.PutRequest(key=b"/idle/key", value=b"still here"), timeout=5)
            events = watch.next().events
            assert [(e.kv.key, e.kv.value) for e in events] == [(b"/idle/key", b"still here")]
        finally:
            watch.close()


def test_lease_keepalive_stream_and_expiry_through_watch(channel, watch):
    lease = rpc_pb2_grpc.LeaseStub(channel)
    kv = rpc_pb2_grpc.KVStub(channel)
    granted = lease.LeaseGrant(rpc_pb2.LeaseGrantRequest(TTL=2), timeout=5)
    assert granted.TTL == 2 and granted.ID > 0
    answers = list(
        lease.LeaseKeepAlive(
            iter([rpc_pb2.LeaseKeepAliveRequest(ID=granted.ID), rpc_pb2.LeaseKeepAliveRequest(ID=7)])
        )
    )
    assert [(a.ID, a.TTL) for a in answers] == [(granted.ID, 2), (7, 0)], "unknown leases answer TTL 0"
    kv.Put(rpc_pb2.PutRequest(key=b"/lease/attached", value=b"v", lease=granted.ID), timeout=5)
    watch.create(b"/lease/attached")
    assert watch.next().created
    deleted = watch.next()
    assert [(e.type, e.kv.key) for e in deleted.events] == [(1, b"/lease/attached")]
    missing = lease.LeaseTimeToLive(rpc_pb2.LeaseTimeToLiveRequest(ID=granted.ID), timeout=5)
    assert missing.TTL == -1


# ---------------------------------------------------------------------- parity with etcd 3.4


def _normalized(message) -> str:
    copy = type(message)()
    copy.CopyFrom(message)
    if copy.HasField("header"):
        copy.header.cluster_id = copy.header.member_id = copy.header.raft_term = 0
    return f"{type(message).__name__} {copy}"


def _call(fn, request) -> str:
    try:
        return _normalized(fn(request, timeout=5))
    except grpc.RpcError as exc:
        return f"error {exc.code().name}: {exc.details()}"


def _transcript(endpoint: str) -> list[str]:
    """The same requests, answers recorded without the member-specific header fields."""
    ops: list[tuple[str, object]] = [
        ("Put", rpc_pb2.PutRequest(key=b"a", value=b"1")),
        ("Put", rpc_pb2.PutRequest(key=b"a/b\x00\xff", value=b"\x00", prev_kv=True)),
        ("Put", rpc_pb2.PutRequest(key=b"a", value=b"2", prev_kv=True)),
        ("Put", rpc_pb2.PutRequest(key=b"c", value=b"3")),
        ("Range", rpc_pb2.RangeRequest(key=b"a", range_end=b"b")),
        ("Range", rpc_pb2.RangeRequest(key=b"\x00", range_end=b"\x00", limit=2)),
        ("Range", rpc_pb2.RangeRequest(key=b"a", range_end=b"\x00", sort_target=4, sort_order=2)),
        ("Range", rpc_pb2.RangeRequest(key=b"\x00", range_end=b"\x00", min_mod_revision=3, keys_only=True)),
        ("Range", rpc_pb2.RangeRequest(key=b"a", revision=2)),
        ("Range", rpc_pb2.RangeRequest(key=b"a", revision=50)),
        ("Range", rpc_pb2.RangeRequest(key=b"")),
        ("Range", rpc_pb2.RangeRequest(key=b"\x00", range_end=b"\x00", count_only=True)),
        ("Put", rpc_pb2.PutRequest(key=b"n", ignore_value=True)),
        ("Put", rpc_pb2.PutRequest(key=b"a", value=b"x", ignore_value=True)),
        ("Put", rpc_pb2.PutRequest(key=b"a", lease=12345)),
        ("Put", rpc_pb2.PutRequest(key=b"a", ignore_value=True, prev_kv=True)),
        (
            "Txn",
            rpc_pb2.TxnRequest(
                compare=[Compare(key=b"a", target=Compare.VERSION, result=Compare.GREATER, version=1)],
                success=[
                    rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=b"c")),
                    rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=b"d", value=b"4")),
                    rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=b"d")),
                    rpc_pb2.RequestOp(
                        request_delete_range=rpc_pb2.DeleteRangeRequest(key=b"c", prev_kv=True)
                    ),
                    rpc_pb2.RequestOp(
                        request_txn=rpc_pb2.TxnRequest(
                            compare=[
                                Compare(key=b"zz", target=Compare.VALUE, result=Compare.EQUAL, value=b"")
                            ],
                            failure=[rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=b"e", value=b"5"))],
                        )
                    ),
                ],
            ),
        ),
        (
            "Txn",
            rpc_pb2.TxnRequest(
                compare=[
                    Compare(key=b"a", range_end=b"b", target=Compare.MOD, result=Compare.LESS, mod_revision=2)
                ],
                failure=[rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=b"a", range_end=b"b"))],
            ),
        ),
        (
            "Txn",
            rpc_pb2.TxnRequest(
                success=[
                    rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=b"f")),
                    rpc_pb2.RequestOp(
                        request_delete_range=rpc_pb2.DeleteRangeRequest(key=b"e", range_end=b"g")
                    ),
                ]
            ),
        ),
        ("DeleteRange", rpc_pb2.DeleteRangeRequest(key=b"a", range_end=b"b", prev_kv=True)),
        ("DeleteRange", rpc_pb2.DeleteRangeRequest(key=b"nothing")),
        ("Compact", rpc_pb2.CompactionRequest(revision=4)),
        ("Compact", rpc_pb2.CompactionRequest(revision=4)),
        ("Compact", rpc_pb2.CompactionRequest(revision=400)),
        ("Range", rpc_pb2.RangeRequest(key=b"a", revision=3)),
        ("Range", rpc_pb2.RangeRequest(key=b"\x00", range_end=b"\x00", revision=4)),
    ]
    lines = []
    with grpc.insecure_channel(endpoint.removeprefix("http://")) as channel:
        kv = rpc_pb2_grpc.KVStub(channel)
        for method, request in ops:
            lines.append(f"{method} {request} -> {_call(getattr(kv, method), request)}")
        watch = WatchClient(channel)
        try:
            watch.create(b"\x00", b"\x00", start_revision=4, prev_kv=True)
            lines += [_normalized(watch.next()), _normalized(watch.next())]
            watch.create(b"a", start_revision=2)
            lines += [_normalized(watch.next()), _normalized(watch.next())]
            watch.create(b"b", b"a")
            lines.append(_normalized(watch.next()))
        finally:
            watch.close()
    return lines


def test_etcdlite_answers_like_etcd(tmp_path):
    with run_real_etcd(tmp_path) as real:
        expected = _transcript(real)
    with run_etcdlite(tmp_path) as lite:
        got = _transcript(lite)
    for want, have in zip(expected, got, strict=True):
        assert have == want
