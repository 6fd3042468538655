"""What the cluster benchmarks (`bench.deployments`, `bench.workloads`) share on paper: a measured
phase, a row judged against its target, the table they print, and a process's use of CPU and
memory over a phase. Pure: the benchmarks measure, this only arranges figures into text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# (measurement, value, target, met): met is None for a figure that has no target.
Row = tuple[str, str, str, bool | None]


@dataclass
class Phase:
    name: str
    seconds: float = 0.0
    loadavg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    cpu: dict[str, float] = field(default_factory=dict)  # process -> CPU seconds used in the phase
    details: dict[str, Any] = field(default_factory=dict)


def judged(name: str, value: str, figure: float, limit: float, unit: str, complete: bool = True) -> Row:
    """A row whose figure must stay below `limit`, shown as "< limit unit"; a phase that did not
    complete misses its target however fast it was."""
    return (name, value, f"< {limit:g} {unit}", complete and figure < limit)


def table_lines(
    rows: Sequence[Row], beside: Sequence[str] | None = None, beside_title: str = ""
) -> list[str]:
    """The judged rows as a fixed-width table; `beside` adds one more column (one entry per row)."""
    header = f"{'measurement':52} {'value':22} {'target':10} met"
    if beside is not None:
        header += f"  {beside_title}"
    lines = [header, "-" * len(header)]
    for i, (name, value, target, met) in enumerate(rows):
        mark = "" if met is None else ("yes" if met else "NO")
        line = f"{name:52} {value:22} {target:10} {mark}"
        if beside is not None and beside[i]:
            line = f"{line:{len(header) - len(beside_title)}}{beside[i]}"
        lines.append(line)
    return lines


def phase_line(phase: Phase) -> str:
    """A phase's duration, the machine's load at its end, and what each process spent in it."""
    load = "/".join(f"{x:.2f}" for x in phase.loadavg)
    line = f"{phase.name}: {phase.seconds:.1f} s, load {load}"
    if phase.cpu:
        line += "; CPU: " + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(phase.cpu.items()))
    if phase.details.get("rss_mb"):
        line += "; RSS: " + ", ".join(f"{k} {v:.0f} MB" for k, v in sorted(phase.details["rss_mb"].items()))
    return line


def usage(
    cpu_before: float, cpu_after: float, seconds: float, rss_samples: Sequence[int]
) -> dict[str, float]:
    """One process over one phase: CPU seconds and their share of one core, RSS at the end and at
    its peak (MB), from CPU-time readings at both ends and RSS samples (bytes) taken during it."""
    cpu = max(cpu_after - cpu_before, 0.0)
    return {
        "cpu_s": cpu,
        "cpu_pct": 100 * cpu / seconds if seconds > 0 else 0.0,
        "rss_mb": rss_samples[-1] / 1e6 if rss_samples else 0.0,
        "rss_peak_mb": max(rss_samples) / 1e6 if rss_samples else 0.0,
    }


def usage_text(u: dict[str, float] | None) -> str:
    """`usage` as one table cell: "RSS 104 MB (peak 112), CPU 9.8 s (41 %)"."""
    if not u:
        return ""
    return (
        f"RSS {u['rss_mb']:.0f} MB (peak {u['rss_peak_mb']:.0f}), "
        f"CPU {u['cpu_s']:.1f} s ({u['cpu_pct']:.0f} %)"
    )
