"""Whole pod syncs against the fake runtime and an in-memory API: outcomes, not call sequences."""

import asyncio
import copy
import datetime as dt
import ipaddress

from kubelet.fake_runtime import FakeRuntime
from kubelet.podworkers import PodWorkers, PodWorkerSettings
from kubelet.runtime import ContainerState
from kubelite.client import ApiError
from kubelite.events import EventRecorder

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


class FakeApi:
    """Just enough of ApiClient for pod workers: status writes and deletes, versioned."""

    def __init__(self):
        self.pods = {}
        self.status_writes = []
        self.deletes = []
        self.events = []
        self.configmaps = {}
        self.version = 100

    def add(self, pod):
        self.version += 1
        pod["metadata"]["resourceVersion"] = str(self.version)
        self.pods[pod["metadata"]["uid"]] = pod
        return copy.deepcopy(pod)

    async def update(self, res, body, subresource=None):
        assert subresource == "status"
        current = self.pods.get(body["metadata"]["uid"])
        if current is None:
            raise ApiError(404, {"reason": "NotFound"})
        if current["metadata"]["resourceVersion"] != body["metadata"]["resourceVersion"]:
            raise ApiError(409, {"reason": "Conflict"})
        current["status"] = copy.deepcopy(body["status"])
        self.status_writes.append(copy.deepcopy(body["status"]))
        return self.add(current)

    async def get(self, res, name, namespace=None):
        assert res.plural == "configmaps"
        if (namespace, name) not in self.configmaps:
            raise ApiError(404, {"reason": "NotFound"})
        return copy.deepcopy(self.configmaps[(namespace, name)])

    async def create(self, res, obj, namespace=None):
        assert res.plural == "events"
        self.events.append((obj["type"], obj["reason"], obj["message"]))
        return obj

    async def delete(self, res, name, namespace=None, *, grace_period_seconds=None, preconditions=None, **kw):
        self.deletes.append((namespace, name, grace_period_seconds, preconditions))
        uid = (preconditions or {}).get("uid")
        if self.pods.pop(uid, None) is None:
            raise ApiError(404, {"reason": "NotFound"})
        return {}


SETTINGS = PodWorkerSettings("node-1", "127.0.0.2", "kl", "kubelite", "kubelite/pause:latest")


def make_pod(uid="uid-1", name="web", image="img/app:1", policy="Always", pull=None, **container):
    c = {"name": "app", "image": image, **container}
    if pull:
        c["imagePullPolicy"] = pull
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "uid": uid},
        "spec": {"nodeName": "node-1", "containers": [c], "restartPolicy": policy},
    }


class Harness:
    def __init__(self, runtime=None, api=None, clock=None):
        self.clock = clock or Clock()
        self.runtime = runtime or FakeRuntime(
            node="node-1", cluster="kl", images={"kubelite/pause:latest", "img/app:1"}, clock=self.clock
        )
        self.api = api or FakeApi()
        self.workers = PodWorkers(
            self.api,
            self.runtime,
            SETTINGS,
            clock=self.clock,
            events=EventRecorder(self.api, "kubelet", "node-1"),
        )

    def submit(self, pod):
        """The informer delivering the pod as the API now has it."""
        stored = self.api.add(pod) if pod["metadata"]["uid"] not in self.api.pods else pod
        self.workers.handle_pod_event("ADDED", copy.deepcopy(stored), None)

    def refresh(self, uid="uid-1"):
        """The informer catching up with the API."""
        self.workers.handle_pod_event("MODIFIED", copy.deepcopy(self.api.pods[uid]), None)

    async def sync(self, uid="uid-1", refresh=True):
        await self.workers.sync(uid)
        if refresh and uid in self.api.pods:
            self.refresh(uid)

    def status(self, uid="uid-1"):
        return self.api.pods[uid]["status"]

    def app(self, uid="uid-1"):
        return self.status(uid)["containerStatuses"][0]

    def live(self, name="app"):
        return [
            c
            for c in self.runtime.containers.values()
            if c.identity.container_name == name and c.state is ContainerState.RUNNING
        ]


def run(coro):
    return asyncio.run(coro)


def test_pod_runs_and_reports_running_ready_with_pod_ip():
    async def scenario():
        h = Harness()
        h.submit(make_pod())
        await h.sync()
        st = h.status()
        assert st["phase"] == "Running", st
        assert ipaddress.ip_address(st["podIP"]) in ipaddress.ip_network(h.runtime.network_cidr)
        assert h.app()["ready"] is True
        assert h.app()["containerID"].startswith("docker://")
        assert len(h.live("POD")) == 1 and len(h.live("app")) == 1
        app = h.live("app")[0]
        assert app.labels["kubelite.io/node"] == "node-1"
        assert app.labels["io.kubernetes.pod.uid"] == "uid-1"
        assert app.name == "k8s_app_web_default_uid-1_0"

    run(scenario())


