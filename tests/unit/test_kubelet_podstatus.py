"""Pod status as Kubernetes computes it: phase, conditions, container states, stable output."""

import pytest

from kubelet import labels as lbl
from kubelet.podstate import Waiting, pod_state
from kubelet.podstatus import compute_pod_status, pod_phase
from kubelet.runtime import ContainerState, RuntimeContainer

NOW = "2026-01-01T00:00:10Z"
LATER = "2026-01-01T00:05:00Z"


def make_pod(containers=("app",), policy="Always", status=None, probes=None):
    specs = []
    for name in containers:
        c = {"name": name, "image": f"img/{name}:1"}
        c.update((probes or {}).get(name, {}))
        specs.append(c)
    pod = {
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-1", "resourceVersion": "5"},
        "spec": {"containers": specs, "restartPolicy": policy, "nodeName": "n1"},
    }
    if status is not None:
        pod["status"] = status
    return pod


def ctr(pod, name, attempt=0, state=ContainerState.RUNNING, exit_code=0, ip="", cid=None):
    return RuntimeContainer(
        id=cid or f"{name}-{attempt}",
        name=lbl.docker_name(pod, name, attempt),
        labels=lbl.container_labels(pod, name, attempt, "n1", "c"),
        image=f"img/{name}:1",
        image_ref="sha256:abc",
        state=state,
        exit_code=exit_code,
        created_at=f"2026-01-01T00:00:0{attempt}Z",
        started_at="2026-01-01T00:00:01Z" if state is not ContainerState.CREATED else "",
        finished_at="2026-01-01T00:00:02Z" if state is ContainerState.EXITED else "",
        ip=ip,
    )


def sandbox(pod, attempt=0, running=True):
    state = ContainerState.RUNNING if running else ContainerState.EXITED
    return ctr(pod, lbl.SANDBOX, attempt, state, ip="10.1.0.5" if running else "", cid=f"sb-{attempt}")


def status_of(pod, containers, waiting=None, ready=None, started=None, now=NOW):
    return compute_pod_status(
        pod, pod_state("uid-1", containers), waiting or {}, ready or {}, started or {}, "127.0.0.2", now
    )


def cond(status, type_):
    return next(c for c in status["conditions"] if c["type"] == type_)


def assert_no_none(value):
    if isinstance(value, dict):
        for v in value.values():
            assert_no_none(v)
    elif isinstance(value, list):
        for v in value:
            assert_no_none(v)
    else:
        assert value is not None


