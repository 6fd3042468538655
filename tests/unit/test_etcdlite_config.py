"""etcd's flags, defaults and environment variables; the lease clocks; the auto-compaction policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from etcdlite.compactor import CompactionMode, CompactionPolicy, Compactor, parse_go_duration, parse_policy
from etcdlite.config import (
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_QUOTA_BYTES,
    ConfigError,
    parse_flags,
    with_bound_port,
)
from etcdlite.lessor import Lessor


def test_defaults_are_etcds():
    config = parse_flags([], {})
    assert config.name == "default"
    assert config.data_dir == Path("default.etcd")
    assert [u.address for u in config.listen_client_urls] == ["localhost:2379"]
    assert config.advertise_client_urls == ("http://localhost:2379",)
    assert config.initial_cluster == {"default": ("http://localhost:2380",)}
    assert config.snapshot_count == 100000
    assert config.quota_backend_bytes == DEFAULT_QUOTA_BYTES
    assert config.max_request_bytes == DEFAULT_MAX_REQUEST_BYTES
    assert config.compaction is None
    assert config.min_lease_ttl == 2
    assert parse_flags(["--heartbeat-interval=500", "--election-timeout=5000"], {}).min_lease_ttl == 8
    assert config.member_id != 0 and config.cluster_id != 0
    assert config.member_id == parse_flags([], {}).member_id, "ids are stable"
    assert config.snapshot_catchup_entries == 5000


def test_members_of_one_initial_cluster_agree_on_ids():
    cluster = "a=http://a:2380,b=http://b:2380,c=http://c:2380"
    configs = [
        parse_flags(
            [f"--name={n}", f"--initial-advertise-peer-urls=http://{n}:2380", f"--initial-cluster={cluster}"],
            {},
        )
        for n in "abc"
    ]
    assert len({c.cluster_id for c in configs}) == 1
    assert [c.member_id for c in configs] == [
        next(i for i, (name, _) in configs[0].initial_members.items() if name == n) for n in "abc"
    ]
    assert len({c.member_id for c in configs}) == 3
    other_token = parse_flags(
        [
            "--name=a",
            "--initial-advertise-peer-urls=http://a:2380",
            f"--initial-cluster={cluster}",
            "--initial-cluster-token=other",
        ],
        {},
    )
    assert other_token.cluster_id != configs[0].cluster_id and other_token.member_id != configs[0].member_id


def test_container_style_flags_and_listen_separate_from_advertise():
    config = parse_flags(
        [
            "--name=etcd-0",
            "--data-dir",
            "/var/lib/etcd",
            "--listen-client-urls=http://0.0.0.0:2379,http://[::1]:0",
            "--advertise-client-urls=http://etcd-0:2379",
            "--listen-peer-urls=http://0.0.0.0:2380",
            "--initial-advertise-peer-urls=http://etcd-0:2380",
            "--initial-cluster=etcd-0=http://etcd-0:2380",
            "--initial-cluster-state=new",
            "--snapshot-count=5000",
            "--quota-backend-bytes=1048576",
            "--max-request-bytes=2048",
            "--auto-compaction-retention=1",
        ],
        {},
    )
    assert [u.address for u in config.listen_client_urls] == ["0.0.0.0:2379", "[::1]:0"]
    assert config.advertise_client_urls == ("http://etcd-0:2379",)
    assert config.data_dir == Path("/var/lib/etcd")
    assert (config.snapshot_count, config.quota_backend_bytes, config.max_request_bytes) == (
        5000,
        1048576,
        2048,
    )
    assert config.compaction == CompactionPolicy(CompactionMode.PERIODIC, 3600.0)


def test_environment_variables_and_name_driven_defaults():
    config = parse_flags(
        ["--name", "n1"], {"ETCD_DATA_DIR": "/data", "ETCD_NAME": "ignored", "ETCD_SNAPSHOT_COUNT": "7"}
    )
    assert config.name == "n1", "a flag beats the environment"
    assert config.data_dir == Path("/data")
    assert config.snapshot_count == 7
    assert config.initial_cluster == {"n1": ("http://localhost:2380",)}
    assert parse_flags(["--name", "n2"], {}).data_dir == Path("n2.etcd")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--listen-client-urls=https://127.0.0.1:2379"], "TLS"),
        (["--listen-client-urls=127.0.0.1:2379"], "http://host:port"),
        (["--listen-client-urls=http://127.0.0.1"], "host and port"),
        (["--snapshot-count=many"], "integer"),
        (
            [
                "--initial-cluster=a=http://a:2380,b=http://a:2380",
                "--name=a",
                "--initial-advertise-peer-urls=http://a:2380",
            ],
            "same peer URLs",
        ),
        (["--initial-cluster=other=http://localhost:2380"], "no member named 'default'"),
        (
            ["--initial-advertise-peer-urls=http://x:2380", "--initial-cluster=default=http://y:2380"],
            "initial-advertise-peer-urls",
        ),
        (["--initial-cluster-state=maybe"], "new or existing"),
        (["--auto-compaction-retention=soon"], "duration"),
        (["--no-such-flag"], "unrecognized"),
    ],
)
def test_bad_flags_get_clear_errors(argv, message):
    with pytest.raises(ConfigError, match=message):
        parse_flags(argv, {})


def test_go_durations_and_policies():
    assert parse_go_duration("1h30m") == 5400
    assert parse_go_duration("1.5s") == 1.5
    assert parse_go_duration("250ms") == 0.25
    assert parse_policy("periodic", "0") is None
    assert parse_policy("periodic", "30m") == CompactionPolicy(CompactionMode.PERIODIC, 1800)
    assert parse_policy("revision", "1000") == CompactionPolicy(CompactionMode.REVISION, 1000)
    with pytest.raises(ValueError):
        parse_policy("revision", "1h")


def test_periodic_compaction_keeps_the_retention_window():
    compactor = Compactor(CompactionPolicy(CompactionMode.PERIODIC, 100.0), now=0.0)
    assert compactor.interval == 10.0
    targets = {}
    for step in range(30):
        now = step * 10.0
        target = compactor.tick(now, revision=1000 + step)
        if target is not None:
            targets[now] = target
    assert targets[100.0] == 1000, "after one retention period, compact to what was current then"
    assert targets[290.0] == 1019
    assert all(b > a for a, b in zip(list(targets.values()), list(targets.values())[1:], strict=False))
    assert compactor.tick(291.0, 5000) is None, "not before the next interval"


def test_revision_compaction_keeps_the_last_n_revisions():
    compactor = Compactor(CompactionPolicy(CompactionMode.REVISION, 100), now=0.0)
    assert compactor.tick(0.0, 50) is None
    assert compactor.tick(300.0, 250) == 150
    assert compactor.tick(600.0, 250) is None, "nothing new to compact"


def test_lease_clocks_renew_expire_once_and_restart_in_full():
    lessor = Lessor()
    lessor.grant(1, 10, now=0.0)
    lessor.grant(2, 5, now=0.0)
    assert lessor.remaining(1, now=0.5) == 9
    assert lessor.renew(1, now=4.0) == 10
    assert lessor.expired(now=5.0) == [2]
    assert lessor.expired(now=6.0) == [], "a lease being revoked is reported once"
    assert lessor.renew(2, now=6.0) == 0, "an expired lease cannot be kept alive"
    lessor.revoke_failed(2)
    assert lessor.expired(now=7.0) == [2], "a failed revoke is retried"
    assert lessor.renew(99, now=0.0) == 0 and lessor.remaining(99, now=0.0) is None
    lessor.promote({1: 10, 3: 30}, now=100.0)
    assert (lessor.remaining(1, 100.0), lessor.remaining(3, 100.0), lessor.remaining(2, 100.0)) == (
        10,
        30,
        None,
    )


def test_advertised_port_zero_becomes_the_bound_port():
    urls = ("http://127.0.0.1:0", "http://[::1]:0", "http://etcd:2379")
    assert with_bound_port(urls, 4321) == ("http://127.0.0.1:4321", "http://[::1]:4321", "http://etcd:2379")
