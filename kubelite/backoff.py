"""Per-key exponential back-off (client-go's flowcontrol.Backoff), shared by the kubelet (container
restarts, image pulls, sandboxes) and the DaemonSet controller (failed daemon pods).

A key's first attempt waits `initial`; each further one within the window waits twice as long, up
to `cap`. An entry not touched for twice the cap starts over. Time is an input (seconds on any
monotonic-ish scale), so tests drive it by hand. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Entry:
    delay: float
    last_update: float


class Backoff:
    def __init__(self, initial: float, cap: float):
        self.initial = initial
        self.cap = cap
        self._entries: dict[str, _Entry] = {}

    def _expired(self, entry: _Entry, event_time: float) -> bool:
        return event_time - entry.last_update > 2 * self.cap

    def delay(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry.delay if entry else 0.0

    def next(self, key: str, event_time: float, now: float | None = None) -> None:
        """Record one more attempt for key (at `now`, by default the event's time): start at the
        initial delay or double it."""
        now = event_time if now is None else now
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, event_time):
            self._entries[key] = _Entry(self.initial, now)
        else:
            entry.delay = min(entry.delay * 2, self.cap)
            entry.last_update = now

    def in_backoff(self, key: str, now: float) -> bool:
        """IsInBackOffSinceUpdate: the last attempt was less than the current delay ago."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            return False
        return now - entry.last_update < entry.delay

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
        """Drop every entry whose key starts with prefix (one pod's, one DaemonSet's)."""
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]
