"""A run's event and metric log: `events.jsonl`, `metrics.jsonl` and the listeners, all redacted.

Every record is plain JSON data; an event is ``{"ts", "run_id", "event", "step_id"?, ...}``
and a metric ``{"ts", "run_id", "metric", "value", "step_id"?, ...tags}``. Each is masked by
the run's `Redactor` before it is written or handed to a `RunListener`, so no listener (a
progress display, a sandbox worker forwarding records to its host) ever sees a secret.
Records made elsewhere (a sandbox worker's, streamed to the host) are written as they came,
redacted again.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from osiris.core.redaction import Redactor

if TYPE_CHECKING:
    from osiris.runtime.progress import StepProgress

EVENTS_FILE = "events.jsonl"
METRICS_FILE = "metrics.jsonl"


def now() -> str:
    """The current UTC time as ISO 8601 with milliseconds (the `ts` of every record)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def jsonable(value: Any) -> Any:
    """`value` as plain JSON data: mappings with string keys, lists, scalars; anything else as `str()`."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class DiagnosticProblems:
    """Diagnostics a run could not write (a full disk, a file size limit): never a reason to fail the run,
    always reported (`RunResult.diagnostics_incomplete`, a warning from `osiris run`)."""

    def __init__(self) -> None:
        self._first: dict[str, str] = {}
        self._count: dict[str, int] = {}

    def add(self, what: str, exc: BaseException) -> None:
        """Record that writing `what` (a file of the run dir) failed with `exc`."""
        self._first.setdefault(what, f"{type(exc).__name__}: {exc}")
        self._count[what] = self._count.get(what, 0) + 1

    def messages(self) -> list[str]:
        """One line per file: what failed first, and how many writes failed."""
        return [
            f"`{what}` not written completely ({error}"
            + (f"; {n} writes failed)" if (n := self._count[what]) > 1 else ")")
            for what, error in self._first.items()
        ]

    def __bool__(self) -> bool:
        return bool(self._first)


class RunListener:
    """Receives every (already redacted) event, metric and progress tick of a run; override what you need.

    Progress ticks and stage notes (what a sandbox is installing) are not written to any file;
    the `step_progress` events that sum them up are.
    """

    def on_event(self, record: dict[str, Any]) -> None:
        """An event record as written to `events.jsonl`."""

    def on_metric(self, record: dict[str, Any]) -> None:
        """A metric record as written to `metrics.jsonl`."""

    def on_progress(self, step_id: str, rows: int, elapsed_s: float) -> None:
        """`rows` rows processed so far by `step_id`, `elapsed_s` seconds after it started."""

    def on_step_progress(self, progress: StepProgress) -> None:
        """A step's progress with bytes and totals; by default passed on to `on_progress`."""
        self.on_progress(progress.step_id, progress.rows, progress.elapsed_s)

    def on_stage(self, stage: str, detail: str) -> None:
        """What a stage outside the steps is doing right now (e.g. `sandbox`: the package being installed)."""


class RunLog:
    """The event and metric files of one run directory, and the listeners that see every record.

    Records go to the listeners from the start; to the files once `open()` was called
    (until `close()`).
    """

    def __init__(
        self,
        run_dir: Path,
        run_id: str,
        redactor: Redactor,
        listeners: Iterable[RunListener] = (),
        problems: DiagnosticProblems | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.run_id = run_id
        self.redactor = redactor
        self.listeners = list(listeners)
        # A record that cannot be written (disk full) is noted here; the run and the listeners go on.
        self.problems = problems if problems is not None else DiagnosticProblems()
        self._events: IO[str] | None = None
        self._metrics: IO[str] | None = None
        self._lock = threading.RLock()

    def open(self) -> None:
        """Open (append to) `events.jsonl` and `metrics.jsonl`; the run dir must exist."""
        try:
            if self._events is None:
                self._events = (self.run_dir / EVENTS_FILE).open("a", encoding="utf-8")
            if self._metrics is None:
                self._metrics = (self.run_dir / METRICS_FILE).open("a", encoding="utf-8")
        except OSError as exc:
            self.problems.add(EVENTS_FILE if self._events is None else METRICS_FILE, exc)

    def close(self) -> None:
        """Close the files (records still reach the listeners)."""
        for name, f in ((EVENTS_FILE, self._events), (METRICS_FILE, self._metrics)):
            if f is not None:
                try:
                    f.close()
                except OSError as exc:  # the last buffered bytes could not be written
                    self.problems.add(name, exc)
        self._events = self._metrics = None

    def event(self, name: str, step_id: str | None = None, **data: Any) -> dict[str, Any]:
        """Record the event `name` (of `step_id`, when given); returns the record as written."""
        record: dict[str, Any] = {"ts": now(), "run_id": self.run_id, "event": name}
        if step_id is not None:
            record["step_id"] = step_id
        record.update(data)
        return self.write_event(record)

    def metric(self, name: str, value: float, step_id: str | None = None, **tags: Any) -> dict[str, Any]:
        """Record the metric `name` (of `step_id`, when given); returns the record as written."""
        record: dict[str, Any] = {"ts": now(), "run_id": self.run_id, "metric": name, "value": value}
        if step_id is not None:
            record["step_id"] = step_id
        record.update(tags)
        return self.write_metric(record)

    def write_event(self, record: dict[str, Any]) -> dict[str, Any]:
        """Write an event record made elsewhere (e.g. streamed from a sandbox), redacted."""
        record = self.redactor.redact(jsonable(record))
        with self._lock:  # steps running in parallel write one whole line each, listeners see one at a time
            self._write(EVENTS_FILE, self._events, record)
            for listener in self.listeners:
                listener.on_event(record)
        return record

    def write_metric(self, record: dict[str, Any]) -> dict[str, Any]:
        """Write a metric record made elsewhere (e.g. streamed from a sandbox), redacted."""
        record = self.redactor.redact(jsonable(record))
        with self._lock:
            self._write(METRICS_FILE, self._metrics, record)
            for listener in self.listeners:
                listener.on_metric(record)
        return record

    def progress(self, progress: StepProgress) -> None:
        """Tell the listeners how far a step got (progress ticks are not written to a file)."""
        with self._lock:  # steps running in parallel: listeners see one call at a time
            for listener in self.listeners:
                # A listener written before `on_step_progress` (not a `RunListener` subclass) gets the old call.
                handler = getattr(listener, "on_step_progress", None)
                if handler is not None:
                    handler(progress)
                else:
                    listener.on_progress(progress.step_id, progress.rows, progress.elapsed_s)

    def stage(self, stage: str, detail: str) -> None:
        """Tell the listeners what `stage` is doing now (not written to a file; redacted)."""
        detail = self.redactor.redact_text(detail)
        with self._lock:
            for listener in self.listeners:
                handler = getattr(listener, "on_stage", None)
                if handler is not None:
                    handler(stage, detail)

    def _write(self, name: str, stream: IO[str] | None, record: dict[str, Any]) -> None:
        if stream is not None:
            try:
                stream.write(json.dumps(record, ensure_ascii=False) + "\n")
                stream.flush()
            except OSError as exc:
                self.problems.add(name, exc)


class LogRedaction(logging.Filter):
    """Masks the run's secrets in every log record of the process's root handlers while installed."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message by its redacted text."""
        try:
            message = record.getMessage()
        except Exception:
            return True
        record.msg = self.redactor.redact_text(message)
        record.args = None
        return True

    def install(self) -> None:
        """Add this filter to every handler of the root logger."""
        for handler in logging.getLogger().handlers:
            handler.addFilter(self)

    def remove(self) -> None:
        """Take this filter off the root logger's handlers again."""
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self)
