"""The linearizability checker on histories known to be good or bad, and on histories made from a
sequential run of a small etcd simulator (good by construction, bad once one read is corrupted);
and which operations a fault window of a recorded history holds."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.lincheck import Budget, Failure, KVInput, KVModel, KVOperation, KVOutput, Operation, Outcome, check
from tests.lincheck.faults import FaultWindow, assert_each_fault_felt, felt
from tests.lincheck.history import Workload

get, put, delete = KVInput.get, KVInput.put, KVInput.delete
cas_value, cas_mod = KVInput.cas_value, KVInput.cas_mod
read, written, swapped, removed = KVOutput.read, KVOutput.written, KVOutput.swapped, KVOutput.removed


class SearchOnly(KVModel):
    """The same model without the quick anomaly rules: the search alone must reach the same verdict."""

    def anomalies(self, ops):
        return []


def op(client: int, call: int, ret: int | None, input: KVInput, output: KVOutput | None) -> KVOperation:
    return Operation(client, call, ret, input, output)


def assert_linearizable(history: list[KVOperation]) -> None:
    result = check(history, budget=Budget(max_seconds=10))
    assert result.outcome is Outcome.LINEARIZABLE, result.describe()
    assert result.ok


def assert_violation(history: list[KVOperation], key: str, involved: list[KVOperation]) -> str:
    """Not linearizable, and the explanation names the key and every operation in `involved`."""
    result = check(history, budget=Budget(max_seconds=10))
    assert result.outcome is Outcome.NOT_LINEARIZABLE, result.describe()
    assert not result.ok
    [violation] = result.violations
    assert violation.key == key
    named = [violation.blocked, *violation.before, *violation.concurrent]
    for o in involved:
        assert o in named, f"{o} not named in:\n{result.describe()}"
    assert f"key {key}: not linearizable" in result.describe()
    by_search = check(history, SearchOnly(), budget=Budget(max_seconds=10))
    assert by_search.outcome is Outcome.NOT_LINEARIZABLE, by_search.describe()
    return result.describe()


# --- known good histories -------------------------------------------------------------------------


def test_sequential_history_is_linearizable() -> None:
    assert_linearizable(
        [
            op(0, 0, 10, get("k"), read(None, 0, 1)),
            op(0, 20, 30, put("k", "a"), written(2)),
            op(1, 40, 50, get("k"), read("a", 2, 2)),
            op(1, 60, 70, cas_value("k", "a", "b"), swapped(True, 3)),
            op(0, 80, 90, cas_mod("k", 2, "c"), swapped(False, 3)),
            op(0, 100, 110, cas_mod("k", 3, "c"), swapped(True, 4)),
            op(1, 120, 130, delete("k"), removed(1, 5)),
            op(1, 140, 150, delete("k"), removed(0, 5)),
            op(0, 160, 170, cas_mod("k", 0, "d"), swapped(True, 6)),
            op(0, 180, 190, get("k"), read("d", 6, 6)),
        ]
    )


def test_overlapping_operations_may_take_effect_in_either_order() -> None:
    # The read overlaps both puts; it sees b, so b was linearized after a even though a was called later.
    assert_linearizable(
        [
            op(0, 0, 100, put("k", "b"), written(3)),
            op(1, 10, 50, put("k", "a"), written(2)),
            op(2, 20, 120, get("k"), read("b", 3, 3)),
            op(2, 130, 140, get("k"), read("b", 3, 4)),
        ]
    )
    # A read overlapping a put may see the value before or after it.
    for seen in (None, "a"):
        assert_linearizable(
            [
                op(0, 0, 100, put("k", "a"), written()),
                op(1, 10, 20, get("k"), read(seen)),
            ]
        )


def test_touching_intervals_count_as_concurrent() -> None:
    assert_linearizable([op(0, 0, 10, put("k", "a"), written()), op(1, 10, 20, get("k"), read(None))])


def test_operations_on_different_keys_are_checked_apart() -> None:
    assert_linearizable(
        [
            op(0, 0, 10, put("x", "1"), written(2)),
            op(1, 20, 30, put("y", "1"), written(3)),
            op(0, 40, 50, get("x"), read("1", 2, 3)),
            op(1, 60, 70, get("y"), read("1", 3, 3)),
        ]
    )


# --- known bad histories --------------------------------------------------------------------------


def test_stale_read_after_a_completed_write_is_caught() -> None:
    write = op(0, 0, 10, put("k", "a"), written())
    stale = op(1, 20, 30, get("k"), read(None))
    explanation = assert_violation([write, stale], "k", [write, stale])
    assert "get(k) -> None" in explanation


def test_stale_read_is_caught_by_revision_when_the_value_repeats() -> None:
    # Same value written twice; the read's header revision shows it read before the second write.
    first = op(0, 0, 10, put("k", "a"), written(2))
    second = op(0, 20, 30, put("k", "a"), written(3))
    stale = op(1, 40, 50, get("k"), read("a", 2, 2))
    assert_violation([first, second, stale], "k", [stale])


def test_read_of_a_value_never_written_is_caught() -> None:
    write = op(0, 0, 10, put("k", "a"), written())
    bogus = op(1, 5, 30, get("k"), read("z"))
    explanation = assert_violation([write, bogus], "k", [bogus])
    assert "'z'" in explanation


def test_lost_update_two_compare_and_swaps_from_the_same_value_is_caught() -> None:
    setup = op(0, 0, 10, put("k", "a"), written(2))
    first = op(1, 20, 40, cas_value("k", "a", "b"), swapped(True))
    second = op(2, 25, 45, cas_value("k", "a", "c"), swapped(True))
    assert_violation([setup, first, second], "k", [first, second])


def test_lost_update_on_mod_revision_is_caught() -> None:
    setup = op(0, 0, 10, put("k", "a"), written(2))
    first = op(1, 20, 40, cas_mod("k", 2, "b"), swapped(True, 3))
    second = op(2, 25, 45, cas_mod("k", 2, "c"), swapped(True, 4))
    assert_violation([setup, first, second], "k", [first, second])


def test_lost_update_with_revisions_is_caught_at_a_glance() -> None:
    setup = op(0, 0, 10, put("k", "a"), written(2))
    first = op(1, 20, 40, cas_value("k", "a", "b"), swapped(True, 3))
    second = op(2, 25, 45, cas_value("k", "a", "c"), swapped(True, 4))
    assert "changed at revision 3" in assert_violation([setup, first, second], "k", [second, first])


def test_compare_and_swap_from_a_value_never_written_is_caught() -> None:
    swap = op(1, 20, 40, cas_value("k", "z", "b"), swapped(True, 3))
    assert "no write wrote" in assert_violation([swap], "k", [swap])


def test_read_going_back_in_time_is_caught() -> None:
    a = op(0, 0, 10, put("k", "a"), written())
    b = op(0, 0, 100, put("k", "b"), written())
    saw_b = op(1, 20, 30, get("k"), read("b"))
    saw_a = op(2, 40, 50, get("k"), read("a"))
    assert_violation([a, b, saw_b, saw_a], "k", [saw_a])


def test_only_the_broken_key_is_reported() -> None:
    history = [
        op(0, 0, 10, put("good", "1"), written()),
        op(1, 20, 30, get("good"), read("1")),
        op(0, 0, 10, put("bad", "1"), written()),
        op(1, 20, 30, get("bad"), read(None)),
    ]
    result = check(history)
    assert [v.key for v in result.violations] == ["bad"]
    assert {p.key: p.outcome for p in result.partitions} == {
        "bad": Outcome.NOT_LINEARIZABLE,
        "good": Outcome.LINEARIZABLE,
    }


def test_read_from_the_future_is_caught() -> None:
    early = op(1, 0, 10, get("k"), read("a"))
    write = op(0, 20, 30, put("k", "a"), written())
    assert "before any write of it was sent" in assert_violation([early, write], "k", [early, write])


def test_read_with_the_wrong_mod_revision_is_caught() -> None:
    write = op(0, 0, 10, put("k", "a"), written(5))
    wrong = op(1, 20, 30, get("k"), read("a", 4, 6))
    assert "written at 5" in assert_violation([write, wrong], "k", [wrong, write])


def test_read_missing_a_change_below_its_revision_is_caught() -> None:
    # The read is concurrent with the second put, but its store revision says it came after it.
    first = op(0, 0, 10, put("k", "a"), written(2))
    second = op(0, 20, 100, put("k", "b"), written(3))
    stale = op(1, 30, 40, get("k"), read("a", 2, 3))
    assert "missing the change at revision 3" in assert_violation(
        [first, second, stale], "k", [stale, second]
    )


def test_store_revision_going_back_in_real_time_is_caught() -> None:
    newer = op(0, 0, 10, get("k"), read(None, 0, 9))
    older = op(1, 20, 30, get("k"), read(None, 0, 8))
    assert "below revision 9" in assert_violation([newer, older], "k", [older, newer])
    write = op(1, 20, 30, put("k", "a"), written(9))
    assert_violation([newer, write], "k", [write])


def test_a_read_of_an_absent_key_may_be_explained_by_a_lost_delete() -> None:
    assert_linearizable(
        [
            op(0, 0, 10, put("k", "a"), written(2)),
            op(1, 20, None, delete("k"), None),
            op(0, 30, 40, get("k"), read(None, 0, 5)),
        ]
    )


# --- unknown outcomes -----------------------------------------------------------------------------


def test_unknown_write_seen_later_is_linearizable() -> None:
    lost_answer = op(0, 0, None, put("k", "a"), None)
    assert_linearizable(
        [
            lost_answer,
            op(1, 10, 20, get("k"), read(None)),
            op(1, 500, 510, get("k"), read("a")),
            op(1, 520, 530, get("k"), read("a")),
        ]
    )


def test_unknown_write_never_seen_is_linearizable() -> None:
    assert_linearizable([op(0, 0, None, put("k", "a"), None), op(1, 10, 20, get("k"), read(None))])


def test_unknown_write_seen_then_unseen_is_caught() -> None:
    lost_answer = op(0, 0, None, put("k", "a"), None)
    seen = op(1, 10, 20, get("k"), read("a"))
    unseen = op(1, 30, 40, get("k"), read(None))
    assert_violation([lost_answer, seen, unseen], "k", [unseen])


def test_unknown_compare_and_swap_takes_effect_only_if_its_compare_held() -> None:
    setup = op(0, 0, 10, put("k", "a"), written())
    assert_linearizable(
        [setup, op(1, 20, None, cas_value("k", "a", "b"), None), op(2, 30, 40, get("k"), read("b"))]
    )
    assert not check(
        [setup, op(1, 20, None, cas_value("k", "x", "b"), None), op(2, 30, 40, get("k"), read("b"))]
    ).ok


def test_many_unknown_writes_do_not_blow_up_the_search() -> None:
    # Thirty writes whose answers were lost, all pending for the whole history: the search must not
    # try every subset of them.
    history = [op(i, i, None, put("k", f"lost-{i}"), None) for i in range(30)]
    for i in range(40):
        history.append(op(99, 100 + 10 * i, 105 + 10 * i, get("k"), read("lost-7" if i >= 20 else None)))
    result = check(history, budget=Budget(max_seconds=5))
    assert result.ok, result.describe()
    assert result.steps < 50_000


# --- the checker's own limits ---------------------------------------------------------------------


def test_out_of_budget_answers_unknown_instead_of_hanging() -> None:
    # Twelve concurrent puts and reads that go v1, v2, v1: not linearizable, but only an exhaustive
    # search over orders of the puts shows it.
    history = [op(i, 0, 1000, put("k", f"v{i}"), written()) for i in range(12)]
    for n, value in enumerate(["v1", "v2", "v1"]):
        history.append(op(99, 100 + 20 * n, 110 + 20 * n, get("k"), read(value)))
    assert not check(history).ok
    result = check(history, budget=Budget(max_steps=100))
    assert result.outcome is Outcome.UNKNOWN
    assert not result.ok
    assert "budget ran out" in result.describe()


def test_malformed_history_is_refused() -> None:
    with pytest.raises(ValueError, match="returns before it is called"):
        check([op(0, 10, 5, get("k"), read(None))])
    with pytest.raises(ValueError, match="no return time"):
        check([op(0, 10, None, get("k"), read(None))])
    with pytest.raises(ValueError, match="without an output"):
        check([op(0, 10, 20, put("k", "a"), None)])


def test_unknown_reads_are_left_out() -> None:
    assert KVModel().partition([op(0, 0, None, get("k"), None)]) == {}


# --- generated histories --------------------------------------------------------------------------


@dataclass
class Simulator:
    """A sequential etcd: one global revision, per-key value and mod revision."""

    revision: int = 1
    data: dict[str, tuple[str, int]] = field(default_factory=dict)

    def apply(self, i: KVInput) -> KVOutput:
        current = self.data.get(i.key)
        if i.kind.value == "get":
            value, mod = current if current else (None, 0)
            return read(value, mod, self.revision)
        if i.kind.value == "put":
            return self._put(i)
        if i.kind.value == "delete":
            if current is None:
                return removed(0, self.revision)
            del self.data[i.key]
            self.revision += 1
            return removed(1, self.revision)
        if i.compare is not None and i.compare.value == "value":
            holds = current is not None and current[0] == i.expected_value
        else:
            holds = (current[1] if current else 0) == i.expected_mod_revision
        return self._put(i) if holds else swapped(False, self.revision)

    def _put(self, i: KVInput) -> KVOutput:
        assert i.value is not None
        self.revision += 1
        self.data[i.key] = (i.value, self.revision)
        return written(self.revision) if i.kind.value == "put" else swapped(True, self.revision)


# (what, key, knob, fate): knob picks the compare-and-swap's expectation; fate: 0 answered,
# 1 applied but the answer lost, 2 never applied and the answer lost.
steps_strategy = st.lists(
    st.tuples(
        st.sampled_from(["get", "put", "delete", "cas_value", "cas_mod"]),
        st.integers(0, 2),
        st.integers(0, 3),
        st.sampled_from([0, 0, 0, 0, 0, 0, 1, 2]),
    ),
    min_size=1,
    max_size=40,
)


def generate(steps: list[tuple[str, int, int, int]], seed: int) -> list[KVOperation]:
    """Run `steps` sequentially on the simulator, then give each an interval around its turn."""
    rng = random.Random(seed)
    sim = Simulator()
    history: list[KVOperation] = []
    for n, (what, k, knob, fate) in enumerate(steps):
        key = f"k{k}"
        current = sim.data.get(key)
        if what == "get":
            i = get(key)
            fate = 0  # unknown reads are dropped by the recorder
        elif what == "put":
            i = put(key, f"v{n}")
        elif what == "delete":
            i = delete(key)
        elif what == "cas_value":
            expected = current[0] if current and knob < 3 else f"v{knob}"
            i = cas_value(key, expected, f"v{n}")
        else:
            mod = current[1] if current else 0
            i = cas_mod(key, mod if knob < 3 else mod + knob, f"v{n}")
        point = 100 * n  # the linearization point; the interval always contains it
        call = point - rng.randrange(0, 300)
        if fate == 2:
            history.append(op(n % 5, call, None, i, None))
            continue
        out = sim.apply(i)
        if fate == 1:
            history.append(op(n % 5, call, None, i, None))
        else:
            history.append(op(n % 5, call, point + rng.randrange(0, 300), i, out))
    return history


@settings(max_examples=300, deadline=None)
@given(steps_strategy, st.integers(0, 2**32))
def test_histories_from_a_sequential_run_are_linearizable(steps, seed) -> None:
    history = generate(steps, seed)
    result = check(history, budget=Budget(max_seconds=5))
    assert result.ok, result.describe()
    assert check(history, SearchOnly(), budget=Budget(max_seconds=5)).ok


@settings(max_examples=300, deadline=None)
@given(steps_strategy, st.integers(0, 2**32), st.data())
def test_one_impossible_read_makes_a_history_not_linearizable(steps, seed, data) -> None:
    history = generate([*steps, ("get", 0, 0, 0)], seed)
    reads = [n for n, o in enumerate(history) if o.input.kind.value == "get" and o.output is not None]
    n = data.draw(st.sampled_from(reads))
    bad = history[n]
    assert bad.output is not None
    corrupted = Operation(bad.client, bad.call_time, bad.return_time, bad.input, read("never-written"))
    history[n] = corrupted
    result = check(history, budget=Budget(max_seconds=5))
    assert result.outcome is Outcome.NOT_LINEARIZABLE, result.describe()
    [violation] = result.violations
    assert violation.key == bad.input.key
    assert corrupted in [violation.blocked, *violation.concurrent], result.describe()
    assert check(history, SearchOnly(), budget=Budget(max_seconds=5)).outcome is Outcome.NOT_LINEARIZABLE


def test_workload_compare_and_swaps_use_what_the_client_saw() -> None:
    workload = Workload(0, ["k"], random.Random(1))
    workload.observe(get("k"), read("v", 7, 9))
    swaps = [i for i in (workload.next() for _ in range(200)) if i.kind.value == "cas"]
    assert swaps
    assert all(s.expected_value == "v" or s.expected_mod_revision == 7 for s in swaps)


@settings(max_examples=400, deadline=None)
@given(steps_strategy, st.integers(0, 2**32), st.data())
def test_quick_anomaly_rules_never_disagree_with_the_search(steps, seed, data) -> None:
    """Corrupt one answer at random (a read's value or revisions, a swap's verdict, a write's revision):
    the anomaly rules may only ever find what the search alone finds."""
    history = generate(steps, seed)
    completed = [n for n, o in enumerate(history) if o.output is not None]
    if completed:
        n = data.draw(st.sampled_from(completed))
        o = history[n]
        assert o.output is not None
        values = [None, *(h.input.value for h in history if h.input.value is not None)]
        revision = o.output.revision or 0
        nearby = st.integers(max(0, revision - 3), revision + 3)
        if o.input.kind.value == "get":
            output = read(data.draw(st.sampled_from(values)), data.draw(nearby), data.draw(nearby))
        elif o.input.kind.value == "cas":
            output = swapped(data.draw(st.booleans()), data.draw(nearby))
        elif o.input.kind.value == "delete":
            output = removed(data.draw(st.integers(0, 1)), data.draw(nearby))
        else:
            output = written(data.draw(nearby))
        history[n] = Operation(o.client, o.call_time, o.return_time, o.input, output)
    quick = check(history, budget=Budget(max_seconds=5))
    search = check(history, SearchOnly(), budget=Budget(max_seconds=5))
    assert quick.outcome is search.outcome, f"{quick.describe()}\n--- search alone ---\n{search.describe()}"


# --- fault windows ------------------------------------------------------------------------------


def failure(call: int, failed: int, client: int = 0, sent: bool = True) -> Failure:
    return Failure(client, "127.0.0.1:2379", call, failed, get("k"), "UNAVAILABLE: Socket closed", sent)


def test_a_fault_window_holds_unknown_outcomes_called_during_it_and_failures_in_flight_in_it() -> None:
    window = FaultWindow("SIGKILL of leader m1", 100, 200)
    history = [
        op(0, 90, None, put("k", "before"), None),  # called before the fault: not the window's
        op(1, 120, 150, put("k", "answered"), written(2)),  # answered during the fault: not a failure
        op(2, 150, None, put("k", "unknown"), None),
        op(3, 201, None, put("k", "after"), None),
    ]
    failures = [
        failure(50, 99),  # over before the fault
        failure(80, 110),  # in flight when the fault began
        failure(199, 260),  # sent during it, failed after it
        failure(201, 230),  # sent after it
    ]
    found = felt(window, history, failures)
    assert found.unknown == (history[2],)
    assert found.failed == (failures[1], failures[2])
    assert found.any
    assert found.describe() == (
        "SIGKILL of leader m1 (0.00 s): 1 operations with an unknown outcome, 2 failed requests"
    )
    assert felt(window, history[:2] + history[3:], failures[2:3]).any
    assert felt(window, [history[2]]).any  # from the history alone
    assert not felt(window, [history[0], history[1], history[3]], [failures[0], failures[3]]).any


def test_assert_each_fault_felt_names_every_window_nothing_failed_in() -> None:
    kill = FaultWindow("SIGKILL of follower m2", 1_000, 2_000)
    pause = FaultWindow("SIGSTOP of leader m3", 3_000, 4_000)
    late = FaultWindow("SIGKILL of leader m1", 5_000, 6_000)
    history = [op(0, 1_500, None, put("k", "a"), None), op(1, 3_100, 3_200, get("k"), read("a", 2, 2))]
    failures = [failure(5_500, 5_600, sent=False)]
    with pytest.raises(AssertionError) as missed:
        assert_each_fault_felt([kill, pause, late], history, failures)
    message = str(missed.value)
    assert "during SIGSTOP of leader m3 [3000, 4000] ns;" in message, message
    assert "SIGKILL of follower m2 [" not in message and "SIGKILL of leader m1 [" not in message, message
    found = assert_each_fault_felt([kill, late], history, failures)
    assert [(f.window, len(f.unknown), len(f.failed)) for f in found] == [(kill, 1, 0), (late, 0, 1)]
    with pytest.raises(AssertionError, match="no fault window was recorded"):
        assert_each_fault_felt([], history, failures)
