"""The kubelet's command line, with the real kubelet's flag names, parsed into a `KubeletConfig`.

Pure apart from reading the host name (the defaults of --hostname-override and --node-ip).
Bad values are argparse errors: a clear message and exit code 2, before anything starts.
"""

from __future__ import annotations

import argparse
import socket
from dataclasses import dataclass, field

from kubelet.nodestatus import parse_taint
from kubelite.duration import parse_duration
from kubelite.process import add_client_flags, add_common_flags


def parse_labels(text: str) -> dict[str, str]:
    """'a=1,b=2' -> {'a': '1', 'b': '2'}."""
    labels: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"invalid label {item!r}: want key=value")
        labels[key] = value
    return labels


def parse_taints(text: str) -> list[dict[str, str]]:
    return [parse_taint(item.strip()) for item in text.split(",") if item.strip()]


@dataclass(frozen=True)
class KubeletConfig:
    node_name: str
    node_ip: str
    address: str = "0.0.0.0"
    port: int = 10250
    network: str = "kubelite"
    pause_image: str = "kubelite/pause:latest"
    cluster: str = "kubelite"
    node_labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)
    status_update_frequency: float = 10.0
    lease_duration_seconds: int = 40
    max_pods: int = 110
    runtime_endpoint: str = ""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kubelet", description="kubelite node agent")
    add_client_flags(parser)
    add_common_flags(parser)
    parser.add_argument("--hostname-override", default="", help="node name (default: the host name)")
    parser.add_argument(
        "--node-ip", default="", help="the node's InternalIP (default: the host name's address)"
    )
    parser.add_argument("--address", default="0.0.0.0", help="address the kubelet serves on")
    parser.add_argument("--port", type=int, default=10250, help="port the kubelet serves on")
    parser.add_argument("--docker-network", default="kubelite", help="Docker network for pod sandboxes")
    parser.add_argument("--pod-infra-container-image", default="kubelite/pause:latest", help="sandbox image")
    parser.add_argument("--cluster-name", default="kubelite", help="cluster name put on every container")
    parser.add_argument("--node-labels", default="", help="extra node labels, key=value,...")
    parser.add_argument(
        "--register-with-taints", default="", help="taints at registration, key=value:Effect,..."
    )
    parser.add_argument("--node-status-update-frequency", default="10s", help="how often to post node status")
    parser.add_argument("--node-lease-duration-seconds", type=int, default=40, help="node Lease duration")
    parser.add_argument("--max-pods", type=int, default=110, help="pods this node can run")
    parser.add_argument(
        "--container-runtime-endpoint",
        default="",
        help="Docker endpoint (unix:///var/run/docker.sock, tcp://...; default: DOCKER_HOST), "
        "or fake:// for a hollow node",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, KubeletConfig]:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        frequency = parse_duration(args.node_status_update_frequency)
        labels = parse_labels(args.node_labels)
        taints = parse_taints(args.register_with_taints)
    except (ValueError, argparse.ArgumentTypeError) as e:
        parser.error(str(e))
    if frequency <= 0:
        parser.error("--node-status-update-frequency must be positive")
    if args.node_lease_duration_seconds <= 0:
        parser.error("--node-lease-duration-seconds must be positive")
    if args.max_pods <= 0:
        parser.error("--max-pods must be positive")
    if not 0 < args.port < 65536:
        parser.error("--port must be between 1 and 65535")
    node_name = (args.hostname_override or socket.gethostname()).strip().lower()
    node_ip = args.node_ip
    if not node_ip:
        try:
            node_ip = socket.gethostbyname(socket.gethostname())
        except OSError as e:
            parser.error(f"cannot find the node IP from the host name ({e}); pass --node-ip")
    config = KubeletConfig(
        node_name=node_name,
        node_ip=node_ip,
        address=args.address,
        port=args.port,
        network=args.docker_network,
        pause_image=args.pod_infra_container_image,
        cluster=args.cluster_name,
        node_labels=labels,
        taints=taints,
        status_update_frequency=frequency,
        lease_duration_seconds=args.node_lease_duration_seconds,
        max_pods=args.max_pods,
        runtime_endpoint=args.container_runtime_endpoint,
    )
    return args, config