def test_new_pod_without_containers_is_pending_and_creating():
    pod = make_pod()
    st = status_of(pod, [])
    assert st["phase"] == "Pending"
    cs = st["containerStatuses"][0]
    assert cs["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert cs["ready"] is False and cs["restartCount"] == 0 and cs["imageID"] == ""
    assert cond(st, "Ready")["status"] == "False"
    assert cond(st, "Ready")["message"] == "containers with unready status: [app]"
    assert cond(st, "PodScheduled")["status"] == "True"
    assert st["hostIP"] == "127.0.0.2" and st["startTime"] == NOW
    assert "podIP" not in st
    assert st["qosClass"] == "BestEffort"
    assert_no_none(st)


def test_running_pod_is_ready_with_ip_and_container_ids():
    pod = make_pod()
    st = status_of(pod, [sandbox(pod), ctr(pod, "app")])
    assert st["phase"] == "Running"
    assert st["podIP"] == "10.1.0.5" and st["podIPs"] == [{"ip": "10.1.0.5"}]
    cs = st["containerStatuses"][0]
    assert cs["state"] == {"running": {"startedAt": "2026-01-01T00:00:01Z"}}
    assert cs["containerID"] == "docker://app-0" and cs["imageID"] == "sha256:abc"
    assert cs["ready"] is True and cs["started"] is True
    for t in ("Ready", "ContainersReady", "Initialized", "PodReadyToStartContainers"):
        assert cond(st, t)["status"] == "True", t
    assert_no_none(st)


def test_status_is_stable_and_keeps_transition_times():
    pod = make_pod()
    containers = [sandbox(pod), ctr(pod, "app")]
    first = status_of(pod, containers, now=NOW)
    pod["status"] = first
    second = status_of(pod, containers, now=LATER)
    assert second == first
    assert second["startTime"] == NOW


def test_transition_time_moves_when_condition_flips():
    pod = make_pod()
    pod["status"] = status_of(pod, [sandbox(pod), ctr(pod, "app")], now=NOW)
    st = status_of(pod, [sandbox(pod), ctr(pod, "app", state=ContainerState.EXITED, exit_code=1)], now=LATER)
    assert cond(st, "Ready")["status"] == "False"
    assert cond(st, "Ready")["lastTransitionTime"] == LATER
    assert cond(st, "Initialized")["lastTransitionTime"] == NOW


@pytest.mark.parametrize(
    ("policy", "exit_code", "phase"),
    [
        ("Always", 0, "Running"),
        ("Always", 1, "Running"),
        ("OnFailure", 0, "Succeeded"),
        ("OnFailure", 1, "Running"),
        ("Never", 0, "Succeeded"),
        ("Never", 3, "Failed"),
    ],
)
def test_phase_when_all_containers_exited(policy, exit_code, phase):
    pod = make_pod(policy=policy)
    st = status_of(pod, [sandbox(pod), ctr(pod, "app", state=ContainerState.EXITED, exit_code=exit_code)])
    assert st["phase"] == phase
    term = st["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == exit_code
    assert term["reason"] == ("Completed" if exit_code == 0 else "Error")


def test_succeeded_pod_is_not_ready_with_pod_completed():
    pod = make_pod(policy="Never")
    st = status_of(pod, [sandbox(pod), ctr(pod, "app", state=ContainerState.EXITED)])
    assert cond(st, "Ready") | {"lastTransitionTime": ""} == {
        "type": "Ready",
        "status": "False",
        "reason": "PodCompleted",
        "lastTransitionTime": "",
    }


def test_terminal_phase_is_final():
    pod = make_pod(policy="Never", status={"phase": "Failed"})
    assert status_of(pod, [])["phase"] == "Failed"


def test_crash_loop_shows_waiting_with_last_state_and_counts_restarts():
    pod = make_pod()
    containers = [
        sandbox(pod),
        ctr(pod, "app", 0, ContainerState.EXITED, 1),
        ctr(pod, "app", 1, ContainerState.EXITED, 2),
    ]
    waiting = {"app": Waiting("CrashLoopBackOff", "back-off 10s restarting failed container=app")}
    st = status_of(pod, containers, waiting=waiting)
    cs = st["containerStatuses"][0]
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["lastState"]["terminated"]["exitCode"] == 2
    assert cs["restartCount"] == 1
    assert st["phase"] == "Running"  # a crash-looping container has run: Running, as Kubernetes shows


def test_restarted_container_reports_previous_instance_as_last_state():
    pod = make_pod()
    containers = [sandbox(pod), ctr(pod, "app", 0, ContainerState.EXITED, 1), ctr(pod, "app", 1)]
    cs = status_of(pod, containers)["containerStatuses"][0]
    assert "running" in cs["state"]
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert cs["restartCount"] == 1


def test_image_error_keeps_pod_pending():
    pod = make_pod(containers=("app", "side"))
    waiting = {"side": Waiting("ErrImagePull", "failed to pull image")}
    st = status_of(pod, [sandbox(pod), ctr(pod, "app")], waiting=waiting)
    assert st["phase"] == "Pending"
    side = st["containerStatuses"][1]
    assert side["state"] == {"waiting": {"reason": "ErrImagePull", "message": "failed to pull image"}}


def test_waiting_reason_does_not_hide_a_running_container():
    pod = make_pod()
    st = status_of(pod, [sandbox(pod), ctr(pod, "app")], waiting={"app": Waiting("ErrImagePull")})
    assert "running" in st["containerStatuses"][0]["state"]


def test_start_error_is_terminated_start_error():
    pod = make_pod(policy="Never")
    c = ctr(pod, "app", state=ContainerState.CREATED, exit_code=127)
    c.error = 'exec: "nope": executable file not found in $PATH'
    st = status_of(pod, [sandbox(pod), c])
    term = st["containerStatuses"][0]["state"]["terminated"]
    assert term["reason"] == "StartError" and term["exitCode"] == 127
    assert "executable file not found" in term["message"]
    assert st["phase"] == "Failed"


def test_readiness_probe_gates_ready():
    pod = make_pod(probes={"app": {"readinessProbe": {"tcpSocket": {"port": 80}}}})
    containers = [sandbox(pod), ctr(pod, "app")]
    assert status_of(pod, containers)["containerStatuses"][0]["ready"] is False
    assert status_of(pod, containers, ready={"app-0": True})["containerStatuses"][0]["ready"] is True


def test_startup_probe_gates_started_and_ready():
    pod = make_pod(probes={"app": {"startupProbe": {"exec": {"command": ["true"]}}}})
    containers = [sandbox(pod), ctr(pod, "app")]
    cs = status_of(pod, containers)["containerStatuses"][0]
    assert cs["started"] is False and cs["ready"] is False
    cs = status_of(pod, containers, started={"app-0": True})["containerStatuses"][0]
    assert cs["started"] is True and cs["ready"] is True


def test_pod_ip_kept_when_sandbox_stopped():
    pod = make_pod(policy="Never", status={"podIP": "10.1.0.9", "podIPs": [{"ip": "10.1.0.9"}]})
    st = status_of(pod, [sandbox(pod, running=False), ctr(pod, "app", state=ContainerState.EXITED)])
    assert st["podIP"] == "10.1.0.9"
    assert cond(st, "PodReadyToStartContainers")["status"] == "False"


def test_foreign_status_fields_and_conditions_are_kept():
    old = {
        "nominatedNodeName": "x",
        "qosClass": "Guaranteed",
        "conditions": [{"type": "DisruptionTarget", "status": "True", "lastTransitionTime": NOW}],
    }
    st = status_of(make_pod(status=old), [])
    assert st["nominatedNodeName"] == "x"
    assert st["qosClass"] == "Guaranteed"
    assert cond(st, "DisruptionTarget")["status"] == "True"


def test_pod_phase_waiting_beats_running():
    pod = make_pod(containers=("a", "b"))
    statuses = [
        {"name": "a", "state": {"running": {}}, "lastState": {}},
        {"name": "b", "state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {}},
    ]
    assert pod_phase(pod, statuses).value == "Pending"
