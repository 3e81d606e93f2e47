"""The live display of `osiris run`: one row per running step, on a terminal or as plain lines.

The display has a small interface (`Display`): a stage outside the steps started, moved on or
ended (the sandbox being built), a step started, progressed or finished. `DisplayListener`
drives a display from a run's records, the same for a run on this machine and one in a
sandbox (whose worker streams `step_progress` events that the host adapter turns back into
progress). `make_display` picks the kind:

- `LiveDisplay` (rich) on a terminal: per step its rows, rows/s, bytes, elapsed time and,
  when the source gave a total (a MySQL table's row estimate, a file's size, a writer's
  input), a bar with a percentage and an ETA; steps that run at the same time each have a row.
- `PlainDisplay` when stderr is not a terminal or `TERM=dumb`: plain lines, no escape codes,
  a line per start and end and one per running step every `interval_s` seconds.

Both write to stderr (stdout carries the result). Only the CLI makes a display.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import IO, Any, Protocol

from osiris.runtime.progress import SANDBOX_STAGE_EVENT, StepProgress
from osiris.runtime.retention import format_bytes
from osiris.runtime.runlog import RunListener

PLAIN_INTERVAL_S = 10.0


def format_duration(seconds: float) -> str:
    """`seconds` as `42s`, `3m05s` or `1h02m`."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def progress_text(p: StepProgress, *, percent: bool = True) -> str:
    """`300,000 of ~1,000,000 rows (30%), 95,000 rows/s, 12.3 MB, ETA 7s`: a step's progress in words
    (without the percentage where a column shows it)."""
    total = p.total_rows if p.total_rows else None
    parts = [f"{p.rows:,} of ~{max(total, p.rows):,} rows" if total else f"{p.rows:,} rows"]
    if percent and p.fraction is not None:
        parts[0] += f" ({p.fraction * 100:.0f}%)"
    parts.append(f"{p.rows_per_s:,.0f} rows/s")
    if p.bytes:
        parts.append(format_bytes(p.bytes) + (f" of {format_bytes(p.total_bytes)}" if p.total_bytes else ""))
    if p.eta_s is not None and p.fraction is not None and p.fraction < 1:
        parts.append(f"ETA {format_duration(p.eta_s)}")
    return ", ".join(parts)


class Display(Protocol):
    """What the runner's listener tells a display; every call may come from any thread."""

    def stage(self, name: str, title: str, detail: str = "", *, seconds: float | None = None) -> None:
        """Stage `name` (e.g. `sandbox`) is at `title` doing `detail`; with `seconds`, it ended after that long."""

    def step_started(self, step_id: str, component: str) -> None:
        """A step started."""

    def step_progress(self, progress: StepProgress) -> None:
        """A running step's progress so far."""

    def step_finished(
        self, step_id: str, *, ok: bool, rows: int, seconds: float, message: str = "", status: str = "FAILED"
    ) -> None:
        """A step ended: succeeded (`ok`), or not (`status`: `FAILED`, `skipped`, `interrupted`) with `message`."""

    def close(self) -> None:
        """The run is over: stop redrawing (safe to call twice)."""


# -- plain lines -----------------------------------------------------------------------------------


