"""`python -m kubelet.hollow --master URL --nodes 100`: many hollow nodes in one process.

A hollow node is the real kubelet (registration, lease, node status, pod informer, pod workers,
PLEG, status updates, its HTTP server) on the fake runtime, whose containers start at once and
never touch Docker, as Kubernetes' kubemark does. Running them in one process lets one machine
carry hundreds of nodes and thousands of pods against the real control plane, for scale tests
and benchmarks. Each node serves on its own port of --address; SIGTERM stops them all.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from kubelet.config import KubeletConfig
from kubelet.fake_runtime import FakeRuntime
from kubelet.kubelet import Kubelet
from kubelite import process
from kubelite.ports import free_port

log = logging.getLogger("hollow")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kubelet.hollow", description=__doc__.split("\n")[0])
    process.add_client_flags(parser)
    process.add_common_flags(parser)
    parser.add_argument("--nodes", type=process.positive, default=10, help="how many hollow nodes to run")
    parser.add_argument("--name-prefix", default="hollow-", help="node names are this plus a number")
    parser.add_argument("--address", default="127.0.0.1", help="address every node's kubelet server binds")
    parser.add_argument("--max-pods", type=int, default=110, help="pods each node can run")
    parser.add_argument(
        "--node-status-update-frequency", type=float, default=10.0, help="seconds between node status posts"
    )
    return parser.parse_args(argv)


def hollow_config(args: argparse.Namespace, index: int) -> KubeletConfig:
    name = f"{args.name_prefix}{index}"
    return KubeletConfig(
        node_name=name,
        node_ip=args.address,
        address=args.address,
        port=free_port(args.address),
        network=f"hollow-{name}",
        cluster="hollow",
        max_pods=args.max_pods,
        status_update_frequency=args.node_status_update_frequency,
        runtime_endpoint="fake://",
    )


async def main(args: argparse.Namespace, stop: asyncio.Event) -> None:
    # One client (one connection pool) per node, as separate kubelets have: a shared pool would be
    # filled by the nodes' long-lived pod watches and starve every other request.
    clients = []
    kubelets = []
    for i in range(args.nodes):
        config = hollow_config(args, i)
        client = process.client_from_flags(args, f"kubelet/{config.node_name}")
        clients.append(client)
        runtime = FakeRuntime(node=config.node_name, cluster=config.cluster, all_images_present=True)
        kubelets.append(Kubelet(config, client, runtime))
    log.info("starting %d hollow nodes", len(kubelets))
    try:
        await process.run_until_stopped(stop, *(k.run() for k in kubelets))
    finally:
        await asyncio.gather(*(c.close() for c in clients))
    log.info("hollow nodes stopped")


if __name__ == "__main__":
    arguments = parse_args()
    process.setup_logging(arguments.verbosity, "hollow")
    logging.getLogger("kubelet").setLevel(logging.WARNING if arguments.verbosity < 2 else logging.INFO)
    process.run(lambda stop: main(arguments, stop))
