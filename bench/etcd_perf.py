"""`python -m bench.etcd_perf`: real etcd 3.4 and etcdlite side by side, same loads, both figures
and the ratio etcdlite/etcd, against issue 3's targets.

Parts (each on a fresh pair of stores, both up at once, measured one after the other):
  checkperf  `etcdctl check perf --load=<l>` per load (60 s per store per load), prefix cleared
             and compacted before every run;
  latency    sequential Puts of 256 B, p50/p99;
  range      single-key Range throughput, linearizable then serializable, 100 clients;
  memory     100,000 Puts of 1 KiB, then every member's first snapshot (both stores take one every
             100,000 entries by default): VmRSS after it, and the peak VmHWM over load and
             snapshot (the 400 MB target is judged on the peak);
  failover   leader SIGKILLed under a write load on 3 members, 3 times: time to a new leader and the
             longest gap between acknowledged writes (median and max).
Every store process and temporary directory is removed at the end, also on Ctrl-C or failure.
Progress goes to stderr, the table to stdout, everything to `--json`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from bench import checkperf, failover, kvload, memory
from bench.report import Row, format_table, to_json
from bench.stores import Cluster, StoreKind, StoreUnavailable, running_cluster
from kubelite.waiting import WaitTimeout, wait_for

log = logging.getLogger("bench.etcd_perf")

T = TypeVar("T")
PARTS = ("checkperf", "latency", "range", "memory", "failover")
MEMORY_TARGET_BYTES = 400 * 1000 * 1000
SNAPSHOT_COUNT = 100_000  # etcd 3.4's and etcdlite's default --snapshot-count
SNAPSHOT_WAIT_SECONDS = 60.0
L_LOAD_TARGET_RATIO = 0.5
RANGE_PREFIX = b"/bench/range/"
MEMORY_PREFIX = b"/bench/memory/"


@dataclass(frozen=True)
class Sizes:
    """How much of each load to run; --quick shortens everything but check perf's fixed 60 s."""

    put_count: int
    put_time_limit: float
    range_keys: int
    range_seconds: float
    range_clients: int
    range_channels: int
    memory_keys: int
    memory_time_limit: float
    value_size_latency: int = 256
    value_size_memory: int = 1024


FULL = Sizes(2000, 60, 1000, 10, 100, 4, 100_000, 600)
QUICK = Sizes(500, 20, 1000, 3, 100, 4, 20_000, 120)

Stores = dict[StoreKind, Cluster | str]  # a running cluster, or why the store could not start


@contextlib.contextmanager
def store_pair(members: int) -> Iterator[Stores]:
    """Both stores, fresh; etcd must start, etcdlite may decline (then its reason stands in)."""
    with contextlib.ExitStack() as stack:
        stores: Stores = {}
        for kind in StoreKind:
            try:
                stores[kind] = stack.enter_context(running_cluster(kind, members))
            except StoreUnavailable as exc:
                if kind is StoreKind.ETCD:
                    raise
                reason = [line for line in str(exc).splitlines() if line.strip()][-1]
                log.warning("%s not measured: %s", kind.value, reason)
                stores[kind] = reason
        yield stores


def each_store(stores: Stores, measure: Callable[[Cluster], T]) -> dict[StoreKind, T | None]:
    """Run `measure` on etcd, then on etcdlite; None for a store that is not running."""
    results: dict[StoreKind, T | None] = {}
    for kind, cluster in stores.items():
        if isinstance(cluster, str):
            results[kind] = None
            continue
        log.info("  %s ...", kind.value)
        results[kind] = measure(cluster)
    return results


def _pids(cluster: Cluster) -> list[int]:
    return [m.pid for m in cluster.members]


def _note(stores: Stores, kind: StoreKind, note: str = "") -> str:
    return "n/a" if isinstance(stores[kind], str) else note


