"""The real etcdctl against a 3-member etcdlite cluster (Raft), given all three endpoints.

The data-path tests of test_etcdlite_etcdctl.py run again here unchanged (etcdctl picks any
member; followers forward to the leader), plus what only a cluster shows: three started
members, one leader among them, and `etcdctl check perf --load=s` passing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.etcd_helpers import etcdctl, run_etcdlite_cluster
from tests.integration.test_etcdlite_etcdctl import (  # the same tests, on this module's endpoint
    test_bad_requests_get_etcds_errors,
    test_compaction_then_old_revisions_are_gone,
    test_delete_with_prefix_and_prev_kv,
    test_lease_expiry_deletes_attached_keys_with_delete_events,
    test_lease_grant_keepalive_timetolive_and_revoke_removes_keys,
    test_put_and_get_with_prefix_rev_limit_and_keys_only,
    test_txn_from_stdin_guards_like_the_apiserver,
    test_watch_prefix_replays_history_from_rev_then_follows,
)

__all__ = [
    "test_bad_requests_get_etcds_errors",
    "test_compaction_then_old_revisions_are_gone",
    "test_delete_with_prefix_and_prev_kv",
    "test_lease_expiry_deletes_attached_keys_with_delete_events",
    "test_lease_grant_keepalive_timetolive_and_revoke_removes_keys",
    "test_put_and_get_with_prefix_rev_limit_and_keys_only",
    "test_txn_from_stdin_guards_like_the_apiserver",
    "test_watch_prefix_replays_history_from_rev_then_follows",
]


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_etcdlite_cluster(tmp_path_factory.mktemp("etcdlite-3")) as endpoints:
        yield endpoints


def test_three_started_members_one_leader_all_healthy(endpoint):
    members = [line.split(", ") for line in etcdctl(endpoint, "member", "list").stdout.strip().splitlines()]
    assert sorted(m[2] for m in members) == ["m0", "m1", "m2"]
    assert all(m[1] == "started" and m[5] == "false" for m in members), members
    status = [
        line.split(", ") for line in etcdctl(endpoint, "endpoint", "status", "--cluster").stdout.splitlines()
    ]
    assert len(status) == 3 and [s[4] for s in status].count("true") == 1, status
    assert len({s[6] for s in status}) == 1, f"members disagree on the raft term: {status}"
    health = etcdctl(endpoint, "endpoint", "health", "--cluster")
    assert health.stderr.count("is healthy: successfully committed proposal") == 3, health.stderr


def test_check_perf_load_s_passes(endpoint):
    result = etcdctl(endpoint, "check", "perf", "--load=s", timeout=150, check=False)
    assert result.returncode == 0 and "PASS: Throughput" in result.stdout, result.stdout + result.stderr
    assert etcdctl(endpoint, "get", "/etcdctl-check-perf/", "--prefix", "--keys-only").stdout == "", (
        "check perf leaves its prefix empty"
    )
