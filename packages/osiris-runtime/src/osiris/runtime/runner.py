"""The runner: executes a compiled manifest step by step, on the host or in a sandbox.

Public API (the same code runs on the host and in the sandbox worker)::

    from osiris.core.build import load_build
    from osiris.runtime.runner import Runner, RunListener, resolve_configs

    build = load_build("build/quickstart/<short>/manifest.yaml")   # every file checked
    manifest = build.manifest
    configs = resolve_configs(manifest, build.cfgs, components, connections, environ)  # host only
    runner = Runner(manifest, configs, run_dir, components=components, listeners=[my_listener],
                    manifest_text=build.manifest_text)
    runner.prepare()                      # run dir, run_start, preflight, drivers_registered
    for step in manifest.steps:           # topological order, as compiled
        result = runner.run_step(step.id) # -> StepResult; never raises for a driver failure
        if result.status != "succeeded":
            break
    run = runner.finish()                 # run_card.json, run_complete -> RunResult

    # or all at once: run = runner.run()

- `configs` maps step id -> the step's config with `${VAR}` substituted and
  `resolved_connection` filled in (see `resolve_configs`). A sandbox worker gets
  these resolved configs from the host in memory and passes them as they are.
- Every event and metric goes, already redacted, to `events.jsonl` /
  `metrics.jsonl` in the run dir and to each `RunListener` (`on_event(record)`,
  `on_metric(record)`, `on_progress(step_id, rows, elapsed_s)`); a worker forwards
  them over its wire from a listener.
- Secret redaction is by value: the runner collects every secret value of the
  resolved configs (the spec's `secrets` pointers plus secret-looking connection
  fields), plus any given in `secrets=`, and masks them everywhere it writes.
- Run dir layout: `manifest.yaml`, `events.jsonl`, `metrics.jsonl`,
  `run_card.json`, `artifacts/<step>/{output.parquet, cleaned_config.json}`,
  `artifacts/_system/`.
- Relative paths in configs are resolved against `base_dir` (default: the
  current directory when the runner is created).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import sys
import time
import traceback
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from osiris.core.discovery import Component, ComponentRegistry
from osiris.core.errors import ErrorInfo, OsirisError, TerminalError, UserInputError
from osiris.core.manifest import Manifest, ManifestStep, dump_manifest
from osiris.core.redaction import Redactor
from osiris.core.spec import ComponentSpec
from osiris.runtime.__about__ import __version__
from osiris.runtime.contract import InputHandle, StepContext
from osiris.runtime.io import OUTPUT_FILE, DataHasher, as_batches, use_lean_memory_pool, write_parquet_atomic
from osiris.runtime.registry import (
    DriverRegistry,
    RegistrationSummary,
    check_requirements,
    raise_for_missing,
)
from osiris.runtime.resolve import resolve_step_config, step_secrets

RUN_CARD_VERSION = "1"
TEXT_SCRUB_LIMIT = 64 * 1024 * 1024
TIME_KEYS = ("started_at", "finished_at", "duration_ms", "run_id", "ts")

log = logging.getLogger("osiris.runtime")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


class RunListener:
    """Receives every (already redacted) event, metric and progress tick of a run; override what you need."""

    def on_event(self, record: dict[str, Any]) -> None:
        """An event record as written to `events.jsonl`."""

    def on_metric(self, record: dict[str, Any]) -> None:
        """A metric record as written to `metrics.jsonl`."""

    def on_progress(self, step_id: str, rows: int, elapsed_s: float) -> None:
        """`rows` rows processed so far by `step_id`, `elapsed_s` seconds after it started."""


@dataclass
class StepResult:
    """The outcome of one step, as it appears in the run card."""

    step_id: str
    component: str
    mode: str
    status: str = "not_run"
    rows_in: int = 0
    rows_out: int = 0
    duration_ms: float = 0.0
    outputs: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    traceback: str | None = None

    def to_data(self) -> dict[str, Any]:
        """The step's entry in `run_card.json`."""
        return {
            "id": self.step_id,
            "component": self.component,
            "mode": self.mode,
            "status": self.status,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "duration_ms": self.duration_ms,
            "outputs": self.outputs,
            "facts": self.facts,
            "error": self.error,
        }