class PlainDisplay:
    """Plain lines on a stream: no escape codes, nothing redrawn (logs, CI, `TERM=dumb`)."""

    def __init__(self, stream: IO[str] | None = None, *, interval_s: float = PLAIN_INTERVAL_S) -> None:
        self.stream = stream or sys.stderr
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._stage_shown: dict[str, str] = {}
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def stage(self, name: str, title: str, detail: str = "", *, seconds: float | None = None) -> None:
        """A line when a stage starts and when it ends; what it is doing in between is left out."""
        if seconds is not None:
            self._line(f"  {name}: {title}, done in {seconds:.2f} s" + (f" ({detail})" if detail else ""))
        elif self._stage_shown.get(name) != title:
            self._stage_shown[name] = title
            self._line(f"  {name}: {title}" + (f": {detail}" if detail else ""))

    def step_started(self, step_id: str, component: str) -> None:
        """`  orders: started (mysql.extractor)`."""
        self._last[step_id] = time.monotonic()
        self._line(f"  {step_id}: started ({component})")

    def step_progress(self, progress: StepProgress) -> None:
        """A line per running step every `interval_s` seconds."""
        now = time.monotonic()
        last = self._last.get(progress.step_id)
        if last is not None and now - last < self.interval_s:
            return
        self._last[progress.step_id] = now
        self._line(f"  {progress.step_id}: {progress_text(progress)}")

    def step_finished(
        self, step_id: str, *, ok: bool, rows: int, seconds: float, message: str = "", status: str = "FAILED"
    ) -> None:
        """`  orders: done, 1,000 rows in 0.52 s` or `  orders: FAILED: ...` (`skipped`, `interrupted`)."""
        self._last.pop(step_id, None)
        if ok:
            rate = f" ({rows / seconds:,.0f} rows/s)" if seconds > 0 and rows else ""
            self._line(f"  {step_id}: done, {rows:,} rows in {seconds:.2f} s{rate}")
        else:
            self._line(f"  {step_id}: {status}" + (f": {message}" if message else ""))

    def close(self) -> None:
        """Nothing to stop."""


# -- a terminal ------------------------------------------------------------------------------------


