"""The step scheduler: bounded parallelism, dependency order, `on_error` stop and continue."""

from __future__ import annotations

import random
import threading

import pytest

from osiris.runtime.scheduler import Plan, schedule


def _random_plan(rng: random.Random, n: int) -> Plan:
    order = [f"s{i}" for i in range(n)]
    needs = {s: sorted(rng.sample(order[:i], k=min(i, rng.randrange(3)))) for i, s in enumerate(order)}
    return Plan(order=order, needs=needs, continue_on_error=frozenset(s for s in order if rng.random() < 0.5))


@pytest.mark.parametrize("seed", range(8))
def test_steps_start_after_their_needs_and_never_above_the_limit(seed):
    rng = random.Random(seed)
    plan = _random_plan(rng, rng.randrange(1, 25))
    limit = rng.randrange(1, 5)
    failing = {s for s in plan.order if rng.random() < 0.2}
    lock, running, peak, done = threading.Lock(), set(), [0], []

    def run_one(sid: str) -> str:
        with lock:
            assert all(d in done for d in plan.needs[sid]), sid
            running.add(sid)
            peak[0] = max(peak[0], len(running))
        with lock:
            running.discard(sid)
            done.append(sid)
        return "failed" if sid in failing else "succeeded"

    status = schedule(plan, run_one, status={}, max_parallel=limit)
    assert peak[0] <= limit
    stopped = any(status[s] == "failed" and s not in plan.continue_on_error for s in plan.order)
    for sid in plan.order:
        bad_up = [d for d in plan.needs[sid] if status[d] in ("failed", "skipped", "not_run")]
        if status[sid] == "skipped":
            assert any(status[d] in ("failed", "skipped") for d in plan.needs[sid])
        elif status[sid] == "not_run":
            assert stopped or bad_up
        else:
            assert status[sid] == ("failed" if sid in failing else "succeeded")
    if not stopped:  # under continue only: every step not downstream of a failure ran
        assert all(status[s] in ("succeeded", "failed", "skipped") for s in plan.order)


def test_independent_steps_really_run_at_the_same_time():
    plan = Plan(order=["a", "b", "c"], needs={"a": [], "b": [], "c": ["a", "b"]}, continue_on_error=frozenset())
    both = threading.Barrier(2, timeout=30)  # a and b can pass only when both run at once

    def run_one(sid: str) -> str:
        if sid in ("a", "b"):
            both.wait()
        return "succeeded"

    assert schedule(plan, run_one, status={}, max_parallel=2) == {s: "succeeded" for s in "abc"}


def test_stop_runs_nothing_new_and_continue_skips_only_dependents():
    plan = Plan(order=["a", "a2", "b", "b2"], needs={"a2": ["a"], "b2": ["b"]}, continue_on_error=frozenset())
    ran: list[str] = []

    def run_one(sid: str) -> str:
        ran.append(sid)
        return "failed" if sid == "a" else "succeeded"

    assert schedule(plan, run_one, status={}, max_parallel=1) == {
        "a": "failed",
        "a2": "not_run",
        "b": "not_run",
        "b2": "not_run",
    }
    ran.clear()
    skipped = []
    plan = Plan(order=plan.order, needs=plan.needs, continue_on_error=frozenset({"a"}))
    status = schedule(plan, run_one, status={}, max_parallel=1, on_skip=lambda s, up: skipped.append((s, up)))
    assert status == {"a": "failed", "a2": "skipped", "b": "succeeded", "b2": "succeeded"}
    assert skipped == [("a2", "a")] and ran == ["a", "b", "b2"]
    # Steps already known to have succeeded (reused by --resume) are not run again.
    ran.clear()
    schedule(plan, run_one, status={"a": "succeeded", "b": "succeeded"}, max_parallel=2)
    assert sorted(ran) == ["a2", "b2"]


def test_a_streaming_consumer_starts_beside_its_upstream_in_the_same_slot():
    # `w` reads `a` as it is written: with one slot they still run at once (a barrier for two),
    # while `b`, independent, waits for that slot.
    plan = Plan(
        order=["a", "w", "b"],
        needs={"a": [], "w": ["a"], "b": []},
        continue_on_error=frozenset(),
        streams={"w": "a"},
    )
    pair = threading.Barrier(2, timeout=30)
    lock, running, seen = threading.Lock(), set(), []

    def run_one(sid: str) -> str:
        with lock:
            running.add(sid)
            seen.append(set(running))
        if sid in ("a", "w"):
            pair.wait()
        with lock:
            running.discard(sid)
        return "succeeded"

    assert schedule(plan, run_one, status={}, max_parallel=1) == {s: "succeeded" for s in "awb"}
    assert all(not ({"b"} & s and {"a", "w"} & s) for s in seen)


def test_a_consumer_stopped_by_its_upstream_does_not_stop_the_run_twice():
    plan = Plan(
        order=["a", "w", "c"],
        needs={"a": [], "w": ["a"], "c": []},
        continue_on_error=frozenset({"a"}),
        streams={"w": "a"},
    )
    outcome = {"a": "failed", "w": "skipped", "c": "succeeded"}
    assert schedule(plan, lambda sid: outcome[sid], status={}, max_parallel=1) == outcome