class Benchmark:
    def __init__(self, loads: Sequence[str], members: int, sizes: Sizes, quick: bool) -> None:
        self.loads = loads
        self.members = members
        self.sizes = sizes
        self.quick = quick
        self.rows: list[Row] = []
        self.details: dict[str, Any] = {}
        self.unavailable: dict[str, str] = {}

    def _remember_unavailable(self, stores: Stores) -> None:
        for kind, cluster in stores.items():
            if isinstance(cluster, str):
                self.unavailable[kind.value] = cluster

    def run(self, parts: Sequence[str]) -> None:
        for part in parts:
            log.info("== %s", part)
            getattr(self, f"part_{part}")()

    def part_checkperf(self) -> None:
        with store_pair(self.members) as stores:
            self._remember_unavailable(stores)
            for load in self.loads:
                loadavgs: dict[str, tuple[float, float]] = {}  # how busy the machine was, before/after

                def check(
                    cluster: Cluster, load: str = load, loadavgs: dict[str, tuple[float, float]] = loadavgs
                ) -> checkperf.CheckPerfResult:
                    kvload.clear_prefix(cluster.addresses[0], checkperf.CHECK_PERF_PREFIX)
                    busy_before = os.getloadavg()[0]
                    result = checkperf.run_check_perf(cluster.endpoints, load)
                    loadavgs[cluster.kind.value] = (busy_before, os.getloadavg()[0])
                    log.info(
                        "    check perf --load=%s: %s, %s writes/s, slowest %ss, stddev %ss %s",
                        load,
                        result.verdict,
                        result.throughput,
                        result.slowest_s,
                        result.stddev_s,
                        "; ".join(result.errors),
                    )
                    return result

                log.info("check perf --load=%s (60 s per store)", load)
                results = each_store(stores, check)
                self.rows += checkperf_rows(load, stores, results)
                self.details[f"checkperf_{load}"] = {
                    k.value: None if r is None else {**asdict(r), "output": r.output[-2000:]}
                    for k, r in results.items()
                }
                self.details[f"checkperf_{load}"]["loadavg_1m_before_after"] = loadavgs

    def part_latency(self) -> None:
        s = self.sizes
        log.info("put latency: %d sequential Puts of %d bytes", s.put_count, s.value_size_latency)
        with store_pair(self.members) as stores:
            self._remember_unavailable(stores)
            results = each_store(
                stores,
                lambda c: kvload.put_latency(
                    c.addresses[0], s.put_count, s.value_size_latency, s.put_time_limit
                ),
            )
        self.rows += latency_rows(s, stores, results)
        self.details["put_latency"] = {k.value: None if r is None else asdict(r) for k, r in results.items()}
        self.details["put_latency_client"] = kvload.client_description(concurrent=False)

    def part_range(self) -> None:
        s = self.sizes
        with store_pair(self.members) as stores:
            self._remember_unavailable(stores)
            log.info("range: preloading %d keys of %d bytes", s.range_keys, s.value_size_latency)
            each_store(
                stores, lambda c: self._bulk_put(c, RANGE_PREFIX, s.range_keys, s.value_size_latency, 60)
            )
            for serializable in (False, True):
                mode = "serializable" if serializable else "linearizable"
                log.info(
                    "range %s: %d clients over %d channels for %.0f s",
                    mode,
                    s.range_clients,
                    s.range_channels,
                    s.range_seconds,
                )
                results = each_store(
                    stores,
                    lambda c, serializable=serializable: asyncio.run(
                        kvload.range_throughput(
                            c.addresses,
                            _pids(c),
                            RANGE_PREFIX,
                            s.range_keys,
                            serializable,
                            s.range_seconds,
                            s.range_clients,
                            s.range_channels,
                        )
                    ),
                )
                for kind, result in results.items():
                    if result is not None:
                        log.info(
                            "    %s: %.0f reads/s, %d errors %s; client CPU %.2f cores, store CPU %.2f cores",
                            kind.value,
                            result.per_second,
                            result.errors,
                            result.first_error,
                            result.client_cpu_cores,
                            result.server_cpu_cores,
                        )
                self.rows.append(range_row(s, mode, stores, results))
                self.details[f"range_{mode}"] = {
                    k.value: None if r is None else {**asdict(r), "per_second": r.per_second}
                    for k, r in results.items()
                }
        self.details["range_client"] = kvload.client_description(concurrent=True)

    def _bulk_put(
        self, cluster: Cluster, prefix: bytes, count: int, size: int, limit: float
    ) -> kvload.LoadResult:
        result = asyncio.run(kvload.bulk_put(cluster.addresses, _pids(cluster), prefix, count, size, limit))
        log.info(
            "    %s: %d Puts in %.1f s (%.0f/s), %d errors %s",
            cluster.kind.value,
            result.ok,
            result.seconds,
            result.per_second,
            result.errors,
            result.first_error,
        )
        return result

    def part_memory(self) -> None:
        s = self.sizes
        log.info("memory: %d keys of %d bytes, 100 Puts in flight", s.memory_keys, s.value_size_memory)

        def fill(cluster: Cluster) -> dict[str, Any]:
            idle = max(memory.rss_bytes(p) for p in _pids(cluster))
            load = self._bulk_put(
                cluster, MEMORY_PREFIX, s.memory_keys, s.value_size_memory, s.memory_time_limit
            )
            snapshotted = load.ok >= SNAPSHOT_COUNT and _await_snapshots(cluster, SNAPSHOT_WAIT_SECONDS)
            rss = {m.name: memory.rss_bytes(m.pid) for m in cluster.members}
            peak = {m.name: memory.peak_rss_bytes(m.pid) for m in cluster.members}
            return {
                "idle_rss": idle,
                "load": asdict(load),
                "snapshotted": snapshotted,
                "rss": rss,
                "peak_rss": peak,
                "keys": load.ok,
            }

        with store_pair(self.members) as stores:
            self._remember_unavailable(stores)
            results = each_store(stores, fill)
        self.rows += memory_rows(s, stores, results)
        self.details["memory"] = {k.value: r for k, r in results.items()}

    def part_failover(self) -> None:
        """Always on 3 members (a failover needs a quorum to survive), whatever --members says."""
        log.info(
            "failover: %d kills of the leader under %d writing clients, %d members per store",
            failover.KILLS,
            failover.CLIENTS,
            failover.MEMBERS,
        )

        def measure(cluster: Cluster) -> failover.FailoverResult | str:
            try:
                result = failover.measure_failover(cluster)
            except RuntimeError as exc:  # a store that does not fail over is a result, not a crash
                log.error("    %s: failover failed: %s", cluster.kind.value, exc)
                return f"failed: {exc}"
            for run in result.runs:
                log.info(
                    "    %s: killed %s, new leader after %.3f s, longest write gap %.3f s "
                    "(%d Puts ok, %d failed), rejoined in %.1f s, leader kept: %s",
                    cluster.kind.value,
                    run.killed,
                    run.election_s,
                    run.write_gap_s,
                    run.puts_ok,
                    run.puts_failed,
                    run.rejoin_s,
                    run.leader_kept_on_rejoin,
                )
            return result

        with store_pair(failover.MEMBERS) as stores:
            self._remember_unavailable(stores)
            results = each_store(stores, measure)
        self.rows += failover_rows(stores, results)
        self.details["failover"] = {
            k.value: r if r is None or isinstance(r, str) else [asdict(run) for run in r.runs]
            for k, r in results.items()
        }
        self.details["failover_settings"] = {
            "members": failover.MEMBERS,
            "kills": failover.KILLS,
            "clients": failover.CLIENTS,
            "put_timeout_s": failover.PUT_TIMEOUT_S,
            "status_poll_s": failover.POLL_S,
            "heartbeat_ms": 100,
            "election_timeout_ms": 1000,
        }


