"""The `kubelite` command: build images, bring a cluster up or down, write a kubeconfig."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from kubelite import kubeconfig
from kubelite.duration import parse_duration


def cmd_images(args: argparse.Namespace) -> int:
    from kubelite.images import build_images

    for name, ref in build_images(force=args.force).items():
        print(f"{name}: {ref}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from kubelite.localcluster import ClusterSpec, LocalCluster

    if not args.skip_images:
        from kubelite.images import build_images

        build_images()
    spec = ClusterSpec(
        name=args.name,
        nodes=args.nodes,
        api_port=args.api_port,
        etcd_ports=tuple(args.etcd_ports),
        etcd_peer_ports=tuple(args.etcd_peer_ports),
        first_node_address=args.first_node_address,
        controller_managers=args.controller_managers,
        pod_eviction_timeout=args.pod_eviction_timeout,
    )
    cluster = LocalCluster(spec)
    try:
        cluster.up(timeout=args.timeout)
    except BaseException:
        if not args.keep_on_failure:
            cluster.down(keep_state=True)
        raise
    print(f"try: kubectl --context {spec.name} get nodes")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from kubelite.localcluster import LocalCluster, down_exit_code

    try:
        cluster = LocalCluster.load(args.name)
    except FileNotFoundError:
        print(f"no cluster named {args.name!r} is running", file=sys.stderr)
        return 1
    return down_exit_code(cluster.down(keep_state=args.keep_state))


def cmd_compose(args: argparse.Namespace) -> int:
    from kubelite.compose import ComposeCluster
    from kubelite.localcluster import down_exit_code

    cluster = ComposeCluster(project=args.project_name)
    if args.action == "up":
        if not args.skip_images:
            from kubelite.images import build_images

            build_images()
        cluster.up(timeout=args.timeout)
        print(f"try: kubectl --context {args.project_name} get nodes")
        return 0
    return down_exit_code(cluster.down())


def cmd_kubeconfig(args: argparse.Namespace) -> int:
    path = kubeconfig.write_context(args.name, args.server)
    print(f"context {args.name} ({args.server}) written to {path}")
    return 0


def port_list(text: str) -> list[int]:
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ports, got {text!r}") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubelite", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    images = sub.add_parser("images", help="build every image the cluster and the tests need")
    images.add_argument("--force", action="store_true", help="rebuild even if the images exist")
    images.set_defaults(func=cmd_images)

    up = sub.add_parser("up", help="run a cluster as local processes")
    up.add_argument("--name", default="kubelite-local", help="cluster name: state dir, network, context")
    up.add_argument("--nodes", type=int, default=2, help="how many nodes (kubelet + proxy each)")
    up.add_argument("--api-port", type=int, default=6443, help="port of the apiserver on 127.0.0.1")
    up.add_argument(
        "--etcd-ports",
        type=port_list,
        default=[2379, 22379, 32379],
        help="client ports, one etcdlite member each",
    )
    up.add_argument(
        "--etcd-peer-ports",
        type=port_list,
        default=[2380, 22380, 32380],
        help="peer ports, one for each client port",
    )
    up.add_argument("--first-node-address", default="127.0.0.2", help="node i listens on this address + i")
    up.add_argument(
        "--controller-managers", type=int, choices=range(1, 10), default=2, metavar="N",
        help="how many controller-managers (1-9): one leads on a Lease, the others stand by to take over",
    )  # fmt: skip
    up.add_argument("--timeout", type=float, default=120, help="seconds to wait for Ready nodes")
    up.add_argument(
        "--pod-eviction-timeout", type=parse_duration, default=300.0,
        help="how long pods stay on a failed node before they are evicted (the apiserver's default "
        "not-ready/unreachable tolerationSeconds), e.g. 30s or 5m",
    )  # fmt: skip
    up.add_argument("--skip-images", action="store_true", help="do not check or build images")
    up.add_argument("--keep-on-failure", action="store_true", help="leave processes running to debug")
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="stop a local cluster and remove its containers and network")
    down.add_argument("--name", default="kubelite-local", help="the cluster to stop")
    down.add_argument("--keep-state", action="store_true", help="keep data and logs")
    down.set_defaults(func=cmd_down)

    compose = sub.add_parser("compose", help="run the cluster as containers with docker compose")
    compose.add_argument("action", choices=["up", "down"], help="start or remove the cluster")
    compose.add_argument(
        "--project-name", "-p", default="kubelite", help="compose project (and context) name"
    )
    compose.add_argument("--timeout", type=float, default=180, help="seconds to wait for Ready nodes")
    compose.add_argument("--skip-images", action="store_true", help="do not check or build images")
    compose.set_defaults(func=cmd_compose)

    kc = sub.add_parser("kubeconfig", help="write a kubeconfig context for a cluster")
    kc.add_argument("--name", default="kubelite", help="context (and cluster) name")
    kc.add_argument("--server", default="http://127.0.0.1:6443", help="the apiserver URL")
    kc.set_defaults(func=cmd_kubeconfig)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.func
    return command(args)


if __name__ == "__main__":
    sys.exit(main())
