"""Creating and deleting a controller's pods (Kubernetes' PodControl), with the events
`kubectl describe` shows: SuccessfulCreate / FailedCreate / SuccessfulDelete / FailedDelete.

`pod_from_template` is the pure part: a pod named `<owner>-<5 random chars>` by the apiserver, with
the template's labels, annotations and spec and the owner's controller reference.
"""

from __future__ import annotations

import copy
import logging

from kubelite.client import ApiClient, ApiError
from kubelite.events import EventRecorder
from kubelite.objects import Object
from kubelite.resources import PODS

log = logging.getLogger(__name__)


def pod_from_template(template: Object, owner: Object, owner_ref: Object) -> Object:
    meta = template.get("metadata") or {}
    pod_meta: Object = {
        "generateName": f"{owner['metadata']['name']}-",
        "namespace": owner["metadata"].get("namespace"),
        "labels": dict(meta.get("labels") or {}),
        "ownerReferences": [owner_ref],
    }
    if meta.get("annotations"):
        pod_meta["annotations"] = dict(meta["annotations"])
    if meta.get("finalizers"):
        pod_meta["finalizers"] = list(meta["finalizers"])
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_meta,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


class PodControl:
    def __init__(self, client: ApiClient, recorder: EventRecorder):
        self.client = client
        self.recorder = recorder

    async def create(self, template: Object, owner: Object, owner_ref: Object) -> Object | None:
        """Create one pod; None (and a FailedCreate event) if the apiserver refused it."""
        pod = pod_from_template(template, owner, owner_ref)
        try:
            created = await self.client.create(PODS, pod)
        except ApiError as exc:
            await self.recorder.record(
                owner, "Warning", "FailedCreate", f"Error creating: {exc.status.get('message', exc)}"
            )
            if exc.code == 403 or exc.code == 422:
                return None  # a terminating namespace or an invalid template: retrying cannot help
            raise
        await self.recorder.record(
            owner, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}"
        )
        return created

    async def delete(self, pod: Object, owner: Object) -> bool:
        """Delete one pod; False if it was already gone."""
        m = pod["metadata"]
        try:
            await self.client.delete(
                PODS, m["name"], m.get("namespace"), preconditions={"uid": m.get("uid", "")}
            )
        except ApiError as exc:
            if exc.not_found or exc.conflict:
                return False
            await self.recorder.record(
                owner, "Warning", "FailedDelete", f"Error deleting: {exc.status.get('message', exc)}"
            )
            raise
        await self.recorder.record(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {m['name']}")
        return True