def latency_rows(
    sizes: Sizes, stores: Stores, results: dict[StoreKind, kvload.PutLatencyResult | None]
) -> list[Row]:
    """p50 and p99 of the sequential Puts, in milliseconds."""
    etcd, lite = results[StoreKind.ETCD], results[StoreKind.ETCDLITE]
    return [
        Row(
            f"put latency {name[:3]}, 1 client, {sizes.value_size_latency} B",
            "ms",
            None if etcd is None else getattr(etcd.summary, name),
            None if lite is None else getattr(lite.summary, name),
            _note(stores, StoreKind.ETCD),
            _note(stores, StoreKind.ETCDLITE),
        )
        for name in ("p50_ms", "p99_ms")
    ]


def range_row(
    sizes: Sizes, mode: str, stores: Stores, results: dict[StoreKind, kvload.LoadResult | None]
) -> Row:
    """Range reads per second in one mode (linearizable or serializable), with the errors if any."""
    etcd, lite = results[StoreKind.ETCD], results[StoreKind.ETCDLITE]
    return Row(
        f"range {mode}, {sizes.range_clients} clients",
        "reads/s",
        None if etcd is None else round(etcd.per_second),
        None if lite is None else round(lite.per_second),
        _errors_note(stores, StoreKind.ETCD, etcd),
        _errors_note(stores, StoreKind.ETCDLITE, lite),
    )


