"""A `Runtime` in memory: records what it is asked and lets tests make containers exit.

Used by unit tests and by hollow nodes (a kubelet with this runtime carries pods without
Docker). Nothing here touches the network, the disk or Docker.

What a hollow container does (see `kubelet/simulated.py`): a container whose `command` + `args`
is a simple `sleep N`, `true`, `false` or `echo ...`, or a shell line `sh -c "..."` made of
`sleep N`, `exit N`, `true`, `false`, `echo ...` joined by `;` or `&&` (`$VAR` from its env),
exits after the sum of its sleeps, on this runtime's clock, with the shell's status; what it
echoes is its log. So `["sh", "-c", "sleep 2; exit 1"]` fails after 2 s on a hollow node as it
does on Docker, and hundreds of such containers cost nothing but a timestamp each. Any other
container "runs" until it is stopped or a test calls `exit_container`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace

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
from kubelet.simulated import SimulatedRun, simulate


def _rfc3339(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeRuntime:
    node: str = "fake-node"
    cluster: str = "kubelite"
    images: set[str] = field(default_factory=set)
    """Images present locally."""
    registry: set[str] = field(default_factory=set)
    """Images a pull can fetch."""
    all_images_present: bool = False
    start_errors: dict[str, str] = field(default_factory=dict)
    """Image -> the error starting a container of it fails with."""
    exec_results: dict[str, ExecResult] = field(default_factory=dict)
    """Container id -> what exec returns there (default: exit 0)."""
    clock: Callable[[], float] = time.time
    network_cidr: str = ""
    """Pod IPs come from here; by default a /24 in 10.0.0.0/8 chosen by the node name."""
    containers: dict[str, RuntimeContainer] = field(default_factory=dict)
    logs_by_id: dict[str, bytes] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    networks: set[str] = field(default_factory=set)
    plans: dict[str, SimulatedRun] = field(default_factory=dict)
    """Container id -> the run its command line describes (see the module docstring)."""
    finish_at: dict[str, float] = field(default_factory=dict)
    """Container id -> when (on `clock`) its simulated run ends."""

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        if not self.network_cidr:
            digest = hashlib.sha256(self.node.encode()).digest()
            self.network_cidr = f"10.{digest[0]}.{digest[1]}.0/24"
        self._network = ipaddress.ip_network(self.network_cidr)

    def _allocate_ip(self) -> str:
        """The lowest free address (the first host is the gateway); addresses are reused."""
        used = {c.ip for c in self.containers.values() if c.ip}
        for host in list(self._network.hosts())[1:]:
            if str(host) not in used:
                return str(host)
        raise ContainerRuntimeError(f"no free address left in {self.network_cidr}")

    def _now(self) -> str:
        return _rfc3339(self.clock())

    def _settle(self) -> None:
        """End the simulated runs whose time has come (lazily, whenever the runtime is looked at)."""
        if not self.finish_at:
            return
        now = self.clock()
        for cid, due in list(self.finish_at.items()):
            if due > now:
                continue
            del self.finish_at[cid]
            plan = self.plans.get(cid)
            c = self.containers.get(cid)
            if plan is None or c is None or c.state is not ContainerState.RUNNING:
                continue
            self._set(
                cid, state=ContainerState.EXITED, exit_code=plan.exit_code, finished_at=_rfc3339(due), ip=""
            )

    def _get(self, cid: str) -> RuntimeContainer:
        self._settle()
        try:
            return self.containers[cid]
        except KeyError:
            raise ContainerNotFoundError(f"No such container: {cid}") from None

    def _set(self, cid: str, **changes: object) -> None:
        self.containers[cid] = replace(self.containers[cid], **changes)  # type: ignore[arg-type]

    # --- test controls ----------------------------------------------------------------------

    def exit_container(self, cid: str, exit_code: int = 0, oom: bool = False) -> None:
        """Make a running container exit, as if its process ended."""
        now = self._now()
        self._set(
            cid, state=ContainerState.EXITED, exit_code=exit_code, finished_at=now, oom_killed=oom, ip=""
        )

    def running(self) -> list[RuntimeContainer]:
        return [c for c in self.containers.values() if c.state is ContainerState.RUNNING]

    # --- Runtime ----------------------------------------------------------------------------

    async def node_facts(self) -> NodeFacts:
        return NodeFacts(
            runtime_version="fake://0.1.0",
            cpus=4,
            memory_bytes=8 * 2**30,
            os_image="kubelite hollow node",
            kernel_version="0.0.0",
            operating_system="linux",
            architecture="amd64",
            machine_id=f"fake-{self.node}",
            boot_id=f"fake-boot-{self.node}",
        )

    async def ensure_network(self, name: str, labels: dict[str, str]) -> None:
        self.networks.add(name)

    async def list_containers(self, pod_uid: str | None = None) -> list[RuntimeContainer]:
        self._settle()
        out = list(self.containers.values())
        if pod_uid:
            out = [c for c in out if c.identity is not None and c.identity.pod_uid == pod_uid]
        return out

    async def image_present(self, image: str) -> bool:
        return self.all_images_present or image in self.images

    async def pull_image(self, image: str) -> None:
        self.calls.append(("pull", image))
        if image not in self.registry:
            raise ImagePullError(f"pull access denied for {image}, repository does not exist")
        self.images.add(image)

    def _add(self, name: str, image: str, labels: dict[str, str], ip: str = "") -> str:
        if any(c.name == name for c in self.containers.values()):
            raise ContainerRuntimeError(f'Conflict. The container name "/{name}" is already in use')
        cid = f"{next(self._ids):064x}"
        self.containers[cid] = RuntimeContainer(
            id=cid,
            name=name,
            labels=dict(labels),
            image=image,
            image_ref="sha256:" + hashlib.sha256(image.encode()).hexdigest(),
            state=ContainerState.CREATED,
            created_at=self._now(),
            ip=ip,
        )
        return cid

    async def run_sandbox(self, config: SandboxConfig) -> str:
        self.calls.append(("run_sandbox", config.name))
        cid = self._add(config.name, config.image, config.labels, ip=self._allocate_ip())
        self._set(cid, state=ContainerState.RUNNING, started_at=self._now())
        return cid

    async def create_container(self, config: ContainerConfig) -> str:
        self.calls.append(("create", config.name))
        if not await self.image_present(config.image):
            raise ContainerRuntimeError(f"No such image: {config.image}")
        cid = self._add(config.name, config.image, config.labels)
        plan = simulate(config.entrypoint, config.command, config.env)
        if plan is not None:
            self.plans[cid] = plan
        return cid

    async def start_container(self, container_id: str) -> None:
        self.calls.append(("start", container_id))
        c = self._get(container_id)
        error = self.start_errors.get(c.image)
        if error:
            self._set(container_id, exit_code=128, error=error)
            raise ContainerRuntimeError(error)
        self._set(container_id, state=ContainerState.RUNNING, started_at=self._now())
        plan = self.plans.get(container_id)
        if plan is not None:
            self.finish_at[container_id] = self.clock() + plan.seconds
            if plan.output:
                self.logs_by_id[container_id] = plan.output

    async def stop_container(self, container_id: str, grace_seconds: int) -> None:
        self.calls.append(("stop", container_id))
        c = self._get(container_id)
        if c.state is ContainerState.RUNNING:
            self._set(
                container_id, state=ContainerState.EXITED, exit_code=137, finished_at=self._now(), ip=""
            )

    async def remove_container(self, container_id: str) -> None:
        self.calls.append(("remove", container_id))
        self.containers.pop(container_id, None)
        self.plans.pop(container_id, None)
        self.finish_at.pop(container_id, None)
        self.logs_by_id.pop(container_id, None)

    async def exec(self, container_id: str, command: list[str], timeout: float) -> ExecResult:
        self.calls.append(("exec", container_id))
        self._get(container_id)
        return self.exec_results.get(container_id, ExecResult(0, b""))

    async def logs(
        self,
        container_id: str,
        *,
        tail: int | None = None,
        timestamps: bool = False,
        follow: bool = False,
        since: int | None = None,
    ) -> AsyncIterator[bytes]:
        self._get(container_id)
        lines = self.logs_by_id.get(container_id, b"").splitlines(keepends=True)
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        for line in lines:
            yield line

    async def close(self) -> None:
        pass
