"""The kubelet's back-off for container restarts and image pulls (Kubernetes' flowcontrol.Backoff,
kubelite.backoff): the first restart of a container is immediate; each further one within the
window waits twice as long, from 10 s up to 5 min.
"""

from __future__ import annotations

from kubelite import backoff

INITIAL_SECONDS = 10.0
MAX_SECONDS = 300.0


class Backoff(backoff.Backoff):
    def __init__(self, initial: float = INITIAL_SECONDS, cap: float = MAX_SECONDS):
        super().__init__(initial, cap)
