"""Hollow containers that finish: the command lines the fake runtime understands, and containers
that exit on the runtime's clock."""

from __future__ import annotations

import asyncio

import pytest

from kubelet.fake_runtime import FakeRuntime
from kubelet.runtime import ContainerConfig, ContainerState, SandboxConfig
from kubelet.simulated import SimulatedRun, simulate


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        (["sh", "-c", "sleep 2; exit 1"], None, SimulatedRun(2.0, 1)),
        (["sleep", "5"], None, SimulatedRun(5.0, 0)),
        (["true"], None, SimulatedRun(0.0, 0)),
        (["false"], None, SimulatedRun(0.0, 1)),
        (["/bin/sh", "-c"], ["sleep 1 && sleep 2 && exit 3"], SimulatedRun(3.0, 3)),
        (["sh", "-c", "false && sleep 9; echo done"], None, SimulatedRun(0.0, 0, b"done\n")),
        (["sh", "-c", "sleep 1; false"], None, SimulatedRun(1.0, 1)),
        (["sh", "-c", "false; exit"], None, SimulatedRun(0.0, 1)),
        (
            ["sh", "-c", "echo index $JOB_COMPLETION_INDEX; exit ${CODE}"],
            None,
            SimulatedRun(0, 4, b"index 2\n"),
        ),
        (["echo", "hello", "world"], None, SimulatedRun(0.0, 0, b"hello world\n")),
        (["sh", "-c", "sleep 0.5;"], None, SimulatedRun(0.5, 0)),
    ],
)
def test_understood_command_lines_run_for_their_sleeps_and_exit_with_the_shells_status(
    command, args, expected
):
    assert simulate(command, args, {"JOB_COMPLETION_INDEX": "2", "CODE": "4"}) == expected


@pytest.mark.parametrize(
    ("command", "args"),
    [
        (None, None),  # the image's own entrypoint: unknown
        (["/whoami"], None),
        (["sh", "-c", "while true; do sleep 1; done"], None),
        (["sh", "-c", "cat /etc/hosts | wc -l"], None),
        (["sh", "-c", "sleep forever"], None),
        (["exit", "1"], None),
        (["sleep"], ["1", "2"]),
    ],
)
def test_anything_else_runs_until_stopped(command, args):
    assert simulate(command, args) is None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_container_exits_on_the_runtimes_clock_with_its_code_and_log():
    clock = Clock()
    rt = FakeRuntime(all_images_present=True, clock=clock)

    async def start(name: str, command: list[str] | None) -> str:
        sandbox = await rt.run_sandbox(SandboxConfig(f"{name}-pause", "pause", name, "net", {}))
        cid = await rt.create_container(
            ContainerConfig(name=name, image="img", sandbox_id=sandbox, labels={}, entrypoint=command)
        )
        await rt.start_container(cid)
        return cid

    async def scenario() -> None:
        failing = await start("a", ["sh", "-c", "echo hi; sleep 2; exit 1"])
        server = await start("b", None)
        states = {c.id: c.state for c in await rt.list_containers()}
        assert states[failing] is ContainerState.RUNNING
        clock.now += 2
        by_id = {c.id: c for c in await rt.list_containers()}
        assert by_id[failing].state is ContainerState.EXITED and by_id[failing].exit_code == 1
        assert by_id[failing].finished_at == "1970-01-01T00:16:42Z"
        assert by_id[server].state is ContainerState.RUNNING
        assert [line async for line in rt.logs(failing)] == [b"hi\n"]
        clock.now += 3600
        assert by_id[server].state is ContainerState.RUNNING

    asyncio.run(scenario())
