"""The Kubelet: wires node registration, the pod informer, pod workers, PLEG and the HTTP server.

It owns every task it starts and cancels them on shutdown; the pods' containers keep running
(as with the real kubelet) and are found again by their labels on the next start.
"""

from __future__ import annotations

import asyncio
import logging

from kubelet import labels as lbl
from kubelet.config import KubeletConfig
from kubelet.node import NodeAgent
from kubelet.nodestatus import NodeSettings
from kubelet.pleg import PodLifecycleEventGenerator
from kubelet.podworkers import PodWorkers, PodWorkerSettings
from kubelet.runtime import Runtime
from kubelet.server import make_app, start_server
from kubelite.client import ApiClient
from kubelite.events import EventRecorder
from kubelite.informer import Informer
from kubelite.resources import PODS

log = logging.getLogger(__name__)


class Kubelet:
    def __init__(
        self, config: KubeletConfig, client: ApiClient, runtime: Runtime, relist_period: float = 1.0
    ):
        self.config = config
        self.client = client
        self.runtime = runtime
        self.workers = PodWorkers(
            client,
            runtime,
            PodWorkerSettings(
                node_name=config.node_name,
                node_ip=config.node_ip,
                cluster=config.cluster,
                network=config.network,
                pause_image=config.pause_image,
            ),
            events=EventRecorder(client, "kubelet", config.node_name),
        )
        self.informer = Informer(client, PODS, field_selector=f"spec.nodeName={config.node_name}")
        self.informer.add_handler(self.workers.handle_pod_event)
        self.pleg = PodLifecycleEventGenerator(runtime, self.workers.queue.add, period=relist_period)

    async def run(self) -> None:
        """Run until cancelled."""
        c = self.config
        facts = await self.runtime.node_facts()
        await self.runtime.ensure_network(c.network, {lbl.CLUSTER: c.cluster})
        runner = await start_server(
            make_app(self.runtime, lambda: list(self.workers.pods.values())), c.address, c.port
        )
        try:
            agent = NodeAgent(
                self.client,
                NodeSettings(
                    name=c.node_name,
                    ip=c.node_ip,
                    port=c.port,
                    labels=c.node_labels,
                    taints=c.taints,
                    max_pods=c.max_pods,
                    lease_duration_seconds=c.lease_duration_seconds,
                ),
                facts,
                c.status_update_frequency,
            )
            await agent.register()
            log.info("node %s (%s) registered; syncing its pods", c.node_name, c.node_ip)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.informer.run(), name="pod-informer")
                tg.create_task(agent.run_status_updates(), name="node-status")
                tg.create_task(agent.run_lease(), name="node-lease")
                tg.create_task(self.pleg.run(), name="pleg")
                tg.create_task(self.workers.run(self.informer.synced), name="pod-workers")
        finally:
            await runner.cleanup()
