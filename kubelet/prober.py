"""Liveness, readiness and startup probes: one worker task per running container and probe.

`ProbeCounter` is the pure part (thresholds over consecutive results). `ProbeManager` owns the
worker tasks, starts them for running containers that declare probes, cancels them when the
container goes, and calls back when a result changes so the pod is synced again. Probes reach
the pod over the network (httpGet, tcpSocket) or run in the container (exec, via the runtime).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from kubelet.podstate import PodRuntimeState
from kubelet.runtime import ContainerRuntimeError, ContainerState, Runtime, RuntimeContainer
from kubelite.objects import Object, parse_rfc3339

log = logging.getLogger(__name__)


class ProbeType(enum.Enum):
    LIVENESS = "livenessProbe"
    READINESS = "readinessProbe"
    STARTUP = "startupProbe"


@dataclass(frozen=True)
class ProbeSettings:
    initial_delay: float = 0
    period: float = 10
    timeout: float = 1
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def of(cls, probe: Object) -> ProbeSettings:
        return cls(
            initial_delay=max(float(probe.get("initialDelaySeconds") or 0), 0),
            period=max(float(probe.get("periodSeconds") or 10), 1),
            timeout=max(float(probe.get("timeoutSeconds") or 1), 1),
            success_threshold=max(int(probe.get("successThreshold") or 1), 1),
            failure_threshold=max(int(probe.get("failureThreshold") or 3), 1),
        )


class ProbeCounter:
    """A probe's result after thresholds: it flips only after enough consecutive outcomes."""

    def __init__(self, settings: ProbeSettings, initial: bool | None):
        self.settings = settings
        self.result = initial
        self._successes = 0
        self._failures = 0

    def observe(self, success: bool) -> bool:
        """Record one outcome; True when the result changed."""
        if success:
            self._successes += 1
            self._failures = 0
            new = True if self._successes >= self.settings.success_threshold else self.result
        else:
            self._failures += 1
            self._successes = 0
            new = False if self._failures >= self.settings.failure_threshold else self.result
        changed = new != self.result
        self.result = new
        return changed


def initial_result(kind: ProbeType) -> bool | None:
    """Before any probe: not ready, alive, not started (Kubernetes' initial values)."""
    return {ProbeType.READINESS: False, ProbeType.LIVENESS: True, ProbeType.STARTUP: None}[kind]


def _reported(pod: Object, name: str, container_id: str, kind: ProbeType) -> bool | None:
    """The result the pod's status already reports for this very container, else the initial one.

    A restarted kubelet thus keeps a ready container ready instead of flapping it to not-ready.
    """
    field = {ProbeType.READINESS: "ready", ProbeType.STARTUP: "started"}.get(kind)
    for cs in pod.get("status", {}).get("containerStatuses") or []:
        same = cs.get("name") == name and cs.get("containerID") == f"docker://{container_id}"
        if field and same and cs.get(field) is True:
            return True
    return initial_result(kind)


