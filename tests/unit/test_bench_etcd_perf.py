"""The benchmark's rows and verdicts from measured figures (no store runs): check perf's PASS/FAIL and
targets, latency, range, memory and failover rows, the command line, and the committed results, whose
tables must follow from their own raw details."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest

from bench import checkperf, etcd_perf, failover, kvload
from bench.etcd_perf import (
    FULL,
    QUICK,
    Stores,
    checkperf_rows,
    each_store,
    failover_rows,
    latency_rows,
    memory_rows,
    parse_args,
    range_row,
)
from bench.report import Row
from bench.stats import LatencySummary
from bench.stores import Cluster, Member, StoreKind

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
ETCD, LITE = StoreKind.ETCD, StoreKind.ETCDLITE


def both_running() -> Stores:
    return {kind: Cluster(kind, [], Path("/nonexistent")) for kind in StoreKind}


def lite_unavailable() -> Stores:
    return {ETCD: Cluster(ETCD, [], Path("/nonexistent")), LITE: "etcdlite refused 3 members"}


def check_perf(load: str, throughput: int, passed: bool = True, **fields: Any) -> checkperf.CheckPerfResult:
    defaults: dict[str, Any] = {
        "throughput_passed": passed,
        "slowest_s": 0.2,
        "slowest_passed": passed,
        "stddev_s": 0.01,
        "stddev_passed": passed,
    }
    return checkperf.CheckPerfResult(
        load, passed, 0 if passed else 1, throughput=throughput, **{**defaults, **fields}
    )


def by_measurement(rows: list[Row]) -> dict[str, Row]:
    return {row.measurement: row for row in rows}


# --- check perf -------------------------------------------------------------------------------------


def test_check_perf_rows_carry_etcdctls_verdicts_and_load_m_is_judged_on_etcdlites() -> None:
    rows = by_measurement(
        checkperf_rows(
            "m",
            both_running(),
            {ETCD: check_perf("m", 959), LITE: check_perf("m", 916, slowest_s=0.26)},
        )
    )
    assert list(rows) == [
        "check perf --load=m throughput",
        "check perf --load=m slowest request",
        "check perf --load=m stddev",
        "check perf --load=m verdict",
    ]
    throughput = rows["check perf --load=m throughput"]
    assert (throughput.etcd, throughput.etcdlite, throughput.etcd_note, throughput.etcdlite_note) == (
        959,
        916,
        "PASS",
        "PASS",
    )
    assert (throughput.target, throughput.target_met) == ("", None)
    assert rows["check perf --load=m slowest request"].etcdlite == 0.26
    verdict = rows["check perf --load=m verdict"]
    assert (verdict.etcd_note, verdict.etcdlite_note) == ("PASS", "PASS")
    assert (verdict.target, verdict.target_met) == ("etcdlite passes", True)


def test_load_m_target_is_not_met_when_etcdlite_fails_and_not_judged_when_it_did_not_run() -> None:
    failed = checkperf_rows(
        "m", both_running(), {ETCD: check_perf("m", 959), LITE: check_perf("m", 700, False)}
    )
    verdict = by_measurement(failed)["check perf --load=m verdict"]
    assert (verdict.etcdlite_note, verdict.target_met) == ("FAIL", False)
    assert by_measurement(failed)["check perf --load=m throughput"].etcdlite_note == "FAIL"

    missing = by_measurement(
        checkperf_rows("m", lite_unavailable(), {ETCD: check_perf("m", 959), LITE: None})
    )
    verdict = missing["check perf --load=m verdict"]
    assert (verdict.etcdlite_note, verdict.target_met) == ("n/a", None)
    throughput = missing["check perf --load=m throughput"]
    assert (throughput.etcdlite, throughput.etcdlite_note, throughput.ratio) == (None, "n/a", None)


def test_a_criterion_etcdctl_did_not_print_reads_as_unknown() -> None:
    cut = check_perf("s", 150, stddev_s=None, stddev_passed=None)
    rows = by_measurement(checkperf_rows("s", both_running(), {ETCD: check_perf("s", 151), LITE: cut}))
    stddev = rows["check perf --load=s stddev"]
    assert (stddev.etcdlite, stddev.etcdlite_note) == (None, "?")
    assert all(row.target == "" and row.target_met is None for row in rows.values())


@pytest.mark.parametrize(
    ("etcd", "etcdlite", "met"),
    [(1000, 500, True), (1000, 499, False), (2920, 1916, True), (0, 500, None)],
)
def test_load_l_is_judged_on_half_of_etcds_throughput(etcd: int, etcdlite: int, met: bool | None) -> None:
    # both FAIL load l's 8000 writes/s on a small machine; the target is the ratio, not the verdict
    results = {ETCD: check_perf("l", etcd, False), LITE: check_perf("l", etcdlite, False)}
    rows = by_measurement(checkperf_rows("l", both_running(), results))
    throughput = rows["check perf --load=l throughput"]
    assert (throughput.target, throughput.target_met) == ("etcdlite >= 0.5 x etcd", met)
    assert rows["check perf --load=l verdict"].target == ""


def test_load_l_is_not_judged_without_etcdlite() -> None:
    rows = by_measurement(
        checkperf_rows("l", lite_unavailable(), {ETCD: check_perf("l", 2920, False), LITE: None})
    )
    assert rows["check perf --load=l throughput"].target_met is None


# --- latency and range -------------------------------------------------------------------------------


def test_latency_rows_are_p50_and_p99_in_milliseconds() -> None:
    def latency(p50: float, p99: float) -> kvload.PutLatencyResult:
        return kvload.PutLatencyResult(LatencySummary(2000, p50, p99, p50, p99 * 2), 0, "grpcio")

    rows = latency_rows(FULL, both_running(), {ETCD: latency(1.5, 3.4), LITE: latency(4.0, 7.0)})
    assert [(r.measurement, r.unit, r.etcd, r.etcdlite) for r in rows] == [
        ("put latency p50, 1 client, 256 B", "ms", 1.5, 4.0),
        ("put latency p99, 1 client, 256 B", "ms", 3.4, 7.0),
    ]
    missing = latency_rows(FULL, lite_unavailable(), {ETCD: latency(1.5, 3.4), LITE: None})
    assert [(r.etcdlite, r.etcdlite_note, r.etcd_note) for r in missing] == [(None, "n/a", "")] * 2


def test_range_row_rounds_reads_per_second_and_notes_errors() -> None:
    def load(ok: int, seconds: float, errors: int = 0) -> kvload.LoadResult:
        return kvload.LoadResult(ok, errors, seconds, "DEADLINE_EXCEEDED" if errors else "", 0.5, 1.2)

    row = range_row(
        FULL, "linearizable", both_running(), {ETCD: load(34531, 10.0), LITE: load(19286, 10.0, 3)}
    )
    assert (row.measurement, row.unit) == ("range linearizable, 100 clients", "reads/s")
    assert (row.etcd, row.etcdlite) == (3453, 1929)
    assert (row.etcd_note, row.etcdlite_note) == ("", "(3 errors)")
    missing = range_row(QUICK, "serializable", lite_unavailable(), {ETCD: load(5000, 1.0), LITE: None})
    assert (missing.etcdlite, missing.etcdlite_note) == (None, "n/a")


# --- memory ------------------------------------------------------------------------------------------


def memory(
    peak_mb: float, rss_mb: float | None = None, keys: int = 100_000, snapshotted: bool = True
) -> dict:
    rss = rss_mb if rss_mb is not None else peak_mb
    return {
        "keys": keys,
        "snapshotted": snapshotted,
        "rss": {"m0": int(rss * 1e6) - 5_000_000, "m1": int(rss * 1e6)},
        "peak_rss": {"m0": int(peak_mb * 1e6), "m1": int(peak_mb * 1e6) - 1_000_000},
    }


def test_memory_rows_show_the_largest_member_and_judge_etcdlites_peak_against_400_mb() -> None:
    rows = memory_rows(FULL, both_running(), {ETCD: memory(342.2), LITE: memory(380.0, rss_mb=357.1)})
    after, peak = rows
    assert after.measurement == "memory: VmRSS after its first snapshot, 100,000 keys of 1024 B"
    assert (after.etcd, after.etcdlite, after.target, after.target_met) == (342.2, 357.1, "", None)
    assert peak.measurement == "memory: peak VmHWM, load and snapshot, 100,000 keys of 1024 B"
    assert (peak.etcd, peak.etcdlite) == (342.2, 380.0)
    assert (peak.target, peak.target_met) == ("etcdlite < 400 MB at 100,000 keys", True)


@pytest.mark.parametrize(("peak_bytes", "met"), [(399_999_999, True), (400_000_000, False)])
def test_the_memory_target_is_strictly_below_400_mb(peak_bytes: int, met: bool) -> None:
    lite = memory(300.0)
    lite["peak_rss"]["m1"] = peak_bytes
    _, peak = memory_rows(FULL, both_running(), {ETCD: memory(342.2), LITE: lite})
    assert peak.target_met is met


def test_memory_is_not_judged_on_fewer_keys_and_says_why() -> None:
    short = memory(250.0, keys=73_512)
    _, peak = memory_rows(FULL, both_running(), {ETCD: memory(342.2), LITE: short})
    assert (peak.etcdlite_note, peak.target_met) == ("(73,512 keys only)", None)


def test_a_peak_without_the_snapshot_is_not_judged_and_says_why() -> None:
    # The target is about the peak that includes the first snapshot: a run whose members wrote none
    # within 60 s has a lower peak that proves nothing.
    unsnapshotted = memory(300.0, snapshotted=False)
    after, peak = memory_rows(FULL, both_running(), {ETCD: memory(342.2), LITE: unsnapshotted})
    assert after.etcdlite_note == peak.etcdlite_note == "(no snapshot within 60 s)"
    assert peak.target_met is None


def test_quick_or_missing_memory_figures_are_not_judged() -> None:
    quick = memory_rows(
        QUICK, both_running(), {ETCD: memory(80.0, keys=20_000), LITE: memory(90.0, keys=20_000)}
    )
    assert quick[0].measurement == "memory: VmRSS (no snapshot yet), 20,000 keys of 1024 B"
    assert (quick[1].target, quick[1].target_met) == ("etcdlite < 400 MB at 100,000 keys", None)
    assert (quick[1].etcd_note, quick[1].etcdlite_note) == ("", "")

    missing = memory_rows(FULL, lite_unavailable(), {ETCD: memory(342.2), LITE: None})
    assert [(r.etcdlite, r.etcdlite_note, r.target_met) for r in missing] == [(None, "n/a", None)] * 2


# --- failover ----------------------------------------------------------------------------------------


def runs(*pairs: tuple[float, float]) -> failover.FailoverResult:
    return failover.FailoverResult(
        [failover.FailoverRun(f"m{i % 3}", e, g, 3000, 40, 0.2, True) for i, (e, g) in enumerate(pairs)]
    )


def test_failover_rows_are_median_and_max_and_the_max_is_judged_against_2_s() -> None:
    etcd = runs((2.2870, 2.2621), (2.7488, 2.7252), (1.1886, 1.2659), (2.7208, 2.7087), (1.5, 1.6))
    lite = runs((1.1221, 1.2680), (1.4220, 1.5220), (0.9, 1.0), (1.2, 1.3), (1.0, 1.1))
    rows = failover_rows(both_running(), {ETCD: etcd, LITE: lite})
    assert [(r.measurement, r.etcd, r.etcdlite, r.target, r.target_met) for r in rows] == [
        ("failover, 3 members: new leader after kill, median of 5", 2.287, 1.122, "", None),
        ("failover, 3 members: new leader after kill, max of 5", 2.749, 1.422, "etcdlite < 2 s", True),
        ("failover, 3 members: longest write gap, median of 5", 2.262, 1.268, "", None),
        ("failover, 3 members: longest write gap, max of 5", 2.725, 1.522, "etcdlite < 2 s", True),
    ]


def test_a_failover_of_2_s_misses_the_target() -> None:
    slow = failover_rows(both_running(), {ETCD: runs((1.0, 1.0)), LITE: runs((1.0, 2.0), (0.5, 0.5))})
    assert [r.target_met for r in slow] == [None, True, None, False]


def test_a_failed_failover_reads_failed_and_misses_the_target() -> None:
    failed = failover_rows(
        both_running(), {ETCD: runs((1.0, 1.0)), LITE: "failed: no new leader within 10 s"}
    )
    assert [(r.etcdlite, r.etcdlite_note, r.target_met) for r in failed] == [
        (None, "FAILED", None),
        (None, "FAILED", False),
        (None, "FAILED", None),
        (None, "FAILED", False),
    ]
    missing = failover_rows(lite_unavailable(), {ETCD: runs((1.0, 1.0)), LITE: None})
    assert {(r.etcdlite_note, r.target_met) for r in missing} == {("n/a", None)}


# --- running the parts and the command line -------------------------------------------------------


def test_each_store_measures_etcd_then_etcdlite_and_skips_one_that_is_not_running() -> None:
    measured: list[StoreKind] = []

    def measure(cluster: Cluster) -> str:
        measured.append(cluster.kind)
        return f"measured {cluster.kind.value}"

    assert each_store(both_running(), measure) == {ETCD: "measured etcd", LITE: "measured etcdlite"}
    assert measured == [ETCD, LITE]
    assert each_store(lite_unavailable(), measure) == {ETCD: "measured etcd", LITE: None}


def test_command_line_defaults_and_quick() -> None:
    args = parse_args([])
    assert (args.loads, args.members, args.quick, args.json) == (["s", "m", "l"], 1, False, None)
    assert args.parts == ["checkperf", "latency", "range", "memory", "failover"]
    quick = parse_args(["--quick", "--members", "3", "--parts", "latency, memory", "--json", "out.json"])
    assert (quick.loads, quick.members, quick.parts, quick.json) == (
        ["s"],
        3,
        ["latency", "memory"],
        Path("out.json"),
    )
    assert parse_args(["--quick", "--loads", "m,xl"]).loads == ["m", "xl"]


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--loads", "s,huge"], "--loads: unknown load(s) huge; choose from s, m, l, xl"),
        (["--parts", "latency,speed"], "--parts: unknown part(s) speed"),
        (["--members", "2"], "argument --members: invalid choice: 2"),
    ],
)
def test_command_line_refuses_unknown_loads_parts_and_member_counts(
    argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err


def test_snapshots_are_awaited_on_every_member(tmp_path: Path) -> None:
    def member(name: str) -> Member:
        data_dir = tmp_path / f"{name}.etcd"
        data_dir.mkdir()
        return Member(name, None, "127.0.0.1:0", data_dir, tmp_path / f"{name}.log")  # type: ignore[arg-type]

    cluster = Cluster(LITE, [member("m0"), member("m1")], tmp_path)
    (tmp_path / "m0.etcd" / "member" / "raft" / "snap").mkdir(parents=True)
    (tmp_path / "m0.etcd" / "member" / "raft" / "snap" / "0000000000000002-0000000000002711.snap").touch()
    assert etcd_perf._await_snapshots(cluster, timeout=0) is False  # m1 has none yet
    (tmp_path / "m1.etcd" / "member" / "snap").mkdir(parents=True)  # etcd's layout
    (tmp_path / "m1.etcd" / "member" / "snap" / "0000000000000002-0000000000002711.snap").touch()
    assert etcd_perf._await_snapshots(cluster, timeout=0) is True


# --- the committed results -----------------------------------------------------------------------------

# Results written by the code of 2026-12-01 on (earlier ones had no snapshot in the memory part).
COMMITTED = sorted(RESULTS.glob("2026-12-01-*.json"))


def rows_from_details(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The table today's code makes of a results file's raw details, in the order the parts ran."""
    details = results["details"]
    sizes = QUICK if results["quick"] else FULL
    stores: Stores = {
        kind: results["unavailable"].get(kind.value) or Cluster(kind, [], Path("/nonexistent"))
        for kind in StoreKind
    }

    def per_store(part: str, make: Any) -> dict[StoreKind, Any]:
        raw = details[part]
        return {kind: None if raw.get(kind.value) is None else make(raw[kind.value]) for kind in StoreKind}

    def latency(raw: dict[str, Any]) -> kvload.PutLatencyResult:
        return kvload.PutLatencyResult(LatencySummary(**raw["summary"]), raw["errors"], raw["client"])

    def load(raw: dict[str, Any]) -> kvload.LoadResult:
        return kvload.LoadResult(**{k: v for k, v in raw.items() if k != "per_second"})

    def failovers(raw: list[dict[str, Any]] | str) -> failover.FailoverResult | str:
        return (
            raw if isinstance(raw, str) else failover.FailoverResult([failover.FailoverRun(**r) for r in raw])
        )

    rows: list[Row] = []
    for part in details:
        if part.startswith("checkperf_"):
            load_name = part.removeprefix("checkperf_")
            rows += checkperf_rows(
                load_name, stores, per_store(part, lambda r: checkperf.CheckPerfResult(**r))
            )
        elif part == "put_latency":
            rows += latency_rows(sizes, stores, per_store(part, latency))
        elif part in ("range_linearizable", "range_serializable"):
            rows.append(range_row(sizes, part.removeprefix("range_"), stores, per_store(part, load)))
        elif part == "memory":
            rows += memory_rows(sizes, stores, per_store(part, lambda r: r))
        elif part == "failover":
            rows += failover_rows(stores, per_store(part, failovers))
    return [asdict(row) for row in rows]


def test_there_are_committed_results_to_check() -> None:
    assert len(COMMITTED) >= 5, COMMITTED


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_a_committed_table_follows_from_its_raw_details(path: Path) -> None:
    results = json.loads(path.read_text())
    assert rows_from_details(results) == results["rows"]


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_committed_check_perf_figures_parse_again_from_etcdctls_output(path: Path) -> None:
    details = json.loads(path.read_text())["details"]
    for part in (p for p in details if p.startswith("checkperf_")):
        for kind in StoreKind:
            raw = details[part].get(kind.value)
            if raw is None:
                continue
            stored = checkperf.CheckPerfResult(**raw)
            parsed = checkperf.parse_check_perf(stored.load, stored.output, stored.exit_code)
            assert replace(parsed, output="") == replace(stored, output=""), (path.name, part, kind)
