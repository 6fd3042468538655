"""Pod workers: sync every pod bound to this node with the runtime, one pod at a time per key.

The key is the pod's uid. `sync(uid)` is level-triggered: it reads the pod from the cache
and the pod's containers from the runtime, decides (`podactions`), acts, and writes the
status (`podstatus`) through `pods/<name>/status` when it changed. A terminating pod is
stopped with its grace period and then deleted for good; a pod that is gone from the API has
its containers removed. It touches the apiserver (pod status, pod deletion) and the runtime.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubelet.backoff import Backoff
from kubelet.containerspec import (
    ContainerConfigError,
    PullPolicy,
    container_config,
    pull_policy,
    sandbox_config,
    termination_grace,
    unsupported_features,
)
from kubelet.envvars import referenced_configmaps
from kubelet.images import ImageManager
from kubelet.podactions import ContainerToStart, PodActions, compute_pod_actions
from kubelet.podstate import PodRuntimeState, Waiting, pod_state
from kubelet.podstatus import compute_pod_status
from kubelet.prober import ProbeManager
from kubelet.runtime import ContainerRuntimeError, Runtime, RuntimeContainer
from kubelite.client import ApiClient, ApiError
from kubelite.events import EventRecorder
from kubelite.objects import Object, is_terminating, now_rfc3339
from kubelite.resources import CONFIGMAPS, PODS
from kubelite.workqueue import ItemExponentialBackoff, WorkQueue, run_workers

log = logging.getLogger(__name__)


CONFIG_RETRY_SECONDS = 10.0

# waiting reason -> (event type, event reason, message template)
_WAITING_EVENTS = {
    "ErrImagePull": ("Warning", "Failed", "{}"),
    "ImagePullBackOff": ("Normal", "BackOff", "{}"),
    "ErrImageNeverPull": ("Warning", "ErrImageNeverPull", "{}"),
    "CrashLoopBackOff": ("Warning", "BackOff", "Back-off restarting failed container {name}"),
}


@dataclass(frozen=True)
class PodWorkerSettings:
    node_name: str
    node_ip: str
    cluster: str
    network: str
    pause_image: str
    workers: int = 8
    resync_period: float = 30.0


@dataclass
class _Written:
    status: dict[str, Any]
    from_version: str
    to_version: str


def _pod_name(pod: Object) -> str:
    m = pod["metadata"]
    return f"{m.get('namespace', 'default')}/{m['name']}"


def _min(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


class PodWorkers:
    def __init__(
        self,
        client: ApiClient,
        runtime: Runtime,
        settings: PodWorkerSettings,
        clock: Callable[[], float] = time.time,
        events: EventRecorder | None = None,
    ):
        self.client = client
        self.runtime = runtime
        self.settings = settings
        self.clock = clock
        self.events = events
        self.queue = WorkQueue(backoff=ItemExponentialBackoff(base=0.5, cap=30.0))
        self.pods: dict[str, Object] = {}
        self.crash_backoff = Backoff()
        self.sandbox_backoff = Backoff()
        self.images = ImageManager(runtime, clock)
        self.prober = ProbeManager(runtime, self.queue.add)
        self._written: dict[str, _Written] = {}
        self._sandbox_errors: dict[str, str] = {}
        self._warned_unsupported: set[str] = set()

    # --- events -----------------------------------------------------------------------------

    def handle_pod_event(self, event_type: str, pod: Object, old: Object | None) -> None:
        """Informer handler: remember the pod by uid and queue it."""
        uid = pod["metadata"]["uid"]
        if event_type == "DELETED":
            self.pods.pop(uid, None)
        else:
            self.pods[uid] = pod
            old_uid = (old or {}).get("metadata", {}).get("uid")
            if old_uid and old_uid != uid:  # same name, new pod: the old one is gone
                self.pods.pop(old_uid, None)
                self.queue.add(old_uid)
        self.queue.add(uid)

    # --- running ----------------------------------------------------------------------------

    async def run(self, pods_synced: asyncio.Event) -> None:
        """Sync pods once the pod cache is complete (so no live pod is taken for an orphan)."""
        await pods_synced.wait()
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(run_workers(self.queue, self.sync, self.settings.workers, name="kubelet"))
                tg.create_task(self._resync())
        finally:
            self.queue.shutdown()
            await self.prober.stop()

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.settings.resync_period)
            for uid in list(self.pods):
                self.queue.add(uid)

    # --- sync -------------------------------------------------------------------------------

    async def _observe(self, uid: str) -> PodRuntimeState:
        return pod_state(uid, await self.runtime.list_containers(pod_uid=uid))

    async def sync(self, uid: str) -> None:
        pod = self.pods.get(uid)
        state = await self._observe(uid)
        if pod is None or pod.get("spec", {}).get("nodeName") != self.settings.node_name:
            await self._remove_orphan(uid, state)
            return
        if is_terminating(pod):
            await self._terminate(pod, state)
            return

        if uid not in self._warned_unsupported:
            self._warned_unsupported.add(uid)
            for feature in unsupported_features(pod):
                log.warning("pod %s: %s is not supported by kubelite yet; ignored", _pod_name(pod), feature)
                await self._event(
                    pod, "Warning", "Unsupported", f"{feature} is not supported by kubelite yet"
                )
        actions = compute_pod_actions(
            pod, state, self.crash_backoff, self.clock(), self.prober.liveness_failed()
        )
        # Why containers wait is decided afresh by every sync: a reason lasts while it holds.
        waiting = dict(actions.waiting)
        requeue = actions.requeue_after
        if not actions.empty:
            requeue = _min(requeue, await self._execute(pod, state, actions, waiting))
            state = await self._observe(uid)

        self.prober.update_pod(pod, state)
        status = compute_pod_status(
            pod,
            state,
            waiting,
            self.prober.readiness(),
            self.prober.started(),
            self.settings.node_ip,
            now_rfc3339(),
        )
        if await self._write_status(pod, status):
            await self._report_waiting(pod, status)
        if requeue is not None:
            self.queue.add_after(uid, requeue)

    async def _execute(
        self, pod: Object, state: PodRuntimeState, actions: PodActions, waiting: dict[str, Waiting]
    ) -> float | None:
        """Carry out the actions; return when to sync again (None: when something changes)."""
        grace = termination_grace(pod)
        requeue: float | None = None
        if actions.kill_pod:
            log.info("pod %s: stopping all containers", _pod_name(pod))
            await self._stop_all(state.running(), lambda _c: grace)
        for cid, why in actions.kill.items():
            log.info("pod %s: %s", _pod_name(pod), why)
            await self._event(pod, "Normal", "Killing", why)
            await self.runtime.stop_container(cid, grace)
            requeue = 0.0
        sandbox = state.ready_sandbox
        sandbox_id, pod_ip = (sandbox.id, sandbox.ip) if sandbox else ("", "")
        if actions.create_sandbox:
            sandbox_id, pod_ip, delay = await self._create_sandbox(pod, actions.sandbox_attempt)
            if not sandbox_id:
                why = self._sandbox_errors.get(pod["metadata"]["uid"], "waiting for the pod sandbox")
                for start in actions.start:
                    waiting.setdefault(start.name, Waiting("ContainerCreating", why))
                return _min(requeue, delay)
        for start in actions.start:
            requeue = _min(requeue, await self._start_container(pod, start, sandbox_id, pod_ip, waiting))
        for cid in actions.remove:
            await self.runtime.remove_container(cid)
        return requeue

    async def _create_sandbox(self, pod: Object, attempt: int) -> tuple[str, str, float | None]:
        """Run the pod's sandbox; on failure ('', '', when to retry)."""
        uid = pod["metadata"]["uid"]
        key = f"{uid}/sandbox"
        now = self.clock()
        remaining = self.sandbox_backoff.remaining_since_update(key, now)
        if remaining > 0:
            return "", "", remaining
        s = self.settings
        problem = (await self.images.ensure(uid, s.pause_image, PullPolicy.IF_NOT_PRESENT)).waiting
        sandbox_id = ""
        if problem is None:
            config = sandbox_config(pod, s.pause_image, s.network, s.node_name, s.cluster, attempt)
            try:
                sandbox_id = await self.runtime.run_sandbox(config)
            except ContainerRuntimeError as e:
                problem = Waiting("FailedCreatePodSandBox", str(e))
        if problem is None:
            created = (await self._observe(uid)).sandbox
            if created is not None and created.id == sandbox_id and created.ip:
                log.info("pod %s: sandbox running, pod IP %s", _pod_name(pod), created.ip)
                self._sandbox_errors.pop(uid, None)
                return sandbox_id, created.ip, None
            problem = Waiting("FailedCreatePodSandBox", f"sandbox has no address on network {s.network}")
        log.warning("pod %s: failed to create pod sandbox: %s", _pod_name(pod), problem.message)
        self._sandbox_errors[uid] = f"failed to create pod sandbox: {problem.message}"
        await self._event(
            pod, "Warning", "FailedCreatePodSandBox", f"Failed to create pod sandbox: {problem.message}"
        )
        self.sandbox_backoff.next(key, now, now)
        return "", "", self.sandbox_backoff.delay(key)

    async def _start_container(
        self, pod: Object, start: ContainerToStart, sandbox_id: str, pod_ip: str, waiting: dict[str, Waiting]
    ) -> float | None:
        uid = pod["metadata"]["uid"]
        container = next(c for c in pod["spec"]["containers"] if c["name"] == start.name)
        image = container.get("image", "")
        outcome = await self.images.ensure(uid, image, pull_policy(container))
        if outcome.waiting is not None:
            waiting[start.name] = outcome.waiting
            return self.images.retry_after(uid, image) or None
        if outcome.pulled:
            await self._event(pod, "Normal", "Pulled", f'Successfully pulled image "{image}"')
        else:
            await self._event(
                pod, "Normal", "Pulled", f'Container image "{image}" already present on machine'
            )
        s = self.settings
        try:
            configmaps = await self._configmaps(pod, container)
            config = container_config(
                pod,
                container,
                sandbox_id,
                start.attempt,
                s.node_name,
                s.cluster,
                s.node_ip,
                pod_ip,
                configmaps,
            )
        except ContainerConfigError as e:
            waiting[start.name] = Waiting("CreateContainerConfigError", str(e))
            return CONFIG_RETRY_SECONDS  # what it lacks (a ConfigMap) may appear at any time
        try:
            cid = await self.runtime.create_container(config)
        except ContainerRuntimeError as e:
            log.warning("pod %s: cannot create container %s: %s", _pod_name(pod), start.name, e)
            waiting[start.name] = Waiting("CreateContainerError", str(e))
            return CONFIG_RETRY_SECONDS
        try:
            await self.runtime.start_container(cid)
        except ContainerRuntimeError as e:
            log.warning("pod %s: cannot start container %s: %s", _pod_name(pod), start.name, e)
            waiting[start.name] = Waiting("RunContainerError", str(e))
            return 0.0
        waiting.pop(start.name, None)
        log.info("pod %s: started container %s (attempt %d)", _pod_name(pod), start.name, start.attempt)
        await self._event(pod, "Normal", "Created", f"Created container: {start.name}")
        await self._event(pod, "Normal", "Started", f"Started container {start.name}")
        return None

    async def _configmaps(self, pod: Object, container: Object) -> dict[str, Object | None]:
        """The ConfigMaps the container's env reads, None for those that do not exist."""
        namespace = pod["metadata"].get("namespace", "default")
        found: dict[str, Object | None] = {}
        for name in sorted(referenced_configmaps(container)):
            try:
                found[name] = await self.client.get(CONFIGMAPS, name, namespace)
            except ApiError as e:
                if not e.not_found:
                    raise ContainerConfigError(f'cannot read configmap "{name}": {e}') from e
                found[name] = None
        return found

    async def _stop_all(
        self, containers: list[RuntimeContainer], grace_of: Callable[[RuntimeContainer], int]
    ) -> None:
        """Stop app containers in parallel, then the sandboxes (which hold the network)."""

        async def stop(c: RuntimeContainer) -> None:
            try:
                await self.runtime.stop_container(c.id, grace_of(c))
            except ContainerRuntimeError as e:
                log.warning("cannot stop container %s: %s", c.name, e)

        apps = [c for c in containers if c.identity is None or not c.identity.is_sandbox]
        sandboxes = [c for c in containers if c.identity is not None and c.identity.is_sandbox]
        await asyncio.gather(*(stop(c) for c in apps))
        await asyncio.gather(*(stop(c) for c in sandboxes))

    async def _remove_all(self, state: PodRuntimeState, grace_of: Callable[[RuntimeContainer], int]) -> None:
        await self._stop_all(state.running(), grace_of)
        for c in state.all():
            await self.runtime.remove_container(c.id)

    async def _terminate(self, pod: Object, state: PodRuntimeState) -> None:
        """Graceful deletion: stop with the grace period, remove, then delete the pod for good."""
        uid = pod["metadata"]["uid"]
        self.prober.forget_pod(uid)
        if not state.empty:
            grace = termination_grace(pod)
            log.info("pod %s: terminating (grace period %ds)", _pod_name(pod), grace)
            for c in state.running():
                if c.identity is not None and not c.identity.is_sandbox:
                    await self._event(
                        pod, "Normal", "Killing", f"Stopping container {c.identity.container_name}"
                    )
            await self._remove_all(state, lambda _c: grace)
        m = pod["metadata"]
        try:
            await self.client.delete(
                PODS, m["name"], m.get("namespace"), grace_period_seconds=0, preconditions={"uid": uid}
            )
            log.info("pod %s: deleted", _pod_name(pod))
        except ApiError as e:
            if not (e.not_found or e.code == 409):
                raise
        self._forget(uid)

    async def _remove_orphan(self, uid: str, state: PodRuntimeState) -> None:
        if not state.empty:
            ident = next((c.identity for c in state.all() if c.identity), None)
            where = f"{ident.namespace}/{ident.pod_name}" if ident else uid
            log.info("pod %s (uid %s) is no longer bound here: removing its containers", where, uid)
            await self._remove_all(state, lambda c: c.identity.grace_seconds if c.identity else 0)
        self._forget(uid)

    def _forget(self, uid: str) -> None:
        self.prober.forget_pod(uid)
        self._written.pop(uid, None)
        self._sandbox_errors.pop(uid, None)
        self._warned_unsupported.discard(uid)
        self.crash_backoff.forget_prefix(f"{uid}/")
        self.sandbox_backoff.forget_prefix(f"{uid}/")
        self.images.forget_pod(uid)

    async def _event(self, pod: Object, event_type: str, reason: str, message: str) -> None:
        if self.events is not None:
            await self.events.record(pod, event_type, reason, message)

    async def _report_waiting(self, pod: Object, status: dict[str, Any]) -> None:
        """One event per container entering a new waiting reason (not per sync)."""
        old = {cs.get("name"): cs for cs in (pod.get("status") or {}).get("containerStatuses") or []}
        for cs in status.get("containerStatuses") or []:
            waiting = cs["state"].get("waiting")
            if not waiting or waiting.get("reason") in (None, "ContainerCreating"):
                continue
            before = (old.get(cs["name"]) or {}).get("state", {}).get("waiting") or {}
            if before.get("reason") == waiting["reason"]:
                continue
            event_type, reason, message = _WAITING_EVENTS.get(
                waiting["reason"], ("Warning", "Failed", "Error: {}")
            )
            text = message.format(waiting.get("message") or waiting["reason"], name=cs["name"])
            await self._event(pod, event_type, reason, text)

    async def _write_status(self, pod: Object, status: dict[str, Any]) -> bool:
        """PUT pods/<name>/status unless the cache or our last write already says the same.

        True when this call wrote it.
        """
        uid = pod["metadata"]["uid"]
        if status == pod.get("status"):
            return False
        version = pod["metadata"].get("resourceVersion", "")
        last = self._written.get(uid)
        if last and last.status == status and version in (last.from_version, last.to_version):
            return False
        body = {**pod, "apiVersion": "v1", "kind": "Pod", "status": status}
        try:
            updated = await self.client.update(PODS, body, subresource="status")
        except ApiError as e:
            if e.not_found:
                return False
            if e.conflict:
                log.debug("pod %s: status write conflicted; syncing again", _pod_name(pod))
                self.queue.add_after(uid, 0.5)
                return False
            raise
        self._written[uid] = _Written(status, version, updated.get("metadata", {}).get("resourceVersion", ""))
        log.debug("pod %s: status written (%s)", _pod_name(pod), status.get("phase"))
        return True
