"""The harness the Deployment controller's tests share, and tests of its own rules.

`Cluster` runs the Deployment controller and the ReplicaSet controller (controller/replicaset.py)
on one fake API while the test plays scheduler and kubelet (`api.set_pods`, `api.finish_deletions`).
Nothing runs by itself: `step()` is one round of deployment sync, ReplicaSet syncs, kubelet, and
ReplicaSet syncs again (so that their status is current), and the clock moves one second.

`kubectl_rollout_status` is kubectl's decision in `rollout status` (COMPAT.md), so tests can say what
a user would see at each stage.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from controller.deployment import DeploymentController
from controller.deployment.hashing import POD_TEMPLATE_HASH_LABEL
from controller.deployment.util import REVISION_ANNOTATION, revision
from controller.replicaset import ReplicaSetController
from kubelite.client import JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH
from kubelite.objects import Object, controller_ref, is_pod_ready
from kubelite.resources import DEPLOYMENTS, EVENTS, REPLICASETS
from tests.fakeapi import FakeApi

Check = Callable[[], None]


class RolloutFailed(Exception):
    """kubectl rollout status gave up."""


def kubectl_rollout_status(d: Object) -> tuple[str, bool]:
    """(what `kubectl rollout status deployment/<name>` prints, whether it is done)."""
    name = d["metadata"]["name"]
    status = d.get("status") or {}
    if int(d["metadata"].get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return "Waiting for deployment spec update to be observed...", False
    for cond in status.get("conditions") or []:
        if cond["type"] == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            raise RolloutFailed(f'deployment "{name}" exceeded its progress deadline')
    replicas = int(d["spec"].get("replicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    waiting = f'Waiting for deployment "{name}" rollout to finish: '
    if updated < replicas:
        return f"{waiting}{updated} out of {replicas} new replicas have been updated...", False
    if total > updated:
        return f"{waiting}{total - updated} old replicas are pending termination...", False
    if available < updated:
        return f"{waiting}{available} of {updated} updated replicas are available...", False
    return f'deployment "{name}" successfully rolled out', True


def deployment(name: str = "web", replicas: int = 3, image: str = "nginx:1.25", **spec: Any) -> Object:
    annotations = spec.pop("annotations", None)
    obj: Object = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "nginx", "image": image}]},
            },
            **spec,
        },
    }
    if annotations:
        obj["metadata"]["annotations"] = annotations
    return obj


class Cluster:
    def __init__(self) -> None:
        self.api = FakeApi()
        ctx = self.api.context()
        self.dc = DeploymentController(ctx)
        self.dc.queue = self.api.work_queue()
        self.rsc = ReplicaSetController(ctx)
        self.rsc.queue = self.api.work_queue()

    # ------------------------------------------------------------------ reading

    def get(self, name: str = "web") -> Object:
        return self.api.get(DEPLOYMENTS, name)

    def replicasets(self) -> list[Object]:
        """Every ReplicaSet, lowest revision first."""
        return sorted(self.api.items(REPLICASETS), key=lambda rs: (revision(rs), rs["metadata"]["name"]))

    def rs(self, revision_: int) -> Object:
        return next(rs for rs in self.replicasets() if revision(rs) == revision_)

    def pods(self, **labels: str) -> list[Object]:
        """Pods that are not being deleted."""
        return self.api.live_pods(**labels)

    def available(self, **labels: str) -> int:
        return sum(1 for p in self.pods(**labels) if is_pod_ready(p))

    def events(self, reason: str | None = None) -> list[str]:
        """Event messages, in the order they were recorded."""
        events = sorted(self.api.items(EVENTS), key=lambda e: int(e["metadata"]["resourceVersion"]))
        return [e["message"] for e in events if reason is None or e["reason"] == reason]

    def status_line(self, name: str = "web") -> tuple[str, bool]:
        return kubectl_rollout_status(self.get(name))

    def condition(self, type_: str, name: str = "web") -> Object | None:
        return next((c for c in self.get(name)["status"].get("conditions") or [] if c["type"] == type_), None)

    def queued(self, queue: Any = None) -> set[str]:
        """Take every key off the Deployment controller's queue (or another's)."""
        queue = queue or self.dc.queue
        keys = set()
        while len(queue):
            key = self.api.run(queue.get())
            queue.done(key)
            keys.add(key)
        return keys

    # ------------------------------------------------------------------ writing

    def create(self, obj: Object) -> Object:
        return self.api.create(REPLICASETS if obj.get("kind") == "ReplicaSet" else DEPLOYMENTS, obj)

    def patch(self, patch: Any, name: str = "web", content_type: str = MERGE_PATCH) -> Object:
        return self.api.run(
            self.api.client.patch(DEPLOYMENTS, name, patch, "default", content_type=content_type)
        )

    def set_image(self, image: str, name: str = "web") -> Object:
        """What `kubectl set image deployment/web nginx=<image>` sends."""
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": image}]}}}}
        return self.patch(patch, name, STRATEGIC_MERGE_PATCH)

    def scale(self, replicas: int, name: str = "web") -> Object:
        return self.patch({"spec": {"replicas": replicas}}, name)

    def undo(self, to_revision: int = 0, name: str = "web") -> None:
        """What `kubectl rollout undo [--to-revision=N]` does: it finds the ReplicaSet of the revision
        itself and JSON-patches the Deployment's template and annotations (COMPAT.md)."""
        d = self.get(name)
        uid = d["metadata"]["uid"]
        owned = [rs for rs in self.api.items(REPLICASETS) if (controller_ref(rs) or {}).get("uid") == uid]
        revisions = sorted(revision(rs) for rs in owned)
        wanted = to_revision or revisions[-2]
        rs = next(rs for rs in owned if revision(rs) == wanted)
        template = copy.deepcopy(rs["spec"]["template"])
        del template["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL]
        skip = {
            "kubectl.kubernetes.io/last-applied-configuration",
            "deployment.kubernetes.io/revision",
            "deployment.kubernetes.io/revision-history",
            "deployment.kubernetes.io/desired-replicas",
            "deployment.kubernetes.io/max-replicas",
            "deprecated.deployment.rollback.to",
        }
        annotations = {k: v for k, v in rs["metadata"].get("annotations", {}).items() if k not in skip}
        annotations.update({k: v for k, v in d["metadata"].get("annotations", {}).items() if k in skip})
        patch = [
            {"op": "replace", "path": "/spec/template", "value": template},
            {"op": "replace", "path": "/metadata/annotations", "value": annotations},
        ]
        self.patch(patch, name, JSON_PATCH)

    # ------------------------------------------------------------------ driving

    def sync(self, name: str = "web") -> None:
        self.api.run(self.dc.sync(f"default/{name}"))

    def sync_replicasets(self, check: Check | None = None) -> None:
        for rs in sorted(self.api.items(REPLICASETS), key=lambda rs: rs["metadata"]["name"]):
            self.api.run(self.rsc.sync(f"default/{rs['metadata']['name']}"))
            if check:
                check()

    def kubelet(self, ready: bool = True, **labels: str) -> None:
        self.api.set_pods(ready=ready, **labels)
        self.api.finish_deletions()

    def step(
        self, check: Check | None = None, kubelet: Callable[[], None] | None = None, name: str = "web"
    ) -> None:
        self.sync(name)
        if check:
            check()
        self.sync_replicasets(check)
        (kubelet or self.kubelet)()
        self.sync_replicasets(check)
        if check:
            check()
        self.api.clock.advance(1)

    def roll(
        self,
        check: Check | None = None,
        kubelet: Callable[[], None] | None = None,
        name: str = "web",
        limit: int = 80,
    ) -> int:
        """Step until kubectl would say the rollout is done, and one step more (the controller cleans
        up history once it has written a complete status); how many steps it took."""
        for steps in range(1, limit + 1):
            self.step(check, kubelet, name)
            if self.status_line(name)[1]:
                self.step(check, kubelet, name)
                return steps
        raise AssertionError(f"not rolled out after {limit} steps: {self.status_line(name)[0]}")

    def stall_rollout(
        self, image: str = "nginx:does-not-exist", steps: int = 6, check: Check | None = None
    ) -> str:
        """Roll a new template (image) whose pods never become ready while the old ones stay ready, for
        `steps` steps (until nothing moves any more); the name of the stuck ReplicaSet."""
        [old] = self.replicasets()

        def kubelet() -> None:
            for rs in self.replicasets():
                ready = rs["metadata"]["name"] == old["metadata"]["name"]
                self.api.set_pods(
                    ready=ready,
                    **{POD_TEMPLATE_HASH_LABEL: rs["metadata"]["labels"][POD_TEMPLATE_HASH_LABEL]},
                )
            self.api.finish_deletions()

        self.set_image(image)
        for _ in range(steps):
            self.step(check, kubelet=kubelet)
        return self.replicasets()[-1]["metadata"]["name"]

    def revision(self, name: str = "web") -> str | None:
        return self.get(name)["metadata"].get("annotations", {}).get(REVISION_ANNOTATION)


# ---------------------------------------------------------------------------------- the harness's own rules


def status_of(**status: Any) -> Object:
    d = deployment(replicas=3)
    d["metadata"]["generation"] = status.pop("generation", 1)
    d["status"] = {"observedGeneration": 1, **status}
    return d


def test_kubectl_rollout_status_follows_kubectls_rules_in_order():
    assert (
        kubectl_rollout_status(status_of(generation=2))[0]
        == "Waiting for deployment spec update to be observed..."
    )
    assert kubectl_rollout_status(status_of(updatedReplicas=1, replicas=4))[0].endswith(
        "1 out of 3 new replicas have been updated..."
    )
    assert kubectl_rollout_status(status_of(updatedReplicas=3, replicas=4))[0].endswith(
        "1 old replicas are pending termination..."
    )
    assert kubectl_rollout_status(status_of(updatedReplicas=3, replicas=3, availableReplicas=2))[0].endswith(
        "2 of 3 updated replicas are available..."
    )
    assert kubectl_rollout_status(status_of(updatedReplicas=3, replicas=3, availableReplicas=3)) == (
        'deployment "web" successfully rolled out',
        True,
    )


def test_kubectl_rollout_status_gives_up_on_an_exceeded_deadline():
    stuck = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
    with pytest.raises(RolloutFailed, match="exceeded its progress deadline"):
        kubectl_rollout_status(status_of(conditions=[stuck]))


def test_a_step_runs_both_controllers_and_the_kubelet():
    c = Cluster()
    c.create(deployment(replicas=2))
    c.step()
    assert len(c.pods(app="web")) == 2
    assert c.available(app="web") == 2
    assert c.api.clock.now().second == 1
