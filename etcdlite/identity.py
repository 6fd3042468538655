"""Who a member is, kept in its data directory (`member/identity`).

etcd derives a member's ID from its peer URLs once, when the member is created, and records it
(with the cluster ID) in the WAL's metadata; a restart reads them back and ignores the flags. So
a member whose peer URLs moved (MemberUpdate) keeps its ID, and one that joined an existing
cluster remembers which. `recorded` applies a recorded identity to the flags' configuration;
`record` writes one atomically. Touches only that file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from etcdlite.config import EtcdConfig
from etcdlite.wal import fsync_dir


class IdentityCorruptError(ValueError):
    """The identity file exists but cannot be read: refuse to start rather than guess an ID."""


def identity_path(data_dir: Path) -> Path:
    return data_dir / "member" / "identity"


def recorded(config: EtcdConfig) -> EtcdConfig:
    """The configuration with the member and cluster IDs recorded in its data dir, if any."""
    path = identity_path(config.data_dir)
    try:
        data = json.loads(path.read_text())
        member_id, cluster_id = int(data["member_id"], 16), int(data["cluster_id"], 16)
    except FileNotFoundError:
        return config
    except (ValueError, KeyError, TypeError) as exc:
        raise IdentityCorruptError(f"{path}: cannot read the member's identity: {exc}") from None
    return dataclasses.replace(config, recorded_member_id=member_id, recorded_cluster_id=cluster_id)


def record(data_dir: Path, member_id: int, cluster_id: int) -> None:
    """Blocking: write the identity (cluster_id 0: a joining member that has not heard from the cluster)."""
    path = identity_path(data_dir)
    text = json.dumps({"member_id": f"{member_id:016x}", "cluster_id": f"{cluster_id:016x}"})
    staging = path.with_name(path.name + ".tmp")
    with open(staging, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(staging, path)
    fsync_dir(path.parent)
