"""The progress deadline: a rollout whose pods never become ready is reported as
ProgressDeadlineExceeded once spec.progressDeadlineSeconds pass without progress (on the fake clock),
not a second before, and the controller queues itself to look at the deadline when it is due."""

from __future__ import annotations

import datetime as dt

import pytest

from kubelite.objects import parse_rfc3339
from tests.unit.test_deployment_harness import Cluster, RolloutFailed, deployment, kubectl_rollout_status


def stuck(c: Cluster, deadline: int) -> str:
    """Create, roll out, then roll a template whose pods never become ready until nothing moves;
    the name of the stuck ReplicaSet."""
    c.create(deployment(replicas=2, progressDeadlineSeconds=deadline))
    c.roll()
    name = c.stall_rollout("nginx:no-such-tag", steps=4)
    c.sync()
    return name


def test_a_stuck_rollout_exceeds_its_progress_deadline_after_it_and_not_before():
    c = Cluster()
    name = stuck(c, deadline=600)
    progressing = c.condition("Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "ReplicaSetUpdated")
    assert progressing["message"] == f'ReplicaSet "{name}" is progressing.'
    last_progress = parse_rfc3339(progressing["lastUpdateTime"])
    assert c.status_line()[0].endswith("1 out of 2 new replicas have been updated...")

    c.api.clock.advance((last_progress + dt.timedelta(seconds=600) - c.api.clock.now()).total_seconds())
    c.sync()  # exactly at the deadline: not yet
    assert c.condition("Progressing")["reason"] == "ReplicaSetUpdated"
    assert not c.status_line()[1]

    c.api.clock.advance(1)
    c.sync()
    progressing = c.condition("Progressing")
    assert (progressing["status"], progressing["reason"], progressing["message"]) == (
        "False",
        "ProgressDeadlineExceeded",
        f'ReplicaSet "{name}" has timed out progressing.',
    )
    now = c.api.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert progressing["lastUpdateTime"] == progressing["lastTransitionTime"] == now
    with pytest.raises(RolloutFailed, match='deployment "web" exceeded its progress deadline'):
        kubectl_rollout_status(c.get())
    assert c.condition("Available")["status"] == "True"  # the old pods still serve

    c.api.clock.advance(3600)
    c.sync()  # it stays timed out, and stops asking to be looked at
    assert c.condition("Progressing")["reason"] == "ProgressDeadlineExceeded"
    c.queued()
    c.api.clock.advance(3600)
    assert c.queued() == set()


def test_the_controller_requeues_itself_for_the_deadline():
    c = Cluster()
    stuck(c, deadline=60)
    last_progress = parse_rfc3339(c.condition("Progressing")["lastUpdateTime"])
    due = (last_progress + dt.timedelta(seconds=60) - c.api.clock.now()).total_seconds()
    assert max(c.api.clock.pending()) == due + 1  # a second after the deadline
    c.queued()
    c.api.clock.advance(due + 1)
    assert c.queued() == {"default/web"}
    assert c.api.clock.pending() == []
    c.sync()
    assert c.condition("Progressing")["reason"] == "ProgressDeadlineExceeded"


def test_progress_renews_the_deadline_and_a_fixed_template_recovers_from_a_timeout():
    c = Cluster()
    stuck(c, deadline=30)
    c.api.clock.advance(31)
    c.sync()
    assert c.condition("Progressing")["reason"] == "ProgressDeadlineExceeded"
    c.set_image("nginx:1.27")
    c.sync()
    progressing = c.condition("Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "NewReplicaSetCreated")
    c.roll()
    assert c.condition("Progressing")["reason"] == "NewReplicaSetAvailable"
    assert c.status_line()[1]


def test_without_a_deadline_there_is_no_progressing_condition_and_no_requeue():
    c = Cluster()
    c.create(deployment(replicas=1, progressDeadlineSeconds=2**31 - 1))
    c.roll()
    assert c.condition("Progressing") is None
    assert c.condition("Available")["status"] == "True"
    assert c.api.clock.pending() == []
