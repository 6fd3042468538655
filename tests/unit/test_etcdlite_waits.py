"""What the member's callers wait on: proposals and their timeouts, read-index rounds, applied indexes.

The waits are futures resolved by the driver's task; each scenario runs in a loop only to make them."""

from __future__ import annotations

import asyncio

from etcdlite import errors
from etcdlite.mvcc import Applied
from etcdlite.raft.types import ConfChange, ConfChangeType, ConfState
from etcdlite.waits import (
    READ_INDEX_RETRY,
    TIMEOUT,
    TIMEOUT_LEADER_FAIL,
    AppliedWaits,
    ConfChanges,
    Proposals,
    ReadRounds,
)


def test_a_proposal_is_answered_with_what_applying_it_returned() -> None:
    async def scenario() -> None:
        proposals = Proposals(first_id=100, timeout=5.0)
        first, answered = proposals.add(now=0.0)
        second, failed = proposals.add(now=0.0)
        assert (first, second) == (100, 101)
        proposals.answer(first, Applied())
        proposals.fail(second, errors.NO_LEADER)
        assert answered.result() == Applied()
        assert failed.exception() == errors.NO_LEADER()
        proposals.answer(first, None)  # answered once: a second answer finds nothing

    asyncio.run(scenario())


def test_proposals_expire_in_order_with_etcds_timeout() -> None:
    async def scenario() -> None:
        proposals = Proposals(first_id=1, timeout=5.0)
        _, old = proposals.add(now=90.0)  # made long before the leader changed at 100
        _, lost = proposals.add(now=99.0)  # made while the old leader was failing
        _, young = proposals.add(now=101.0)
        proposals.expire(now=104.5, leader_elected_at=100.0, election_timeout=1.0)
        assert old.exception() == TIMEOUT() and lost.exception() == TIMEOUT_LEADER_FAIL()
        assert not young.done()
        proposals.expire(now=106.0, leader_elected_at=100.0, election_timeout=1.0)
        assert young.exception() == TIMEOUT()

    asyncio.run(scenario())


def test_a_forgotten_proposal_neither_expires_nor_is_answered() -> None:
    async def scenario() -> None:
        proposals = Proposals(first_id=1, timeout=5.0)
        request_id, future = proposals.add(now=0.0)
        proposals.forget(request_id)
        proposals.expire(now=10.0, leader_elected_at=0.0, election_timeout=1.0)
        proposals.answer(request_id, Applied())
        assert not future.done()

    asyncio.run(scenario())


def test_stopping_fails_every_proposal_still_waiting() -> None:
    async def scenario() -> None:
        proposals = Proposals(first_id=1, timeout=5.0)
        first, answered = proposals.add(now=0.0)
        _, waiting = proposals.add(now=0.0)
        proposals.answer(first, Applied())
        proposals.fail_all(errors.STOPPED)
        assert answered.result() == Applied() and waiting.exception() == errors.STOPPED()

    asyncio.run(scenario())


def test_a_membership_change_is_answered_with_the_configuration_it_left() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        changes = ConfChanges()
        add, other = ConfChange(ConfChangeType.ADD_NODE, 4), ConfChange(ConfChangeType.REMOVE_NODE, 4)
        first, second, removal = loop.create_future(), loop.create_future(), loop.create_future()
        changes.add(add, first)
        changes.add(add, second)
        changes.add(other, removal)
        changes.answer(add, ConfState(voters=(1, 4)))
        assert first.result() == second.result() == ConfState(voters=(1, 4))
        assert not removal.done()

    asyncio.run(scenario())


def test_reads_share_one_read_index_and_are_asked_again_while_unanswered() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        rounds = ReadRounds()
        early, late = loop.create_future(), loop.create_future()
        cancelled = loop.create_future()
        cancelled.cancel()
        [ctx] = rounds.due([early, late, cancelled], now=0.0)
        assert rounds.due([], now=READ_INDEX_RETRY) == []  # not yet overdue
        assert rounds.due([], now=READ_INDEX_RETRY + 0.01) == [ctx]  # the request or its answer was lost
        rounds.answer(ctx, 42)
        assert early.result() == late.result() == 42
        assert rounds.due([], now=10.0) == []

    asyncio.run(scenario())


def test_a_round_whose_readers_all_left_is_dropped() -> None:
    async def scenario() -> None:
        reader = asyncio.get_running_loop().create_future()
        rounds = ReadRounds()
        [ctx] = rounds.due([reader], now=0.0)
        reader.cancel()  # its caller timed out
        assert rounds.due([], now=10.0) == []
        rounds.answer(ctx, 7)  # a late answer finds nothing

    asyncio.run(scenario())


def test_applied_waits_end_once_the_applied_index_reaches_theirs() -> None:
    async def scenario() -> None:
        waits = AppliedWaits()
        five, nine = waits.add(5), waits.add(9)
        waits.release(applied=6)
        assert five.done() and not nine.done()
        waits.release(applied=9)
        assert nine.done()

    asyncio.run(scenario())
