"""Free TCP ports for processes a test or benchmark is about to start.

The kernel may hand the same ephemeral port out again as soon as the probing socket closes,
so a port given out once is never given out again by this process: several members started
together get distinct ports.
"""

from __future__ import annotations

import socket
import threading

_given: set[tuple[str, int]] = set()
_lock = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    with _lock:
        for _ in range(1000):
            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
            if (host, port) not in _given:
                _given.add((host, port))
                return port
    raise RuntimeError(f"no fresh free port on {host}")
