"""The driver contract: what a driver receives and what it returns.

A driver is a class with a no-argument constructor and one method:

    def run(self, *, step_id: str, config: dict, inputs: dict[str, InputHandle],
            ctx: StepContext) -> dict | None

`config` is the step's compiled cfg with spec defaults filled in and, for
components with a connection, `resolved_connection` holding the resolved
connection fields. `inputs` maps every upstream step id in `needs` to an
`InputHandle`; with exactly one upstream, `inputs["df"]` is that same handle
(`upstream_inputs`). A step that reads exactly one upstream (every writer) takes
it with `single_input(inputs, step_id)`, which says what is wrong otherwise.
A reader or transform returns `{"df": X}` where X is a `pyarrow.Table`, a
`pyarrow.RecordBatchReader`, an iterator of `pyarrow.RecordBatch` or a pandas
DataFrame; a writer returns None (or a dict of facts for the run card).

Drivers raise `osiris.core.errors.TerminalError` or `TransientError` (or a
subclass) for failures they understand; anything else is reported as a driver
bug. A `TransientError` is retried by the runner when the component's spec
declares `capabilities: {safe_to_retry: true}` (`osiris.runtime.retry`).
This module is the same on the host and in a sandbox; `osiris.runtime.testing`
runs a driver the way the runner does, for tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from osiris.core.errors import UserInputError

if TYPE_CHECKING:
    import pandas
    import pyarrow as pa


class Driver(Protocol):
    """What the runner calls for each step."""

    def run(
        self, *, step_id: str, config: dict[str, Any], inputs: dict[str, InputHandle], ctx: StepContext
    ) -> dict[str, Any] | None: ...


class InputHandle:
    """An upstream step's output: a Parquet file, read lazily and in batches."""

    def __init__(self, step_id: str, path: str | Path) -> None:
        self.step_id = step_id
        self.path = Path(path)
        self._file: Any = None

    def _parquet(self) -> Any:
        if self._file is None:
            import pyarrow.parquet as pq

            self._file = pq.ParquetFile(self.path)
        return self._file

    @property
    def num_rows(self) -> int:
        """Rows in the upstream output (from the Parquet footer, no data read)."""
        return int(self._parquet().metadata.num_rows)

    @property
    def known_num_rows(self) -> int | None:
        """`num_rows` when it is known without waiting; None while the upstream is still producing
        (an input read as it is written, `osiris.runtime.handoff.LiveInput`)."""
        return self.num_rows

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the upstream output."""
        return self._parquet().schema_arrow

    def iter_batches(self, batch_size: int = 65536, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        """Stream the data as record batches of at most `batch_size` rows."""
        import pyarrow.parquet as pq

        # A fresh reader per call, so a handle can be streamed more than once.
        yield from pq.ParquetFile(self.path).iter_batches(batch_size=batch_size, columns=columns)

    def reader(self, batch_size: int = 65536) -> pa.RecordBatchReader:
        """The data as a `pyarrow.RecordBatchReader`."""
        import pyarrow as pa

        return pa.RecordBatchReader.from_batches(self.schema, self.iter_batches(batch_size))

    def to_table(self) -> pa.Table:
        """The whole output as one Arrow table (loads it all into memory)."""
        return self._parquet().read()

    def to_pandas(self) -> pandas.DataFrame:
        """The whole output as a pandas DataFrame (loads it all into memory; needs the `pandas` extra)."""
        try:
            import pandas  # noqa: F401  (pyarrow's to_pandas needs it; say which extra brings it)
        except ImportError:
            raise UserInputError(
                f"`InputHandle.to_pandas()` (input `{self.step_id}`) needs pandas, which is not installed",
                hint="pip install 'osiris-runtime[pandas]' (or declare `osiris-runtime[pandas]` in your driver "
                "package's dependencies)",
            ) from None
        return self.to_table().to_pandas()

    def __repr__(self) -> str:
        return f"InputHandle(step_id={self.step_id!r}, path={str(self.path)!r})"


def upstream_inputs(handles: Mapping[str, InputHandle]) -> dict[str, InputHandle]:
    """The `inputs` of a step: every upstream's handle by step id, and `df` too when there is exactly one."""
    inputs = dict(handles)
    if len(inputs) == 1:
        inputs["df"] = next(iter(inputs.values()))
    return inputs


def single_input(inputs: Mapping[str, InputHandle], step_id: str) -> InputHandle:
    """The one upstream a step reads (`inputs["df"]`); a `UserInputError` when it has none or several."""
    handle = inputs.get("df")
    if handle is not None:
        return handle
    distinct = {id(h): h for h in inputs.values()}
    if len(distinct) == 1:
        return next(iter(distinct.values()))
    named = f" ({', '.join(f'`{name}`' for name in sorted(inputs))})" if inputs else ""
    raise UserInputError(
        f"Step `{step_id}` writes one input but has {len(distinct)}{named}; give it exactly one step in `needs`",
        step=step_id,
    )


EventSink = Callable[[str, dict[str, Any]], None]
MetricSink = Callable[[str, float, dict[str, Any]], None]


class StepContext:
    """Everything a driver may use besides its config and inputs; one class on host and sandbox."""

    def __init__(
        self,
        *,
        step_id: str,
        output_dir: str | Path,
        on_event: EventSink | None = None,
        on_metric: MetricSink | None = None,
        on_progress: Callable[[int], None] | None = None,
        base_dir: str | Path | None = None,
        incremental: Any = None,
        on_bytes: Callable[[int], None] | None = None,
        on_total: Callable[[int | None, int | None], None] | None = None,
    ) -> None:
        self.step_id = step_id
        # Incremental state the runner hands on (`osiris.runtime.incremental`): an `IncrementalRead`
        # for an extractor with an `incremental` block, an `IncrementalWrite` for a writer below one.
        self.incremental = incremental
        self.output_dir = Path(output_dir)
        self.base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
        self._on_event = on_event
        self._on_metric = on_metric
        self._on_progress = on_progress
        self._on_bytes = on_bytes
        self._on_total = on_total

    def log_event(self, name: str, **data: Any) -> None:
        """Record an event (e.g. `ddl_attempt`) for this step in `events.jsonl`."""
        if self._on_event is not None:
            self._on_event(name, data)

    def log_metric(self, name: str, value: float, **tags: Any) -> None:
        """Record a metric (e.g. `rows_read`) for this step in `metrics.jsonl`."""
        if self._on_metric is not None:
            self._on_metric(name, value, tags)

    def resolve_path(self, path: str | Path) -> Path:
        """A config path made absolute: relative paths are relative to `base_dir`
        (the directory `osiris run` was started in)."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def progress(self, rows: int, *, bytes: int = 0) -> None:
        """Report that `rows` more rows (and `bytes` more bytes, when known) were processed.

        This drives the live progress display and the `step_progress` events. A driver whose
        total is in bytes (a file's size) reports the bytes it consumed, with or without rows.
        """
        if rows and self._on_progress is not None:
            self._on_progress(rows)
        if bytes and self._on_bytes is not None:
            self._on_bytes(bytes)

    def progress_total(self, rows: int | None = None, *, bytes: int | None = None) -> None:
        """Report how many rows (or bytes) the step will process, when the source says so.

        An estimate is fine (the MySQL extractor's `information_schema` row count, a file's
        size): the display shows a bar, a percentage and an ETA from it.
        """
        if self._on_total is not None and (rows is not None or bytes is not None):
            self._on_total(rows, bytes)
