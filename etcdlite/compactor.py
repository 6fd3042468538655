"""Auto-compaction policy (`--auto-compaction-mode`, `--auto-compaction-retention`), as in etcd 3.4.

Periodic mode keeps `retention` of history: it samples the revision every retention/10 (at most
every hour) and compacts to the newest sample that is at least `retention` old. Revision mode
keeps the last `retention` revisions, checked every 5 minutes. Pure: the caller passes the time
and the current revision and proposes the Compact it is told to.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from dataclasses import dataclass

_HOUR = 3600.0
_REVISION_CHECK_INTERVAL = 300.0
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class CompactionMode(enum.Enum):
    PERIODIC = "periodic"
    REVISION = "revision"


@dataclass(frozen=True)
class CompactionPolicy:
    mode: CompactionMode
    # seconds of history (periodic) or number of revisions (revision)
    retention: float


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration such as `90s`, `1h30m` or `0.5h`."""
    if text in ("0", ""):
        return 0.0
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(text):
        raise ValueError(f"invalid duration {text!r}")
    return total


def parse_policy(mode: str, retention: str) -> CompactionPolicy | None:
    """None when auto-compaction is off (retention 0). A bare number means hours in periodic mode."""
    try:
        compaction_mode = CompactionMode(mode)
    except ValueError:
        raise ValueError(f"unknown auto-compaction mode {mode!r} (want periodic or revision)") from None
    if compaction_mode is CompactionMode.REVISION:
        try:
            revisions = int(retention)
        except ValueError:
            raise ValueError(f"revision retention must be a number of revisions, not {retention!r}") from None
        if revisions < 0:
            raise ValueError("revision retention must not be negative")
        return CompactionPolicy(compaction_mode, revisions) if revisions else None
    try:
        seconds = float(int(retention)) * _HOUR
    except ValueError:
        seconds = parse_go_duration(retention)
    if seconds < 0:
        raise ValueError("retention must not be negative")
    return CompactionPolicy(compaction_mode, seconds) if seconds else None


class Compactor:
    def __init__(self, policy: CompactionPolicy, now: float) -> None:
        self.policy = policy
        if policy.mode is CompactionMode.PERIODIC:
            self.interval = min(policy.retention / 10, _HOUR)
        else:
            self.interval = _REVISION_CHECK_INTERVAL
        self._next_check = now
        self._samples: deque[tuple[float, int]] = deque()
        self._last_target = 0

    def tick(self, now: float, revision: int) -> int | None:
        """The revision to compact to now, if any."""
        if now < self._next_check:
            return None
        self._next_check = now + self.interval
        if self.policy.mode is CompactionMode.REVISION:
            target = revision - int(self.policy.retention)
        else:
            self._samples.append((now, revision))
            cutoff = now - self.policy.retention
            target = 0
            while self._samples and self._samples[0][0] <= cutoff:
                target = self._samples.popleft()[1]
            if target:
                # keep the sample we compact to, so the next target never moves backwards
                self._samples.appendleft((cutoff, target))
        if target > self._last_target:
            self._last_target = target
            return target
        return None
