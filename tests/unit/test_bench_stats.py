"""Percentiles (nearest rank), latency summaries, the ratio, and etcd's prefix range end."""

import pytest

from bench.kvload import prefix_range_end
from bench.stats import percentile, ratio, summarize_latencies


def test_nearest_rank_percentiles():
    samples = list(range(1, 101))  # 1..100
    assert percentile(samples, 50) == 50
    assert percentile(samples, 99) == 99
    assert percentile(samples, 100) == 100
    assert percentile(samples, 0.1) == 1


def test_percentile_of_2000_samples_is_the_1980th():
    samples = [float(i) for i in range(2000, 0, -1)]  # unsorted input
    assert percentile(samples, 99) == 1980.0
    assert percentile(samples, 50) == 1000.0


def test_percentile_rejects_empty_and_bad_q():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 0)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summary_in_milliseconds():
    s = summarize_latencies([0.001, 0.002, 0.003, 0.010])
    assert s.count == 4
    assert s.p50_ms == pytest.approx(2.0)
    assert s.p99_ms == pytest.approx(10.0)
    assert s.mean_ms == pytest.approx(4.0)
    assert s.max_ms == pytest.approx(10.0)


def test_ratio_is_etcdlite_over_etcd():
    assert ratio(500, 1000) == 0.5
    assert ratio(None, 1000) is None
    assert ratio(500, None) is None
    assert ratio(500, 0) is None


def test_prefix_range_end():
    assert prefix_range_end(b"/etcdctl-check-perf/") == b"/etcdctl-check-perf0"
    assert prefix_range_end(b"a\xff") == b"b"
    assert prefix_range_end(b"\xff\xff") == b"\x00"