def checkperf_rows(
    load: str, stores: Stores, results: dict[StoreKind, checkperf.CheckPerfResult | None]
) -> list[Row]:
    """The rows of one check perf load: each criterion with etcdctl's PASS/FAIL per store. Load l is
    judged on the throughput ratio etcdlite/etcd, load m on etcdlite's own verdict."""
    etcd, lite = results[StoreKind.ETCD], results[StoreKind.ETCDLITE]

    def criterion(name: str, unit: str, value: str | None, passed: str) -> Row:
        """The row of one criterion: the `value` field of each store's result (None: no value) and
        its `passed` field as PASS/FAIL ("?": etcdctl did not say), or why the store has no result."""

        def figure(result: checkperf.CheckPerfResult | None) -> float | None:
            return None if result is None or value is None else getattr(result, value)

        def note(result: checkperf.CheckPerfResult | None, kind: StoreKind) -> str:
            if result is None:
                return _note(stores, kind)
            return {True: "PASS", False: "FAIL", None: "?"}[getattr(result, passed)]

        return Row(
            f"check perf --load={load} {name}",
            unit,
            figure(etcd),
            figure(lite),
            note(etcd, StoreKind.ETCD),
            note(lite, StoreKind.ETCDLITE),
        )

    throughput = criterion("throughput", "writes/s", "throughput", "throughput_passed")
    if load == "l":
        throughput.target = f"etcdlite >= {L_LOAD_TARGET_RATIO} x etcd"
        throughput.target_met = None if throughput.ratio is None else throughput.ratio >= L_LOAD_TARGET_RATIO
    verdict = criterion("verdict", "", None, "passed")
    if load == "m":
        verdict.target = "etcdlite passes"
        verdict.target_met = None if lite is None else lite.passed
    return [
        throughput,
        criterion("slowest request", "s", "slowest_s", "slowest_passed"),
        criterion("stddev", "s", "stddev_s", "stddev_passed"),
        verdict,
    ]


def memory_rows(sizes: Sizes, stores: Stores, results: dict[StoreKind, dict[str, Any] | None]) -> list[Row]:
    """VmRSS after the load (and the first snapshot) and the peak VmHWM, the largest member's, in MB.
    The 400 MB target is judged on etcdlite's peak, and only after the full 100,000 keys went in
    and every member wrote its first snapshot (a peak without it is not the peak the target is about)."""
    s = sizes
    etcd, lite = results[StoreKind.ETCD], results[StoreKind.ETCDLITE]

    def mb(result: dict[str, Any] | None, figure: str) -> float | None:
        return None if result is None else round(max(result[figure].values()) / 1e6, 1)

    def keys_note(kind: StoreKind, result: dict[str, Any] | None) -> str:
        if result is None:
            return _note(stores, kind)
        if result["keys"] != s.memory_keys:
            return f"({result['keys']:,} keys only)"
        if result["keys"] >= SNAPSHOT_COUNT and not result["snapshotted"]:
            return f"(no snapshot within {SNAPSHOT_WAIT_SECONDS:.0f} s)"
        return ""

    rows = []
    after = "after its first snapshot" if s.memory_keys >= SNAPSHOT_COUNT else "(no snapshot yet)"
    for figure, label in (("rss", f"VmRSS {after}"), ("peak_rss", "peak VmHWM, load and snapshot")):
        row = Row(
            f"memory: {label}, {s.memory_keys:,} keys of {s.value_size_memory} B",
            "MB",
            mb(etcd, figure),
            mb(lite, figure),
            keys_note(StoreKind.ETCD, etcd),
            keys_note(StoreKind.ETCDLITE, lite),
            target="etcdlite < 400 MB at 100,000 keys" if figure == "peak_rss" else "",
        )
        full = s.memory_keys == FULL.memory_keys
        # judged only on the full load with its first snapshot taken: the peak the target is about
        judged = figure == "peak_rss" and lite is not None and full and lite["keys"] == s.memory_keys
        if judged and lite["snapshotted"]:
            row.target_met = max(lite["peak_rss"].values()) < MEMORY_TARGET_BYTES
        rows.append(row)
    return rows


