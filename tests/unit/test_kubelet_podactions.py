"""Sync decisions: what a pod needs done, given what the runtime holds and the restart policy."""

import datetime as dt

from kubelet import labels as lbl
from kubelet.backoff import Backoff
from kubelet.podactions import ContainerToStart, compute_pod_actions, should_restart
from kubelet.podstate import pod_state
from kubelet.runtime import ContainerState, RuntimeContainer

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()


def ts(offset):
    return dt.datetime.fromtimestamp(T0 + offset, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_pod(containers=("app",), policy="Always", status=None):
    pod = {
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-1"},
        "spec": {
            "containers": [{"name": n, "image": f"img/{n}:1"} for n in containers],
            "restartPolicy": policy,
        },
    }
    if status:
        pod["status"] = status
    return pod


def ctr(pod, name, attempt=0, state=ContainerState.RUNNING, exit_code=0, finished=5, spec=None):
    spec = spec or next((c for c in pod["spec"]["containers"] if c["name"] == name), {})
    h = lbl.container_spec_hash(spec) if name != lbl.SANDBOX else ""
    return RuntimeContainer(
        id=f"{name}-{attempt}",
        name=lbl.docker_name(pod, name, attempt),
        labels=lbl.container_labels(pod, name, attempt, "n1", "c", h),
        image="img",
        image_ref="sha256:1",
        state=state,
        exit_code=exit_code,
        created_at=ts(attempt),
        finished_at=ts(finished) if state is ContainerState.EXITED else "",
        ip="10.0.0.2" if name == lbl.SANDBOX and state is ContainerState.RUNNING else "",
    )


def plan(pod, containers, backoff=None, now=T0 + 5, liveness_failed=frozenset()):
    return compute_pod_actions(
        pod, pod_state("uid-1", containers), backoff or Backoff(), now, liveness_failed
    )


def test_new_pod_creates_sandbox_and_starts_every_container():
    a = plan(make_pod(containers=("a", "b")), [])
    assert a.create_sandbox and a.sandbox_attempt == 0 and not a.kill_pod
    assert a.start == [ContainerToStart("a", 0), ContainerToStart("b", 0)]


def test_running_pod_needs_nothing():
    pod = make_pod()
    assert plan(pod, [ctr(pod, lbl.SANDBOX), ctr(pod, "app")]).empty


def test_missing_container_is_started_in_running_sandbox():
    pod = make_pod(containers=("a", "b"))
    a = plan(pod, [ctr(pod, lbl.SANDBOX), ctr(pod, "a")])
    assert not a.create_sandbox
    assert a.start == [ContainerToStart("b", 0)]


def test_first_crash_restarts_at_once_then_backs_off():
    pod = make_pod()
    backoff = Backoff()
    dead = [ctr(pod, lbl.SANDBOX), ctr(pod, "app", 0, ContainerState.EXITED, 1, finished=5)]
    first = plan(pod, dead, backoff, now=T0 + 6)
    assert first.start == [ContainerToStart("app", 1)]
    dead_again = [ctr(pod, lbl.SANDBOX), ctr(pod, "app", 1, ContainerState.EXITED, 1, finished=8)]
    second = plan(pod, dead_again, backoff, now=T0 + 9)
    assert second.start == []
    assert second.waiting["app"].reason == "CrashLoopBackOff"
    assert second.waiting["app"].message == (
        "back-off 10s restarting failed container=app pod=web_default(uid-1)"
    )
    assert second.requeue_after == 9  # 10s from the exit at +8
    third = plan(pod, dead_again, backoff, now=T0 + 18)
    assert third.start == [ContainerToStart("app", 2)]
    assert backoff.delay("uid-1/app") == 20


def test_restart_policies():
    pod = make_pod()
    ok = ctr(pod, "app", state=ContainerState.EXITED, exit_code=0)
    bad = ctr(pod, "app", state=ContainerState.EXITED, exit_code=2)
    assert should_restart("Always", ok) and should_restart("Always", bad)
    assert not should_restart("OnFailure", ok) and should_restart("OnFailure", bad)
    assert not should_restart("Never", ok) and not should_restart("Never", bad)


def test_never_policy_leaves_exited_container_alone():
    pod = make_pod(policy="Never")
    a = plan(pod, [ctr(pod, lbl.SANDBOX), ctr(pod, "app", state=ContainerState.EXITED, exit_code=1)])
    assert a.empty and not a.waiting


def test_dead_sandbox_is_replaced_and_containers_restarted():
    pod = make_pod()
    containers = [ctr(pod, lbl.SANDBOX, 0, ContainerState.EXITED), ctr(pod, "app", 0)]
    a = plan(pod, containers)
    assert a.create_sandbox and a.sandbox_attempt == 1
    assert a.kill_pod  # the app container still runs in the old sandbox's network
    assert a.start == [ContainerToStart("app", 1)]


def test_dead_sandbox_of_finished_never_pod_is_not_replaced():
    pod = make_pod(policy="Never")
    containers = [ctr(pod, lbl.SANDBOX, 0, ContainerState.EXITED), ctr(pod, "app", 0, ContainerState.EXITED)]
    assert plan(pod, containers).empty


def test_onfailure_skips_succeeded_containers_on_new_sandbox():
    pod = make_pod(containers=("done", "crashed"), policy="OnFailure")
    containers = [
        ctr(pod, lbl.SANDBOX, 0, ContainerState.EXITED),
        ctr(pod, "done", 0, ContainerState.EXITED, 0),
        ctr(pod, "crashed", 0, ContainerState.EXITED, 1),
    ]
    a = plan(pod, containers)
    assert a.start == [ContainerToStart("crashed", 1)]


def test_terminal_pod_only_stops_what_still_runs():
    pod = make_pod(policy="Never", status={"phase": "Succeeded"})
    a = plan(pod, [ctr(pod, lbl.SANDBOX), ctr(pod, "app", state=ContainerState.EXITED)])
    assert a.kill_pod and not a.start and not a.create_sandbox


def test_liveness_failure_kills_container():
    pod = make_pod()
    a = plan(pod, [ctr(pod, lbl.SANDBOX), ctr(pod, "app")], liveness_failed=frozenset({"app-0"}))
    assert "failed liveness probe" in a.kill["app-0"]


def test_changed_spec_replaces_container():
    pod = make_pod()
    old_spec = {"name": "app", "image": "img/app:0"}
    a = plan(pod, [ctr(pod, lbl.SANDBOX), ctr(pod, "app", spec=old_spec)])
    assert "definition changed" in a.kill["app-0"]


def test_old_instances_are_garbage_but_latest_two_kept():
    pod = make_pod()
    containers = [ctr(pod, lbl.SANDBOX, 1), ctr(pod, lbl.SANDBOX, 0, ContainerState.EXITED)]
    containers += [ctr(pod, "app", i, ContainerState.EXITED, 1) for i in range(3)] + [ctr(pod, "app", 3)]
    a = plan(pod, containers)
    assert sorted(a.remove) == ["POD-0", "app-0", "app-1"]


def test_container_not_in_spec_is_killed():
    pod = make_pod()
    stray = ctr(pod, "old", spec={"name": "old", "image": "x"})
    a = plan(pod, [ctr(pod, lbl.SANDBOX), ctr(pod, "app"), stray])
    assert "old-0" in a.kill


def test_a_container_removed_behind_the_kubelets_back_restarts_as_the_next_attempt():
    reported = {"containerStatuses": [{"name": "app", "containerID": "docker://app-2", "restartCount": 2}]}
    pod = make_pod(status=reported)
    sandbox = ctr(pod, lbl.SANDBOX)
    assert plan(pod, [sandbox]).start == [ContainerToStart("app", 3)], "docker rm -f counts as a restart"
    never_ran = make_pod(status={"containerStatuses": [{"name": "app", "restartCount": 0}]})
    assert plan(never_ran, [ctr(never_ran, lbl.SANDBOX)]).start == [ContainerToStart("app", 0)]
