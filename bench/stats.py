"""Pure arithmetic for the benchmark: percentiles, latency summaries, the etcdlite/etcd ratio.

No IO. Percentiles use the nearest-rank method (the value below which q% of samples fall,
always an observed sample), so p99 of 2000 samples is the 1980th smallest.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, q in (0, 100]."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 < q <= 100:
        raise ValueError(f"percentile q must be in (0, 100], not {q}")
    ordered = sorted(samples)
    rank = math.ceil(q / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float


def summarize_latencies(seconds: Sequence[float]) -> LatencySummary:
    """Latencies measured in seconds, summarized in milliseconds."""
    if not seconds:
        raise ValueError("no latencies to summarize")
    return LatencySummary(
        count=len(seconds),
        p50_ms=percentile(seconds, 50) * 1000,
        p99_ms=percentile(seconds, 99) * 1000,
        mean_ms=sum(seconds) / len(seconds) * 1000,
        max_ms=max(seconds) * 1000,
    )


def ratio(etcdlite: float | None, etcd: float | None) -> float | None:
    """etcdlite / etcd, or None when either figure is missing or etcd's is zero."""
    if etcdlite is None or etcd is None or etcd == 0:
        return None
    return etcdlite / etcd


@dataclass(frozen=True)
class Summary:
    runs: int
    median: float
    max: float


def summarize(values: Sequence[float]) -> Summary:
    """Median (mean of the middle two for an even count) and maximum."""
    if not values:
        raise ValueError("no values to summarize")
    return Summary(len(values), statistics.median(values), max(values))
