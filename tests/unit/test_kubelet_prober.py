"""Probe thresholds, initial results, and exec probes driving results through the fake runtime."""

import asyncio

import pytest

from kubelet import labels as lbl
from kubelet.fake_runtime import FakeRuntime
from kubelet.podstate import pod_state
from kubelet.prober import (
    ProbeCounter,
    ProbeManager,
    ProbeSettings,
    ProbeType,
    _reported,
    initial_result,
    resolve_port,
)
from kubelet.runtime import ContainerConfig, ExecResult, SandboxConfig


def test_counter_needs_consecutive_results_to_flip():
    c = ProbeCounter(ProbeSettings(success_threshold=2, failure_threshold=3), initial=False)
    assert not c.observe(True)
    assert c.observe(True) and c.result is True
    assert not c.observe(False) and not c.observe(False)
    assert not c.observe(True)  # resets the failure count
    assert not c.observe(False) and not c.observe(False)
    assert c.observe(False) and c.result is False


def test_initial_results_and_defaults():
    assert initial_result(ProbeType.READINESS) is False
    assert initial_result(ProbeType.LIVENESS) is True
    assert initial_result(ProbeType.STARTUP) is None
    s = ProbeSettings.of({})
    assert (s.initial_delay, s.period, s.timeout, s.success_threshold, s.failure_threshold) == (
        0,
        10,
        1,
        1,
        3,
    )


def test_resolve_port_by_number_or_name():
    container = {"ports": [{"name": "http", "containerPort": 8080}]}
    assert resolve_port(container, 81) == 81
    assert resolve_port(container, "82") == 82
    assert resolve_port(container, "http") == 8080
    with pytest.raises(ValueError):
        resolve_port(container, "grpc")


def test_reported_readiness_survives_a_kubelet_restart_only_for_the_same_container():
    pod = {"status": {"containerStatuses": [{"name": "app", "containerID": "docker://abc", "ready": True}]}}
    assert _reported(pod, "app", "abc", ProbeType.READINESS) is True
    assert _reported(pod, "app", "other", ProbeType.READINESS) is False
    assert _reported(pod, "app", "abc", ProbeType.LIVENESS) is True


def test_failing_exec_liveness_probe_is_reported_and_stops_with_container():
    async def scenario():
        runtime = FakeRuntime(images={"img", "pause"})
        pod = {
            "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "img",
                        "livenessProbe": {"exec": {"command": ["false"]}, "failureThreshold": 1},
                        "readinessProbe": {"exec": {"command": ["true"]}},
                    }
                ]
            },
        }
        labels = lbl.container_labels(pod, lbl.SANDBOX, 0, "n", "c")
        sb = await runtime.run_sandbox(SandboxConfig("sb", "pause", "p", "net", labels))
        cid = await runtime.create_container(
            ContainerConfig("app", "img", sb, lbl.container_labels(pod, "app", 0, "n", "c"))
        )
        await runtime.start_container(cid)
        runtime.exec_results[cid] = ExecResult(1, b"")
        changed = asyncio.Event()
        manager = ProbeManager(runtime, lambda uid: changed.set())
        try:
            manager.update_pod(pod, pod_state("u1", await runtime.list_containers()))
            await asyncio.wait_for(changed.wait(), 5)
            assert manager.liveness_failed() == frozenset({cid})
            assert manager.readiness() == {cid: False}  # exec results are per container: both fail
            runtime.exit_container(cid, 137)
            manager.update_pod(pod, pod_state("u1", await runtime.list_containers()))
            assert manager.liveness_failed() == frozenset()
            assert manager.readiness() == {}
        finally:
            await manager.stop()

    asyncio.run(scenario())
