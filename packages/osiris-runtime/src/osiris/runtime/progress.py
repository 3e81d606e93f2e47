"""How far a running step got: what drivers and the runner report, and when it becomes an event.

A driver reports rows (and, when it knows them, bytes) as it goes with `ctx.progress(rows,
bytes=...)`, and a total when its source gives one with `ctx.progress_total(rows=..., bytes=...)`
(the MySQL extractor's `information_schema` row estimate, a file's size). The runner keeps one
`StepMeter` per running step: it adds what the driver and the output writer report, and

- hands a `StepProgress` to the run's listeners on every report (the live display redraws
  from it at its own pace), and
- records a `step_progress` event on the first report, when a total is told, on the first
  rows, and then at most once a second (`EVENT_INTERVAL_S`), with the same fields: the run report plots rows/s from them, and a
  sandbox worker streams them to its host, whose display shows them as if the step ran there.

Nothing here imports a driver library or a display library.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

PROGRESS_EVENT = "step_progress"
# A stage outside the steps (the sandbox being built): `stage`, `title`, `detail`, and `seconds` once it ended.
SANDBOX_STAGE_EVENT = "sandbox_stage"
EVENT_INTERVAL_S = 1.0


@dataclass(frozen=True)
class StepProgress:
    """One step's progress so far: rows, bytes, seconds since it started, and the totals when known."""

    step_id: str
    rows: int = 0
    bytes: int = 0
    elapsed_s: float = 0.0
    total_rows: int | None = None
    total_bytes: int | None = None

    @property
    def rows_per_s(self) -> float:
        """Average rows per second since the step started."""
        return self.rows / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def fraction(self) -> float | None:
        """How much of the total is done (0..1), from rows when a row total is known, else from bytes."""
        if self.total_rows:
            return min(1.0, self.rows / self.total_rows)
        if self.total_bytes:
            return min(1.0, self.bytes / self.total_bytes)
        return None

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the average pace so far, when a total is known and something was done."""
        fraction = self.fraction
        if fraction is None or fraction <= 0 or self.elapsed_s <= 0:
            return None
        return max(0.0, self.elapsed_s * (1 - fraction) / fraction)

    def event_data(self) -> dict[str, Any]:
        """The fields of a `step_progress` event (the step id goes in the event's own `step_id`)."""
        data: dict[str, Any] = {"rows": self.rows, "bytes": self.bytes, "elapsed_s": round(self.elapsed_s, 3)}
        if self.total_rows is not None:
            data["total_rows"] = self.total_rows
        if self.total_bytes is not None:
            data["total_bytes"] = self.total_bytes
        return data

    @classmethod
    def from_event(cls, record: Mapping[str, Any]) -> StepProgress | None:
        """The progress a `step_progress` event record carries; None for any other or a malformed one."""
        if record.get("event") != PROGRESS_EVENT or not isinstance(record.get("step_id"), str):
            return None

        def number(key: str) -> int | None:
            value = record.get(key)
            return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

        elapsed = record.get("elapsed_s")
        return cls(
            step_id=record["step_id"],
            rows=number("rows") or 0,
            bytes=number("bytes") or 0,
            elapsed_s=float(elapsed) if isinstance(elapsed, (int, float)) else 0.0,
            total_rows=number("total_rows"),
            total_bytes=number("total_bytes"),
        )


class StepMeter:
    """Adds up one running step's progress and passes it on (see the module docstring); thread-safe.

    Rows come from two sources, the driver (`driver`) and the writer of the step's output
    (`written`); the step has done as many rows as the further of the two. `publish` gets
    every new `StepProgress`; `record` gets the data of a `step_progress` event when one is due.
    """

    def __init__(
        self,
        step_id: str,
        *,
        publish: Callable[[StepProgress], None],
        record: Callable[[dict[str, Any]], None] | None = None,
        total_rows: int | None = None,
        event_interval_s: float = EVENT_INTERVAL_S,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.step_id = step_id
        self._publish = publish
        self._record = record
        self._interval = event_interval_s
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._rows = {"driver": 0, "written": 0}
        self._bytes = 0
        self._total_rows = total_rows
        self._total_bytes: int | None = None
        self._last_event: float | None = None
        self._told_rows = False

    def add(self, rows: int = 0, *, bytes: int = 0, source: str = "driver") -> StepProgress:
        """`rows` more rows (and `bytes` more bytes) done, as told by `source` (`driver` or `written`)."""
        with self._lock:
            self._rows[source] = self._rows.get(source, 0) + int(rows)
            self._bytes += int(bytes)
            return self._pass_on(force=False)

    def set_total(self, rows: int | None = None, *, bytes: int | None = None) -> StepProgress:
        """The total rows and/or bytes the step will do (an estimate is fine); recorded at once."""
        with self._lock:
            if rows is not None:
                self._total_rows = max(0, int(rows))
            if bytes is not None:
                self._total_bytes = max(0, int(bytes))
            return self._pass_on(force=True)

    def restart(self) -> None:
        """A retry starts the step's work again: rows and bytes go back to 0 (the totals stay)."""
        with self._lock:
            self._rows = dict.fromkeys(self._rows, 0)
            self._bytes = 0
            self._told_rows = False

    def snapshot(self) -> StepProgress:
        """The progress so far."""
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> StepProgress:
        return StepProgress(
            step_id=self.step_id,
            rows=max(self._rows.values()),
            bytes=self._bytes,
            elapsed_s=self._clock() - self._started,
            total_rows=self._total_rows,
            total_bytes=self._total_bytes,
        )

    def _pass_on(self, *, force: bool) -> StepProgress:
        progress = self._snapshot()
        self._publish(progress)
        now = self._clock()
        # Due: a new total, the first rows (so that even a short step has one), then once an interval.
        first_rows = progress.rows > 0 and not self._told_rows
        due = force or first_rows or self._last_event is None or now - self._last_event >= self._interval
        if self._record is not None and due:
            self._last_event = now
            self._told_rows = self._told_rows or progress.rows > 0
            self._record(progress.event_data())
        return progress


__all__ = ["EVENT_INTERVAL_S", "PROGRESS_EVENT", "SANDBOX_STAGE_EVENT", "StepMeter", "StepProgress"]
