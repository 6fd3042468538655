"""The endpoints controller: keeps each Service's Endpoints equal to the pods it selects.

`desired_subsets` is the pure part (service + pods -> subsets); `EndpointsController` syncs
one service key at a time from informer caches, and writes only when something changed.
"""

from __future__ import annotations

import logging
from typing import Any

from controller.framework.context import ControllerContext, QueueController
from kubelite.client import ApiError
from kubelite.objects import (
    Object,
    is_pod_finished,
    is_pod_ready,
    is_terminating,
    key_of,
    labels_match,
    now_rfc3339,
    split_key,
)
from kubelite.resources import ENDPOINTS, PODS, SERVICES

log = logging.getLogger(__name__)

# Marks Endpoints this controller wrote, so it removes only those when their Service goes.
TRIGGER_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"


def resolve_target_port(service_port: Object, pod: Object) -> int | None:
    """The container port a service port reaches on pod; a named targetPort is looked up."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol", "TCP")
    for container in pod.get("spec", {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and port.get("protocol", "TCP") == protocol:
                return port.get("containerPort")
    return None


def desired_subsets(service: Object, pods: list[Object]) -> list[Object]:
    """Endpoints subsets for service: pods grouped by their resolved port set, ready or not."""
    selector = service.get("spec", {}).get("selector")
    ports = service.get("spec", {}).get("ports") or []
    groups: dict[tuple[tuple[str, int, str], ...], dict[str, list[Object]]] = {}
    for pod in sorted(pods, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"])):
        status = pod.get("status", {})
        if not labels_match(selector, pod["metadata"].get("labels")) or is_terminating(pod):
            continue
        if not status.get("podIP") or is_pod_finished(pod):
            continue
        resolved = []
        for sp in ports:
            number = resolve_target_port(sp, pod)
            if number is not None:
                resolved.append((sp.get("name", ""), number, sp.get("protocol", "TCP")))
        if not resolved:
            continue
        address: dict[str, Any] = {
            "ip": status["podIP"],
            "targetRef": {
                "kind": "Pod",
                "namespace": pod["metadata"].get("namespace"),
                "name": pod["metadata"]["name"],
                "uid": pod["metadata"].get("uid"),
            },
        }
        if pod.get("spec", {}).get("nodeName"):
            address["nodeName"] = pod["spec"]["nodeName"]
        group = groups.setdefault(tuple(resolved), {"addresses": [], "notReadyAddresses": []})
        group["addresses" if is_pod_ready(pod) else "notReadyAddresses"].append(address)
    subsets = []
    for resolved_ports, addrs in groups.items():
        subset: Object = {}
        if addrs["addresses"]:
            subset["addresses"] = addrs["addresses"]
        if addrs["notReadyAddresses"]:
            subset["notReadyAddresses"] = addrs["notReadyAddresses"]
        subset["ports"] = [
            {**({"name": name} if name else {}), "port": number, "protocol": protocol}
            for name, number, protocol in resolved_ports
        ]
        subsets.append(subset)
    return subsets


class EndpointsController(QueueController):
    name = "endpoints"

    def __init__(self, ctx: ControllerContext):
        super().__init__()
        self.client = ctx.client
        self.services = ctx.informer(SERVICES)
        self.pods = ctx.informer(PODS)
        self.endpoints = ctx.informer(ENDPOINTS)
        self.services.add_handler(lambda _t, svc, _old: self.queue.add(key_of(svc)))
        self.endpoints.add_handler(lambda _t, ep, _old: self.queue.add(key_of(ep)))
        self.pods.add_handler(self._on_pod)

    def _on_pod(self, _type: str, pod: Object, old: Object | None) -> None:
        """Enqueue every service that selects the pod now or selected it before."""
        namespace = pod["metadata"].get("namespace")
        label_sets = [pod["metadata"].get("labels")]
        if old is not None:
            label_sets.append(old["metadata"].get("labels"))
        for svc in self.services.list(namespace):
            selector = svc.get("spec", {}).get("selector")
            if any(labels_match(selector, labels) for labels in label_sets):
                self.queue.add(key_of(svc))

    async def sync(self, key: str) -> None:
        namespace, name = split_key(key)
        service = self.services.get(key)
        current = self.endpoints.get(key)
        if service is None:
            if current is not None and TRIGGER_ANNOTATION in (current["metadata"].get("annotations") or {}):
                try:
                    await self.client.delete(ENDPOINTS, name, namespace)
                except ApiError as exc:
                    if not exc.not_found:
                        raise
            return
        if not service.get("spec", {}).get("selector"):
            return  # a service without selector has user-managed endpoints
        pods = self.pods.list(namespace)
        subsets = desired_subsets(service, pods)
        labels = dict(service["metadata"].get("labels") or {})
        if (
            current is not None
            and current.get("subsets", []) == subsets
            and (current["metadata"].get("labels") or {}) == labels
        ):
            return
        body: Object = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "annotations": {TRIGGER_ANNOTATION: now_rfc3339()},
            },
            "subsets": subsets,
        }
        if current is None:
            try:
                await self.client.create(ENDPOINTS, body)
            except ApiError as exc:
                if not exc.already_exists:
                    raise
                self.queue.add(key)  # someone else made it; compare again with the cache
        else:
            body["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
            await self.client.update(ENDPOINTS, body)
        log.info("endpoints %s: %d subset(s)", key, len(subsets))