def resolve_port(container: Object, port: Any) -> int:
    """A probe's port, by number or by the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"unknown port {port!r}")


_Key = tuple[str, ProbeType]


class ProbeManager:
    def __init__(self, runtime: Runtime, on_change: Callable[[str], None]):
        self.runtime = runtime
        self.on_change = on_change
        self._tasks: dict[_Key, asyncio.Task[None]] = {}
        self._pod_of: dict[str, str] = {}
        self._results: dict[_Key, bool | None] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"User-Agent": "kube-probe/1.32"})
        return self._session

    def readiness(self) -> dict[str, bool]:
        return {cid: bool(r) for (cid, kind), r in self._results.items() if kind is ProbeType.READINESS}

    def started(self) -> dict[str, bool]:
        return {cid: bool(r) for (cid, kind), r in self._results.items() if kind is ProbeType.STARTUP}

    def liveness_failed(self) -> frozenset[str]:
        return frozenset(
            cid for (cid, kind), r in self._results.items() if kind is ProbeType.LIVENESS and r is False
        )

    def update_pod(self, pod: Object, state: PodRuntimeState) -> None:
        """Probe the pod's running containers; stop probing containers that are gone."""
        uid = pod["metadata"]["uid"]
        wanted: dict[_Key, tuple[Object, RuntimeContainer]] = {}
        for container in pod.get("spec", {}).get("containers") or []:
            latest = state.latest(container["name"])
            if latest is None or latest.state is not ContainerState.RUNNING:
                continue
            for kind in ProbeType:
                if container.get(kind.value):
                    wanted[(latest.id, kind)] = (container, latest)
        for key in [k for k in self._owned(uid) if k not in wanted]:
            self._stop(key)
        for key, (container, running) in wanted.items():
            if key not in self._tasks and key not in self._results:
                self._pod_of[key[0]] = uid
                self._results[key] = _reported(pod, container["name"], running.id, key[1])
                if key[1] is ProbeType.STARTUP and self._results[key]:
                    continue  # started before a kubelet restart: nothing left to probe
                self._tasks[key] = asyncio.get_running_loop().create_task(
                    self._work(uid, pod, container, running, state.pod_ip, key[1]),
                    name=f"probe-{key[1].name.lower()}-{container['name']}",
                )

    def _owned(self, uid: str) -> list[_Key]:
        return [k for k in set(self._tasks) | set(self._results) if self._pod_of.get(k[0]) == uid]

    def _stop(self, key: _Key) -> None:
        """Cancel a worker; it is awaited by `stop` if it has not finished by then."""
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)
        self._results.pop(key, None)
        if not any(k[0] == key[0] for k in set(self._tasks) | set(self._results)):
            self._pod_of.pop(key[0], None)

    def forget_pod(self, uid: str) -> None:
        for key in self._owned(uid):
            self._stop(key)

    async def stop(self) -> None:
        tasks = [*self._tasks.values(), *self._stopping]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()

    async def _work(
        self,
        uid: str,
        pod: Object,
        container: Object,
        running: RuntimeContainer,
        pod_ip: str,
        kind: ProbeType,
    ) -> None:
        key = (running.id, kind)
        settings = ProbeSettings.of(container[kind.value])
        counter = ProbeCounter(settings, initial_result(kind))
        try:
            started = parse_rfc3339(running.started_at).timestamp() if running.started_at else time.time()
            await asyncio.sleep(max(0.0, started + settings.initial_delay - time.time()))
            while True:
                gated = kind is not ProbeType.STARTUP and container.get("startupProbe")
                if not gated or self._results.get((running.id, ProbeType.STARTUP)):
                    ok = await self._probe(
                        container, container[kind.value], running, pod_ip, settings.timeout
                    )
                    if counter.observe(ok) and key in self._results:
                        self._results[key] = counter.result
                        log.info(
                            "%s probe of %s/%s %s is now %s",
                            kind.name.lower(),
                            pod["metadata"].get("namespace"),
                            pod["metadata"]["name"],
                            container["name"],
                            "success" if counter.result else "failure",
                        )
                        self.on_change(uid)
                    if kind is ProbeType.STARTUP and counter.result:
                        return  # a startup probe stops once it succeeded
                await asyncio.sleep(settings.period)
        finally:
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]

    async def _probe(
        self, container: Object, probe: Object, running: RuntimeContainer, pod_ip: str, timeout: float
    ) -> bool:
        try:
            if "exec" in probe:
                command = [str(a) for a in probe["exec"].get("command") or []]
                result = await self.runtime.exec(running.id, command, timeout)
                return result.exit_code == 0
            if "httpGet" in probe:
                return await self._http_get(container, probe["httpGet"], pod_ip, timeout)
            if "tcpSocket" in probe:
                spec = probe["tcpSocket"]
                host = spec.get("host") or pod_ip
                port = resolve_port(container, spec.get("port"))
                async with asyncio.timeout(timeout):
                    _, writer = await asyncio.open_connection(host, port)
                writer.close()
                await writer.wait_closed()
                return True
            log.warning("probe of container %s has no supported handler", container["name"])
            return False
        except (OSError, TimeoutError, ValueError, aiohttp.ClientError, ContainerRuntimeError) as e:
            log.debug("probe of container %s failed: %r", container["name"], e)
            return False

    async def _http_get(self, container: Object, spec: Object, pod_ip: str, timeout: float) -> bool:
        scheme = (spec.get("scheme") or "HTTP").lower()
        host = spec.get("host") or pod_ip
        port = resolve_port(container, spec.get("port"))
        path = spec.get("path") or "/"
        if not path.startswith("/"):
            path = "/" + path
        headers = {h["name"]: h.get("value", "") for h in spec.get("httpHeaders") or [] if h.get("name")}
        url = f"{scheme}://{host}:{port}{path}"
        async with self._http().get(
            url, headers=headers, ssl=False, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            await resp.read()
            return 200 <= resp.status < 400
