"""What the workload integration tests share beyond the harness: a Deployment manifest, whether a
pod is available, and a watch that records every state a set of pods went through."""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any


def deployment(name: str, replicas: int, image: str = "kubelite/whoami:1.0", **spec: Any) -> str:
    body = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
            **spec,
        },
    }  # fmt: skip
    return json.dumps(body)


class PodWatch:
    """Every change to a label-selected set of pods, in order, from the Python client's watch: the
    state after each event is what the apiserver held at that revision."""

    def __init__(self, server: str, selector: str):
        import kubernetes

        config = kubernetes.client.Configuration()
        config.host = server
        self.api = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(config))
        self.selector = selector
        self.states: list[dict[str, dict]] = []
        self.pods: dict[str, dict] = {}
        self.watch = kubernetes.watch.Watch()
        self.start = ""
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with contextlib.suppress(Exception):
            for event in self.watch.stream(
                self.api.list_namespaced_pod, "default", label_selector=self.selector, timeout_seconds=60,
                resource_version=self.start,
            ):  # fmt: skip
                pod = self.api.api_client.sanitize_for_serialization(event["object"])
                name = pod["metadata"]["name"]
                if event["type"] == "DELETED":
                    self.pods.pop(name, None)
                else:
                    self.pods[name] = pod
                self.states.append(dict(self.pods))

    def __enter__(self) -> PodWatch:
        """List first, then watch from the list's version: every state seen is a whole one."""
        listed = self.api.list_namespaced_pod("default", label_selector=self.selector)
        for pod in listed.items:
            self.pods[pod.metadata.name] = self.api.api_client.sanitize_for_serialization(pod)
        self.states.append(dict(self.pods))
        self.start = listed.metadata.resource_version
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.watch.stop()
        self.thread.join(10)


def is_available(pod: dict) -> bool:
    ready = any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions") or []
    )
    return ready and not pod["metadata"].get("deletionTimestamp")
