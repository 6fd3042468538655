"""Parsing what `etcdctl check perf` (3.4) prints: PASS/FAIL per criterion and the figures."""

from bench.checkperf import output_lines, parse_check_perf

BAR = " 0 / 60 B! 0.00%\r 30 / 60 Boooo! 50.00% 30s\r 59 / 60   98.33% 00m01s\n 59 / 60   98.33%\n"


def test_all_pass():
    out = (
        BAR
        + "PASS: Throughput is 151 writes/s\n"
        + "PASS: Slowest request took 0.045123s\n"
        + "PASS: Stddev is 0.002000s\n"
        + "PASS\n"
    )
    r = parse_check_perf("s", out, 0)
    assert r.passed and r.verdict == "PASS"
    assert (r.throughput, r.throughput_passed) == (151, True)
    assert (r.slowest_s, r.slowest_passed) == (0.045123, True)
    assert (r.stddev_s, r.stddev_passed) == (0.002, True)
    assert r.errors == []


def test_first_result_sharing_the_bars_last_line():
    # without a terminal the bar ends without a newline (etcdctl 3.4.23, observed)
    out = " 59 / 60   98.33%\n 59 / 60   98.33%PASS: Throughput is 150 writes/s\n"
    out += "PASS: Slowest request took 0.01s\nPASS: Stddev is 0.001s\nPASS\n"
    r = parse_check_perf("s", out, 0)
    assert r.passed and (r.throughput, r.throughput_passed) == (150, True)


def test_failures_without_fail_prefix_are_recognised():
    out = (
        BAR
        + "FAIL: Throughput too low: 6491 writes/s\n"
        + "Slowest request took too long: 0.786915s\n"
        + "Stddev too high: 0.304261s\n"
        + "FAIL\n"
    )
    r = parse_check_perf("l", out, 1)
    assert not r.passed and r.verdict == "FAIL"
    assert (r.throughput, r.throughput_passed) == (6491, False)
    assert (r.slowest_s, r.slowest_passed) == (0.786915, False)
    assert (r.stddev_s, r.stddev_passed) == (0.304261, False)


def test_mixed_verdicts():
    out = (
        "PASS: Throughput is 150 writes/s\n"
        "Slowest request took too long: 0.612762s\n"
        "PASS: Stddev is 0.066612s\n"
        "FAIL\n"
    )
    r = parse_check_perf("s", out, 1)
    assert not r.passed
    assert r.throughput_passed is True and r.slowest_passed is False and r.stddev_passed is True


def test_errors_are_collected():
    out = (
        "FAIL: too many errors\n"
        "FAIL: ERROR(rpc error: code = Unavailable desc = transport is closing) -> 12\n"
        "PASS: Throughput is 999 writes/s\nPASS: Slowest request took 0.1s\nPASS: Stddev is 0.01s\nFAIL\n"
    )
    r = parse_check_perf("m", out, 1)
    assert not r.passed
    assert r.errors == [
        "FAIL: too many errors",
        "FAIL: ERROR(rpc error: code = Unavailable desc = transport is closing) -> 12",
    ]


def test_prefix_with_keys_is_an_error_without_figures():
    out = (
        'Error: prefix "/etcdctl-check-perf/" has keys. '
        "Delete with etcdctl del --prefix /etcdctl-check-perf/ first\n"
    )
    r = parse_check_perf("s", out, 1)
    assert not r.passed and r.throughput is None
    assert r.errors == [out.strip()]


def test_pass_line_with_nonzero_exit_is_not_a_pass():
    r = parse_check_perf("s", "PASS\n", 1)
    assert not r.passed


def test_no_verdict_is_reported():
    r = parse_check_perf("s", BAR, -9)
    assert not r.passed
    assert r.errors == ["etcdctl exited -9 without a PASS/FAIL verdict"]


def test_progress_bar_redraws_are_split():
    assert output_lines("a\r b \r\n\nc") == ["a", "b", "c"]