@dataclass
class RunResult:
    """The outcome of a run: status, exit code, the run dir and every step's result."""

    run_id: str
    run_dir: Path
    status: str
    steps: list[StepResult]
    duration_ms: float
    run_card: dict[str, Any]
    error: dict[str, Any] | None = None

    @property
    def exit_code(self) -> int:
        """0 when every step succeeded, 1 when a step failed, else the run error's exit code (2: bad input)."""
        if self.status == "succeeded":
            return 0
        if self.failed_step is not None:
            return 1
        return int((self.error or {}).get("exit_code", 1))

    @property
    def failed_step(self) -> StepResult | None:
        """The step that failed, if any."""
        return next((s for s in self.steps if s.status == "failed"), None)


def manifest_components(
    manifest: Manifest, components: Mapping[str, Component | ComponentSpec] | ComponentRegistry | None = None
) -> dict[str, Component | ComponentSpec]:
    """The specs of the components a manifest uses, from `components` or the installed ones."""
    if components is None:
        components = ComponentRegistry.discover()
    out: dict[str, Component | ComponentSpec] = {}
    for step in manifest.steps:
        name = step.component
        if name in out:
            continue
        if isinstance(components, ComponentRegistry):
            out[name] = components.get(name)
        elif name in components:
            out[name] = components[name]
        else:
            raise UserInputError(
                f"Component `{name}` (step `{step.id}`) is not installed; install the distribution that provides it"
            )
    return out


def _spec(item: Component | ComponentSpec) -> ComponentSpec:
    return item.spec if isinstance(item, Component) else item