class LiveDisplay:
    """Rows redrawn in place on a terminal with rich: bars, percentages, rates, ETAs."""

    def __init__(self, stream: IO[str] | None = None, *, refresh_per_second: float = 8) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

        self.console = Console(file=stream or sys.stderr, highlight=False)
        self.progress = Progress(
            SpinnerColumn(finished_text=" "),
            TextColumn("{task.description}", style="bold"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[percent]:>4}"),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            refresh_per_second=refresh_per_second,
            # What else is printed while the display is up (a driver's print, a warning) goes above it.
            redirect_stdout=True,
            redirect_stderr=True,
        )
        self._tasks: dict[str, Any] = {}
        self._with_total: set[str] = set()
        self._width = 8
        self._lock = threading.Lock()
        self._closed = False
        self.progress.start()

    def _task(self, key: str, label: str) -> Any:
        task = self._tasks.get(key)
        if task is None:
            self._width = max(self._width, len(label))
            for other, tid in self._tasks.items():  # keep the columns aligned
                self.progress.update(tid, description=self._label(other))
            task = self.progress.add_task(label.ljust(self._width), total=None, percent="", info="")
            self._tasks[key] = task
        return task

    def _label(self, key: str) -> str:
        return key.removeprefix("stage:").ljust(self._width)

    def stage(self, name: str, title: str, detail: str = "", *, seconds: float | None = None) -> None:
        """A row for the stage: its title and what it does now; ended, the time it took."""
        with self._lock:
            if self._closed:
                return
            task = self._task(f"stage:{name}", name)
            if seconds is None:
                self.progress.update(task, info=f"{title}" + (f": {detail}" if detail else ""))
            else:
                info = f"{title}, done in {seconds:.2f} s" + (f" ({detail})" if detail else "")
                self.progress.update(task, total=1, completed=1, info=info)
                self.progress.stop_task(task)

    def step_started(self, step_id: str, component: str) -> None:
        """A row for the step, pulsing until it reports a total."""
        with self._lock:
            if self._closed:
                return
            task = self._task(step_id, step_id)
            self.progress.update(task, info=f"starting ({component})")

    def step_progress(self, progress: StepProgress) -> None:
        """Move the step's bar (when it has a total) and its counters."""
        with self._lock:
            task = self._tasks.get(progress.step_id)
            if self._closed or task is None:
                return
            fraction = progress.fraction
            info = progress_text(progress, percent=False)
            if fraction is None:
                self.progress.update(task, total=None, completed=progress.rows, percent="", info=info)
            else:
                self._with_total.add(progress.step_id)
                percent = f"{fraction:.0%}"
                self.progress.update(task, total=1000, completed=int(fraction * 1000), percent=percent, info=info)

    def step_finished(
        self, step_id: str, *, ok: bool, rows: int, seconds: float, message: str = "", status: str = "FAILED"
    ) -> None:
        """Fill the step's bar and say how it ended (a step that never started gets a line)."""
        with self._lock:
            task = self._tasks.get(step_id)
            if self._closed:
                return
            if task is None:
                if not ok:
                    self.progress.console.print(f"  {step_id}: {status}" + (f" ({message})" if message else ""))
                return
            if ok:
                rate = f", {rows / seconds:,.0f} rows/s" if seconds > 0 and rows else ""
                info = f"done, {rows:,} rows in {seconds:.2f} s{rate}"
                # A percentage only where the step had a total: a bar full at the end says nothing otherwise.
                update: dict[str, Any] = {"total": 1, "completed": 1, "info": info}
                if step_id in self._with_total:
                    update["percent"] = "100%"
            else:
                update = {"info": status + (f": {message}" if message else "")}
            self.progress.update(task, **update)
            self.progress.stop_task(task)

    def close(self) -> None:
        """Draw the last frame and stop redrawing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.progress.stop()


def wants_live(stream: IO[str], environ: dict[str, str] | None = None) -> bool:
    """Whether `stream` is a terminal that can redraw: a TTY, and `TERM` is not `dumb`."""
    env = os.environ if environ is None else environ
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        return False
    return tty and env.get("TERM", "") != "dumb"


def make_display(stream: IO[str] | None = None, *, environ: dict[str, str] | None = None) -> Display:
    """A `LiveDisplay` when `stream` (default stderr) is a terminal that can redraw, else a `PlainDisplay`."""
    stream = stream or sys.stderr
    if wants_live(stream, environ):
        return LiveDisplay(stream)
    return PlainDisplay(stream)


# -- fed by a run ----------------------------------------------------------------------------------


class DisplayListener(RunListener):
    """Drives a `Display` from a run's records (events, progress ticks, stage notes), host or sandbox."""

    def __init__(self, display: Display) -> None:
        self.display = display
        self._stage: dict[str, str] = {}

    def on_event(self, record: dict[str, Any]) -> None:
        """Steps starting and ending, the sandbox's stages, and the end of the run."""
        name, step = record.get("event"), record.get("step_id")
        if name == "step_start" and isinstance(step, str):
            self.display.step_started(step, str(record.get("component") or ""))
        elif name == "step_complete" and isinstance(step, str):
            rows = record.get("rows_out") or record.get("rows_in") or 0
            self.display.step_finished(step, ok=True, rows=int(rows), seconds=_seconds(record))
        elif name == "step_failed" and isinstance(step, str):
            message = str((record.get("error") or {}).get("message", ""))
            self.display.step_finished(step, ok=False, rows=0, seconds=_seconds(record), message=message)
        elif name in ("step_skipped", "step_interrupted") and isinstance(step, str):
            why = str(record.get("reason") or record.get("signal") or "")
            self.display.step_finished(
                step, ok=False, rows=0, seconds=_seconds(record), message=why, status=name.removeprefix("step_")
            )
        elif name == SANDBOX_STAGE_EVENT:
            stage, title = str(record.get("stage") or "sandbox"), str(record.get("title") or "")
            self._stage[stage] = title
            seconds = record.get("seconds")
            self.display.stage(
                stage,
                title,
                str(record.get("detail") or ""),
                seconds=float(seconds) if isinstance(seconds, (int, float)) else None,
            )
        elif name == "run_complete":
            self.display.close()

    def on_step_progress(self, progress: StepProgress) -> None:
        """A running step's progress."""
        self.display.step_progress(progress)

    def on_stage(self, stage: str, detail: str) -> None:
        """What a stage does now (e.g. the package being installed)."""
        self.display.stage(stage, self._stage.get(stage, ""), detail)


def _seconds(record: dict[str, Any]) -> float:
    ms = record.get("duration_ms")
    return float(ms) / 1000 if isinstance(ms, (int, float)) else 0.0


__all__ = [
    "Display",
    "DisplayListener",
    "LiveDisplay",
    "PlainDisplay",
    "format_bytes",
    "make_display",
    "progress_text",
    "wants_live",
]
