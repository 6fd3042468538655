"""Job tracking with the `batch.kubernetes.io/job-tracking` finalizer, on the shared fake API and
its clock: every finished pod is counted exactly once, even after it is deleted, across a
controller restart, and deleting a Job still lets its pods go."""

from __future__ import annotations

import pytest

from controller.job import JobController
from controller.job.tracking import FINALIZER
from kubelite.client import ApiError
from kubelite.resources import JOBS, PODS
from tests.fakeapi import FakeApi
from tests.unit.test_job_controller import active, api, conditions, end_pod, jc, job, status, sync

__all__ = ["api", "jc"]  # the Job controller tests' fixtures, used here too


def finalizers(pod: dict) -> list[str]:
    return list(pod["metadata"].get("finalizers") or [])


def delete_pod(api: FakeApi, pod: dict, grace: int | None = None) -> None:
    api.run(api.client.delete(PODS, pod["metadata"]["name"], "default", grace_period_seconds=grace))
    api.deliver()


def all_pods(api: FakeApi) -> list[dict]:
    return api.items(PODS)


def drain(api: FakeApi, jc: JobController) -> list[str]:
    """Run every key queued at once (not the batched ones waiting on a timer); the keys run."""

    async def run() -> list[str]:
        done: list[str] = []
        while len(jc.queue):
            key = await jc.queue.get()
            assert key is not None
            await jc.sync(key)
            jc.queue.done(key)
            done.append(key)
        return done

    return api.run(run())


def test_pods_carry_the_finalizer_and_lose_it_once_counted(api, jc):
    api.create(JOBS, job(completions=2, parallelism=1))
    sync(api, jc)
    (first,) = active(api)
    assert finalizers(first) == [FINALIZER]
    end_pod(api, first, "Succeeded")
    sync(api, jc)
    st = status(api)
    assert st["succeeded"] == 1 and st["uncountedTerminatedPods"] == {}
    assert finalizers(api.get(PODS, first["metadata"]["name"])) == []


def test_a_counted_pod_that_is_deleted_is_counted_exactly_once(api, jc):
    api.create(JOBS, job(completions=3, parallelism=1))
    sync(api, jc)
    (first,) = active(api)
    end_pod(api, first, "Succeeded")
    sync(api, jc)
    delete_pod(api, first, grace=0)
    assert api.run(_exists(api, first)) is False, "a counted pod no longer holds its deletion back"
    sync(api, jc)
    assert status(api)["succeeded"] == 1
    (second,) = active(api)
    end_pod(api, second, "Succeeded")
    sync(api, jc)
    assert status(api)["succeeded"] == 2, "the new success is not lost to the deleted one"
    (third,) = active(api)
    end_pod(api, third, "Succeeded")
    sync(api, jc)
    assert status(api)["succeeded"] == 3 and conditions(api)["Complete"] == ("True", "CompletionsReached")
    assert len(all_pods(api)) == 2, "no extra completion ran"


async def _exists(api: FakeApi, pod: dict) -> bool:
    try:
        await api.client.get(PODS, pod["metadata"]["name"], "default")
    except ApiError as exc:
        assert exc.not_found
        return False
    return True


def test_a_pod_deleted_while_running_counts_as_failed(api, jc):
    api.create(JOBS, job(completions=1, backoffLimit=3))
    sync(api, jc)
    (pod,) = active(api)
    api.set_pods()
    delete_pod(api, pod)  # graceful: Terminating until the kubelet has stopped it
    held = api.get(PODS, pod["metadata"]["name"])
    assert held["metadata"].get("deletionTimestamp") and finalizers(held) == [FINALIZER]
    sync(api, jc)
    st = status(api)
    assert st["failed"] == 1 and st["terminating"] == 1 and st["uncountedTerminatedPods"] == {}
    assert finalizers(api.get(PODS, pod["metadata"]["name"])) == []
    assert api.finish_deletions() == 1
    api.clock.advance(10)
    sync(api, jc)
    (replacement,) = all_pods(api)
    assert replacement["metadata"]["uid"] != pod["metadata"]["uid"]
    assert status(api)["failed"] == 1, "counted once, and replaced"


def test_the_kubelets_final_delete_waits_for_the_finalizer(api, jc):
    api.create(JOBS, job(completions=1))
    sync(api, jc)
    (pod,) = active(api)
    end_pod(api, pod, "Failed")
    api.hold_events()  # the controller has not seen the failure yet
    delete_pod(api, pod)
    api.finish_deletions()
    held = api.get(PODS, pod["metadata"]["name"])
    assert held["metadata"]["deletionGracePeriodSeconds"] == 0 and finalizers(held) == [FINALIZER]
    api.deliver(force=True)
    sync(api, jc)
    assert status(api)["failed"] == 1
    assert all_pods(api) == [], "removing the last finalizer of a deleted pod removes the pod"


def test_backoff_limit_is_reached_after_the_first_failed_pod_was_deleted(api, jc):
    api.create(JOBS, job(completions=1, backoffLimit=1))
    sync(api, jc)
    (first,) = active(api)
    end_pod(api, first, "Failed")
    sync(api, jc)
    assert status(api)["failed"] == 1
    delete_pod(api, first, grace=0)  # e.g. the pod GC's terminated-pod threshold
    api.clock.advance(10)
    sync(api, jc)
    (second,) = active(api)
    end_pod(api, second, "Failed")
    sync(api, jc)
    assert status(api)["failed"] == 2
    assert conditions(api)["Failed"] == ("True", "BackoffLimitExceeded")


