"""Resident memory and CPU time of a store's process, read from /proc.

`parse_status_kib` and `parse_stat_cpu_ticks` are pure (they take the file's text); the readers
touch only /proc/<pid>/status and /proc/<pid>/stat.
"""

from __future__ import annotations

import os
from pathlib import Path


def parse_status_kib(status_text: str, field: str) -> int:
    """A `Field:   1234 kB` line of /proc/<pid>/status, in KiB."""
    for line in status_text.splitlines():
        name, sep, rest = line.partition(":")
        if sep and name == field:
            parts = rest.split()
            if len(parts) != 2 or parts[1] != "kB":
                raise ValueError(f"unexpected {field} line in /proc status: {line!r}")
            return int(parts[0])
    raise ValueError(f"no {field} line in /proc status")


def parse_stat_cpu_ticks(stat_text: str) -> int:
    """utime + stime (clock ticks) from /proc/<pid>/stat; the command name may contain spaces."""
    after_comm = stat_text.rsplit(")", 1)[1].split()
    # fields after "(comm)": state is field 3, utime 14, stime 15 (1-based, in proc(5))
    return int(after_comm[11]) + int(after_comm[12])


def rss_bytes(pid: int) -> int:
    return parse_status_kib(Path(f"/proc/{pid}/status").read_text(), "VmRSS") * 1024


def peak_rss_bytes(pid: int) -> int:
    return parse_status_kib(Path(f"/proc/{pid}/status").read_text(), "VmHWM") * 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    return parse_stat_cpu_ticks(Path(f"/proc/{pid}/stat").read_text()) / os.sysconf("SC_CLK_TCK")
