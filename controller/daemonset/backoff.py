"""The back-off between deletions of a node's failed daemon pods (client-go's flowcontrol.Backoff as
the DaemonSet controller uses it: 1 s doubling to 15 min per DaemonSet and node), so that a
controller fighting a kubelet that keeps rejecting its pod does not loop hot. Pure: the caller
passes the time.
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL = 1.0
MAXIMUM = 900.0


@dataclass
class _Entry:
    delay: float
    last_update: float


class FailedPodBackoff:
    def __init__(self, initial: float = INITIAL, maximum: float = MAXIMUM):
        self.initial = initial
        self.maximum = maximum
        self._entries: dict[str, _Entry] = {}

    def _expired(self, entry: _Entry, now: float) -> bool:
        return now - entry.last_update > 2 * self.maximum

    def in_backoff(self, key: str, now: float) -> bool:
        """IsInBackOffSinceUpdate: the last failure was less than the current delay ago."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            return False
        return now - entry.last_update < entry.delay

    def delay(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry.delay if entry else 0.0

    def next(self, key: str, now: float) -> None:
        """Record a failure: the delay starts at `initial` and doubles up to `maximum`."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            self._entries[key] = _Entry(self.initial, now)
        else:
            entry.delay = min(entry.delay * 2, self.maximum)
            entry.last_update = now

    def forget_prefix(self, prefix: str) -> None:
        """Drop every entry of one DaemonSet (its keys start with its uid)."""
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]
