"""Free TCP ports for processes a test or benchmark is about to start, when the process cannot
bind port 0 itself and report the port back (prefer that where a process can).

A port handed out here is taken from below the kernel's ephemeral range
(`/proc/sys/net/ipv4/ip_local_port_range`), so no outgoing connection can take it between the
probe and the process binding it, and outside the NodePort range, so a cluster never competes
with itself. Each port is reserved with an advisory lock file held for the life of the calling
process: two test processes, or two fixtures in one process, never get the same port.
`reserve` does the same for anything else that must not be shared (a node's loopback address), and
`free_loopback_base` hands out loopback addresses for nodes the way `free_port` hands out ports.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import os
import random
import socket
import tempfile
import threading
from pathlib import Path

LOWEST = 10000
NODE_PORTS = range(30000, 32768)
# What `kubelite up` and compose use by default (etcd clients and peers, kubelets), left free for them.
DEFAULTS = frozenset({10250, 22379, 22380})
lock = threading.Lock()  # held while choosing, so two threads never choose alike
_held: dict[str, int] = {}  # what is reserved -> fd of its lock file, open while this process lives


def ephemeral_range(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> range:
    """The ports the kernel picks for outgoing connections and port-0 binds."""
    try:
        low, high = (int(n) for n in Path(path).read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def candidates(ephemeral: range, rng: random.Random) -> list[int]:
    """Every port below the ephemeral range, outside the NodePort range and kubelite's defaults,
    shuffled. Pure."""
    ports = [p for p in range(LOWEST, ephemeral.start) if p not in NODE_PORTS and p not in DEFAULTS]
    rng.shuffle(ports)
    return ports


@functools.cache
def _process_candidates() -> tuple[int, ...]:
    """`candidates` for this process: the ephemeral range read and the ports shuffled once, on first use."""
    return tuple(candidates(ephemeral_range(), random.Random()))


def _lock_dir() -> Path:
    path = Path(tempfile.gettempdir()) / "kubelite-ports"
    path.mkdir(exist_ok=True)
    return path


def reserve(token: str) -> bool:
    """Take the cross-process lock named token (a port, a loopback address) for the life of this
    process; False if this or another process holds it."""
    if token in _held:
        return False
    fd = os.open(_lock_dir() / token, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    _held[token] = fd
    return True


def _release(token: str) -> None:
    fd = _held.pop(token)
    with contextlib.suppress(OSError):
        os.close(fd)


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, reserved for this process until it exits."""
    with lock:
        for port in _process_candidates():
            if not reserve(str(port)):
                continue
            if _bindable(host, port):
                return port
            _release(str(port))  # in use by something that does not know our locks
    raise RuntimeError(f"no free port on {host} below the ephemeral range")


def free_loopback_base(count: int = 2) -> str:
    """A first address 127.A.B.2 such that count consecutive addresses have nothing bound on 10250,
    reserved for this process (no other caller, here or in another process, gets them)."""
    rng = random.Random()
    with lock:
        for _ in range(100):
            a, b = rng.randint(1, 250), rng.randint(1, 250)
            addrs = [f"127.{a}.{b}.{2 + i}" for i in range(count)]
            if not reserve(f"127.{a}.{b}"):
                continue
            if all(_bindable(addr, 10250) for addr in addrs):
                return addrs[0]
    raise RuntimeError("no free loopback addresses found")
