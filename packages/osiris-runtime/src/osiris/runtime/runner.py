"""The runner: runs the steps of a run session on this machine, the same on the host and in a sandbox worker.

::

    from osiris.core.build import load_build
    from osiris.runtime.runner import Runner
    from osiris.runtime.session import RunSession

    session = RunSession.for_build(load_build(path), runs_dir=Path("runs"), listeners=[listener])
    runner = Runner(session)
    runner.prepare()                      # run dir, run_start, preflight, drivers_registered
    for step in session.manifest.steps:   # topological order, as compiled
        result = runner.run_step(step.id) # -> StepResult; never raises for a driver failure
        if result.status != "succeeded":
            break
    run = runner.finish()                 # run_card.json, run_complete -> RunResult

    # or all at once: run = runner.run()

A sandbox worker makes its session from what the host sends (`RunSession(manifest, configs,
run_dir, secrets=..., listeners=[forwarder])`): configs arrive resolved, in memory. Each step
gets an `InputHandle` per upstream step (`inputs["df"]` when there is exactly one) and a
`StepContext`; its driver runs through `osiris.runtime.steps.execute_step`, which writes the
output and its `data_sha256` and retries transient failures of components that declare
`safe_to_retry` (`step_retry` events). Events and metrics go to the session's log
(`osiris.runtime.runlog`); the run card is `osiris.runtime.runcard`. What the driver and the
output writer report as they go is added up per step by a `osiris.runtime.progress.StepMeter`:
progress ticks for the listeners (the live display) and `step_progress` events.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import traceback
from pathlib import Path

from osiris.core.errors import OsirisError, TerminalError, UserInputError
from osiris.runtime.__about__ import __version__
from osiris.runtime.contract import InputHandle, StepContext, upstream_inputs
from osiris.runtime.io import use_lean_memory_pool
from osiris.runtime.progress import PROGRESS_EVENT, StepMeter
from osiris.runtime.registry import RegistrationSummary, check_requirements, raise_for_missing
from osiris.runtime.resolve import spec_of
from osiris.runtime.retry import RetryPolicy, retry_event
from osiris.runtime.runcard import RunResult, StepResult, build_run_card
from osiris.runtime.runlog import jsonable, now
from osiris.runtime.session import RunSession
from osiris.runtime.steps import execute_step


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
        self._prepared = False
        self._finished: RunResult | None = None

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
        return summary

    def run_step(self, step_id: str) -> StepResult:
        """Run one step (its upstream steps must have succeeded); driver failures become a failed result."""
        if not self._prepared:
            raise RuntimeError("call Runner.prepare() before run_step()")
        step = self._steps.get(step_id)
        if step is None:
            raise UserInputError(f"Unknown step `{step_id}`; steps: {', '.join(self._steps)}")
        for need in step.needs:
            if self.results[need].status != "succeeded":
                raise TerminalError(
                    f"Step `{step_id}` needs `{need}`, which has status `{self.results[need].status}`", step=step_id
                )
        session, result = self.session, self.results[step_id]
        started = time.perf_counter()
        out_dir = session.run_dir / "artifacts" / step_id
        out_dir.mkdir(parents=True, exist_ok=True)
        config = session.configs.get(step_id, {})
        cleaned = json.dumps(session.redactor.redact(config), indent=2, sort_keys=True, ensure_ascii=False)
        (out_dir / "cleaned_config.json").write_text(cleaned + "\n", encoding="utf-8")
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

        try:
            spec = session.components.get(step.component)
            policy = RetryPolicy.for_step(spec_of(spec) if spec is not None else None, config, step_id=step_id)
            inputs = upstream_inputs({n: InputHandle(n, self.outputs[n]) for n in step.needs if n in self.outputs})
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
            )
            if step.mode == "write" and inputs:
                meter.set_total(rows=result.rows_in)  # a writer's total is its input, until it says otherwise
            ctx = StepContext(
                step_id=step_id,
                output_dir=out_dir,
                on_event=lambda name, data: session.emit(name, step_id, **data),
                on_metric=lambda name, value, tags: session.metric(name, value, step_id, **tags),
                on_progress=lambda n: meter.add(n),
                base_dir=session.base_dir,
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
            )
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
        except Exception as exc:
            result.duration_ms = _ms_since(started)
            result.status = "failed"
            result.error = session.error_data(exc, step_id)
            result.traceback = session.redactor.redact_text(traceback.format_exc())
            (out_dir / "error.txt").write_text(result.traceback, encoding="utf-8")
            session.metric("duration_ms", result.duration_ms, step_id)
            session.emit("step_failed", step_id, error=result.error, duration_ms=result.duration_ms)
        _release_arrow_memory()
        return result

    def finish(self, error: BaseException | None = None) -> RunResult:
        """Write `run_card.json`, emit `run_complete` and close the session; returns the `RunResult`."""
        if self._finished is not None:
            return self._finished
        session = self.session
        self._prepared = True
        session.open()
        steps = [self.results[s.id] for s in session.manifest.steps]
        failed = next((s for s in steps if s.status == "failed"), None)
        run_error = session.error_data(error, getattr(error, "step", None)) if error is not None else None
        if run_error is None and failed is not None:
            run_error = failed.error
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
        )
        session.emit(
            "run_complete",
            status=card["status"],
            duration_ms=duration_ms,
            steps_succeeded=sum(s.status == "succeeded" for s in steps),
            steps_failed=sum(s.status == "failed" for s in steps),
            steps_not_run=sum(s.status == "not_run" for s in steps),
        )
        card = session.write_run_card(card)
        session.close()
        self._finished = RunResult.from_card(card, session.run_dir, steps=steps)
        return self._finished

    def run(self) -> RunResult:
        """Prepare, run every step in manifest order until one fails, and finish."""
        try:
            self.prepare()
        except OsirisError as exc:
            return self.finish(error=exc)
        for step in self.session.manifest.steps:
            if self.run_step(step.id).status != "succeeded":
                break
        return self.finish()


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _release_arrow_memory() -> None:
    """Give memory Arrow's pool keeps for reuse back to the OS between steps (peak RSS stays per step)."""
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        # An older pyarrow or a pool without it: this is only an optimisation.
        with contextlib.suppress(Exception):
            pa.default_memory_pool().release_unused()


__all__ = ["Runner"]
