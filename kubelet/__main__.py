"""`python -m kubelet`: the node agent process.

Checks the container runtime before anything else (a kubelet without Docker exits 1 with
the reason), then runs until SIGTERM/SIGINT and exits 0, leaving pod containers running.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from kubelet.config import KubeletConfig, parse_args
from kubelet.kubelet import Kubelet
from kubelet.runtime import Runtime
from kubelite.process import client_from_flags, exit_with, run, run_until_stopped, setup_logging

log = logging.getLogger("kubelet")


def make_runtime(config: KubeletConfig) -> Runtime:
    if config.runtime_endpoint.startswith("fake://"):
        from kubelet.fake_runtime import FakeRuntime

        return FakeRuntime(node=config.node_name, cluster=config.cluster, all_images_present=True)
    import docker

    from kubelet.docker_runtime import DockerRuntime

    if config.runtime_endpoint:
        client = docker.APIClient(base_url=config.runtime_endpoint, version="auto", max_pool_size=32)
        return DockerRuntime(config.node_name, config.cluster, client)
    return DockerRuntime(config.node_name, config.cluster)


def main(argv: list[str] | None = None) -> None:
    args, config = parse_args(argv)
    setup_logging(args.verbosity, "kubelet")
    try:
        runtime = make_runtime(config)
    except Exception as e:
        log.error("cannot reach the container runtime: %s", e)
        exit_with(1)

    async def amain(stop: asyncio.Event) -> None:
        try:
            await runtime.node_facts()
        except Exception as e:
            log.error("container runtime does not answer: %s", e)
            await runtime.close()
            sys.exit(1)
        client = client_from_flags(args, "kubelet/" + config.node_name)
        try:
            await run_until_stopped(stop, Kubelet(config, client, runtime).run())
        finally:
            await client.close()
            await runtime.close()
        log.info("kubelet stopped")

    run(amain)


if __name__ == "__main__":
    main()
