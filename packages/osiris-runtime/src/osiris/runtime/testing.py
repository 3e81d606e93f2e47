"""Testing drivers: the step context and the step runner Osiris's own driver tests use, for yours too.

A driver's `run` can be called directly with a `RecordingContext`, a real `StepContext` that
keeps everything the driver reports::

    from osiris.runtime.testing import RecordingContext

    ctx = RecordingContext("extract", tmp_path)
    reader = MyExtractor().run(step_id="extract", config=config, inputs={}, ctx=ctx)["df"]
    assert ctx.event("extract.complete")["rows"] == reader.read_all().num_rows
    assert ctx.metric("rows_read") == 3 and sum(ctx.progress_reports) == 3

`run_driver` runs a driver (no spec needed) for one step the way the runner does, and
`run_component` runs a step of an installed component (its spec's retries too): inputs
given as Arrow tables (or Parquet files) become `InputHandle`s (with `inputs["df"]` for a
single one), a returned `df` is written to the step's `output.parquet` with its data hash,
and transient failures are retried as the component's spec allows, each retry a
`step_retry` event in the context::

    run = run_component("supabase.writer", {"table": "t", "resolved_connection": conn},
                        inputs={"upstream": table}, work_dir=tmp_path)
    assert run.facts["rows_written"] == table.num_rows
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osiris.runtime.contract import Driver, InputHandle, StepContext, upstream_inputs

if TYPE_CHECKING:
    import pyarrow as pa

    from osiris.core.spec import ComponentSpec


class RecordingContext(StepContext):
    """A `StepContext` that records every event, metric and progress report of the driver using it."""

    def __init__(
        self, step_id: str = "step", output_dir: str | Path = ".", *, base_dir: str | Path | None = None
    ) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.metrics: list[tuple[str, float, dict[str, Any]]] = []
        self.progress_reports: list[int] = []
        self.progress_bytes: list[int] = []
        self.progress_totals: list[tuple[int | None, int | None]] = []
        super().__init__(
            step_id=step_id,
            output_dir=output_dir,
            on_event=lambda name, data: self.events.append((name, data)),
            on_metric=lambda name, value, tags: self.metrics.append((name, value, tags)),
            on_progress=self.progress_reports.append,
            base_dir=base_dir,
            on_bytes=self.progress_bytes.append,
            on_total=lambda rows, nbytes: self.progress_totals.append((rows, nbytes)),
        )

    def names(self) -> list[str]:
        """The names of the events, in order."""
        return [name for name, _ in self.events]

    def events_named(self, name: str) -> list[dict[str, Any]]:
        """The data of every event called `name`, in order."""
        return [data for n, data in self.events if n == name]

    def event(self, name: str) -> dict[str, Any]:
        """The data of the one event called `name` (an `AssertionError` when there are none or several)."""
        found = self.events_named(name)
        assert len(found) == 1, f"expected one `{name}` event, got {len(found)}: {found}"
        return found[0]

    def last_event(self, name: str) -> dict[str, Any]:
        """The data of the last event called `name` (an `AssertionError` when there is none)."""
        found = self.events_named(name)
        assert found, f"no `{name}` event; events: {self.names()}"
        return found[-1]

    def metric(self, name: str) -> float:
        """The value of the one metric called `name` (an `AssertionError` when there are none or several)."""
        values = [value for n, value, _ in self.metrics if n == name]
        assert len(values) == 1, f"expected one `{name}` metric, got {values}"
        return values[0]


@dataclass
class ComponentRun:
    """What `run_component` did: the driver's facts, the output (when it returned `df`), the context."""

    facts: dict[str, Any]
    ctx: RecordingContext
    output_path: Path | None = None
    rows_out: int = 0

    @property
    def output(self) -> pa.Table | None:
        """The step's output as an Arrow table, read back from its `output.parquet`."""
        if self.output_path is None:
            return None
        import pyarrow.parquet as pq

        return pq.read_table(self.output_path)


def run_component(
    component: str | ComponentSpec,
    config: dict[str, Any],
    *,
    work_dir: str | Path,
    inputs: Mapping[str, pa.Table | str | Path | InputHandle] | None = None,
    step_id: str = "step",
) -> ComponentRun:
    """Run one step of `component` (a name of an installed component, or a spec) as the runner does.

    `config` is the resolved config (with `resolved_connection` where the component needs
    one). Files go under `work_dir`: the step's artifacts in `artifacts/<step_id>/`, inputs
    given as tables in `inputs/`. Raises the step's error, after the retries its spec allows.
    """
    from osiris.core.discovery import ComponentRegistry
    from osiris.core.errors import TerminalError
    from osiris.runtime.registry import DriverRegistry

    spec = ComponentRegistry.discover().get(component).spec if isinstance(component, str) else component
    registry = DriverRegistry()
    summary = registry.populate_from_component_specs([spec])
    if spec.name in summary.failed:
        raise TerminalError(f"Could not load the driver of `{spec.name}`: {summary.failed[spec.name]}")
    return run_driver(registry.create(spec.name), config, work_dir=work_dir, inputs=inputs, step_id=step_id, spec=spec)


def run_driver(
    driver: Driver | type[Driver],
    config: dict[str, Any],
    *,
    work_dir: str | Path,
    inputs: Mapping[str, pa.Table | str | Path | InputHandle] | None = None,
    step_id: str = "step",
    spec: ComponentSpec | None = None,
) -> ComponentRun:
    """Run `driver` (an instance, or a class made with no arguments) for one step, as the runner runs it.

    The runner's input rules apply: every entry of `inputs` (an Arrow table, a Parquet file or
    an `InputHandle`) becomes an `InputHandle` under its name, with `inputs["df"]` too when there
    is exactly one; a returned `df` (table, reader, batches or DataFrame) is written to the step's
    `output.parquet` with its data hash; a return that is not a dict or None is an error. With a
    `spec`, transient failures are retried as it allows (each retry a `step_retry` event).
    """
    from osiris.runtime.retry import RetryPolicy, retry_event
    from osiris.runtime.steps import execute_step

    instance = driver() if isinstance(driver, type) else driver
    work = Path(work_dir)
    ctx = RecordingContext(step_id, work / "artifacts" / step_id, base_dir=work)
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    handles = {name: _handle(name, value, work / "inputs") for name, value in (inputs or {}).items()}
    policy = RetryPolicy.for_step(spec, config, step_id=step_id)
    output = execute_step(
        instance,
        step_id=step_id,
        config=config,
        inputs=upstream_inputs(handles),
        ctx=ctx,
        policy=policy,
        on_retry=lambda retry, exc, delay: ctx.log_event(
            "step_retry", **retry_event(retry, policy, exc, delay, step_id)
        ),
    )
    return ComponentRun(facts=output.facts, ctx=ctx, output_path=output.path, rows_out=output.rows)


def _handle(name: str, value: Any, folder: Path) -> InputHandle:
    if isinstance(value, InputHandle):
        return value
    if isinstance(value, (str, Path)):
        return InputHandle(name, value)
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.parquet"
    pq.write_table(value, path)
    return InputHandle(name, path)
