"""The README as a new user meets it: its quickstart (`make up`, compose on the default addresses
and ports) and its local-processes mode (`kubelite up`), each followed by the README's first
session exactly as written, run by bash with `set -e`, and the README's way down.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.support import ROOT, commands, env_with, sh_blocks

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


def created_files(session: str) -> list[str]:
    """The files the session writes with `cat > FILE`."""
    return re.findall(r"^cat > (\S+)", session, re.MULTILINE)


def bash(script: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def ways_up_and_down() -> dict[str, tuple[str, str]]:
    quickstart = commands(sh_blocks("## Quickstart")[0])
    local = commands(sh_blocks("### Local processes")[0])
    return {"compose": (quickstart[0], "make down"), "local": (local[0], local[1])}


@pytest.mark.parametrize("mode", ["compose", "local"])
def test_the_readme_session_works_as_written(mode, images):
    up, down = ways_up_and_down()[mode]
    session = sh_blocks("## Using it")[0]
    env = env_with()  # the isolated KUBECONFIG and kubelite state of the test session
    started = bash(up, env, timeout=600)
    try:
        assert started.returncode == 0, f"{up} failed:\n{started.stdout}\n{started.stderr}"
        ran = bash(session, env, timeout=600)
        assert ran.returncode == 0, f"the README session failed under {mode}:\n{ran.stdout}\n{ran.stderr}"
        print(ran.stdout)
        # the session ends with curl on NodePort 30080 reaching a pod of the rolled-out 2.0 release
        assert re.search(r"^web-[a-z0-9]+-[a-z0-9]{5} 2\.0$", ran.stdout, re.MULTILINE), ran.stdout
        assert 'deployment "web" successfully rolled out' in ran.stdout, ran.stdout
        workloads = bash(sh_blocks("### The other workload kinds")[0], env, timeout=900)
        out = workloads.stdout
        assert workloads.returncode == 0, (
            f"the README's workload kinds failed under {mode}:\n{out}\n{workloads.stderr}"
        )
        print(out)
        assert out.count('daemon set "node-agent" successfully rolled out') == 2, out
        assert "partitioned roll out complete: 3 new pods have been updated..." in out, out
        assert {"item 0 done", "item 1 done", "item 2 done"} <= set(out.splitlines()), out
        assert "job.batch/hello-now condition met" in out and "node/node-2 drained" in out, out
        assert re.search(r"^web\s+2\s+N/A\s+1\s", out, re.MULTILINE), out  # kubectl get pdb web
    finally:
        stopped = bash(down, env, timeout=300)
        for leftover in created_files(session):  # a session that failed half way leaves them
            (ROOT / leftover).unlink(missing_ok=True)
    assert stopped.returncode == 0, f"{down} failed:\n{stopped.stdout}\n{stopped.stderr}"


def test_the_readme_names_its_ways_up_and_down():
    assert ways_up_and_down() == {
        "compose": ("make up", "make down"),
        "local": (".venv/bin/kubelite up", ".venv/bin/kubelite down"),
    }