def test_a_restart_between_the_two_status_writes_does_not_count_twice(api, jc):
    api.create(JOBS, job(completions=3, parallelism=1))
    sync(api, jc)
    (first,) = active(api)
    end_pod(api, first, "Succeeded")
    api.failures[("patch", "pods")] = ApiError(500, {"message": "etcd timed out"})
    with pytest.raises(ApiError):
        sync(api, jc)  # listed as uncounted, finalizer still on: the controller dies here
    st = status(api)
    assert st["uncountedTerminatedPods"] == {"succeeded": [first["metadata"]["uid"]]}
    assert "succeeded" not in st
    del api.failures[("patch", "pods")]
    restarted = api.controller(JobController)
    sync(api, restarted)
    sync(api, restarted)
    st = status(api)
    assert st["succeeded"] == 1 and st["uncountedTerminatedPods"] == {}
    assert len(active(api)) == 1


def test_a_restart_after_the_finalizer_went_counts_the_listed_pod_once(api, jc):
    api.create(JOBS, job(completions=3, parallelism=1))
    sync(api, jc)
    (first,) = active(api)
    end_pod(api, first, "Succeeded")
    uid = first["metadata"]["uid"]
    # the state a controller leaves when it dies after removing the finalizer: uid still listed
    api.force_update(
        JOBS,
        "pi",
        lambda j: {**j, "status": {**j["status"], "uncountedTerminatedPods": {"succeeded": [uid]}}},
    )
    api.force_update(
        PODS, first["metadata"]["name"], lambda p: {**p, "metadata": {**p["metadata"], "finalizers": []}}
    )
    api.deliver()
    restarted = api.controller(JobController)
    sync(api, restarted)
    sync(api, restarted)
    st = status(api)
    assert st["succeeded"] == 1 and st["uncountedTerminatedPods"] == {}


def test_a_stale_informer_does_not_count_a_pod_twice(api, jc):
    api.create(JOBS, job(completions=3, parallelism=1))
    sync(api, jc)
    (first,) = active(api)
    end_pod(api, first, "Succeeded")
    api.hold_events()  # the informer will not see the finalizer go
    sync(api, jc)
    assert status(api)["succeeded"] == 1
    sync(api, jc)
    assert status(api)["succeeded"] == 1, "the unobserved removal is expected, not a new success"
    api.deliver(force=True)
    sync(api, jc)
    assert status(api)["succeeded"] == 1


def test_indexed_jobs_complete_an_index_once_its_success_is_counted(api, jc):
    api.create(JOBS, job(completions=3, parallelism=3, completionMode="Indexed"))
    sync(api, jc)
    by_index = {p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]: p for p in active(api)}
    end_pod(api, by_index["1"], "Succeeded")
    sync(api, jc)
    st = status(api)
    assert st["completedIndexes"] == "1" and st["succeeded"] == 1 and st["uncountedTerminatedPods"] == {}
    delete_pod(api, by_index["1"], grace=0)
    sync(api, jc)
    assert status(api)["completedIndexes"] == "1" and len(active(api)) == 2, "index 1 is not redone"


def test_deleting_a_job_lets_go_of_its_pods(api, jc):
    api.create(JOBS, job(name="bg", completions=2, parallelism=2))
    sync(api, jc, "default/bg")
    api.set_pods()
    pods = active(api)
    api.run(api.client.delete(JOBS, "bg", "default", propagation_policy="Background"))
    api.deliver()
    for pod in pods:  # what the garbage collector does once the Job is gone
        delete_pod(api, pod)
    assert all(finalizers(p) == [FINALIZER] for p in all_pods(api)), "held until the controller lets go"
    ran = drain(api, jc)
    assert {f"orphan-pod:default/{p['metadata']['name']}" for p in pods} <= set(ran)
    assert all(finalizers(p) == [] for p in all_pods(api))
    assert api.finish_deletions() == 2 and all_pods(api) == []


def test_a_foreground_job_deletion_lets_go_of_running_pods(api, jc):
    api.create(JOBS, job(completions=2, parallelism=2))
    sync(api, jc)
    api.set_pods()
    api.run(api.client.delete(JOBS, "pi", "default", propagation_policy="Foreground"))
    api.deliver()
    sync(api, jc)
    pods = all_pods(api)
    assert len(pods) == 2 and all(finalizers(p) == [] for p in pods), "running pods are let go"
    assert "failed" not in status(api), "pods of a deleted Job are not failures"


def test_orphans_with_the_finalizer_are_let_go_but_other_owners_pods_are_not(api, jc):
    orphan = api.create(PODS, {
        "metadata": {"name": "lost", "finalizers": [FINALIZER]},
        "spec": {"containers": [{"name": "c", "image": "kubelite/whoami:1.0"}]},
    })  # fmt: skip
    owned = api.create(PODS, {
        "metadata": {
            "name": "kept", "finalizers": [FINALIZER],
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u-1", "controller": True,
            }],
        },
        "spec": {"containers": [{"name": "c", "image": "kubelite/whoami:1.0"}]},
    })  # fmt: skip
    api.deliver()
    drain(api, jc)
    assert finalizers(api.get(PODS, orphan["metadata"]["name"])) == []
    assert finalizers(api.get(PODS, owned["metadata"]["name"])) == [FINALIZER]


def test_a_job_finishes_only_once_every_pod_is_counted(api, jc):
    api.create(JOBS, job(completions=1))
    sync(api, jc)
    (pod,) = active(api)
    end_pod(api, pod, "Succeeded")
    api.failures[("patch", "pods")] = ApiError(500, {"message": "etcd timed out"})
    with pytest.raises(ApiError):
        sync(api, jc)
    assert "Complete" not in conditions(api), "a pod is still uncounted"
    del api.failures[("patch", "pods")]
    sync(api, jc)
    assert conditions(api)["Complete"] == ("True", "CompletionsReached") and status(api)["succeeded"] == 1
