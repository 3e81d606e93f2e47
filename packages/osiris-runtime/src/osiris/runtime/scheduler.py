"""The step scheduler: runs independent steps in parallel, bounded, the same on the host and in a worker.

A step starts as soon as every step it needs has succeeded, with at most `max_parallel` steps running
at once (threads: the drivers spend their time in C code that releases the GIL, in the database
or on the network). Ties start in manifest order, so a run with `max_parallel=1` runs exactly the
manifest's order.

When a step fails:

- under `on_error: stop` (the default) no new step starts; the running ones finish; the rest stay
  `not_run`;
- under `on_error: continue` the steps that depend on it (directly or not) are `skipped` with the
  reason, and every other step still runs.

A step in `Plan.streams` reads its one upstream as it is written (`osiris.runtime.handoff`): it starts
as soon as that upstream is running, and the pair takes one slot of `max_parallel` (the two work on
one stream of data; a consumer that starts only after its upstream finished takes a slot of its own).
A step that returns `skipped` or `not_run` (its upstream failed while it was reading it) does not stop
the run: the upstream's failure does, as its `on_error` says.

The scheduler knows nothing of drivers: `run_one(step_id)` runs a step and returns its status.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

FINISHED_BAD = ("failed", "skipped")


def default_max_parallel() -> int:
    """One step per core this process may use (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores)


@dataclass(frozen=True)
class Plan:
    """What to schedule: the steps in manifest order, what each needs, and which ones continue on error."""

    order: list[str]
    needs: Mapping[str, list[str]]
    continue_on_error: frozenset[str]
    # Steps that read their upstream as it is written: consumer -> upstream.
    streams: Mapping[str, str] = field(default_factory=dict)


def schedule(
    plan: Plan,
    run_one: Callable[[str], str],
    *,
    status: dict[str, str],
    max_parallel: int | None = None,
    on_skip: Callable[[str, str], None] | None = None,
    only: Iterable[str] | None = None,
) -> dict[str, str]:
    """Run the steps of `plan` (those in `only`, when given) and return every step's status.

    `status` holds what is already known (steps reused from an earlier run as `succeeded`) and is
    updated as steps finish; `on_skip(step_id, upstream)` is called for each skipped step.
    """
    limit = max(1, int(max_parallel or default_max_parallel()))
    wanted = set(plan.order if only is None else only)
    pending = [s for s in plan.order if s in wanted and status.get(s) != "succeeded"]
    stop = False
    running: dict[Future[str], str] = {}
    riding: set[str] = set()  # consumers started beside their running upstream: no slot of their own

    def ready(sid: str) -> bool:
        up = plan.streams.get(sid)
        return all(
            status.get(d) == "succeeded" or (d == up and status.get(d) == "running") for d in plan.needs.get(sid, [])
        )

    def slots_used() -> int:
        # A riding consumer takes over its upstream's slot once that upstream is done.
        return sum(1 for s in running.values() if not (s in riding and status.get(plan.streams[s]) == "running"))

    workers = limit + len(plan.streams)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="osiris-step") as pool:
        while True:
            if not stop:
                for sid in list(pending):
                    bad = next((d for d in plan.needs.get(sid, []) if status.get(d) in FINISHED_BAD), None)
                    if bad is not None:
                        pending.remove(sid)
                        status[sid] = "skipped"
                        if on_skip is not None:
                            on_skip(sid, bad)
                        continue
                    up = plan.streams.get(sid)
                    rides = up is not None and status.get(up) == "running"
                    if not rides and slots_used() >= limit:
                        continue
                    if ready(sid):
                        pending.remove(sid)
                        status[sid] = "running"
                        if rides:
                            riding.add(sid)
                        running[pool.submit(run_one, sid)] = sid
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                sid = running.pop(future)
                riding.discard(sid)
                try:
                    status[sid] = future.result()
                except Exception:  # run_one reports driver failures itself; this is a bug in it
                    status[sid] = "failed"
                if status[sid] not in ("succeeded", "skipped", "not_run") and sid not in plan.continue_on_error:
                    stop = True
    for sid in pending:
        status.setdefault(sid, "not_run")
    return status


__all__ = ["Plan", "default_max_parallel", "schedule"]
