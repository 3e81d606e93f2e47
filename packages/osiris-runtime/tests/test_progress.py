"""Step progress: the meter the runner keeps per step, its events, and the displays fed from a run."""

from __future__ import annotations

import io
import threading

import pytest

from osiris.runtime.display import DisplayListener, LiveDisplay, PlainDisplay, make_display, progress_text, wants_live
from osiris.runtime.progress import StepMeter, StepProgress


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def meter(clock: Clock, **kw):
    published: list[StepProgress] = []
    recorded: list[dict] = []
    m = StepMeter("s", publish=published.append, record=recorded.append, clock=clock, **kw)
    return m, published, recorded


def test_rows_are_the_further_of_driver_and_writer_and_a_retry_starts_again() -> None:
    clock = Clock()
    m, published, _ = meter(clock)
    m.add(100)
    m.add(60, source="written")
    m.add(50, bytes=4096)
    assert (m.snapshot().rows, m.snapshot().bytes) == (150, 4096)
    m.add(200, source="written")
    assert m.snapshot().rows == 260
    m.set_total(1000)
    m.restart()
    assert (m.snapshot().rows, m.snapshot().bytes, m.snapshot().total_rows) == (0, 0, 1000)
    assert len(published) == 5, "every report reaches the display"


def test_events_come_at_the_first_report_a_total_the_first_rows_and_then_once_an_interval() -> None:
    clock = Clock()
    m, published, recorded = meter(clock, event_interval_s=1.0)
    m.set_total(bytes=10_000)  # a total before any work
    m.add(0, bytes=500)  # the first bytes
    m.add(10, source="written")  # the first rows
    for _ in range(20):  # many reports within one interval: no event
        clock.now += 0.04
        m.add(10)
    clock.now += 0.5
    m.add(10)  # more than a second after the last event
    assert [(e["rows"], e["bytes"]) for e in recorded] == [(0, 0), (10, 500), (210, 500)]
    assert all(e["total_bytes"] == 10_000 and "total_rows" not in e for e in recorded)
    m.restart()
    m.add(5)
    assert recorded[-1]["rows"] == 5, "a retry's first rows are an event again"
    assert len(published) == 25


def test_the_meter_adds_reports_from_several_threads_exactly() -> None:
    m, _, _ = meter(Clock())

    def work(source: str) -> None:
        for _ in range(1000):
            m.add(1, bytes=2, source=source)

    threads = [threading.Thread(target=work, args=(src,)) for src in ("driver", "driver", "written")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (m.snapshot().rows, m.snapshot().bytes) == (2000, 6000)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            {"event": "step_progress", "step_id": "a", "rows": 5, "bytes": 9, "elapsed_s": 1.5, "total_rows": 10},
            StepProgress("a", 5, 9, 1.5, 10, None),
        ),
        ({"event": "step_progress", "step_id": "a", "rows": "5", "total_bytes": True}, StepProgress("a")),
        ({"event": "step_progress", "rows": 5}, None),
        ({"event": "step_complete", "step_id": "a", "rows": 5}, None),
    ],
    ids=["full", "malformed-fields", "no-step", "other-event"],
)
def test_a_progress_event_reads_back_and_anything_else_is_none(record, expected) -> None:
    assert StepProgress.from_event(record) == expected


def test_an_event_round_trips() -> None:
    p = StepProgress("x", rows=7, bytes=70, elapsed_s=2.0, total_rows=None, total_bytes=700)
    assert StepProgress.from_event({"event": "step_progress", "step_id": "x", **p.event_data()}) == p


@pytest.mark.parametrize(
    ("progress", "parts", "absent"),
    [
        (StepProgress("a", 300, 0, 3.0, total_rows=1000), ["300 of ~1,000 rows (30%)", "100 rows/s", "ETA 7s"], []),
        (StepProgress("a", 1200, 0, 3.0, total_rows=1000), ["1,200 of ~1,200 rows (100%)"], ["ETA"]),
        (StepProgress("a", 50, 512 * 1024, 1.0, total_bytes=1024 * 1024), ["50 rows", "512.0 KB of 1.0 MB"], []),
        (StepProgress("a", 50, 0, 0.0), ["50 rows", "0 rows/s"], ["%", "ETA", "of"]),
    ],
    ids=["rows-total", "past-the-estimate", "bytes-total", "no-total"],
)
def test_progress_in_words(progress, parts, absent) -> None:
    text = progress_text(progress)
    assert all(p in text for p in parts), text
    assert not any(a in text for a in absent), text


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_live_display_only_on_a_terminal_that_can_redraw() -> None:
    assert wants_live(Tty(), {"TERM": "xterm"})
    assert not wants_live(Tty(), {"TERM": "dumb"})
    assert not wants_live(io.StringIO(), {"TERM": "xterm"})
    assert isinstance(make_display(io.StringIO(), environ={"TERM": "xterm"}), PlainDisplay)
    live = make_display(Tty(), environ={"TERM": "xterm-256color"})
    assert isinstance(live, LiveDisplay)
    live.close()


def _feed(listener: DisplayListener) -> None:
    listener.on_event({"event": "sandbox_stage", "stage": "sandbox", "title": "building", "detail": "3 packages"})
    listener.on_stage("sandbox", "Collecting duckdb")
    listener.on_event({"event": "sandbox_stage", "stage": "sandbox", "title": "ready", "seconds": 1.5})
    listener.on_event({"event": "step_start", "step_id": "orders", "component": "mysql.extractor"})
    listener.on_event({"event": "step_start", "step_id": "other", "component": "filesystem.csv_extractor"})
    listener.on_step_progress(StepProgress("orders", 500, 0, 1.0, total_rows=1000))
    listener.on_step_progress(StepProgress("other", 20, 100, 1.0, total_bytes=200))
    listener.on_event({"event": "step_complete", "step_id": "orders", "rows_out": 1000, "duration_ms": 2000})
    listener.on_event({"event": "step_failed", "step_id": "other", "error": {"message": "bad row 3"}})
    listener.on_event({"event": "run_complete"})


def test_plain_lines_say_what_happened_without_escape_codes() -> None:
    out = io.StringIO()
    _feed(DisplayListener(PlainDisplay(out, interval_s=0)))
    lines = out.getvalue().splitlines()
    assert lines == [
        "  sandbox: building: 3 packages",
        "  sandbox: ready, done in 1.50 s",
        "  orders: started (mysql.extractor)",
        "  other: started (filesystem.csv_extractor)",
        "  orders: 500 of ~1,000 rows (50%), 500 rows/s, ETA 1s",
        "  other: 20 rows (50%), 20 rows/s, 100 B of 200 B, ETA 1s",
        "  orders: done, 1,000 rows in 2.00 s (500 rows/s)",
        "  other: FAILED: bad row 3",
    ]


def test_the_live_display_keeps_a_row_per_running_step() -> None:
    out = Tty()
    display = LiveDisplay(out)
    display.console.width = 150
    _feed(DisplayListener(display))
    display.close()
    text = out.getvalue()
    assert "orders" in text and "other" in text and "sandbox" in text
    assert "100%" in text and "done, 1,000 rows in 2.00 s" in text and "FAILED: bad row 3" in text
    display.step_progress(StepProgress("orders", 1))  # after the end: ignored, no error
