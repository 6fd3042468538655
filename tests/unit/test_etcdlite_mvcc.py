"""The MVCC state machine: etcd's revision, range, txn, compaction and lease semantics."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etcdlite import errors
from etcdlite.errors import EtcdError
from etcdlite.mvcc import Applied, KeyRecord, MvccStore
from kubelite.pb.etcdserverpb import rpc_pb2

Compare = rpc_pb2.Compare
SortOrder = rpc_pb2.RangeRequest.SortOrder
SortTarget = rpc_pb2.RangeRequest.SortTarget


def apply(store: MvccStore, request) -> Applied:
    return store.apply(store.applied_index + 1, request)


def ok(store: MvccStore, request):
    applied = apply(store, request)
    assert applied.error is None, applied.error
    return applied.response


def fails(store: MvccStore, request, failure: errors.Failure) -> None:
    applied = apply(store, request)
    assert applied.error == failure(), applied


def put(store: MvccStore, key: bytes, value: bytes = b"v", **kw) -> rpc_pb2.PutResponse:
    return ok(store, rpc_pb2.PutRequest(key=key, value=value, **kw))


def delete(store: MvccStore, key: bytes, range_end: bytes = b"", **kw) -> rpc_pb2.DeleteRangeResponse:
    return ok(store, rpc_pb2.DeleteRangeRequest(key=key, range_end=range_end, **kw))


def get(store: MvccStore, key: bytes, range_end: bytes = b"", **kw) -> rpc_pb2.RangeResponse:
    return store.range(rpc_pb2.RangeRequest(key=key, range_end=range_end, **kw))


def keys(response: rpc_pb2.RangeResponse) -> list[bytes]:
    return [kv.key for kv in response.kvs]


def txn(compare=(), success=(), failure=()) -> rpc_pb2.TxnRequest:
    return rpc_pb2.TxnRequest(compare=list(compare), success=list(success), failure=list(failure))


def op_put(key: bytes, value: bytes = b"v") -> rpc_pb2.RequestOp:
    return rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=key, value=value))


def op_get(key: bytes, range_end: bytes = b"") -> rpc_pb2.RequestOp:
    return rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=key, range_end=range_end))


def op_del(key: bytes, range_end: bytes = b"") -> rpc_pb2.RequestOp:
    return rpc_pb2.RequestOp(request_delete_range=rpc_pb2.DeleteRangeRequest(key=key, range_end=range_end))


def test_revisions_start_at_one_and_each_write_makes_one():
    store = MvccStore()
    assert store.revision == 1
    assert put(store, b"a").header.revision == 2
    assert put(store, b"a", b"w").header.revision == 3
    kv = get(store, b"a").kvs[0]
    assert (kv.create_revision, kv.mod_revision, kv.version, kv.value) == (2, 3, 2, b"w")
    assert delete(store, b"a").deleted == 1
    assert store.revision == 4
    assert delete(store, b"a").deleted == 0
    assert store.revision == 4, "a delete that deletes nothing makes no revision"
    put(store, b"a", b"again")
    kv = get(store, b"a").kvs[0]
    assert (kv.create_revision, kv.version) == (5, 1), "a delete resets version and create revision"


def test_range_conventions_limit_count_and_more():
    store = MvccStore()
    for key in (b"a", b"foo", b"foo/1", b"foo/2", b"fop", b"z"):
        put(store, key)
    assert keys(get(store, b"foo")) == [b"foo"]
    assert keys(get(store, b"foo", b"fop")) == [b"foo", b"foo/1", b"foo/2"]
    assert keys(get(store, b"foo", b"\x00")) == [b"foo", b"foo/1", b"foo/2", b"fop", b"z"]
    assert len(get(store, b"\x00", b"\x00").kvs) == 6
    assert keys(get(store, b"z", b"a")) == []
    limited = get(store, b"\x00", b"\x00", limit=2)
    assert (keys(limited), limited.more, limited.count) == ([b"a", b"foo"], True, 6)
    exact = get(store, b"\x00", b"\x00", limit=6)
    assert (exact.more, exact.count) == (False, 6)
    counted = get(store, b"foo", b"fop", count_only=True)
    assert (counted.count, list(counted.kvs), counted.more) == (3, [], False)
    assert get(store, b"foo", keys_only=True).kvs[0].value == b""
    assert get(store, b"missing").count == 0


def test_range_sort_and_revision_filters():
    store = MvccStore()
    put(store, b"a", b"3")  # rev 2
    put(store, b"b", b"1")  # rev 3
    put(store, b"c", b"2")  # rev 4
    put(store, b"a", b"4")  # rev 5
    everything = (b"\x00", b"\x00")
    assert keys(get(store, *everything, sort_order=SortOrder.DESCEND)) == [b"c", b"b", b"a"]
    assert keys(get(store, *everything, sort_target=SortTarget.VALUE)) == [b"b", b"c", b"a"], (
        "NONE means ASCEND"
    )
    by_mod = get(store, *everything, sort_target=SortTarget.MOD, sort_order=SortOrder.DESCEND, limit=2)
    assert (keys(by_mod), by_mod.more, by_mod.count) == ([b"a", b"c"], True, 3)
    assert keys(get(store, *everything, sort_target=SortTarget.CREATE)) == [b"a", b"b", b"c"]
    assert (
        keys(get(store, *everything, sort_target=SortTarget.VERSION, sort_order=SortOrder.DESCEND))[0] == b"a"
    )
    assert keys(get(store, *everything, min_mod_revision=4)) == [b"a", b"c"]
    assert keys(get(store, *everything, max_mod_revision=3)) == [b"b"]
    assert keys(get(store, *everything, min_create_revision=3, max_create_revision=3)) == [b"b"]
    filtered = get(store, *everything, min_mod_revision=4, limit=1)
    assert (keys(filtered), filtered.more, filtered.count) == ([b"a"], True, 3)


def test_range_at_old_revisions_and_errors():
    store = MvccStore()
    put(store, b"k", b"1")  # 2
    put(store, b"k", b"2")  # 3
    delete(store, b"k")  # 4
    put(store, b"j", b"x")  # 5
    assert get(store, b"k", revision=2).kvs[0].value == b"1"
    assert get(store, b"k", revision=3).kvs[0].value == b"2"
    assert get(store, b"k", revision=4).kvs == []
    old = get(store, b"\x00", b"\x00", revision=3)
    assert (keys(old), old.header.revision) == ([b"k"], 5), "old reads carry the current revision"
    assert keys(get(store, b"\x00", b"\x00", revision=1)) == []
    with pytest.raises(EtcdError) as exc:
        get(store, b"k", revision=6)
    assert exc.value == errors.FUTURE_REV()
    with pytest.raises(EtcdError) as exc:
        get(store, b"", revision=2)
    assert exc.value == errors.EMPTY_KEY()


def test_put_options_and_their_errors():
    store = MvccStore()
    first = put(store, b"k", b"1", prev_kv=True)
    assert not first.HasField("prev_kv")
    second = put(store, b"k", b"2", prev_kv=True)
    assert second.prev_kv.value == b"1"
    lease = ok(store, rpc_pb2.LeaseGrantRequest(ID=7, TTL=60))
    assert lease.ID == 7
    put(store, b"k", ignore_value=True, value=b"", lease=7)
    kv = get(store, b"k").kvs[0]
    assert (kv.value, kv.lease, kv.version) == (b"2", 7, 3)
    put(store, b"k", b"3", ignore_lease=True)
    assert get(store, b"k").kvs[0].lease == 7
    fails(store, rpc_pb2.PutRequest(key=b"nope", ignore_value=True), errors.KEY_NOT_FOUND)
    fails(store, rpc_pb2.PutRequest(key=b"nope", ignore_lease=True), errors.KEY_NOT_FOUND)
    fails(store, rpc_pb2.PutRequest(key=b"k", value=b"x", ignore_value=True), errors.VALUE_PROVIDED)
    fails(store, rpc_pb2.PutRequest(key=b"k", lease=7, ignore_lease=True), errors.LEASE_PROVIDED)
    fails(store, rpc_pb2.PutRequest(key=b"k", lease=8), errors.LEASE_NOT_FOUND)
    fails(store, rpc_pb2.PutRequest(key=b""), errors.EMPTY_KEY)
    assert store.revision == 5, "failed requests change nothing"


def test_delete_range_prev_kvs_and_binary_keys():
    store = MvccStore()
    for key in (b"p\x00\xff", b"p\x01", b"q"):
        put(store, key, key)
    deleted = delete(store, b"p", b"q", prev_kv=True)
    assert deleted.deleted == 2
    assert [kv.value for kv in deleted.prev_kvs] == [b"p\x00\xff", b"p\x01"]
    assert keys(get(store, b"\x00", b"\x00")) == [b"q"]


def test_txn_compares_missing_keys_and_ranges():
    store = MvccStore()
    put(store, b"a", b"1")  # 2
    put(store, b"b", b"2")  # 3
    create_zero = Compare(key=b"new", target=Compare.CREATE, result=Compare.EQUAL, create_revision=0)
    assert ok(store, txn([create_zero])).succeeded
    missing_value = Compare(key=b"new", target=Compare.VALUE, result=Compare.EQUAL, value=b"")
    assert not ok(store, txn([missing_value])).succeeded, "a VALUE compare on a missing key is false"
    mod = Compare(key=b"a", target=Compare.MOD, result=Compare.EQUAL, mod_revision=2)
    assert ok(store, txn([mod])).succeeded
    greater = Compare(key=b"a", range_end=b"c", target=Compare.VERSION, result=Compare.GREATER, version=0)
    assert ok(store, txn([greater])).succeeded
    value_less = Compare(key=b"a", range_end=b"c", target=Compare.VALUE, result=Compare.LESS, value=b"2")
    assert not ok(store, txn([value_less])).succeeded, "every key in the range must satisfy the compare"
    not_equal = Compare(key=b"b", target=Compare.LEASE, result=Compare.NOT_EQUAL, lease=0)
    assert not ok(store, txn([not_equal])).succeeded
    assert store.revision == 3, "read-only txns make no revision"


def test_txn_guarded_create_and_update_as_the_apiserver_uses_them():
    store = MvccStore()
    create = txn(
        [Compare(key=b"/registry/pods/ns/p", target=Compare.CREATE, result=Compare.EQUAL, create_revision=0)],
        [op_put(b"/registry/pods/ns/p", b"v1")],
        [op_get(b"/registry/pods/ns/p")],
    )
    first = ok(store, create)
    assert first.succeeded and first.header.revision == 2
    assert first.responses[0].response_put.header.revision == 2
    again = ok(store, create)
    assert not again.succeeded and again.header.revision == 2
    assert again.responses[0].response_range.kvs[0].value == b"v1"
    update = txn(
        [Compare(key=b"/registry/pods/ns/p", target=Compare.MOD, result=Compare.EQUAL, mod_revision=2)],
        [op_put(b"/registry/pods/ns/p", b"v2")],
        [op_get(b"/registry/pods/ns/p")],
    )
    assert ok(store, update).succeeded
    stale = ok(store, update)
    assert not stale.succeeded
    assert stale.responses[0].response_range.kvs[0].mod_revision == 3


def test_txn_ops_see_earlier_writes_and_share_one_revision():
    store = MvccStore()
    put(store, b"x", b"0")  # 2
    put(store, b"z", b"0")  # 3
    ops = [op_get(b"x"), op_put(b"x", b"1"), op_put(b"y", b"1"), op_get(b"x", b"z"), op_del(b"z")]
    response = ok(store, txn(success=ops))
    assert response.succeeded and response.header.revision == 4
    got_before, _, _, got_after, deleted = response.responses
    assert got_before.response_range.header.revision == 3
    assert [kv.value for kv in got_after.response_range.kvs] == [b"1", b"1"]
    assert got_after.response_range.header.revision == 4
    assert deleted.response_delete_range.deleted == 1
    assert keys(get(store, b"\x00", b"\x00")) == [b"x", b"y"]
    assert [c.kv.mod_revision for c in store.changes_since(4)] == [4, 4, 4]


def test_txn_nested_and_refused():
    store = MvccStore()
    put(store, b"a", b"1")
    inner = txn(
        [Compare(key=b"a", target=Compare.VALUE, result=Compare.EQUAL, value=b"1")],
        [op_put(b"b", b"from-inner")],
    )
    outer = ok(store, txn(success=[rpc_pb2.RequestOp(request_txn=inner), op_put(b"c")]))
    assert outer.responses[0].response_txn.succeeded
    assert get(store, b"b").kvs[0].value == b"from-inner"
    fails(store, txn(success=[op_put(b"d"), op_put(b"d")]), errors.DUPLICATE_KEY)
    fails(store, txn(success=[op_del(b"d", b"e"), op_put(b"d1")]), errors.DUPLICATE_KEY)
    fails(
        store,
        txn(success=[op_put(b"d"), rpc_pb2.RequestOp(request_txn=txn(success=[op_put(b"d")]))]),
        errors.DUPLICATE_KEY,
    )
    assert ok(store, txn(success=[op_put(b"d")], failure=[op_put(b"d")])).succeeded, "different branches may"
    fails(store, txn(success=[op_put(b"k%d" % i) for i in range(129)]), errors.TOO_MANY_OPS)
    bad_lease = rpc_pb2.RequestOp(request_put=rpc_pb2.PutRequest(key=b"l", lease=99))
    fails(store, txn(success=[op_put(b"m"), bad_lease]), errors.LEASE_NOT_FOUND)
    assert store.get(b"m") is None, "a refused txn writes nothing"
    fails(
        store,
        txn(success=[rpc_pb2.RequestOp(request_range=rpc_pb2.RangeRequest(key=b"a", revision=99))]),
        errors.FUTURE_REV,
    )


def test_compaction_keeps_what_is_visible_at_the_compact_revision():
    store = MvccStore()
    put(store, b"a", b"1")  # 2
    put(store, b"a", b"2")  # 3
    put(store, b"b", b"1")  # 4
    delete(store, b"b")  # 5
    put(store, b"c", b"1")  # 6
    ok(store, rpc_pb2.CompactionRequest(revision=5))
    assert store.compact_revision == 5
    assert keys(get(store, b"\x00", b"\x00", revision=5)) == [b"a"]
    assert get(store, b"a", revision=5).kvs[0].value == b"2"
    with pytest.raises(EtcdError) as exc:
        get(store, b"a", revision=4)
    assert exc.value == errors.COMPACTED()
    assert [c.revision for c in store.changes_since(0)] == [5, 6]
    fails(store, rpc_pb2.CompactionRequest(revision=5), errors.COMPACTED)
    fails(store, rpc_pb2.CompactionRequest(revision=7), errors.FUTURE_REV)
    # b@4 stays as the prev of the retained delete at 5 (what a watch from 5 with prev_kv shows)
    retained = sorted((r.key, r.mod_revision) for r in store.records())
    assert retained == [(b"a", 3), (b"b", 4), (b"b", 5), (b"c", 6)]
    ok(store, rpc_pb2.CompactionRequest(revision=6))
    assert sorted((r.key, r.mod_revision) for r in store.records()) == [(b"a", 3), (b"c", 6)]


def test_leases_attach_keys_and_revoke_deletes_them_in_one_revision():
    store = MvccStore(min_lease_ttl=2)
    grant = ok(store, rpc_pb2.LeaseGrantRequest(ID=1, TTL=1))
    assert grant.TTL == 2, "small TTLs are raised to the minimum"
    fails(store, rpc_pb2.LeaseGrantRequest(ID=1, TTL=10), errors.LEASE_EXIST)
    fails(store, rpc_pb2.LeaseGrantRequest(ID=2, TTL=9_000_000_001), errors.LEASE_TTL_TOO_LARGE)
    put(store, b"x", lease=1)
    put(store, b"y", lease=1)
    put(store, b"z", lease=1)
    put(store, b"z")  # moved off the lease
    assert store.lease_keys(1) == [b"x", b"y"]
    applied = apply(store, rpc_pb2.LeaseRevokeRequest(ID=1))
    assert applied.error is None
    assert [(c.kv.key, c.is_delete, c.revision) for c in applied.changes] == [
        (b"x", True, 6),
        (b"y", True, 6),
    ]
    assert keys(get(store, b"\x00", b"\x00")) == [b"z"]
    assert 1 not in store.leases
    fails(store, rpc_pb2.LeaseRevokeRequest(ID=1), errors.LEASE_NOT_FOUND)


def test_changes_carry_prev_kv_for_watchers():
    store = MvccStore()
    put(store, b"k", b"1")
    applied = apply(store, rpc_pb2.PutRequest(key=b"k", value=b"2"))
    (change,) = applied.changes
    assert change.prev is not None and change.prev.value == b"1"
    (deleted,) = apply(store, rpc_pb2.DeleteRangeRequest(key=b"k")).changes
    assert deleted.is_delete and deleted.kv == KeyRecord(b"k", 0, 4, 0, b"", 0)
    assert deleted.prev is not None and deleted.prev.value == b"2"


def test_snapshot_restores_the_same_state_history_and_changes():
    store = MvccStore()
    ok(store, rpc_pb2.LeaseGrantRequest(ID=5, TTL=30))
    for i in range(20):
        put(store, b"k%d" % (i % 7), b"v%d" % i, lease=5 if i % 3 == 0 else 0)
        if i % 5 == 4:
            delete(store, b"k%d" % (i % 4))
    ok(store, rpc_pb2.CompactionRequest(revision=10))
    put(store, b"after", b"x")
    restored = MvccStore.restore(store.snapshot())
    assert list(restored.records()) == list(store.records())
    assert restored.changes_since(0) == store.changes_since(0)
    assert (restored.revision, restored.compact_revision, restored.applied_index, restored.leases) == (
        store.revision,
        store.compact_revision,
        store.applied_index,
        store.leases,
    )
    assert restored.lease_keys(5) == store.lease_keys(5)
    assert restored.db_size == store.db_size
    for revision in range(10, store.revision + 1):
        assert get(restored, b"\x00", b"\x00", revision=revision) == get(
            store, b"\x00", b"\x00", revision=revision
        )


def test_apply_refuses_a_gap_in_the_log():
    store = MvccStore()
    with pytest.raises(ValueError, match="gap"):
        store.apply(2, rpc_pb2.PutRequest(key=b"a"))


# ---------------------------------------------------------------------- property test

_keys = st.sampled_from([b"a", b"b", b"b\x00", b"c", b"c/1", b"c/2", b"d\xff"])
_values = st.binary(max_size=3)
_ops = st.one_of(
    st.tuples(st.just("put"), _keys, _values),
    st.tuples(st.just("del"), _keys, st.sampled_from([b"", b"c", b"d", b"\x00"])),
    st.tuples(st.just("txn"), _keys, _values),
    st.tuples(st.just("compact"), st.integers(0, 40), st.just(b"")),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_ops, max_size=40))
def test_store_matches_a_dict_model_at_every_revision(ops):
    """Each revision's visible state equals a plain dict kept per revision."""
    store = MvccStore()
    model: dict[bytes, tuple[bytes, int, int, int]] = {}  # key -> (value, create, mod, version)
    states = {1: {}}
    compacted = 0
    for kind, key, arg in ops:
        revision = store.revision + 1
        if kind == "put":
            put(store, key, arg)
            old = model.get(key)
            model[key] = (arg, old[1] if old else revision, revision, old[3] + 1 if old else 1)
        elif kind == "del":
            response = delete(store, key, arg)
            doomed = [k for k in model if _model_in_range(k, key, arg)]
            assert response.deleted == len(doomed)
            for k in doomed:
                del model[k]
            if not doomed:
                revision -= 1
        elif kind == "txn":
            # create-if-absent, as the apiserver does
            absent = key not in model
            guard = Compare(key=key, target=Compare.CREATE, result=Compare.EQUAL, create_revision=0)
            assert ok(store, txn([guard], [op_put(key, arg)])).succeeded == absent
            if absent:
                model[key] = (arg, revision, revision, 1)
            else:
                revision -= 1
        else:
            target = key
            applied = apply(store, rpc_pb2.CompactionRequest(revision=target))
            if target <= compacted:
                assert applied.error == errors.COMPACTED()
            elif target > store.revision:
                assert applied.error == errors.FUTURE_REV()
            else:
                assert applied.error is None
                compacted = target
            revision -= 1
        assert store.revision == revision
        states[revision] = dict(model)

    for revision in range(max(compacted, 1), store.revision + 1):
        expected = states.get(revision)
        if expected is None:
            continue
        got = get(store, b"\x00", b"\x00", revision=revision)
        assert {
            kv.key: (kv.value, kv.create_revision, kv.mod_revision, kv.version) for kv in got.kvs
        } == expected
        assert keys(got) == sorted(expected)
    restored = MvccStore.restore(store.snapshot())
    assert list(restored.records()) == list(store.records())


def _model_in_range(k: bytes, key: bytes, range_end: bytes) -> bool:
    if not range_end:
        return k == key
    if range_end == b"\x00":
        return k >= key
    return key <= k < range_end
