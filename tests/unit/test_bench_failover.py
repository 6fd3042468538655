"""The failover benchmark's pure helpers: leader agreement from Status answers, write gaps, summaries."""

from __future__ import annotations

import pytest

from bench.failover import MemberStatus, agreed_leader, longest_gap, new_leader
from bench.stats import summarize


def status(member_id: int, leader: int) -> MemberStatus:
    return MemberStatus(member_id=member_id, leader=leader)


def test_agreed_leader_when_all_members_name_one_of_them() -> None:
    answers = [status(1, 2), status(2, 2), status(3, 2)]
    assert agreed_leader(answers, 3) == 2


def test_no_agreed_leader_when_a_member_disagrees() -> None:
    assert agreed_leader([status(1, 2), status(2, 2), status(3, 3)], 3) is None


def test_no_agreed_leader_when_members_know_no_leader() -> None:
    assert agreed_leader([status(1, 0), status(2, 0)], 2) is None


def test_no_agreed_leader_when_too_few_members_answered() -> None:
    assert agreed_leader([status(1, 2), status(2, 2)], 3) is None


def test_no_agreed_leader_when_the_named_leader_is_not_among_them() -> None:
    # survivors still naming the killed member 9 (before their election timeout) have no leader
    assert agreed_leader([status(1, 9), status(2, 9)], 2) is None


def test_new_leader_must_differ_from_the_killed_one() -> None:
    survivors = [status(1, 2), status(2, 2)]
    assert new_leader(survivors, 2, old_leader=2) is None
    assert new_leader(survivors, 2, old_leader=3) == 2


def test_new_leader_needs_every_survivor() -> None:
    assert new_leader([status(1, 1)], 2, old_leader=3) is None


def test_longest_gap_within_window() -> None:
    times = [0.0, 0.1, 0.2, 1.7, 1.8, 5.0]
    assert longest_gap(times, 0.0, 2.0) == pytest.approx(1.5)
    assert longest_gap(times, 0.0, 5.0) == pytest.approx(3.2)


def test_longest_gap_ignores_order_and_needs_two_times() -> None:
    assert longest_gap([1.0, 0.0, 0.5], 0.0, 1.0) == pytest.approx(0.5)
    assert longest_gap([1.0], 0.0, 2.0) is None
    assert longest_gap([], 0.0, 2.0) is None


def test_summarize_median_and_max() -> None:
    odd = summarize([3.0, 1.0, 2.0])
    assert (odd.runs, odd.median, odd.max) == (3, 2.0, 3.0)
    even = summarize([1.0, 4.0, 2.0, 3.0])
    assert (even.median, even.max) == (2.5, 4.0)


def test_summarize_refuses_nothing() -> None:
    with pytest.raises(ValueError, match="no values"):
        summarize([])
