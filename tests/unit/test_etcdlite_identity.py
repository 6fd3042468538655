"""A member's recorded identity wins over what its flags would derive (etcd's WAL metadata)."""

from __future__ import annotations

import pytest

from etcdlite import identity
from etcdlite.config import parse_flags


def flags(tmp_path, peer_url: str) -> list[str]:
    return [
        "--name=m4",
        f"--data-dir={tmp_path}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-cluster=m1=http://127.0.0.1:2380,m4={peer_url}",
        "--initial-cluster-state=existing",
    ]


def test_a_member_keeps_its_recorded_ids_when_its_peer_url_moves(tmp_path) -> None:
    first = parse_flags(flags(tmp_path, "http://127.0.0.1:12380"), {})
    assert identity.recorded(first) == first  # nothing recorded yet: the flags decide
    (tmp_path / "member").mkdir()
    identity.record(tmp_path, first.member_id, 0xC1)
    moved = identity.recorded(parse_flags(flags(tmp_path, "http://127.0.0.1:22380"), {}))
    assert moved.member_id == first.member_id
    assert moved.cluster_id == 0xC1


def test_an_unreadable_identity_refuses_to_start(tmp_path) -> None:
    (tmp_path / "member").mkdir()
    identity.identity_path(tmp_path).write_text("{not json")
    with pytest.raises(identity.IdentityCorruptError, match="identity"):
        identity.recorded(parse_flags(flags(tmp_path, "http://127.0.0.1:12380"), {}))
