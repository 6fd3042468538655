"""The real etcdctl (API v3) against a real `python -m etcdlite` process."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.integration.etcd_helpers import etcdctl, running_etcdctl, start_etcdlite, wait_until


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc = start_etcdlite(tmp_path_factory.mktemp("etcdlite"))
    try:
        yield proc.endpoint
    finally:
        code = proc.stop()
        assert code == 0, f"etcdlite exited {code} on SIGTERM:\n{proc.log()}"


def ctl(endpoint: str, *args: str, **kw) -> str:
    return etcdctl(endpoint, *args, **kw).stdout


def ctl_json(endpoint: str, *args: str) -> dict:
    return json.loads(ctl(endpoint, *args, "-w", "json"))


def revision(endpoint: str) -> int:
    return ctl_json(endpoint, "get", "anything")["header"]["revision"]


def test_put_and_get_with_prefix_rev_limit_and_keys_only(endpoint):
    assert ctl(endpoint, "put", "/kv/a", "1") == "OK\n"
    first = revision(endpoint)
    ctl(endpoint, "put", "/kv/b", "2")
    ctl(endpoint, "put", "/kv/a", "3")
    ctl(endpoint, "put", "/kvx", "outside the prefix")
    assert ctl(endpoint, "get", "/kv/", "--prefix") == "/kv/a\n3\n/kv/b\n2\n"
    assert ctl(endpoint, "get", "/kv/a", f"--rev={first}") == "/kv/a\n1\n"
    assert ctl(endpoint, "get", "/kv/", "--prefix", "--keys-only") == "/kv/a\n\n/kv/b\n\n"
    limited = ctl_json(endpoint, "get", "/kv/", "--prefix", "--limit=1")
    assert (len(limited["kvs"]), limited["more"], limited["count"]) == (1, True, 2)
    kv = ctl_json(endpoint, "get", "/kv/a")["kvs"][0]
    assert (kv["create_revision"], kv["mod_revision"], kv["version"]) == (first, first + 2, 2)
    assert ctl(
        endpoint, "get", "/kv/", "--prefix", "--sort-by=MODIFY", "--order=DESCEND", "--keys-only"
    ).split() == [
        "/kv/a",
        "/kv/b",
    ]


def test_delete_with_prefix_and_prev_kv(endpoint):
    for key in ("/del/1", "/del/2", "/del/3"):
        ctl(endpoint, "put", key, key.upper())
    assert ctl(endpoint, "del", "/del/1", "--prev-kv") == "1\n/del/1\n/DEL/1\n"
    assert ctl(endpoint, "del", "/del/", "--prefix") == "2\n"
    assert ctl(endpoint, "get", "/del/", "--prefix") == ""
    assert ctl(endpoint, "del", "/del/nothing") == "0\n"


def test_txn_from_stdin_guards_like_the_apiserver(endpoint):
    create = 'create("/txn/pod") = "0"\n\nput /txn/pod v1\n\nget /txn/pod\n\n'
    assert ctl(endpoint, "txn", input=create) == "SUCCESS\n\nOK\n"
    assert ctl(endpoint, "txn", input=create) == "FAILURE\n\n/txn/pod\nv1\n"
    mod = ctl_json(endpoint, "get", "/txn/pod")["kvs"][0]["mod_revision"]
    update = f'mod("/txn/pod") = "{mod}"\n\nput /txn/pod v2\n\n\n'
    assert ctl(endpoint, "txn", input=update).startswith("SUCCESS")
    assert ctl(endpoint, "txn", input=update) == "FAILURE\n"
    assert ctl(endpoint, "get", "/txn/pod", "--print-value-only") == "v2\n"
    duplicate = etcdctl(endpoint, "txn", input="\nput /txn/x 1\nput /txn/x 2\n\n\n", check=False)
    assert duplicate.returncode != 0
    assert "etcdserver: duplicate key given in txn request" in duplicate.stderr


def test_watch_prefix_replays_history_from_rev_then_follows(endpoint):
    ctl(endpoint, "put", "/w/a", "1")
    start = revision(endpoint)
    ctl(endpoint, "put", "/w/b", "2")
    ctl(endpoint, "del", "/w/a")
    with running_etcdctl(endpoint, "watch", "/w/", "--prefix", f"--rev={start}") as watch:
        watch.wait_for_lines(["PUT", "/w/a", "1", "PUT", "/w/b", "2", "DELETE", "/w/a"])
        ctl(endpoint, "put", "/w/c", "3")
        ctl(endpoint, "put", "/elsewhere", "x")
        ctl(endpoint, "put", "/w/d", "4")
        lines = watch.wait_for_lines(
            [
                "PUT",
                "/w/a",
                "1",
                "PUT",
                "/w/b",
                "2",
                "DELETE",
                "/w/a",
                "",
                "PUT",
                "/w/c",
                "3",
                "PUT",
                "/w/d",
                "4",
            ]
        )
    assert "/elsewhere" not in lines


def test_lease_grant_keepalive_timetolive_and_revoke_removes_keys(endpoint):
    granted = ctl(endpoint, "lease", "grant", "60")
    assert granted.startswith("lease ") and granted.endswith(" granted with TTL(60s)\n")
    lease = granted.split()[1]
    assert len(lease) == 16, "ids print as 16 hex digits"
    ctl(endpoint, "put", "/lease/k", "v", f"--lease={lease}")
    assert ctl(endpoint, "lease", "keep-alive", "--once", lease) == f"lease {lease} keepalived with TTL(60)\n"
    ttl = ctl(endpoint, "lease", "timetolive", lease, "--keys")
    assert ttl.startswith(f"lease {lease} granted with TTL(60s), remaining(")
    assert ttl.endswith("attached keys([/lease/k])\n")
    assert lease in ctl(endpoint, "lease", "list")
    assert ctl(endpoint, "lease", "revoke", lease) == f"lease {lease} revoked\n"
    assert ctl(endpoint, "get", "/lease/k") == ""
    assert ctl(endpoint, "lease", "timetolive", lease) == f"lease {lease} already expired\n"
    gone = etcdctl(endpoint, "lease", "keep-alive", "--once", lease, check=False)
    assert gone.returncode != 0 and "etcdserver: requested lease not found" in gone.stderr
    small = ctl(endpoint, "lease", "grant", "1")
    assert small.endswith("granted with TTL(2s)\n"), "the minimum TTL is 2 s, as etcd's"


def test_lease_expiry_deletes_attached_keys_with_delete_events(endpoint):
    lease = ctl(endpoint, "lease", "grant", "2").split()[1]
    ctl(endpoint, "put", "/expire/k", "v", f"--lease={lease}")
    put_revision = json.loads(ctl(endpoint, "get", "/expire/k", "-w", "json"))["kvs"][0]["mod_revision"]
    # watch from the put, so a lease that expires before the watch starts is still seen
    with running_etcdctl(endpoint, "watch", "/expire/k", f"--rev={put_revision}") as watch:
        watch.wait_for_lines(["PUT", "/expire/k", "v", "DELETE", "/expire/k"], timeout=8)
    assert ctl(endpoint, "get", "/expire/k") == ""


def test_member_list_endpoint_status_and_health(endpoint):
    members = ctl(endpoint, "member", "list").strip().split(", ")
    assert members[1:] == ["started", "default", "http://localhost:2380", endpoint, "false"]
    status = ctl(endpoint, "endpoint", "status").strip().split(", ")
    assert status[0] == endpoint and status[1] == members[0]
    assert (status[2], status[4], status[5]) == ("3.4.23", "true", "false")
    health = etcdctl(endpoint, "endpoint", "health")
    assert f"{endpoint} is healthy: successfully committed proposal" in health.stderr
    cluster = etcdctl(endpoint, "endpoint", "health", "--cluster")
    assert f"{endpoint} is healthy" in cluster.stderr, "--cluster follows MemberList's client URL"
    assert f"Finished defragmenting etcd member[{endpoint}]" in ctl(endpoint, "defrag")
    ctl(endpoint, "put", "/hashed", "x")
    hashkv = ctl_json(endpoint, "endpoint", "hashkv")[0]["HashKV"]
    assert hashkv["hash"] != 0 and hashkv["header"]["revision"] > 1
    assert ctl(endpoint, "alarm", "list") == ""
    added = etcdctl(endpoint, "member", "add", "other", "--peer-urls=http://127.0.0.1:1", check=False)
    # etcd's strict reconfiguration check: one started member of two would have no quorum
    assert added.returncode != 0 and "not enough started members" in added.stderr, added.stderr


def test_compaction_then_old_revisions_are_gone(endpoint):
    ctl(endpoint, "put", "/compact/k", "old")
    old = revision(endpoint)
    ctl(endpoint, "put", "/compact/k", "new")
    current = revision(endpoint)
    assert ctl(endpoint, "compaction", str(current)) == f"compacted revision {current}\n"
    too_old = etcdctl(endpoint, "get", "/compact/k", f"--rev={old}", check=False)
    assert too_old.returncode == 1
    assert "Error: etcdserver: mvcc: required revision has been compacted" in too_old.stderr
    assert ctl(endpoint, "get", "/compact/k", f"--rev={current}") == "/compact/k\nnew\n"
    with running_etcdctl(endpoint, "watch", "/compact/k", f"--rev={old}") as watch:
        wait_until(lambda: watch.process.poll() is not None, 10, "the compacted watch to exit")
    assert watch.process.returncode == 5
    assert "watch was canceled (etcdserver: mvcc: required revision has been compacted)" in watch.lines


def test_bad_requests_get_etcds_errors(endpoint):
    empty = etcdctl(endpoint, "put", "", "x", check=False)
    assert "etcdserver: key is not provided" in empty.stderr
    future = etcdctl(endpoint, "get", "x", "--rev=999999", check=False)
    assert "etcdserver: mvcc: required revision is a future revision" in future.stderr
    no_lease = etcdctl(endpoint, "put", "x", "y", "--lease=abc", check=False)
    assert "etcdserver: requested lease not found" in no_lease.stderr
    assert ctl(endpoint, "get", "x") == "", "a refused put wrote nothing"
