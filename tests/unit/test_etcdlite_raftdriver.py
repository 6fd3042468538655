"""The Raft driver's pure parts: how a proposal that was never applied is answered."""

from __future__ import annotations

from etcdlite.raftdriver import TIMEOUT, TIMEOUT_LEADER_FAIL, timeout_failure


def test_a_proposal_made_while_the_old_leader_was_failing_times_out_as_etcd_says() -> None:
    # the new leader was seen at t=100 with a 1 s election timeout: the old one failed from t=98
    assert timeout_failure(started=99.5, elected=100.0, election_timeout=1.0) is TIMEOUT_LEADER_FAIL
    assert timeout_failure(started=98.5, elected=100.0, election_timeout=1.0) is TIMEOUT_LEADER_FAIL
    assert TIMEOUT_LEADER_FAIL().message == (
        "etcdserver: request timed out, possibly due to previous leader failure"
    )


def test_other_proposals_time_out_plainly() -> None:
    assert timeout_failure(started=97.0, elected=100.0, election_timeout=1.0) is TIMEOUT  # long before
    assert timeout_failure(started=100.5, elected=100.0, election_timeout=1.0) is TIMEOUT  # under the new one
    assert timeout_failure(started=5.0, elected=0.0, election_timeout=1.0) is TIMEOUT  # no leader change seen
    assert TIMEOUT().message == "etcdserver: request timed out"
