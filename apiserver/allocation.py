"""Service cluster IP and NodePort ranges: parsing, membership, and picking a free value.

Each allocated value is its own store key (`/registry/ranges/serviceips/<ip>`,
`/registry/ranges/servicenodeports/<port>`), written in the same guarded Txn as the
Service, so two concurrent creates can never get the same value and a failed create leaks
nothing. This module is the pure part: which values exist, which key names one, and a
random pick among the free ones. Randomness is injectable.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass

SERVICE_IP_PREFIX = "/registry/ranges/serviceips/"
NODE_PORT_PREFIX = "/registry/ranges/servicenodeports/"


def ip_key(ip: str) -> str:
    return SERVICE_IP_PREFIX + ip


def node_port_key(port: int) -> str:
    return NODE_PORT_PREFIX + str(port)


@dataclass(frozen=True)
class ServiceIPRange:
    """`--service-cluster-ip-range`. The first address after the network is reserved for the
    `kubernetes` Service, so automatic picks start one after it."""

    cidr: str

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.cidr, strict=False)

    def contains(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        net = self.network
        if address not in net:
            return False
        return net.num_addresses <= 2 or address not in (net.network_address, net.broadcast_address)

    def pick(self, taken: set[str], rng: random.Random | None = None) -> str | None:
        """A free address, chosen at random; None when the range is full."""
        rng = rng or random.SystemRandom()
        net = self.network
        first = int(net.network_address) + 2
        last = int(net.broadcast_address) - 1
        if last < first:
            return None
        size = last - first + 1
        for _ in range(64):
            candidate = str(ipaddress.ip_address(first + rng.randrange(size)))
            if candidate not in taken:
                return candidate
        for offset in range(min(size, 1 << 20)):
            candidate = str(ipaddress.ip_address(first + offset))
            if candidate not in taken:
                return candidate
        return None


@dataclass(frozen=True)
class NodePortRange:
    """`--service-node-port-range`, inclusive at both ends."""

    low: int
    high: int

    @classmethod
    def parse(cls, text: str) -> NodePortRange:
        try:
            low_text, high_text = text.split("-", 1) if "-" in text else (text, text)
            low, high = int(low_text), int(high_text)
        except ValueError:
            raise ValueError(f"invalid port range {text!r}: want LOW-HIGH") from None
        if not 0 < low <= high <= 65535:
            raise ValueError(f"invalid port range {text!r}")
        return cls(low, high)

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"

    def contains(self, port: int) -> bool:
        return self.low <= port <= self.high

    def pick(self, taken: set[int], rng: random.Random | None = None) -> int | None:
        rng = rng or random.SystemRandom()
        free = [p for p in range(self.low, self.high + 1) if p not in taken]
        return rng.choice(free) if free else None
