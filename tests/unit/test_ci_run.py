"""CI runs the suite as written: a variable that would shrink it fails .ci/run before anything runs,
and a run whose sized tests came out smaller than their defaults fails the size check."""

from __future__ import annotations

import json
import subprocess

from tests import support
from tests.sizes import DEFAULTS, main, shortfalls
from tests.support import ROOT


def test_raft_sim_seeds_0_fails_ci_at_once():
    result = subprocess.run(
        [str(ROOT / ".ci" / "run")], env={"PATH": "/usr/bin:/bin", "RAFT_SIM_SEEDS": "0"},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert "unset RAFT_SIM_SEEDS=0" in result.stderr, result.stderr


def test_pytest_addopts_fails_ci_too():
    result = subprocess.run(
        [str(ROOT / ".ci" / "run")], env={"PATH": "/usr/bin:/bin", "PYTEST_ADDOPTS": "-k nothing"},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1 and "PYTEST_ADDOPTS=-k nothing" in result.stderr, result.stderr


def test_a_run_smaller_than_the_defaults_fails_the_size_check(tmp_path):
    assert shortfalls(dict(DEFAULTS)) == []
    assert shortfalls({**DEFAULTS, "raft_sim_seeds": 1999}) == [
        "raft_sim_seeds ran 1999 (the default is 2000)"
    ]
    assert shortfalls({"lincheck_seconds": 3.0}) == ["raft_sim_seeds ran not at all (the default is 2000)"]
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"raft_sim_seeds": 0, "lincheck_seconds": 3}))
    assert main(["sizes", str(report)]) == 1
    report.write_text(json.dumps({"raft_sim_seeds": 20000, "lincheck_seconds": 30}))
    assert main(["sizes", str(report)]) == 0


def test_ci_runs_the_readme_test_command():
    commands = support.commands(support.sh_blocks("## Quickstart")[0])
    assert commands == ["make up", "make test"], commands
