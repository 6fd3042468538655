"""The work queue's contract: dedupe, one holder per key, re-queue on change, back-off."""

import asyncio

from kubelite.workqueue import ItemExponentialBackoff, WorkQueue, run_workers


class ManualTimers:
    """An injectable call_later whose timers fire only when the test says so."""

    def __init__(self):
        self.pending: list[tuple[float, object]] = []

    def __call__(self, delay, callback):
        entry = (delay, callback)
        self.pending.append(entry)
        return type("Handle", (), {"cancel": lambda _self: self.pending.remove(entry)})()

    def fire_all(self):
        pending, self.pending = self.pending, []
        for _, callback in pending:
            callback()


def test_adds_of_one_key_are_deduped():
    async def scenario():
        q = WorkQueue()
        q.add("a")
        q.add("a")
        q.add("b")
        assert len(q) == 2
        assert await q.get() == "a"
        assert await q.get() == "b"

    asyncio.run(scenario())


def test_key_added_while_held_is_handed_out_again_only_after_done():
    async def scenario():
        q = WorkQueue()
        q.add("a")
        key = await q.get()
        q.add("a")  # changed while a worker holds it
        assert len(q) == 0, "a held key must not be queued for a second worker"
        q.done(key)
        assert len(q) == 1
        assert await q.get() == "a"

    asyncio.run(scenario())


def test_rate_limited_retry_uses_backoff_and_injected_timers():
    async def scenario():
        timers = ManualTimers()
        q = WorkQueue(backoff=ItemExponentialBackoff(base=1, cap=8), call_later=timers)
        delays = []
        for _ in range(5):
            q.add_rate_limited("a")
            delays.append(timers.pending[-1][0])
        assert delays == [1, 2, 4, 8, 8]
        assert len(q) == 0
        timers.fire_all()
        assert len(q) == 1
        q.forget("a")
        assert q.backoff.retries("a") == 0

    asyncio.run(scenario())


def test_shutdown_wakes_getters_and_cancels_timers():
    async def scenario():
        timers = ManualTimers()
        q = WorkQueue(call_later=timers)
        getter = asyncio.ensure_future(q.get())
        await asyncio.sleep(0)
        q.add_after("x", 5)
        q.shutdown()
        assert await asyncio.wait_for(getter, 1) is None
        assert timers.pending == []

    asyncio.run(scenario())


def test_run_workers_retries_a_failing_key_until_it_succeeds():
    async def scenario():
        q = WorkQueue(backoff=ItemExponentialBackoff(base=0.001, cap=0.01))
        attempts = []
        done = asyncio.Event()

        async def sync(key):
            attempts.append(key)
            if len(attempts) < 3:
                raise RuntimeError("transient")
            done.set()

        q.add("k")
        task = asyncio.ensure_future(run_workers(q, sync, workers=2))
        await asyncio.wait_for(done.wait(), 5)
        q.shutdown()
        await asyncio.wait_for(task, 5)
        assert attempts == ["k", "k", "k"]
        assert q.backoff.retries("k") == 0

    asyncio.run(scenario())


def test_backoff_stays_at_the_cap_after_any_number_of_failures():
    from kubelite.workqueue import ItemExponentialBackoff

    backoff = ItemExponentialBackoff(base=0.005, cap=300.0)
    delays = [backoff.when("k") for _ in range(2000)]
    assert delays[:3] == [0.005, 0.01, 0.02]
    assert max(delays) == delays[-1] == 300.0
