"""The `Runtime` on a real Docker Engine, through the Docker SDK's low-level API.

It touches Docker only, and only containers labelled for this kubelet's node and cluster.
SDK calls block, so each runs on its own daemon thread: the event loop stays free, and a
long Docker call (a pull, a stop) never holds up process exit on SIGTERM. Stops are a
signal followed by short waits, so a cancelled stop leaves no thread behind for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import requests

from kubelet import labels as lbl
from kubelet.containerspec import split_image
from kubelet.runtime import (
    ContainerConfig,
    ContainerNotFoundError,
    ContainerRuntimeError,
    ContainerState,
    ExecResult,
    ImagePullError,
    NodeFacts,
    RuntimeContainer,
    SandboxConfig,
)
from kubelite.objects import parse_rfc3339

log = logging.getLogger(__name__)

T = TypeVar("T")

_STATES = {
    "created": ContainerState.CREATED,
    "running": ContainerState.RUNNING,
    "paused": ContainerState.RUNNING,
    "restarting": ContainerState.RUNNING,
    "exited": ContainerState.EXITED,
    "dead": ContainerState.EXITED,
    "removing": ContainerState.EXITED,
}
_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}
_MAX_PARALLEL_CALLS = 32


def rfc3339_seconds(timestamp: str | None) -> str:
    """Docker's nanosecond timestamps as Kubernetes writes them; Docker's zero time -> ''."""
    if not timestamp or timestamp.startswith("0001-01-01"):
        return ""
    try:
        parsed = parse_rfc3339(timestamp)
    except ValueError:
        return ""
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _explain(exc: Exception) -> str:
    if isinstance(exc, docker.errors.APIError):
        return str(exc.explanation or exc)
    return str(exc)


class DockerRuntime:
    def __init__(self, node: str, cluster: str, client: docker.APIClient | None = None):
        self.node = node
        self.cluster = cluster
        self._api = client or docker.from_env(max_pool_size=_MAX_PARALLEL_CALLS).api
        self._owner_filters = [f"{k}={v}" for k, v in lbl.owner_labels(node, cluster).items()]
        self._inspected: dict[str, tuple[str, RuntimeContainer]] = {}
        self._image_refs: dict[str, str] = {}
        self._slots = asyncio.Semaphore(_MAX_PARALLEL_CALLS)

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one blocking SDK call on a daemon thread and await its result."""
        async with self._slots:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[T] = loop.create_future()

            def settle(ok: bool, value: Any) -> None:
                if future.done():
                    return
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

            def target() -> None:
                try:
                    result = fn(*args, **kwargs)
                    outcome: tuple[bool, Any] = (True, result)
                except Exception as exc:
                    outcome = (False, exc)
                with contextlib.suppress(RuntimeError):  # the loop is gone: the process is exiting
                    loop.call_soon_threadsafe(settle, *outcome)

            threading.Thread(target=target, name="docker-call", daemon=True).start()
            return await future

    async def close(self) -> None:
        self._api.close()

    # --- node -------------------------------------------------------------------------------

    async def node_facts(self) -> NodeFacts:
        version = await self._call(self._api.version)
        info = await self._call(self._api.info)
        machine = (
            _read_first(["/etc/machine-id", "/var/lib/dbus/machine-id"])
            or info.get("ID", "").replace(":", "").lower()
        )
        return NodeFacts(
            runtime_version=f"docker://{version.get('Version', 'unknown')}",
            cpus=int(info.get("NCPU") or os.cpu_count() or 1),
            memory_bytes=int(info.get("MemTotal") or 0),
            os_image=info.get("OperatingSystem", ""),
            kernel_version=info.get("KernelVersion", ""),
            operating_system=info.get("OSType", "linux"),
            architecture=_ARCHITECTURES.get(info.get("Architecture", ""), info.get("Architecture", "")),
            machine_id=machine,
            boot_id=_read_first(["/proc/sys/kernel/random/boot_id"]),
        )

    async def ensure_network(self, name: str, labels: dict[str, str]) -> None:
        """Create the pod network as a bridge if no network of that name exists."""
        networks = await self._call(self._api.networks, names=[name])
        if any(n.get("Name") == name for n in networks):
            return
        try:
            await self._call(
                self._api.create_network, name, driver="bridge", labels=labels, check_duplicate=True
            )
            log.info("created docker network %s", name)
        except docker.errors.APIError as e:
            if e.status_code != 409:
                raise ContainerRuntimeError(f"cannot create docker network {name}: {_explain(e)}") from e

    # --- containers -------------------------------------------------------------------------

    async def list_containers(self, pod_uid: str | None = None) -> list[RuntimeContainer]:
        filters = list(self._owner_filters)
        if pod_uid:
            filters.append(f"{lbl.POD_UID}={pod_uid}")
        summaries = await self._call(self._api.containers, all=True, filters={"label": filters})
        out: list[RuntimeContainer] = []
        for summary in summaries:
            cid = summary["Id"]
            cached = self._inspected.get(cid)
            if cached and cached[0] == summary.get("State"):
                out.append(cached[1])
                continue
            container = await self._inspect(cid)
            if container is not None:
                self._inspected[cid] = (summary.get("State", ""), container)
                out.append(container)
        if pod_uid is None:
            seen = {c.id for c in out}
            for cid in [cid for cid in self._inspected if cid not in seen]:
                del self._inspected[cid]
        return out

    async def _inspect(self, cid: str) -> RuntimeContainer | None:
        try:
            info = await self._call(self._api.inspect_container, cid)
        except docker.errors.NotFound:
            return None
        state = info.get("State") or {}
        config = info.get("Config") or {}
        ip = ""
        for net in ((info.get("NetworkSettings") or {}).get("Networks") or {}).values():
            if net and net.get("IPAddress"):
                ip = net["IPAddress"]
                break
        return RuntimeContainer(
            id=info["Id"],
            name=info.get("Name", "").lstrip("/"),
            labels=config.get("Labels") or {},
            image=config.get("Image", ""),
            image_ref=await self._image_ref(info.get("Image", "")),
            state=_STATES.get(state.get("Status", ""), ContainerState.UNKNOWN),
            exit_code=int(state.get("ExitCode") or 0),
            created_at=rfc3339_seconds(info.get("Created")),
            started_at=rfc3339_seconds(state.get("StartedAt")),
            finished_at=rfc3339_seconds(state.get("FinishedAt")),
            error=state.get("Error") or "",
            oom_killed=bool(state.get("OOMKilled")),
            ip=ip,
        )

    async def _image_ref(self, image_id: str) -> str:
        """`docker-pullable://repo@digest` when the image came from a registry, else its id."""
        if not image_id:
            return ""
        if image_id not in self._image_refs:
            try:
                image = await self._call(self._api.inspect_image, image_id)
                digests = image.get("RepoDigests") or []
                self._image_refs[image_id] = f"docker-pullable://{digests[0]}" if digests else image_id
            except docker.errors.APIError:
                return image_id
        return self._image_refs[image_id]

    # --- images -----------------------------------------------------------------------------

    async def image_present(self, image: str) -> bool:
        try:
            await self._call(self._api.inspect_image, image)
            return True
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError as e:
            if e.status_code == 404:
                return False
            raise ContainerRuntimeError(_explain(e)) from e

    async def pull_image(self, image: str) -> None:
        repo, tag = split_image(image)

        def pull() -> None:
            for chunk in self._api.pull(repo, tag=tag, stream=True, decode=True):
                if isinstance(chunk, dict) and chunk.get("error"):
                    raise ImagePullError(str(chunk["error"]))

        try:
            await self._call(pull)
        except ImagePullError:
            raise
        except (docker.errors.APIError, requests.RequestException) as e:
            raise ImagePullError(_explain(e)) from e
        if not await self.image_present(image):
            raise ImagePullError(f"image {image} is not present after the pull")

    # --- lifecycle --------------------------------------------------------------------------

    async def run_sandbox(self, config: SandboxConfig) -> str:
        api = self._api
        host_config = api.create_host_config(network_mode=config.network, ipc_mode="shareable")
        networking = api.create_networking_config({config.network: api.create_endpoint_config()})
        try:
            created = await self._call(
                api.create_container,
                config.image,
                name=config.name,
                hostname=config.hostname,
                labels=config.labels,
                host_config=host_config,
                networking_config=networking,
                detach=True,
            )
        except docker.errors.APIError as e:
            raise ContainerRuntimeError(f"failed to create pod sandbox: {_explain(e)}") from e
        cid = created["Id"]
        try:
            await self._call(api.start, cid)
        except docker.errors.APIError as e:
            await self.remove_container(cid)
            raise ContainerRuntimeError(f"failed to start pod sandbox: {_explain(e)}") from e
        return cid

    async def create_container(self, config: ContainerConfig) -> str:
        api = self._api
        host_config = api.create_host_config(
            network_mode=f"container:{config.sandbox_id}",
            ipc_mode=f"container:{config.sandbox_id}",
            mem_limit=config.memory_limit,
            nano_cpus=config.nano_cpus,
            cpu_shares=config.cpu_shares,
            privileged=config.privileged,
        )
        try:
            created = await self._call(
                api.create_container,
                config.image,
                name=config.name,
                command=config.command,
                entrypoint=config.entrypoint,
                environment=[f"{k}={v}" for k, v in config.env.items()],
                working_dir=config.working_dir,
                user=config.user or "",
                labels=config.labels,
                tty=config.tty,
                stdin_open=config.stdin,
                host_config=host_config,
                detach=True,
            )
        except docker.errors.APIError as e:
            raise ContainerRuntimeError(_explain(e)) from e
        return created["Id"]

    async def start_container(self, container_id: str) -> None:
        try:
            await self._call(self._api.start, container_id)
        except docker.errors.NotFound as e:
            raise ContainerNotFoundError(_explain(e)) from e
        except docker.errors.APIError as e:
            raise ContainerRuntimeError(_explain(e)) from e

    async def stop_container(self, container_id: str, grace_seconds: int) -> None:
        api = self._api
        try:
            info = await self._call(api.inspect_container, container_id)
        except docker.errors.NotFound:
            return
        if not (info.get("State") or {}).get("Running"):
            return
        signal = (info.get("Config") or {}).get("StopSignal") or "SIGTERM"
        if grace_seconds > 0 and await self._kill(container_id, signal):
            deadline = time.monotonic() + grace_seconds
            while (remaining := deadline - time.monotonic()) > 0:
                if await self._wait_exit(container_id, min(1.0, remaining)):
                    return
        await self._kill(container_id, "SIGKILL")
        await self._wait_exit(container_id, 5.0)

    async def _kill(self, container_id: str, signal: str) -> bool:
        """Send a signal; False when the container is gone or no longer running."""
        try:
            await self._call(self._api.kill, container_id, signal=signal)
            return True
        except docker.errors.APIError:
            return False

    async def _wait_exit(self, container_id: str, timeout: float) -> bool:
        try:
            await self._call(self._api.wait, container_id, timeout=timeout)
            return True
        except docker.errors.NotFound:
            return True
        except (requests.RequestException, docker.errors.APIError):
            return False

    async def remove_container(self, container_id: str) -> None:
        try:
            await self._call(self._api.remove_container, container_id, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            if e.status_code != 409:  # 409: removal already in progress
                raise ContainerRuntimeError(_explain(e)) from e
        self._inspected.pop(container_id, None)

    async def exec(self, container_id: str, command: list[str], timeout: float) -> ExecResult:
        api = self._api

        def run() -> ExecResult:
            exec_id = api.exec_create(container_id, command, stdout=True, stderr=True)["Id"]
            output = api.exec_start(exec_id)
            code = api.exec_inspect(exec_id).get("ExitCode")
            return ExecResult(-1 if code is None else int(code), output or b"")

        try:
            async with asyncio.timeout(timeout):  # not wait_for: it can swallow a cancel on 3.11
                return await self._call(run)
        except TimeoutError:
            return ExecResult(-1, f"command timed out after {timeout}s".encode())
        except docker.errors.APIError as e:
            raise ContainerRuntimeError(_explain(e)) from e

    async def logs(
        self,
        container_id: str,
        *,
        tail: int | None = None,
        timestamps: bool = False,
        follow: bool = False,
        since: int | None = None,
    ) -> AsyncIterator[bytes]:
        kwargs: dict[str, Any] = {
            "stdout": True,
            "stderr": True,
            "stream": True,
            "follow": follow,
            "timestamps": timestamps,
            "tail": "all" if tail is None else max(tail, 0),
        }
        if since is not None:
            kwargs["since"] = since
        try:
            stream = await self._call(self._api.logs, container_id, **kwargs)
        except docker.errors.NotFound as e:
            raise ContainerNotFoundError(_explain(e)) from e
        except docker.errors.APIError as e:
            raise ContainerRuntimeError(_explain(e)) from e
        try:
            while (chunk := await self._call(next, stream, None)) is not None:
                yield chunk
        finally:
            stream.close()


def _read_first(paths: list[str]) -> str:
    for path in paths:
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text:
            return text
    return ""