def failover_rows(
    stores: Stores, results: dict[StoreKind, failover.FailoverResult | str | None]
) -> list[Row]:
    """Median and max over the kills of the time to a new leader and of the longest write gap; the
    2 s target is judged on etcdlite's max. A store whose failover failed reads FAILED, and etcdlite
    failing misses the target."""

    def figure(kind: StoreKind, what: str, stat: str) -> tuple[float | None, str]:
        result = results[kind]
        if result is None:
            return None, _note(stores, kind)
        if isinstance(result, str):
            return None, "FAILED"
        return round(getattr(getattr(result, what), stat), 3), ""

    rows = []
    labels = {"election": "new leader after kill", "write_gap": "longest write gap"}
    for what, label in labels.items():
        for stat in ("median", "max"):
            etcd, etcd_note = figure(StoreKind.ETCD, what, stat)
            lite, lite_note = figure(StoreKind.ETCDLITE, what, stat)
            row = Row(
                f"failover, 3 members: {label}, {stat} of {failover.KILLS}",
                "s",
                etcd,
                lite,
                etcd_note,
                lite_note,
            )
            if stat == "max":
                row.target = f"etcdlite < {failover.TARGET_SECONDS:.0f} s"
                if lite is not None:
                    row.target_met = lite < failover.TARGET_SECONDS
                elif isinstance(results[StoreKind.ETCDLITE], str):
                    row.target_met = False  # it did not fail over at all
            rows.append(row)
    return rows


def _await_snapshots(cluster: Cluster, timeout: float) -> bool:
    """Until every member has written a snapshot file (etcd: member/snap/*.snap, etcdlite:
    member/raft/snap/*.snap); False if one has not within `timeout`."""
    try:
        wait_for(
            lambda: all(any(m.data_dir.rglob("*.snap")) for m in cluster.members),
            f"a snapshot file from every {cluster.kind.value} member",
            timeout=timeout,
            interval=0.5,
        )
    except WaitTimeout as exc:
        log.warning("%s", exc)
        return False
    return True


def _errors_note(stores: Stores, kind: StoreKind, result: kvload.LoadResult | None) -> str:
    if result is None:
        return _note(stores, kind)
    return f"({result.errors} errors)" if result.errors else ""


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return out.splitlines()[0] if out else "unknown"


def _context(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    return {
        "command": "python -m bench.etcd_perf " + " ".join(argv),
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_at_start": os.getloadavg(),
            "kernel": platform.release(),
        },
        "etcd": _version([shutil.which("etcd") or "etcd", "--version"]),
        "etcdctl": _version([shutil.which("etcdctl") or "etcdctl", "version"]),
        "python_client": kvload.client_description(concurrent=True),
        "members": args.members,
        "quick": args.quick,
    }


def _raise_interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.etcd_perf",
        description="Real etcd 3.4 and etcdlite side by side: same loads, both figures, ratio etcdlite/etcd.",
    )
    parser.add_argument(
        "--loads", help="check perf loads, comma-separated from s,m,l,xl (default s,m,l; s with --quick)"
    )
    parser.add_argument(
        "--members", type=int, choices=(1, 3), default=1, help="members per store (default 1)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="check perf s only; shorter latency, range and memory runs"
    )
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"which parts to run (default {','.join(PARTS)})"
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    args = parser.parse_args(list(argv))
    loads = args.loads or ("s" if args.quick else "s,m,l")
    args.loads = [x.strip() for x in loads.split(",") if x.strip()]
    bad = [x for x in args.loads if x not in checkperf.LOADS]
    if bad:
        parser.error(f"--loads: unknown load(s) {', '.join(bad)}; choose from {', '.join(checkperf.LOADS)}")
    args.parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    bad = [x for x in args.parts if x not in PARTS]
    if bad:
        parser.error(f"--parts: unknown part(s) {', '.join(bad)}; choose from {', '.join(PARTS)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr
    )
    signal.signal(signal.SIGTERM, _raise_interrupt)  # SIGTERM cleans up like Ctrl-C
    context = _context(args, argv)
    bench = Benchmark(args.loads, args.members, QUICK if args.quick else FULL, args.quick)
    code = 0
    try:
        bench.run(args.parts)
    except KeyboardInterrupt:
        log.error("interrupted; every store was stopped and its data removed; partial results follow")
        code = 130
    except Exception:
        log.exception(
            "the benchmark failed; every store was stopped and its data removed; partial results follow"
        )
        code = 1
    context["finished"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    context["machine"]["loadavg_at_end"] = os.getloadavg()
    context["unavailable"] = bench.unavailable
    machine = f"{context['machine']['cpus']} CPUs, {context['etcd']}, members={args.members}"
    print(f"# {context['command']}  ({machine})")
    print(format_table(bench.rows))
    for kind, reason in bench.unavailable.items():
        print(f"n/a: {kind} not measured: {reason}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(to_json(bench.rows, context, bench.details) + "\n")
        log.info("wrote %s", args.json)
    return code


if __name__ == "__main__":
    sys.exit(main())