def resolve_configs(
    manifest: Manifest,
    cfgs: Mapping[str, dict[str, Any]],
    components: Mapping[str, Component | ComponentSpec],
    connections: dict[str, dict[str, dict[str, Any]]] | None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every step's config ready for its driver (`${VAR}` substituted, `resolved_connection` set)."""
    return {
        step.id: resolve_step_config(step.id, cfgs[step.id], _spec(components[step.component]), connections, environ)
        for step in manifest.steps
    }


class _RedactingFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        record.msg = self.redactor.redact_text(message)
        record.args = None
        return True


class Runner:
    """Runs one manifest in one run dir; see the module docstring for the step-by-step API."""

    def __init__(
        self,
        manifest: Manifest,
        configs: Mapping[str, dict[str, Any]],
        run_dir: str | Path,
        *,
        components: Mapping[str, Component | ComponentSpec] | None = None,
        listeners: Iterable[RunListener] = (),
        run_id: str | None = None,
        base_dir: str | Path | None = None,
        manifest_text: str | None = None,
        secrets: Iterable[str] = (),
        registry: DriverRegistry | None = None,
    ) -> None:
        self.manifest = manifest
        self.run_dir = Path(run_dir)
        self.run_id = run_id or self.run_dir.name
        self.base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
        self.listeners = list(listeners)
        self.manifest_text = manifest_text
        self.components = dict(components) if components is not None else manifest_components(manifest)
        self.registry = registry or DriverRegistry()
        self.configs = {sid: copy.deepcopy(cfg) for sid, cfg in configs.items()}
        self.steps: dict[str, ManifestStep] = {s.id: s for s in manifest.steps}
        self.results: dict[str, StepResult] = {
            s.id: StepResult(step_id=s.id, component=s.component, mode=s.mode) for s in manifest.steps
        }
        self.outputs: dict[str, Path] = {}
        self.redactor = Redactor(secrets)
        for step in manifest.steps:
            spec = self.components.get(step.component)
            for value in step_secrets(self.configs.get(step.id, {}), _spec(spec) if spec is not None else None):
                self.redactor.add(value)
        self.registration: RegistrationSummary | None = None
        self._events: IO[str] | None = None
        self._metrics: IO[str] | None = None
        self._started = 0.0
        self._started_at = ""
        self._prepared = False
        self._finished: RunResult | None = None
        self._log_filter = _RedactingFilter(self.redactor)

    # -- sinks ---------------------------------------------------------------------------------

    def emit(self, name: str, step_id: str | None = None, **data: Any) -> None:
        """Record an event (redacted) in `events.jsonl` and send it to every listener."""
        record: dict[str, Any] = {"ts": _now(), "run_id": self.run_id, "event": name}
        if step_id is not None:
            record["step_id"] = step_id
        record.update(data)
        record = self.redactor.redact(_jsonable(record))
        if self._events is not None:
            self._events.write(json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n")
            self._events.flush()
        for listener in self.listeners:
            listener.on_event(record)

    def metric(self, name: str, value: float, step_id: str | None = None, **tags: Any) -> None:
        """Record a metric (redacted) in `metrics.jsonl` and send it to every listener."""
        record: dict[str, Any] = {"ts": _now(), "run_id": self.run_id, "metric": name, "value": value}
        if step_id is not None:
            record["step_id"] = step_id
        record.update(tags)
        record = self.redactor.redact(_jsonable(record))
        if self._metrics is not None:
            self._metrics.write(json.dumps(record, ensure_ascii=False) + "\n")
            self._metrics.flush()
        for listener in self.listeners:
            listener.on_metric(record)

    def _progress(self, step_id: str, rows: int, started: float) -> None:
        for listener in self.listeners:
            listener.on_progress(step_id, rows, time.perf_counter() - started)

    # -- lifecycle -----------------------------------------------------------------------------

    def prepare(self) -> RegistrationSummary:
        """Create the run dir, emit `run_start`, check requirements and register the manifest's drivers."""
        if self._prepared:
            raise RuntimeError("Runner.prepare() was already called")
        self._prepared = True
        self._started = time.perf_counter()
        self._started_at = _now()
        (self.run_dir / "artifacts" / "_system").mkdir(parents=True, exist_ok=True)
        text = self.manifest_text if self.manifest_text is not None else dump_manifest(self.manifest)
        (self.run_dir / "manifest.yaml").write_text(text, encoding="utf-8")
        self._events = (self.run_dir / "events.jsonl").open("a", encoding="utf-8")
        self._metrics = (self.run_dir / "metrics.jsonl").open("a", encoding="utf-8")
        for handler in logging.getLogger().handlers:
            handler.addFilter(self._log_filter)
        self.emit(
            "run_start",
            pipeline=self.manifest.pipeline.name,
            manifest_fingerprint=self.manifest.fingerprints.manifest,
            steps=[s.id for s in self.manifest.steps],
            runtime_version=__version__,
        )
        # The preflight runs before anything imports a driver library, so a missing one is the install
        # hint (exit 2), never an ImportError from deep inside.
        missing = check_requirements(self.components)
        self.emit(
            "dependency_check",
            ok=not missing,
            missing=[
                {"component": m.component, "import": m.module, "package": m.package, "install": m.install}
                for m in missing
            ],
        )
        raise_for_missing(missing)
        use_lean_memory_pool()
        summary = self.registry.populate_from_component_specs(self.components, allow=list(self.components))
        self.registration = summary
        for name, target in summary.registered.items():
            self.emit("driver_registered", component=name, driver=target)
        for name, error in summary.failed.items():
            self.emit("driver_registration_failed", component=name, error=error)
        self.emit("drivers_registered", **summary.to_data())
        if summary.failed:
            names = ", ".join(f"`{n}` ({e})" for n, e in sorted(summary.failed.items()))
            raise TerminalError(f"Could not load the drivers of {names}")
        for step in self.manifest.steps:
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
        step = self.steps.get(step_id)
        if step is None:
            raise UserInputError(f"Unknown step `{step_id}`; steps: {', '.join(self.steps)}")
        result = self.results[step_id]
        for need in step.needs:
            if self.results[need].status != "succeeded":
                raise TerminalError(
                    f"Step `{step_id}` needs `{need}`, which has status `{self.results[need].status}`", step=step_id
                )
        started = time.perf_counter()
        out_dir = self.run_dir / "artifacts" / step_id
        out_dir.mkdir(parents=True, exist_ok=True)
        config = copy.deepcopy(self.configs.get(step_id, {}))
        (out_dir / "cleaned_config.json").write_text(
            json.dumps(self.redactor.redact(config), indent=2, sort_keys=True, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        self.emit("step_start", step_id, component=step.component, mode=step.mode, driver=step.driver)
        result.status = "running"
        try:
            inputs: dict[str, InputHandle] = {}
            for need in step.needs:
                if need in self.outputs:
                    inputs[need] = InputHandle(need, self.outputs[need])
            if len(inputs) == 1:
                inputs["df"] = next(iter(inputs.values()))
            rows_in = {sid: h.num_rows for sid, h in inputs.items() if sid != "df"}
            result.rows_in = sum(rows_in.values())
            self.emit(
                "inputs_resolved",
                step_id,
                inputs={
                    sid: {"rows": rows_in[sid], "path": str(inputs[sid].path.relative_to(self.run_dir))}
                    for sid in rows_in
                },
                rows_in=result.rows_in,
            )
            progressed = 0

            def on_progress(rows: int) -> None:
                nonlocal progressed
                progressed += rows
                self._progress(step_id, progressed, started)

            ctx = StepContext(
                step_id=step_id,
                output_dir=out_dir,
                on_event=lambda name, data: self.emit(name, step_id, **data),
                on_metric=lambda name, value, tags: self.metric(name, value, step_id, **tags),
                on_progress=on_progress,
                base_dir=self.base_dir,
            )
            driver = self.registry.create(step.component)
            returned = driver.run(step_id=step_id, config=config, inputs=inputs, ctx=ctx)
            if returned is not None and not isinstance(returned, dict):
                raise TerminalError(
                    f"Driver of step `{step_id}` returned `{type(returned).__name__}`; expected a dict or None",
                    step=step_id,
                )
            returned = dict(returned or {})
            if "df" in returned and returned["df"] is not None:
                df = returned.pop("df")
                schema, batches = as_batches(df, step_id=step_id)
                path = out_dir / OUTPUT_FILE
                counted = 0

                def on_batch(rows: int) -> None:
                    nonlocal counted
                    counted += rows
                    self._progress(step_id, counted, started)

                hasher = DataHasher(schema)
                rows = write_parquet_atomic(path, schema, batches, step_id=step_id, on_batch=on_batch, hasher=hasher)
                self.outputs[step_id] = path
                result.rows_out = rows
                result.outputs = [
                    {
                        "name": "df",
                        "path": str(path.relative_to(self.run_dir)),
                        "rows": rows,
                        "columns": list(schema.names),
                        "data_sha256": hasher.hexdigest(),
                    }
                ]
            returned.pop("df", None)
            result.facts = self.redactor.redact(_jsonable(returned))
            if step.mode == "write" and not result.outputs:
                result.rows_out = int(returned.get("rows_written", result.rows_in))
            result.duration_ms = round((time.perf_counter() - started) * 1000, 3)
            result.status = "succeeded"
            self.metric("rows_read", result.rows_in if inputs else result.rows_out, step_id)
            self.metric("rows_written", result.rows_out, step_id)
            self.metric("duration_ms", result.duration_ms, step_id)
            self.emit(
                "step_complete",
                step_id,
                rows_in=result.rows_in,
                rows_out=result.rows_out,
                duration_ms=result.duration_ms,
                outputs=result.outputs,
            )
        except Exception as exc:
            result.duration_ms = round((time.perf_counter() - started) * 1000, 3)
            result.status = "failed"
            result.error = self._error_data(exc, step_id)
            result.traceback = self.redactor.redact_text(traceback.format_exc())
            (out_dir / "error.txt").write_text(result.traceback, encoding="utf-8")
            self.metric("duration_ms", result.duration_ms, step_id)
            self.emit("step_failed", step_id, error=result.error, duration_ms=result.duration_ms)
        _release_arrow_memory()
        return result

    def _error_data(self, exc: BaseException, step_id: str | None) -> dict[str, Any]:
        return self.redactor.redact(ErrorInfo.from_exception(exc, step=step_id).to_data())

    def finish(self, error: BaseException | None = None) -> RunResult:
        """Write `run_card.json`, emit `run_complete` and close the run's files; returns the `RunResult`."""
        if self._finished is not None:
            return self._finished
        if not self._prepared:
            self.prepare_dir_only()
        duration_ms = round((time.perf_counter() - self._started) * 1000, 3)
        steps = [self.results[s.id] for s in self.manifest.steps]
        failed = next((s for s in steps if s.status == "failed"), None)
        run_error: dict[str, Any] | None = None
        if error is not None:
            run_error = self._error_data(error, getattr(error, "step", None))
        elif failed is not None:
            run_error = failed.error
        ok = run_error is None and all(s.status == "succeeded" for s in steps)
        status = "succeeded" if ok else "failed"
        card = {
            "run_card_version": RUN_CARD_VERSION,
            "run_id": self.run_id,
            "pipeline": self.manifest.pipeline.name,
            "manifest_fingerprint": self.manifest.fingerprints.manifest,
            "drivers_fingerprint": self.registration.fingerprint if self.registration else None,
            "runtime": {"package": "osiris-runtime", "version": __version__},
            "status": status,
            "started_at": self._started_at,
            "finished_at": _now(),
            "duration_ms": duration_ms,
            "error": run_error,
            "steps": [s.to_data() for s in steps],
        }
        card = self.redactor.redact(_jsonable(card))
        self.emit(
            "run_complete",
            status=status,
            duration_ms=duration_ms,
            steps_succeeded=sum(s.status == "succeeded" for s in steps),
            steps_failed=sum(s.status == "failed" for s in steps),
            steps_not_run=sum(s.status == "not_run" for s in steps),
        )
        tmp = self.run_dir / ".run_card.json.tmp"
        tmp.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, self.run_dir / "run_card.json")
        for f in (self._events, self._metrics):
            if f is not None:
                f.close()
        self._events = self._metrics = None
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self._log_filter)
        self.scrub_run_dir()
        self._finished = RunResult(
            run_id=self.run_id,
            run_dir=self.run_dir,
            status=status,
            steps=steps,
            duration_ms=duration_ms,
            run_card=card,
            error=run_error,
        )
        return self._finished

    def prepare_dir_only(self) -> None:
        """Create the run dir and open its files without running the preflight (used when prepare failed early)."""
        self._prepared = True
        self._started = self._started or time.perf_counter()
        self._started_at = self._started_at or _now()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self._events is None:
            self._events = (self.run_dir / "events.jsonl").open("a", encoding="utf-8")
        if self._metrics is None:
            self._metrics = (self.run_dir / "metrics.jsonl").open("a", encoding="utf-8")

    def scrub_run_dir(self) -> None:
        """Mask known secret values in every text file a driver left in the run dir (defence in depth)."""
        if not self.redactor.secrets:
            return
        for path in self.run_dir.rglob("*"):
            if not path.is_file() or path.suffix == ".parquet" or path.stat().st_size > TEXT_SCRUB_LIMIT:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if self.redactor.contains_secret(text):
                path.write_text(self.redactor.redact_text(text), encoding="utf-8")

    def run(self) -> RunResult:
        """Prepare, run every step in manifest order until one fails, and finish."""
        try:
            self.prepare()
        except OsirisError as exc:
            return self.finish(error=exc)
        for step in self.manifest.steps:
            result = self.run_step(step.id)
            if result.status != "succeeded":
                break
        return self.finish()


def _release_arrow_memory() -> None:
    """Give memory Arrow's pool keeps for reuse back to the OS between steps (peak RSS stays per step)."""
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        # An older pyarrow or a pool without it: this is only an optimisation.
        with contextlib.suppress(Exception):
            pa.default_memory_pool().release_unused()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    return str(value)


def comparable_run_card(card: dict[str, Any]) -> dict[str, Any]:
    """A run card without times and run ids, for comparing two runs."""

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k not in TIME_KEYS}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    return strip(card)


__all__ = [
    "RunListener",
    "RunResult",
    "Runner",
    "StepResult",
    "comparable_run_card",
    "manifest_components",
    "new_run_id",
    "resolve_configs",
]
