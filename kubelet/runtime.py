"""The container runtime interface the kubelet drives: what it asks of Docker (or of a fake).

Only data shapes and the `Runtime` protocol live here. `docker_runtime` implements it with the
Docker SDK; `fake_runtime` implements it in memory for tests and hollow nodes. The kubelet's
decisions are made on these shapes, never on Docker's own.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from kubelet.labels import ContainerIdentity, identity_of


class ContainerState(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"


@dataclass
class RuntimeContainer:
    """One container as the runtime reports it; times are RFC 3339 strings or ''."""

    id: str
    name: str
    labels: dict[str, str]
    image: str
    image_ref: str
    """What `imageID` reports: `docker-pullable://repo@sha256:...` or the image id."""
    state: ContainerState
    exit_code: int = 0
    created_at: str = ""
    started_at: str = ""
    finished_at: str = ""
    error: str = ""
    oom_killed: bool = False
    ip: str = ""
    """The address on the pod network; set for sandboxes only."""

    @property
    def identity(self) -> ContainerIdentity | None:
        return identity_of(self.labels)


@dataclass
class SandboxConfig:
    name: str
    image: str
    hostname: str
    network: str
    labels: dict[str, str]


@dataclass
class ContainerConfig:
    name: str
    image: str
    sandbox_id: str
    labels: dict[str, str]
    entrypoint: list[str] | None = None
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    user: str | None = None
    tty: bool = False
    stdin: bool = False
    memory_limit: int | None = None
    nano_cpus: int | None = None
    cpu_shares: int | None = None
    privileged: bool = False


@dataclass(frozen=True)
class NodeFacts:
    """What the node's status reports about the machine and the runtime."""

    runtime_version: str
    """`docker://20.10.24`."""
    cpus: int
    memory_bytes: int
    os_image: str
    kernel_version: str
    operating_system: str
    architecture: str
    machine_id: str
    boot_id: str


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: bytes


class ContainerRuntimeError(Exception):
    """A runtime call failed; the message is what the user should see."""


class ImagePullError(ContainerRuntimeError):
    pass


class ContainerNotFoundError(ContainerRuntimeError):
    pass


class Runtime(Protocol):
    """Every call may block on the runtime; implementations keep the event loop free."""

    async def node_facts(self) -> NodeFacts: ...

    async def ensure_network(self, name: str, labels: dict[str, str]) -> None: ...

    async def list_containers(self, pod_uid: str | None = None) -> list[RuntimeContainer]:
        """This kubelet's containers (all states), optionally of one pod only."""
        ...

    async def image_present(self, image: str) -> bool: ...

    async def pull_image(self, image: str) -> None:
        """Pull, raising ImagePullError with the runtime's message on failure."""
        ...

    async def run_sandbox(self, config: SandboxConfig) -> str:
        """Create and start a sandbox; return its id."""
        ...

    async def create_container(self, config: ContainerConfig) -> str: ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, grace_seconds: int) -> None:
        """Send the stop signal, wait up to grace_seconds, then kill."""
        ...

    async def remove_container(self, container_id: str) -> None:
        """Remove (killing if needed); a container already gone is not an error."""
        ...

    async def exec(self, container_id: str, command: list[str], timeout: float) -> ExecResult: ...

    def logs(
        self,
        container_id: str,
        *,
        tail: int | None = None,
        timestamps: bool = False,
        follow: bool = False,
        since: int | None = None,
    ) -> AsyncIterator[bytes]: ...

    async def close(self) -> None: ...
