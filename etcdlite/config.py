"""etcd's command-line flags for etcdlite: parsing, etcd's defaults, validation, member identity.

Every flag keeps etcd's name and default, and can also come from etcd's environment variable
(`ETCD_` + the flag in upper snake case, e.g. `ETCD_DATA_DIR`); a flag on the command line
wins. Peer flags configure Raft (etcdlite.raftdriver). Pure: the caller
passes argv and the environment; errors are `ConfigError` with a message meant for the user.
"""

from __future__ import annotations

import argparse
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from etcdlite.compactor import CompactionPolicy, parse_policy

DEFAULT_QUOTA_BYTES = 2 * 1024 * 1024 * 1024  # etcd's DefaultQuotaBytes
MAX_QUOTA_BYTES = 8 * 1024 * 1024 * 1024
DEFAULT_MAX_REQUEST_BYTES = 1572864  # etcd's DefaultMaxRequestBytes (1.5 MiB)
MAX_MAX_REQUEST_BYTES = 64 * 1024 * 1024
DEFAULT_NAME = "default"
DEFAULT_CLIENT_URL = "http://localhost:2379"
DEFAULT_PEER_URL = "http://localhost:2380"


class ConfigError(ValueError):
    """The flags cannot describe a member; the message says which flag and why."""


@dataclass(frozen=True)
class ListenUrl:
    """A URL to listen on; host `0.0.0.0` or `[::]` means every interface, port 0 any free port."""

    url: str
    host: str
    port: int

    @property
    def address(self) -> str:
        """host:port as gRPC's add_insecure_port wants it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class EtcdConfig:
    name: str
    data_dir: Path
    listen_client_urls: tuple[ListenUrl, ...]
    advertise_client_urls: tuple[str, ...]
    listen_peer_urls: tuple[ListenUrl, ...]
    initial_advertise_peer_urls: tuple[str, ...]
    initial_cluster: dict[str, tuple[str, ...]]
    initial_cluster_state: str
    initial_cluster_token: str
    snapshot_count: int
    snapshot_catchup_entries: int
    quota_backend_bytes: int
    max_request_bytes: int
    compaction: CompactionPolicy | None
    heartbeat_interval_ms: int
    election_timeout_ms: int
    log_level: str
    # what the data dir recorded (etcdlite.identity), which wins over the flags; 0 when nothing is
    recorded_member_id: int = 0
    recorded_cluster_id: int = 0

    @property
    def member_id(self) -> int:
        """Stable non-zero id from the peer URLs and cluster token, as etcd derives it."""
        if self.recorded_member_id:
            return self.recorded_member_id
        return peer_member_id(self.initial_advertise_peer_urls, self.initial_cluster_token)

    @property
    def initial_members(self) -> dict[int, tuple[str, tuple[str, ...]]]:
        """Member id -> (name, peer URLs) of every member in --initial-cluster."""
        return {
            peer_member_id(urls, self.initial_cluster_token): (name, urls)
            for name, urls in self.initial_cluster.items()
        }

    @property
    def cluster_id(self) -> int:
        """From every initial member's id and the token, so all members of a new cluster agree."""
        if self.recorded_cluster_id:
            return self.recorded_cluster_id
        ids = b"".join(i.to_bytes(8, "big") for i in sorted(self.initial_members))
        return _id_from(ids + self.initial_cluster_token.encode())

    @property
    def min_lease_ttl(self) -> int:
        """etcd's minimum lease TTL: 1.5 election timeouts, rounded up to whole seconds (2 s by default)."""
        election_ticks = self.election_timeout_ms // self.heartbeat_interval_ms
        return math.ceil((3 * election_ticks) // 2 * self.heartbeat_interval_ms / 1000)

    @property
    def wal_dir(self) -> Path:
        return self.data_dir / "member" / "wal"

    @property
    def snap_dir(self) -> Path:
        return self.data_dir / "member" / "snap"


def peer_member_id(peer_urls: Sequence[str], token: str) -> int:
    """etcd's member id: a hash of the sorted peer URLs and the cluster token."""
    return _id_from(("".join(sorted(peer_urls)) + token).encode())


def _id_from(data: bytes) -> int:
    value = int.from_bytes(hashlib.sha1(data).digest()[:8], "big")
    return value or 1


class _FlagParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(message)


def _flag_parser() -> argparse.ArgumentParser:
    parser = _FlagParser(
        prog="python -m etcdlite",
        description="etcdlite: an etcd v3 API server (flags as etcd's).",
        allow_abbrev=False,
    )
    add = parser.add_argument
    add("--name", help="human-readable name for this member (default: default)")
    add("--data-dir", help="path to the data directory (default: ${name}.etcd)")
    add("--listen-client-urls", help=f"URLs to listen on for client traffic (default: {DEFAULT_CLIENT_URL})")
    add(
        "--advertise-client-urls",
        help=f"client URLs to advertise to the cluster (default: {DEFAULT_CLIENT_URL})",
    )
    add("--listen-peer-urls", help=f"URLs to listen on for peer traffic (default: {DEFAULT_PEER_URL})")
    add("--initial-advertise-peer-urls", help=f"peer URLs to advertise (default: {DEFAULT_PEER_URL})")
    add(
        "--initial-cluster",
        help="initial cluster configuration, name=peerURL,... (default: <name>=<peer URLs>)",
    )
    add("--initial-cluster-state", help="new or existing (default: new)")
    add("--initial-cluster-token", help="initial cluster token (default: etcd-cluster)")
    add("--snapshot-count", help="committed entries between two snapshots (default: 100000)")
    add(
        "--experimental-snapshot-catchup-entries",
        help="entries kept after a snapshot for slow followers to catch up from (default: 5000)",
    )
    add("--quota-backend-bytes", help="raise an alarm when the store exceeds this size (default: 0 = 2 GiB)")
    add("--max-request-bytes", help=f"largest client request in bytes (default: {DEFAULT_MAX_REQUEST_BYTES})")
    add("--auto-compaction-retention", help="history to keep: hours or a duration like 30m; 0 = off")
    add("--auto-compaction-mode", help="periodic or revision (default: periodic)")
    add("--heartbeat-interval", help="heartbeat interval in ms (default: 100)")
    add("--election-timeout", help="election timeout in ms (default: 1000)")
    add("--log-level", help="debug, info, warn or error (default: info)")
    return parser


def parse_flags(argv: Sequence[str], environ: Mapping[str, str]) -> EtcdConfig:
    args = _flag_parser().parse_args(list(argv))

    def flag(name: str, default: str) -> str:
        value = getattr(args, name.replace("-", "_"))
        if value is None:
            value = environ.get("ETCD_" + name.upper().replace("-", "_"))
        return default if value is None else value

    name = flag("name", DEFAULT_NAME)
    if not name:
        raise ConfigError("--name must not be empty")
    data_dir = Path(flag("data-dir", f"{name}.etcd"))
    listen_client = _listen_urls("--listen-client-urls", flag("listen-client-urls", DEFAULT_CLIENT_URL))
    advertise_client = _advertise_urls(
        "--advertise-client-urls", flag("advertise-client-urls", DEFAULT_CLIENT_URL)
    )
    listen_peer = _listen_urls("--listen-peer-urls", flag("listen-peer-urls", DEFAULT_PEER_URL))
    advertise_peer = _advertise_urls(
        "--initial-advertise-peer-urls", flag("initial-advertise-peer-urls", DEFAULT_PEER_URL)
    )
    cluster_text = flag("initial-cluster", "")
    if not cluster_text or (cluster_text == f"{DEFAULT_NAME}={DEFAULT_PEER_URL}" and name != DEFAULT_NAME):
        # etcd: a default --initial-cluster follows --name and --initial-advertise-peer-urls
        cluster_text = ",".join(f"{name}={url}" for url in advertise_peer)
    initial_cluster = _initial_cluster(cluster_text)
    if name not in initial_cluster:
        raise ConfigError(f"--initial-cluster {cluster_text!r} has no member named {name!r} (--name)")
    if set(initial_cluster[name]) != set(advertise_peer):
        raise ConfigError(
            f"--initial-cluster has {name}={','.join(initial_cluster[name])} but "
            f"--initial-advertise-peer-urls is {','.join(advertise_peer)}"
        )
    token = flag("initial-cluster-token", "etcd-cluster")
    ids: dict[int, str] = {}
    for member, urls in initial_cluster.items():
        member_id = peer_member_id(urls, token)
        if member_id in ids:
            raise ConfigError(
                f"--initial-cluster: members {ids[member_id]} and {member} have the same peer URLs"
            )
        ids[member_id] = member
    state = flag("initial-cluster-state", "new")
    if state not in ("new", "existing"):
        raise ConfigError(f"--initial-cluster-state must be new or existing, not {state!r}")
    log_level = flag("log-level", "info").lower()
    if log_level not in ("debug", "info", "warn", "warning", "error", "panic", "fatal"):
        raise ConfigError(f"--log-level {log_level!r} is not one of debug, info, warn, error, panic, fatal")
    try:
        compaction = parse_policy(
            flag("auto-compaction-mode", "periodic"), flag("auto-compaction-retention", "0")
        )
    except ValueError as exc:
        raise ConfigError(f"--auto-compaction-retention/--auto-compaction-mode: {exc}") from None
    quota = _int_flag("--quota-backend-bytes", flag("quota-backend-bytes", "0"), minimum=0)
    if quota > MAX_QUOTA_BYTES:
        raise ConfigError(f"--quota-backend-bytes {quota} exceeds the maximum {MAX_QUOTA_BYTES}")
    max_request = _int_flag("--max-request-bytes", flag("max-request-bytes", str(DEFAULT_MAX_REQUEST_BYTES)))
    if max_request > MAX_MAX_REQUEST_BYTES:
        raise ConfigError(f"--max-request-bytes {max_request} exceeds the maximum {MAX_MAX_REQUEST_BYTES}")
    heartbeat = _int_flag("--heartbeat-interval", flag("heartbeat-interval", "100"))
    election = _int_flag("--election-timeout", flag("election-timeout", "1000"))
    if election < 5 * heartbeat:
        raise ConfigError(
            f"--election-timeout[{election}ms] should be at least 5 times --heartbeat-interval[{heartbeat}ms]"
        )
    return EtcdConfig(
        name=name,
        data_dir=data_dir,
        listen_client_urls=listen_client,
        advertise_client_urls=advertise_client,
        listen_peer_urls=listen_peer,
        initial_advertise_peer_urls=advertise_peer,
        initial_cluster=initial_cluster,
        initial_cluster_state=state,
        initial_cluster_token=token,
        snapshot_count=_int_flag("--snapshot-count", flag("snapshot-count", "100000")),
        snapshot_catchup_entries=_int_flag(
            "--experimental-snapshot-catchup-entries",
            flag("experimental-snapshot-catchup-entries", "5000"),
            minimum=0,
        ),
        quota_backend_bytes=quota or DEFAULT_QUOTA_BYTES,
        max_request_bytes=max_request,
        compaction=compaction,
        heartbeat_interval_ms=heartbeat,
        election_timeout_ms=election,
        log_level=log_level,
    )


def _int_flag(flag: str, text: str, minimum: int = 1) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{flag} must be an integer, not {text!r}") from None
    if value < minimum:
        raise ConfigError(f"{flag} must be at least {minimum}, not {value}")
    return value


def _split_urls(flag: str, text: str) -> list[str]:
    urls = [u.strip() for u in text.split(",") if u.strip()]
    if not urls:
        raise ConfigError(f"{flag} needs at least one URL")
    return urls


def _parse_url(flag: str, url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme == "https":
        raise ConfigError(f"{flag} {url}: TLS (https) is not supported by etcdlite; use http")
    if parts.scheme != "http":
        raise ConfigError(f"{flag} {url}: expected a URL like http://host:port")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{flag} {url}: a listen URL has no path")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{flag} {url}: invalid port") from None
    if not parts.hostname or port is None:
        raise ConfigError(f"{flag} {url}: expected host and port, as in http://127.0.0.1:2379")
    return parts.hostname, port


def _listen_urls(flag: str, text: str) -> tuple[ListenUrl, ...]:
    result = []
    for url in _split_urls(flag, text):
        host, port = _parse_url(flag, url)
        result.append(ListenUrl(url, host, port))
    return tuple(result)


def _advertise_urls(flag: str, text: str) -> tuple[str, ...]:
    urls = _split_urls(flag, text)
    for url in urls:
        _parse_url(flag, url)
    return tuple(urls)


def _initial_cluster(text: str) -> dict[str, tuple[str, ...]]:
    members: dict[str, list[str]] = {}
    for item in _split_urls("--initial-cluster", text):
        name, sep, url = item.partition("=")
        if not sep or not name or not url:
            raise ConfigError(f"--initial-cluster entry {item!r} is not name=peerURL")
        _parse_url("--initial-cluster", url)
        members.setdefault(name, []).append(url)
    return {name: tuple(urls) for name, urls in members.items()}


def with_bound_port(urls: Sequence[str], port: int) -> tuple[str, ...]:
    """Advertised URLs with port 0 ("whatever was free") replaced by the port actually bound."""
    result = []
    for url in urls:
        parts = urlsplit(url)
        if parts.port == 0:
            host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
            url = parts._replace(netloc=f"{host}:{port}").geturl()
        result.append(url)
    return tuple(result)
