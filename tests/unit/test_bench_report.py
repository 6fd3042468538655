"""The benchmark's table and JSON, and the /proc parsing behind its memory and CPU figures."""

import json

import pytest

from bench.memory import parse_stat_cpu_ticks, parse_status_kib
from bench.report import Row, format_table, format_value, to_json

STATUS = "Name:\tetcd\nVmHWM:\t  120000 kB\nVmRSS:\t   98765 kB\nThreads:\t12\n"


def test_status_fields_in_kib():
    assert parse_status_kib(STATUS, "VmRSS") == 98765
    assert parse_status_kib(STATUS, "VmHWM") == 120000
    with pytest.raises(ValueError):
        parse_status_kib(STATUS, "VmSwap")


def test_stat_cpu_ticks_with_spaces_in_the_command_name():
    fields = ["S"] + [str(i) for i in range(4, 60)]  # field n holds n from field 4 on
    stat = "1234 (python -m etcdlite) " + " ".join(fields)
    assert parse_stat_cpu_ticks(stat) == 14 + 15


def test_row_ratio_is_etcdlite_over_etcd():
    assert Row("x", "writes/s", 1000, 250).ratio == 0.25
    assert Row("x", "", None, None, "n/a", "n/a").ratio is None


def test_value_formatting():
    assert format_value(12345) == "12,345"
    assert format_value(930.4, "PASS") == "930 PASS"
    assert format_value(92.31) == "92.3"
    assert format_value(1.234) == "1.23"
    assert format_value(0.04512) == "0.0451"
    assert format_value(0.000748) == "0.000748"
    assert format_value(None, "TODO") == "TODO"
    assert format_value(None) == "-"


def test_table_has_every_row_and_the_target_verdict():
    rows = [
        Row(
            "check perf --load=m verdict",
            "",
            None,
            None,
            "PASS",
            "FAIL",
            target="etcdlite passes",
            target_met=False,
        ),
        Row("range linearizable", "reads/s", 10000, 5000),
    ]
    lines = format_table(rows).splitlines()
    assert lines[0].split() == ["measurement", "etcd", "etcdlite", "etcdlite/etcd", "target"]
    assert "etcdlite passes: NOT met" in lines[2]
    assert lines[3].startswith("range linearizable (reads/s)")
    assert lines[3].split()[-3:] == ["10,000", "5,000", "0.50"]


def test_json_carries_rows_context_and_details():
    data = json.loads(to_json([Row("a", "ms", 1.0, 2.0)], {"members": 1}, {"raw": [1]}))
    assert data["members"] == 1
    assert data["details"] == {"raw": [1]}
    assert data["rows"][0]["ratio"] == 2.0
