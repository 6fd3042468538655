"""`etcdctl check perf --load=<load>` against a store, and the parsing of what it prints.

etcdctl 3.4 prints (after a progress bar drawn with carriage returns) one line per criterion:
`PASS: Throughput is N writes/s` or `FAIL: Throughput too low: N writes/s`,
`PASS: Slowest request took Xs` or `Slowest request took too long: Xs`,
`PASS: Stddev is Xs` or `Stddev too high: Xs`, error lines `FAIL: ERROR(<err>) -> N`, and a
final `PASS` or `FAIL` (exit code 1). A prefix that still has keys ends it early with
`Error: prefix ... has keys`. `parse_check_perf` is pure; `run_check_perf` runs the binary.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field

from bench.stores import die_with_parent, etcdctl_env

LOADS = ("s", "m", "l", "xl")
# (writes/s limit, clients, seconds) per load, as in etcdctl 3.4's check.go
LOAD_LIMITS = {"s": (150, 50, 60), "m": (1000, 200, 60), "l": (8000, 500, 60), "xl": (15000, 1000, 60)}
RUN_TIMEOUT = 60 + 90.0  # the 60 s load, its final DeleteRange (30 s deadline) and start-up
CHECK_PERF_PREFIX = b"/etcdctl-check-perf/"

# Not anchored: the bar's last redraw races with the first result line and may share its line.
_THROUGHPUT = re.compile(r"(PASS|FAIL): Throughput (?:is|too low:) (\d+) writes/s")
_SLOWEST = re.compile(r"(PASS: )?Slowest request took (too long: )?([0-9.]+)s")
_STDDEV = re.compile(r"(PASS: )?Stddev (is|too high:) ([0-9.]+)s")


@dataclass
class CheckPerfResult:
    load: str
    passed: bool
    exit_code: int
    throughput: int | None = None  # writes/s, as etcdctl prints it
    throughput_passed: bool | None = None
    slowest_s: float | None = None
    slowest_passed: bool | None = None
    stddev_s: float | None = None
    stddev_passed: bool | None = None
    errors: list[str] = field(default_factory=list)
    output: str = ""

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"


def output_lines(output: str) -> list[str]:
    """Lines of output with the progress bar's carriage-return redraws split off and blanks dropped."""
    return [part.strip() for part in re.split(r"[\r\n]+", output) if part.strip()]


def parse_check_perf(load: str, output: str, exit_code: int) -> CheckPerfResult:
    result = CheckPerfResult(load=load, passed=False, exit_code=exit_code, output=output)
    final: str | None = None
    for line in output_lines(output):
        if match := _THROUGHPUT.search(line):
            result.throughput = int(match.group(2))
            result.throughput_passed = match.group(1) == "PASS"
        elif match := _SLOWEST.search(line):
            result.slowest_s = float(match.group(3))
            result.slowest_passed = match.group(1) is not None and match.group(2) is None
        elif match := _STDDEV.search(line):
            result.stddev_s = float(match.group(3))
            result.stddev_passed = match.group(1) is not None and match.group(2) == "is"
        elif line in ("PASS", "FAIL"):
            final = line
        elif line.startswith(("FAIL: ERROR", "FAIL: too many errors", "FAIL: Cleanup", "Error:")):
            result.errors.append(line)
    result.passed = final == "PASS" and exit_code == 0
    if final is None and not result.errors:
        result.errors.append(f"etcdctl exited {exit_code} without a PASS/FAIL verdict")
    return result


def run_check_perf(endpoints: str, load: str, timeout: float = RUN_TIMEOUT) -> CheckPerfResult:
    """Run the real etcdctl (API v3); a run that overruns is killed and reported as a failure."""
    if load not in LOADS:
        raise ValueError(f"check perf load must be one of {', '.join(LOADS)}, not {load!r}")
    etcdctl = shutil.which("etcdctl")
    if etcdctl is None:
        raise RuntimeError("etcdctl not found on PATH: install Debian's etcd-client package")
    argv = [etcdctl, f"--endpoints={endpoints}", "check", "perf", f"--load={load}"]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=etcdctl_env(),
            timeout=timeout,
            preexec_fn=die_with_parent,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        result = parse_check_perf(load, out, -9)
        result.errors.append(f"etcdctl check perf did not finish within {timeout:.0f}s; killed")
        return result
    return parse_check_perf(load, done.stdout + done.stderr, done.returncode)
