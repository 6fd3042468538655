"""CrashLoopBackOff timing: first restart immediate, then 10s doubling to 5 minutes."""

from kubelet.backoff import Backoff


def test_first_restart_is_immediate_then_doubles_to_cap():
    b = Backoff()
    now = 1000.0
    assert b.remaining_since("k", event_time=now, now=now) == 0
    delays = []
    for _ in range(8):
        b.next("k", event_time=now, now=now)
        delays.append(b.delay("k"))
        now += 1
    assert delays == [10, 20, 40, 80, 160, 300, 300, 300]


def test_remaining_counts_from_the_event():
    b = Backoff()
    b.next("k", event_time=100, now=100)
    b.next("k", event_time=105, now=105)  # second crash: 20s
    assert b.remaining_since("k", event_time=105, now=110) == 15
    assert b.remaining_since("k", event_time=105, now=125) == 0


def test_entry_expires_after_twice_the_cap():
    b = Backoff()
    b.next("k", event_time=0, now=0)
    b.next("k", event_time=1, now=1)
    assert b.delay("k") == 20
    # a crash long after the last restart starts over at 10s
    b.next("k", event_time=1000, now=1000)
    assert b.delay("k") == 10
    assert b.remaining_since("k", event_time=5000, now=5000) == 0


def test_since_update_for_image_pulls():
    b = Backoff()
    assert b.remaining_since_update("img", now=0) == 0
    b.next("img", event_time=0, now=0)
    assert b.remaining_since_update("img", now=4) == 6
    assert b.remaining_since_update("img", now=10) == 0


def test_forget_prefix_only_forgets_that_pod():
    b = Backoff()
    b.next("uid-1/a", 0, 0)
    b.next("uid-2/a", 0, 0)
    b.forget_prefix("uid-1/")
    assert b.delay("uid-1/a") == 0
    assert b.delay("uid-2/a") == 10
