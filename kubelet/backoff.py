"""Per-key back-off for container restarts and image pulls (Kubernetes' flowcontrol.Backoff).

The first restart of a container is immediate; each further one within the window waits
twice as long, from 10 s up to 5 min. An entry not touched for twice the cap starts over.
Time is an input (seconds on any monotonic-ish scale), so tests drive it by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_SECONDS = 10.0
MAX_SECONDS = 300.0


@dataclass
class _Entry:
    delay: float
    last_update: float


class Backoff:
    def __init__(self, initial: float = INITIAL_SECONDS, cap: float = MAX_SECONDS):
        self.initial = initial
        self.cap = cap
        self._entries: dict[str, _Entry] = {}

    def _expired(self, entry: _Entry, event_time: float) -> bool:
        return event_time - entry.last_update > 2 * self.cap

    def delay(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry.delay if entry else 0.0

    def next(self, key: str, event_time: float, now: float) -> None:
        """Record one more attempt for key: start at the initial delay or double it."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, event_time):
            self._entries[key] = _Entry(self.initial, now)
        else:
            entry.delay = min(entry.delay * 2, self.cap)
            entry.last_update = now

    def remaining_since(self, key: str, event_time: float, now: float) -> float:
        """Seconds still to wait, counting from event_time (e.g. when the container exited)."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, event_time):
            return 0.0
        return max(0.0, entry.delay - (now - event_time))

    def remaining_since_update(self, key: str, now: float) -> float:
        """Seconds still to wait, counting from the last recorded attempt (image pulls)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        return max(0.0, entry.delay - (now - entry.last_update))

    def forget_prefix(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]