def test_status_written_only_when_changed_even_if_cache_lags():
    async def scenario():
        h = Harness()
        h.submit(make_pod())
        await h.workers.sync("uid-1")  # cache not refreshed: the informer lags
        await h.workers.sync("uid-1")
        assert len(h.api.status_writes) == 1
        h.refresh()
        await h.workers.sync("uid-1")
        assert len(h.api.status_writes) == 1

    run(scenario())


def test_kubelet_restart_adopts_containers_without_duplicates():
    async def scenario():
        h = Harness()
        h.submit(make_pod())
        await h.sync()
        before = set(h.runtime.containers)
        again = Harness(runtime=h.runtime, api=h.api, clock=h.clock)
        again.refresh()
        await again.sync()
        assert set(h.runtime.containers) == before
        assert len(h.api.status_writes) == 1

    run(scenario())


def test_crashing_container_restarts_then_backs_off():
    async def scenario():
        h = Harness()
        h.submit(make_pod())
        await h.sync()
        h.clock.now += 5
        h.runtime.exit_container(h.live("app")[0].id, 1)
        await h.sync()  # first crash: restarted at once
        assert h.app()["restartCount"] == 1
        assert h.app()["lastState"]["terminated"]["exitCode"] == 1
        assert "running" in h.app()["state"]
        h.clock.now += 1
        h.runtime.exit_container(h.live("app")[0].id, 1)
        await h.sync()
        assert h.app()["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        assert h.status()["phase"] == "Running"
        assert not h.live("app")
        h.clock.now += 11
        await h.sync()
        assert h.app()["restartCount"] == 2 and "running" in h.app()["state"]

    run(scenario())


def test_missing_image_if_not_present_is_err_image_pull_then_back_off():
    async def scenario():
        h = Harness()
        h.submit(make_pod(image="nowhere/app:1", pull="IfNotPresent"))
        await h.sync()
        assert h.app()["state"]["waiting"]["reason"] == "ErrImagePull"
        assert h.status()["phase"] == "Pending"
        await h.sync()
        assert h.app()["state"]["waiting"]["reason"] == "ImagePullBackOff"
        assert h.app()["state"]["waiting"]["message"] == 'Back-off pulling image "nowhere/app:1"'
        assert h.runtime.calls.count(("pull", "nowhere/app:1")) == 1
        h.clock.now += 10
        await h.sync()
        assert h.runtime.calls.count(("pull", "nowhere/app:1")) == 2
        assert not h.live("app")

    run(scenario())


def test_never_pull_policy_reports_err_image_never_pull_without_pulling():
    async def scenario():
        h = Harness()
        h.submit(make_pod(image="absent:1", pull="Never"))
        await h.sync()
        assert h.app()["state"]["waiting"]["reason"] == "ErrImageNeverPull"
        assert not [c for c in h.runtime.calls if c[0] == "pull"]

    run(scenario())


def test_always_pull_does_not_fall_back_to_local_image():
    async def scenario():
        h = Harness()
        h.submit(make_pod(image="img/app:1", pull="Always"))  # present locally, not in any registry
        await h.sync()
        assert h.app()["state"]["waiting"]["reason"] == "ErrImagePull"

    run(scenario())


def test_pulled_image_runs():
    async def scenario():
        h = Harness()
        h.runtime.registry.add("remote/app:2")
        h.submit(make_pod(image="remote/app:2"))
        await h.sync()
        assert "running" in h.app()["state"]

    run(scenario())


def test_terminating_pod_is_stopped_removed_and_deleted_for_good():
    async def scenario():
        h = Harness()
        h.submit(make_pod())
        await h.sync()
        pod = h.api.pods["uid-1"]
        pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z"
        pod["metadata"]["deletionGracePeriodSeconds"] = 3
        h.refresh()
        await h.workers.sync("uid-1")
        assert h.runtime.containers == {}
        assert h.api.deletes == [("default", "web", 0, {"uid": "uid-1"})]
        assert "uid-1" not in h.api.pods

    run(scenario())


def test_pod_gone_from_api_has_its_containers_removed():
    async def scenario():
        h = Harness()
        h.submit(make_pod())
        await h.sync()
        gone = h.api.pods.pop("uid-1")
        h.workers.handle_pod_event("DELETED", gone, gone)
        await h.workers.sync("uid-1")
        assert h.runtime.containers == {}
        assert h.api.deletes == []

    run(scenario())


def test_same_name_new_uid_cleans_up_old_pod():
    async def scenario():
        h = Harness()
        h.submit(make_pod())
        await h.sync()
        old = copy.deepcopy(h.api.pods["uid-1"])
        h.api.pods.pop("uid-1")
        new = make_pod(uid="uid-2")
        h.api.add(new)
        h.workers.handle_pod_event("MODIFIED", copy.deepcopy(new), old)
        await h.workers.sync("uid-1")
        await h.workers.sync("uid-2")
        uids = {c.identity.pod_uid for c in h.runtime.containers.values()}
        assert uids == {"uid-2"}

    run(scenario())


def test_start_error_with_never_policy_fails_the_pod():
    async def scenario():
        h = Harness()
        h.runtime.images.add("broken:1")
        h.runtime.start_errors["broken:1"] = 'exec: "nope": executable file not found in $PATH'
        h.submit(make_pod(image="broken:1", policy="Never"))
        await h.sync()
        assert h.app()["state"]["waiting"]["reason"] == "RunContainerError"
        await h.sync()
        assert h.status()["phase"] == "Failed"
        assert h.app()["state"]["terminated"]["reason"] == "StartError"

    run(scenario())


def test_completed_pod_succeeds_and_its_sandbox_is_stopped():
    async def scenario():
        h = Harness()
        h.submit(make_pod(policy="Never"))
        await h.sync()
        h.runtime.exit_container(h.live("app")[0].id, 0)
        await h.sync()
        assert h.status()["phase"] == "Succeeded"
        await h.sync()
        assert not h.live("POD")
        assert h.status()["podIP"]  # kept after the sandbox stopped

    run(scenario())


def test_config_error_on_one_pod_does_not_hold_up_another():
    async def scenario():
        h = Harness()
        bad = make_pod(uid="uid-bad", name="bad", env=[{"name": "X", "valueFrom": {"secretKeyRef": {}}}])
        h.submit(bad)
        h.submit(make_pod())
        await h.sync("uid-bad")
        await h.sync("uid-1")
        assert h.app("uid-bad")["state"]["waiting"]["reason"] == "CreateContainerConfigError"
        assert h.status("uid-1")["phase"] == "Running"

    run(scenario())


def test_dead_sandbox_gets_replaced():
    async def scenario():
        h = Harness()
        h.submit(make_pod())
        await h.sync()
        first_sandbox = h.live("POD")[0].id
        h.runtime.exit_container(first_sandbox, 137)
        await h.sync()
        assert len(h.live("POD")) == 1 and len(h.live("app")) == 1
        assert h.live("POD")[0].id != first_sandbox
        assert h.live("POD")[0].identity.attempt == 1
        assert h.app()["restartCount"] == 1

    run(scenario())


def test_events_mark_starts_and_new_waiting_reasons_once():
    async def scenario():
        h = Harness()
        h.submit(make_pod())
        await h.sync()
        assert [e[1] for e in h.api.events] == ["Pulled", "Created", "Started"]
        h.api.events.clear()
        h.runtime.exit_container(h.live("app")[0].id, 1)
        await h.sync()  # restarted at once
        h.runtime.exit_container(h.live("app")[0].id, 1)
        await h.sync()
        await h.sync()
        back_offs = [e for e in h.api.events if e[1] == "BackOff"]
        assert back_offs == [("Warning", "BackOff", "Back-off restarting failed container app")]

    run(scenario())


def test_hollow_node_addresses_are_per_node_and_reused():
    async def scenario():
        a = FakeRuntime(node="hollow-1", all_images_present=True)
        b = FakeRuntime(node="hollow-2", all_images_present=True)
        assert a.network_cidr != b.network_cidr
        h = Harness(runtime=a)
        h.submit(make_pod())
        await h.sync()
        first = h.status()["podIP"]
        h.runtime.exit_container(h.live("POD")[0].id, 0)
        await h.sync()
        assert h.status()["podIP"] == first  # the dead sandbox's address was free again

    run(scenario())


def test_configmap_env_waits_for_the_configmap():
    async def scenario():
        h = Harness()
        env = [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}}]
        h.submit(make_pod(env=env))
        await h.sync()
        waiting = h.app()["state"]["waiting"]
        assert waiting == {
            "reason": "CreateContainerConfigError",
            "message": 'configmap "settings" not found',
        }
        h.api.configmaps[("default", "settings")] = {"data": {"mode": "fast"}}
        await h.sync()
        assert "running" in h.app()["state"]

    run(scenario())
