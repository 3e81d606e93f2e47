"""The runner: runs the steps of a run session on this machine, the same on the host and in a sandbox worker.

::

    from osiris.core.build import load_build
    from osiris.runtime.runner import Runner
    from osiris.runtime.session import RunSession

    session = RunSession.for_build(load_build(path), runs_dir=Path("runs"), listeners=[listener])
    runner = Runner(session)
    runner.prepare()                      # run dir, run_start, preflight, drivers_registered
    runner.run_steps(max_parallel=4)      # the scheduler: independent steps in parallel, `on_error`
    # (or one at a time: result = runner.run_step(step_id) -> StepResult; never raises for a driver failure)
    run = runner.finish()                 # run_card.json, run_complete -> RunResult

    # or all at once: run = runner.run(max_parallel=4)

A sandbox worker makes its session from what the host sends (`RunSession(manifest, configs,
run_dir, secrets=..., listeners=[forwarder])`): configs arrive resolved, in memory. Each step
gets an `InputHandle` per upstream step (`inputs["df"]` when there is exactly one) and a
`StepContext`; its driver runs through `osiris.runtime.steps.execute_step`, which writes the
output and its `data_sha256` and retries transient failures of components that declare
`safe_to_retry` (`step_retry` events). A writer whose component declares `streaming_input` starts
beside its upstream and reads its batches as they are written (`osiris.runtime.handoff`; the run card's
`overlap` entry of the step says so); `OSIRIS_OVERLAP=0` turns that off. Events and metrics go to the session's log
(`osiris.runtime.runlog`); the run card is `osiris.runtime.runcard`. What the driver and the
output writer report as they go is added up per step by a `osiris.runtime.progress.StepMeter`:
progress ticks for the listeners (the live display) and `step_progress` events.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path

from osiris.core.errors import OsirisError, TerminalError, UserInputError
from osiris.core.manifest import ManifestStep
from osiris.runtime import incremental as inc
from osiris.runtime import interrupts
from osiris.runtime.__about__ import __version__
from osiris.runtime.contract import InputHandle, StepContext, upstream_inputs
from osiris.runtime.handoff import (
    STREAMING_INPUT,
    ConsumerFailed,
    HandOff,
    LiveInput,
    overlap_enabled,
    overlap_pairs,
)
from osiris.runtime.io import OUTPUT_FILE, use_lean_memory_pool
from osiris.runtime.progress import PROGRESS_EVENT, StepMeter
from osiris.runtime.registry import RegistrationSummary, check_requirements, raise_for_missing
from osiris.runtime.resolve import spec_of
from osiris.runtime.retry import RetryPolicy, retry_event
from osiris.runtime.runcard import RunResult, StepResult, build_run_card
from osiris.runtime.runlog import jsonable, now
from osiris.runtime.scheduler import Plan, schedule
from osiris.runtime.session import RunSession
from osiris.runtime.steps import execute_step
from osiris.runtime.versions import check_pins, environment, pin_mismatches


class Runner:
    """Runs the steps of one `RunSession` here; see the module docstring for the step-by-step API."""

    def __init__(self, session: RunSession) -> None:
        self.session = session
        self.results: dict[str, StepResult] = {
            s.id: StepResult(step_id=s.id, component=s.component, mode=s.mode) for s in session.manifest.steps
        }
        self.outputs: dict[str, Path] = {}
        self.registration: RegistrationSummary | None = None
        self._steps = {s.id: s for s in session.manifest.steps}
        # Incremental state read before the run: (extractor step, writer step) -> (key, state row or None).
        self.states: dict[tuple[str, str], tuple[inc.StateKey, dict | None]] = {}
        self._prepared = False
        self._finished: RunResult | None = None
        # Overlapped hand-offs of the steps being scheduled, by the upstream and by the consumer step.
        self.overlap = overlap_enabled()
        self._producing: dict[str, HandOff] = {}
        self._consuming: dict[str, HandOff] = {}
        self._waiting_at_stop: set[str] = set()  # interrupted while waiting for the other step of its pair

    # -- lifecycle -----------------------------------------------------------------------------

    def prepare(self) -> RegistrationSummary:
        """Open the session, emit `run_start`, check requirements and register the manifest's drivers."""
        if self._prepared:
            raise RuntimeError("Runner.prepare() was already called")
        self._prepared = True
        session, manifest = self.session, self.session.manifest
        session.open()
        session.emit(
            "run_start",
            pipeline=manifest.pipeline.name,
            manifest_fingerprint=manifest.fingerprints.manifest,
            steps=[s.id for s in manifest.steps],
            runtime_version=__version__,
        )
        if session.setup_error is not None:
            raise session.setup_error
        # The same version rule as before a sandbox run: the installed drivers are the manifest's pins.
        mismatches = pin_mismatches(manifest)
        session.emit("version_check", ok=not mismatches, mismatches=[m.to_data() for m in mismatches])
        check_pins(manifest)
        # The preflight runs before anything imports a driver library, so a missing one is the install
        # hint (exit 2), never an ImportError from deep inside.
        missing = check_requirements(session.components)
        session.emit(
            "dependency_check",
            ok=not missing,
            missing=[
                {"component": m.component, "import": m.module, "package": m.package, "install": m.install}
                for m in missing
            ],
        )
        raise_for_missing(missing)
        use_lean_memory_pool()
        summary = session.registry.populate_from_component_specs(session.components, allow=list(session.components))
        self.registration = summary
        for name, target in summary.registered.items():
            session.emit("driver_registered", component=name, driver=target)
        for name, error in summary.failed.items():
            session.emit("driver_registration_failed", component=name, error=error)
        session.emit("drivers_registered", **summary.to_data())
        if summary.failed:
            names = ", ".join(f"`{n}` ({e})" for n, e in sorted(summary.failed.items()))
            raise TerminalError(f"Could not load the drivers of {names}")
        for step in manifest.steps:
            registered = summary.registered.get(step.component)
            if registered != step.driver:
                raise UserInputError(
                    f"Step `{step.id}` was compiled for driver `{step.driver}` but the installed "
                    f"`{step.component}` uses `{registered}`; compile the pipeline again",
                    step=step.id,
                )
        self._read_states()
        return summary

    def _read_states(self) -> None:
        """Read the watermark of every (incremental extractor, destination) before any step runs."""
        session, manifest = self.session, self.session.manifest
        for src in inc.incremental_steps(manifest, session.configs):
            writers = inc.destinations_of(manifest, src)
            if not writers:
                raise UserInputError(
                    f"Step `{src}` reads incrementally but no `write` step is downstream of it; the watermark "
                    "is kept in the destination, so add a writer (e.g. `supabase.writer` in `upsert` mode)",
                    step=src,
                )
            for w in writers:
                driver = session.registry.create(self._steps[w].component)
                if not hasattr(driver, "read_state"):
                    raise UserInputError(
                        f"Step `{w}` (`{self._steps[w].component}`) is downstream of the incremental step `{src}` "
                        "but keeps no incremental state; write to `supabase.writer` or `duckdb.writer`",
                        step=w,
                    )
                key = inc.StateKey(manifest.pipeline.name, src, inc.destination_name(w, session.configs.get(w, {})))
                state = driver.read_state(config=session.configs.get(w, {}), key=key)
                self.states[(src, w)] = (key, state)
                session.emit(
                    "state_read",
                    src,
                    destination=key.destination,
                    writer=w,
                    watermark=(state or {}).get("watermark"),
                    version=(state or {}).get("version"),
                )

    def _incremental_for(self, step_id: str) -> inc.IncrementalRead | inc.IncrementalWrite | None:
        """What `ctx.incremental` carries for this step (None for a step outside incremental loading)."""
        session = self.session
        config = session.configs.get(step_id, {})
        block = config.get("incremental")
        if isinstance(block, dict):
            dests = {w: st for (s, w), (_, st) in self.states.items() if s == step_id}
            marks = [(st or {}).get("watermark") for st in dests.values()]
            watermark = marks[0] if marks else None
            for m in marks[1:]:
                watermark = inc.older(watermark, m)
            key_columns = None
            if block.get("deletes") == "reconcile" and dests:
                pk = session.configs.get(next(iter(dests)), {}).get("primary_key")
                key_columns = [pk] if isinstance(pk, str) else list(pk or [])
            return inc.IncrementalRead(
                watermark=watermark,
                full_refresh=bool(block.get("full_refresh")),
                key_columns=key_columns,
                destinations={w: (st or {}).get("watermark") for w, st in dests.items()},
            )
        commits = []
        write: inc.IncrementalWrite | None = None
        for (src, w), (key, state) in self.states.items():
            if w != step_id:
                continue
            facts = self.results[src].facts.get("incremental")
            if not isinstance(facts, dict):
                raise TerminalError(
                    f"Step `{src}` has an `incremental` block but its driver reported no window; "
                    f"its component does not read incrementally, so `{step_id}` cannot commit a watermark",
                    step=step_id,
                )
            block = session.configs.get(src, {}).get("incremental") or {}
            deletes, soft = inc.parse_deletes(block.get("deletes"), step=src)
            commits.append(
                inc.StateCommit(
                    key=key,
                    expected_version=(state or {}).get("version"),
                    watermark_before=(state or {}).get("watermark"),
                    watermark_after=facts.get("watermark_after"),
                    window={
                        "low": facts.get("low"),
                        "high": facts.get("high"),
                        "rows_read": self.results[src].rows_out,
                    },
                    run_id=session.run_id,
                )
            )
            keys = facts.get("source_keys")
            write = inc.IncrementalWrite(
                commits=commits,
                full_refresh=bool(block.get("full_refresh")) or (write.full_refresh if write else False),
                deletes=deletes if write is None or write.deletes == "none" else write.deletes,
                soft_column=soft or (write.soft_column if write else None),
                source_keys=str(session.run_dir / "artifacts" / src / keys)
                if keys
                else (write.source_keys if write else None),
            )
        return write

    def run_step(self, step_id: str) -> StepResult:
        """Run one step (its upstream steps must have succeeded); driver failures become a failed result."""
        consuming = self._consuming.get(step_id)
        producing = self._producing.get(step_id)
        result = self.results.get(step_id)
        try:
            if not self._prepared:
                raise RuntimeError("call Runner.prepare() before run_step()")
            step = self._steps.get(step_id)
            if step is None or result is None:
                raise UserInputError(f"Unknown step `{step_id}`; steps: {', '.join(self._steps)}")
            for need in step.needs:
                if self.results[need].status != "succeeded" and not (consuming and consuming.upstream == need):
                    raise TerminalError(
                        f"Step `{step_id}` needs `{need}`, which has status `{self.results[need].status}`",
                        step=step_id,
                    )
            return self._run_step(step, result, time.perf_counter(), consuming, producing)
        finally:
            # Whatever happened, the other side of an overlapped pair never waits for this step again.
            status = result.status if result is not None else "failed"
            if consuming is not None and result is not None and result.overlap is None:
                result.overlap = consuming.record()
            if producing is not None:
                producing.finish(status)
            if consuming is not None:
                consuming.consumer_done(failed=status in ("failed", "interrupted", "running", "not_run"))

    def _run_step(
        self,
        step: ManifestStep,
        result: StepResult,
        started: float,
        consuming: HandOff | None,
        producing: HandOff | None,
    ) -> StepResult:
        session, step_id = self.session, step.id
        out_dir = session.run_dir / "artifacts" / step_id
        out_dir.mkdir(parents=True, exist_ok=True)
        config = session.configs.get(step_id, {})
        cleaned = json.dumps(session.redactor.redact(config), indent=2, sort_keys=True, ensure_ascii=False)
        session.write_diagnostic(out_dir / "cleaned_config.json", cleaned + "\n")
        session.emit("step_start", step_id, component=step.component, mode=step.mode, driver=step.driver)
        result.status = "running"
        # Progress of the current attempt, as told by the driver and by the writer of the output.
        meter = StepMeter(
            step_id,
            publish=session.log.progress,
            record=lambda data: session.emit(PROGRESS_EVENT, step_id, **data),
        )

        def on_retry(retry: int, exc: BaseException, delay_s: float) -> None:
            meter.restart()
            session.emit("step_retry", step_id, **retry_event(retry, policy, exc, delay_s, step_id))

        def on_restart(exc: BaseException) -> None:
            meter.restart()
            session.emit(
                "step_restarted",
                step_id,
                upstream=consuming.upstream if consuming else None,
                reason="the upstream's attempt failed while this step read it; it runs again on the final output",
                error=session.error_data(exc, step_id),
            )

        try:
            spec = session.components.get(step.component)
            policy = RetryPolicy.for_step(spec_of(spec) if spec is not None else None, config, step_id=step_id)
            handles: dict[str, InputHandle] = {}
            for n in step.needs:
                if consuming is not None and consuming.upstream == n:
                    handles[n] = LiveInput(consuming)
                elif n in self.outputs:
                    handles[n] = InputHandle(n, self.outputs[n])
            inputs = upstream_inputs(handles)

            def resolve_inputs() -> None:
                rows_in = {sid: h.num_rows for sid, h in inputs.items() if sid != "df"}
                result.rows_in = sum(rows_in.values())
                session.emit(
                    "inputs_resolved",
                    step_id,
                    inputs={
                        sid: {"rows": rows_in[sid], "path": str(inputs[sid].path.relative_to(session.run_dir))}
                        for sid in rows_in
                    },
                    rows_in=result.rows_in,
                    **({"overlapped_with": consuming.upstream} if consuming is not None else {}),
                )

            if consuming is None:
                resolve_inputs()
                if step.mode == "write" and inputs:
                    meter.set_total(rows=result.rows_in)  # a writer's total is its input, until it says otherwise
            ctx = StepContext(
                step_id=step_id,
                output_dir=out_dir,
                on_event=lambda name, data: session.emit(name, step_id, **data),
                on_metric=lambda name, value, tags: session.metric(name, value, step_id, **tags),
                on_progress=lambda n: meter.add(n),
                base_dir=session.base_dir,
                incremental=self._incremental_for(step_id),
                on_bytes=lambda n: meter.add(bytes=n),
                on_total=lambda rows, nbytes: meter.set_total(rows, bytes=nbytes),
            )
            output = execute_step(
                session.registry.create(step.component),
                step_id=step_id,
                config=config,
                inputs=inputs,
                ctx=ctx,
                policy=policy,
                on_retry=on_retry,
                on_rows=lambda n: meter.add(n, source="written"),
                handoff=producing,
                on_restart=on_restart,
            )
            if consuming is not None:
                resolve_inputs()  # the upstream's output is complete now: its rows are known
                result.overlap = consuming.record()
            if output.path is not None:
                self.outputs[step_id] = output.path
                result.rows_out = output.rows
                result.outputs = [
                    {
                        "name": "df",
                        "path": str(output.path.relative_to(session.run_dir)),
                        "rows": output.rows,
                        "columns": output.columns,
                        "data_sha256": output.data_sha256,
                    }
                ]
            result.facts = session.redactor.redact(jsonable(output.facts))
            if step.mode == "write" and not result.outputs:
                result.rows_out = int(output.facts.get("rows_written", result.rows_in))
            result.duration_ms = _ms_since(started)
            result.status = "succeeded"
            session.metric("rows_read", result.rows_in if inputs else result.rows_out, step_id)
            session.metric("rows_written", result.rows_out, step_id)
            session.metric("duration_ms", result.duration_ms, step_id)
            session.emit(
                "step_complete",
                step_id,
                rows_in=result.rows_in,
                rows_out=result.rows_out,
                duration_ms=result.duration_ms,
                outputs=result.outputs,
            )
        except KeyboardInterrupt as exc:  # RunInterrupted (SIGINT, SIGTERM, the host went away) or Ctrl-C
            raise self._step_interrupted(result, out_dir, started, interrupts.as_interrupt(exc)) from None
        except Exception as exc:
            pending = interrupts.requested()
            if pending is not None:  # a library turned the interrupt into its own error (a cancelled query...)
                raise self._step_interrupted(result, out_dir, started, pending) from None
            if consuming is not None and consuming.upstream_failed:
                return self._stopped_by_upstream(result, started, consuming)
            result.duration_ms = _ms_since(started)
            result.status = "failed"
            result.error = session.error_data(exc, step_id)
            if isinstance(exc, ConsumerFailed):
                result.reason = str(exc)
            result.traceback = session.redactor.redact_text(traceback.format_exc())
            session.write_diagnostic(out_dir / "error.txt", result.traceback)
            session.metric("duration_ms", result.duration_ms, step_id)
            session.emit("step_failed", step_id, error=result.error, duration_ms=result.duration_ms)
        _release_arrow_memory()
        return result

    def _stopped_by_upstream(self, result: StepResult, started: float, handoff: HandOff) -> StepResult:
        """The upstream this step read as it was written failed: the step rolled back, and its status is the
        one it would have had without overlapping (`not_run`, or `skipped` below an `on_error: continue`)."""
        result.duration_ms = _ms_since(started)
        result.overlap = handoff.record()
        reason = f"upstream step `{handoff.upstream}` {self.results[handoff.upstream].status}"
        if self._steps[handoff.upstream].on_error == "continue":
            result.status, result.reason = "skipped", reason
        else:
            result.status, result.reason = "not_run", None
        self.session.emit(
            "step_skipped" if result.status == "skipped" else "step_not_run",
            result.step_id,
            reason=reason,
            upstream=handoff.upstream,
            overlapped=True,
            duration_ms=result.duration_ms,
        )
        _release_arrow_memory()
        return result

    def _step_interrupted(
        self, result: StepResult, out_dir: Path, started: float, interrupt: interrupts.RunInterrupted
    ) -> interrupts.RunInterrupted:
        """Record the step as `interrupted` (its temporary files removed); the interrupt to raise."""
        with interrupts.deferred():
            sid = result.step_id
            if (sid in self._producing and self._producing[sid].stopped_waiting == "upstream") or (
                sid in self._consuming and self._consuming[sid].stopped_waiting == "consumer"
            ):
                self._waiting_at_stop.add(sid)
            interrupt.step = result.step_id
            result.duration_ms = _ms_since(started)
            result.status = "interrupted"
            result.error = self.session.redactor.redact(interrupt.to_data())
            removed = _remove_temporary_files(out_dir)
            self.session.emit(
                "step_interrupted",
                result.step_id,
                signal=interrupt.signal_name,
                reason=interrupt.reason,
                duration_ms=result.duration_ms,
                removed_temporary_files=removed,
            )
            self.session.metric("duration_ms", result.duration_ms, result.step_id)
        _release_arrow_memory()
        return interrupt

    def finish(
        self, error: BaseException | None = None, *, interrupted: interrupts.RunInterrupted | None = None
    ) -> RunResult:
        """Write `run_card.json`, emit `run_complete` and close the session; returns the `RunResult`.

        `interrupted`: the run was stopped (its card says `interrupted`, with the signal and the step).
        """
        with interrupts.deferred():
            return self._finish(error, interrupted)

    def _finish(self, error: BaseException | None, interrupted: interrupts.RunInterrupted | None) -> RunResult:
        if self._finished is not None:
            return self._finished
        session = self.session
        self._prepared = True
        session.open()
        steps = [self.results[s.id] for s in session.manifest.steps]
        # A step stopped because the step reading its output failed is not the cause: that step is.
        failed = next(
            (s for s in steps if s.status == "failed" and (s.error or {}).get("type") != ConsumerFailed.__name__),
            next((s for s in steps if s.status == "failed"), None),
        )
        run_error = session.error_data(error, getattr(error, "step", None)) if error is not None else None
        if run_error is None and failed is not None:
            run_error = failed.error
        if interrupted is not None:
            if interrupted.step is None:
                # Of an overlapped pair, the step the stop found at work, not the one waiting for it.
                stopped = [s.step_id for s in steps if s.status == "interrupted"]
                interrupted.step = next((s for s in stopped if s not in self._waiting_at_stop), None) or next(
                    iter(stopped), None
                )
            run_error = session.redactor.redact(interrupted.to_data())
            session.emit("run_interrupted", **interrupted.record())
        duration_ms = session.duration_ms
        card = build_run_card(
            run_id=session.run_id,
            manifest=session.manifest,
            steps=steps,
            error=run_error,
            started_at=session.started_at,
            finished_at=now(),
            duration_ms=duration_ms,
            drivers_fingerprint=self.registration.fingerprint if self.registration else None,
            interrupted=interrupted.record() if interrupted is not None else None,
            environment=environment(session.manifest, session.components),
        )
        session.emit(
            "run_complete",
            status=card["status"],
            duration_ms=duration_ms,
            steps_succeeded=sum(s.status == "succeeded" for s in steps),
            steps_failed=sum(s.status == "failed" for s in steps),
            steps_not_run=sum(s.status == "not_run" for s in steps),
            steps_interrupted=sum(s.status == "interrupted" for s in steps),
            steps_skipped=sum(s.status == "skipped" for s in steps),
            steps_reused=sum(bool(s.reused_from) for s in steps),
        )
        card = session.write_run_card(card)
        session.close()
        self._finished = RunResult.from_card(card, session.run_dir, steps=steps)
        self._finished.diagnostics_incomplete = session.problems.messages()
        return self._finished

    def run_steps(
        self,
        step_ids: Iterable[str] | None = None,
        *,
        max_parallel: int | None = None,
        on_done: Callable[[StepResult], None] | None = None,
        overlap: bool | None = None,
    ) -> list[StepResult]:
        """Run steps (all by default) through the scheduler: each once its upstream steps succeeded, at most
        `max_parallel` at once (default: the machine's cores), each step's `on_error` deciding what a failure
        stops (`osiris.runtime.scheduler`). `on_done` gets every step's result once it is final, those that
        did not run included. `overlap` (default: `OSIRIS_OVERLAP`, on): a `streaming_input` writer starts beside its
        upstream (`osiris.runtime.handoff`). Returns the results in manifest order."""
        manifest = self.session.manifest
        wanted = [s.id for s in manifest.steps] if step_ids is None else list(step_ids)
        plan = Plan(
            order=[s.id for s in manifest.steps],
            needs={s.id: list(s.needs) for s in manifest.steps},
            continue_on_error=frozenset(s.id for s in manifest.steps if s.on_error == "continue"),
        )
        status = {sid: r.status for sid, r in self.results.items() if r.status == "succeeded"}
        plan = Plan(
            order=plan.order,
            needs=plan.needs,
            continue_on_error=plan.continue_on_error,
            streams=self._plan_overlap(plan, wanted, status) if (self.overlap if overlap is None else overlap) else {},
        )

        reported: set[str] = set()

        def run_one(sid: str) -> str:
            with interrupts.step_thread():  # a stop of the run stops this step where it is, as in the main thread
                result = self.run_step(sid)
            if on_done is not None:
                reported.add(sid)
                on_done(result)
            return result.status

        def on_skip(sid: str, upstream: str) -> None:
            result = self.results[sid]
            result.status = "skipped"
            result.reason = f"upstream step `{upstream}` {self.results[upstream].status}"
            self.session.emit("step_skipped", sid, reason=result.reason, upstream=upstream)

        try:
            schedule(plan, run_one, status=status, max_parallel=max_parallel, on_skip=on_skip, only=wanted)
        finally:
            for handoff in self._producing.values():
                handoff.finish(self.results[handoff.upstream].status)  # no-op for a finished upstream
                handoff.consumer_done(failed=True)
            self._producing.clear()
            self._consuming.clear()
        done = [self.results[sid] for sid in plan.order if sid in set(wanted)]
        if on_done is not None:
            for result in done:
                if (result.status in ("skipped", "not_run") or result.reused_from) and result.step_id not in reported:
                    on_done(result)
        return done

    def _plan_overlap(self, plan: Plan, wanted: list[str], status: dict[str, str]) -> dict[str, str]:
        """The consumer -> upstream pairs that overlap in this scheduling, with their hand-offs made."""
        session = self.session
        streaming = {}
        for s in session.manifest.steps:
            spec = session.components.get(s.component)
            caps = spec_of(spec).capabilities if spec is not None else {}
            streaming[s.id] = caps.get(STREAMING_INPUT) is True
        wanted_set = set(wanted)
        # Steps that already ran (reused) are read from their file; an incremental writer's watermark
        # needs its extractor's final facts when it starts.
        excluded = {sid for sid in plan.order if sid not in wanted_set or status.get(sid) == "succeeded"}
        excluded |= {w for (_, w) in self.states}
        pairs = overlap_pairs(plan.order, plan.needs, streaming, excluded=excluded)
        for consumer, up in pairs.items():
            handoff = HandOff(up, consumer, session.run_dir / "artifacts" / up / OUTPUT_FILE)
            # The scheduler starts a consumer in the same pass as its upstream, so from now on a full
            # queue makes the upstream wait for it (a consumer that never runs detaches in `run_step`).
            handoff.consumer_started()
            self._producing[up] = handoff
            self._consuming[consumer] = handoff
        return pairs

    def reuse(self, step_id: str, previous_run_dir: Path, entry: dict[str, object]) -> StepResult:
        """Take a step's result from an earlier run of the same manifest (`osiris run --resume`).

        Its output is copied in only after its `data_sha256` matches the earlier run card's; a step
        whose output was removed or changed is not reused (it runs again).
        """
        from osiris.runtime.io import data_sha256

        result = self.results[step_id]
        old = StepResult.from_data(dict(entry))
        copied: dict[str, Path] = {}
        for out in old.outputs:
            src = previous_run_dir / str(out.get("path", ""))
            if not src.is_file() or data_sha256(src) != out.get("data_sha256"):
                return result
            dst = self.session.run_dir / str(out["path"])
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst)  # the same bytes, no copy, when both runs are on one filesystem
            except OSError:
                shutil.copyfile(src, dst)
            copied[str(out.get("name", "df"))] = dst
        if "df" in copied:
            self.outputs[step_id] = copied["df"]
        result.status, result.rows_in, result.rows_out = "succeeded", old.rows_in, old.rows_out
        result.outputs, result.facts, result.duration_ms = old.outputs, old.facts, 0.0
        result.reused_from = previous_run_dir.name
        self.session.emit("step_reused", step_id, from_run=previous_run_dir.name, outputs=old.outputs)
        return result

    def run(self, *, max_parallel: int | None = None) -> RunResult:
        """Prepare, run the steps through the scheduler (`run_steps`) until the run is done or interrupted,
        and finish."""
        try:
            try:
                self.prepare()
            except OsirisError as exc:
                return self.finish(error=exc)
            self.run_steps(max_parallel=max_parallel)
        except KeyboardInterrupt as exc:
            return self.finish(interrupted=interrupts.as_interrupt(exc))
        return self.finish()


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _remove_temporary_files(folder: Path) -> list[str]:
    """Remove the hidden temporary files (`.name.<pid>.tmp`) a stopped step left in its artifact folder."""
    removed = []
    if folder.is_dir():
        for path in sorted(folder.glob(".*.tmp")):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path.name)
    return removed


def _release_arrow_memory() -> None:
    """Give memory Arrow's pool keeps for reuse back to the OS between steps (peak RSS stays per step)."""
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        # An older pyarrow or a pool without it: this is only an optimisation.
        with contextlib.suppress(Exception):
            pa.default_memory_pool().release_unused()


__all__ = ["Runner"]
