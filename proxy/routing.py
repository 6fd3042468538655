"""The NodePort routing table: Services and Endpoints in, {nodePort: route to ready backends} out.

Pure. A Service of type NodePort or LoadBalancer contributes one route per TCP port with a
nodePort. Its backends are the ready addresses (`subsets[].addresses`) of the Endpoints of
the same name, at the Endpoints port whose name matches the service port's name; the
backend port number comes from the Endpoints port (it is the resolved targetPort).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kubelite.objects import Object

NODE_PORT_TYPES = frozenset({"NodePort", "LoadBalancer"})


@dataclass(frozen=True, order=True)
class Backend:
    ip: str
    port: int

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class NodePortRoute:
    node_port: int
    service: str
    """`namespace/name`."""
    port_name: str
    backends: tuple[Backend, ...]

    @property
    def display(self) -> str:
        return f"{self.service}:{self.port_name}" if self.port_name else self.service


@dataclass(frozen=True)
class RoutingTable:
    routes: dict[int, NodePortRoute]
    conflicts: tuple[str, ...] = ()
    """Human-readable notes about nodePorts claimed twice (the first claim wins)."""


def _key(obj: Object) -> str:
    m = obj.get("metadata", {})
    return f"{m.get('namespace', 'default')}/{m.get('name', '')}"


def ready_backends(endpoints: Object | None, port_name: str, protocol: str = "TCP") -> tuple[Backend, ...]:
    """The ready addresses of `endpoints` at the port named `port_name`, sorted and unique."""
    found: set[Backend] = set()
    for subset in (endpoints or {}).get("subsets") or []:
        port = next(
            (
                p
                for p in subset.get("ports") or []
                if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP") == protocol
            ),
            None,
        )
        if port is None or not isinstance(port.get("port"), int):
            continue
        for address in subset.get("addresses") or []:
            if address.get("ip"):
                found.add(Backend(address["ip"], port["port"]))
    return tuple(sorted(found))


def routing_table(services: Iterable[Object], endpoints: Mapping[str, Object]) -> RoutingTable:
    """Routes for every TCP nodePort; `endpoints` is keyed by `namespace/name`."""
    routes: dict[int, NodePortRoute] = {}
    conflicts: list[str] = []
    for service in sorted(services, key=_key):
        spec = service.get("spec") or {}
        if spec.get("type") not in NODE_PORT_TYPES:
            continue
        key = _key(service)
        for port in spec.get("ports") or []:
            node_port = port.get("nodePort")
            if not isinstance(node_port, int) or not 0 < node_port < 65536:
                continue
            if (port.get("protocol") or "TCP") != "TCP":
                continue
            name = port.get("name") or ""
            if node_port in routes:
                conflicts.append(
                    f"nodePort {node_port} of {key} is already used by {routes[node_port].service}"
                )
                continue
            routes[node_port] = NodePortRoute(node_port, key, name, ready_backends(endpoints.get(key), name))
    return RoutingTable(routes, tuple(conflicts))
