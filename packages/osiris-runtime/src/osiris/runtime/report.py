"""`osiris runs report`: one self-contained HTML file about one run.

Everything is inline (CSS, a little JavaScript for the filters, SVG for the charts); the page loads
nothing from anywhere, so it can be mailed, attached to a ticket or opened offline. It is built only
from the run directory's files, which the runner has already redacted; on top of that every value is
passed through `osiris.core.redaction.Redactor` (secret-looking keys, DSN passwords, Authorization
and apikey headers) and every text is HTML-escaped.

Sections: a header (status, times, exit code), the pipeline as a graph of steps, the steps table
(rows in/out, durations, `data_sha256`), a timeline of the steps, rows/s over time per step, errors
with their tracebacks, the run card's hashes and versions (and the whole run card), the events table
with filters, the metrics, and the files of the run directory.

Longer than most modules, on purpose: one self-contained page, its styles, script and charts
written next to the code that fills them, so the page is read and changed in one place.
"""

from __future__ import annotations

import html
import itertools
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from osiris.core.redaction import Redactor
from osiris.runtime.__about__ import __version__
from osiris.runtime.history import RunRecord, parse_time
from osiris.runtime.retention import format_bytes

REPORT_FILE = "report.html"
MAX_EVENTS = 5000
MAX_TRACEBACK = 200_000
MAX_DETAIL = 600
# Statuses the report knows how to colour; any other is shown as written, in a neutral colour.
KNOWN_STATUSES = ("succeeded", "failed", "interrupted", "running", "unfinished", "not_run", "skipped", "damaged")
PROGRESS_EVENT = "step_progress"  # an event with `rows` (cumulative) adds a point to the rows/s chart
PROGRESS_METRIC = "rows_progress"  # so does a metric whose value is the cumulative row count
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


def esc(value: Any) -> str:
    """HTML-escaped text of a value."""
    return html.escape("" if value is None else str(value), quote=True)


def status_class(status: Any) -> str:
    """The CSS class of a status: its own for a known one, `st-other` for anything else."""
    s = str(status)
    return f"st-{s}" if s in KNOWN_STATUSES else "st-other"


def badge(status: Any) -> str:
    """A status badge (an unknown status is shown as written)."""
    return f'<span class="badge {status_class(status)}">{esc(status)}</span>'


def _ms(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    return f"{value:,.0f} ms" if value < 1000 else f"{value / 1000:,.2f} s"


def _num(value: Any) -> str:
    return (
        f"{value:,}"
        if isinstance(value, int) and not isinstance(value, bool)
        else esc(value if value is not None else "-")
    )


def _short(sha: Any, n: int = 16) -> str:
    s = str(sha or "")
    if not s:
        return "-"
    head, _, digest = s.partition(":")
    return f"{head}:{digest[:n]}…" if digest else s[:n]


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


class _Timeline:
    """Seconds since the run started, from the event timestamps."""

    def __init__(self, run: RunRecord, events: list[dict[str, Any]]) -> None:
        times = [t for t in (parse_time(e.get("ts")) for e in events) if t is not None]
        start = parse_time((run.card or {}).get("started_at"))
        self.t0 = min([*times, *([start] if start else [])], default=None)
        end = parse_time((run.card or {}).get("finished_at"))
        self.t_end = max([*times, *([end] if end else [])], default=None)

    def at(self, ts: Any) -> float | None:
        t = parse_time(ts)
        if t is None or self.t0 is None:
            return None
        return (t - self.t0).total_seconds()

    @property
    def total(self) -> float:
        if self.t0 is None or self.t_end is None:
            return 0.0
        return max((self.t_end - self.t0).total_seconds(), 0.0)


def step_spans(steps: list[dict[str, Any]], events: list[dict[str, Any]], tl: _Timeline) -> dict[str, dict[str, Any]]:
    """Per step: `start` and `end` in seconds since the run started, and whether it ended (`open`: it did not)."""
    spans: dict[str, dict[str, Any]] = {}
    for ev in events:
        sid, name = ev.get("step_id"), ev.get("event")
        if not isinstance(sid, str):
            continue
        t = tl.at(ev.get("ts"))
        if t is None:
            continue
        if name == "step_start":
            spans[sid] = {"start": t, "end": None, "open": True}
        elif name in ("step_complete", "step_failed") and sid in spans:
            spans[sid]["end"], spans[sid]["open"] = t, False
    for sid, span in spans.items():
        if span["end"] is None:
            # No end event: the run card's duration when it has one (an interrupted step), else until the run's
            # last record; the bar stays marked as not ended unless the step's status says it did.
            step = next((s for s in steps if s.get("id") == sid), {})
            dur = step.get("duration_ms")
            ended = isinstance(dur, (int, float)) and dur > 0 and step.get("status") not in ("running", "unfinished")
            span["end"] = span["start"] + dur / 1000 if ended else max(tl.total, span["start"])
            span["open"] = step.get("status") not in ("succeeded", "failed")
    return spans


def throughput_series(
    steps: list[dict[str, Any]],
    events: list[dict[str, Any]],
    metrics: list[dict[str, Any]],
    spans: dict[str, dict[str, Any]],
    tl: _Timeline,
) -> dict[str, list[tuple[float, float, float]]]:
    """Per step, segments `(t_from, t_to, rows_per_s)` between the row counts the run recorded:
    0 at the step's start, every `step_progress` event / `rows_progress` metric, and its final rows."""
    samples: dict[str, list[tuple[float, float]]] = {}
    for ev in events:
        sid = ev.get("step_id")
        if ev.get("event") == PROGRESS_EVENT and isinstance(sid, str) and isinstance(ev.get("rows"), (int, float)):
            t = tl.at(ev.get("ts"))
            if t is not None:
                samples.setdefault(sid, []).append((t, float(ev["rows"])))
    for m in metrics:
        sid = m.get("step_id")
        if m.get("metric") == PROGRESS_METRIC and isinstance(sid, str) and isinstance(m.get("value"), (int, float)):
            t = tl.at(m.get("ts"))
            if t is not None:
                samples.setdefault(sid, []).append((t, float(m["value"])))
    out: dict[str, list[tuple[float, float, float]]] = {}
    for step in steps:
        sid = step.get("id")
        span = spans.get(sid) if isinstance(sid, str) else None
        if span is None:
            continue
        rows = step.get("rows_out") or step.get("rows_in") or 0
        points = [(span["start"], 0.0), *sorted(samples.get(sid, []))]
        if step.get("status") == "succeeded" and not span["open"] and isinstance(rows, (int, float)):
            points.append((span["end"], float(rows)))
        segments = []
        for (t1, r1), (t2, r2) in itertools.pairwise(points):
            if t2 > t1 and r2 >= r1:
                segments.append((t1, t2, (r2 - r1) / (t2 - t1)))
        if segments:
            out[sid] = segments
    return out


# -- SVG -------------------------------------------------------------------------------------------


def graph_svg(steps: list[dict[str, Any]], manifest_steps: list[dict[str, Any]]) -> str:
    """The pipeline as a left-to-right graph of steps (boxes coloured by status, edges from `needs`)."""
    needs = {str(s["id"]): [str(n) for n in (s.get("needs") or [])] for s in manifest_steps}
    ids = [str(s.get("id")) for s in steps]
    for sid in needs:
        if sid not in ids:
            ids.append(sid)
    by_id = {str(s.get("id")): s for s in steps}
    depth: dict[str, int] = {}

    def level(sid: str, seen: frozenset[str] = frozenset()) -> int:
        if sid in depth:
            return depth[sid]
        if sid in seen:
            return 0
        ups = [n for n in needs.get(sid, []) if n in ids]
        depth[sid] = 0 if not ups else 1 + max(level(n, seen | {sid}) for n in ups)
        return depth[sid]

    for sid in ids:
        level(sid)
    columns: dict[int, list[str]] = {}
    for sid in ids:
        columns.setdefault(depth[sid], []).append(sid)
    w, h, gap_x, gap_y, pad = 210, 78, 70, 22, 16
    pos = {}
    for col, members in columns.items():
        for row, sid in enumerate(members):
            pos[sid] = (pad + col * (w + gap_x), pad + row * (h + gap_y))
    width = pad * 2 + (max(columns) + 1) * (w + gap_x) - gap_x if columns else 200
    height = pad * 2 + max(len(m) for m in columns.values()) * (h + gap_y) - gap_y if columns else 60
    parts = [
        f'<svg class="graph" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="pipeline graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#777"/></marker></defs>',
    ]
    for sid in ids:
        for up in needs.get(sid, []):
            if up not in pos:
                continue
            x1, y1 = pos[up][0] + w, pos[up][1] + h / 2
            x2, y2 = pos[sid][0], pos[sid][1] + h / 2
            mx = (x1 + x2) / 2
            parts.append(
                f'<path class="edge" d="M {x1} {y1} C {mx} {y1}, {mx} {y2}, {x2 - 2} {y2}" marker-end="url(#arrow)"/>'
            )
    for sid in ids:
        x, y = pos[sid]
        step = by_id.get(sid, {})
        status = step.get("status", "not_run")
        rows = f"{_num(step.get('rows_in', 0))} → {_num(step.get('rows_out', 0))} rows"
        parts.append(
            f'<g class="node {status_class(status)}" data-step="{esc(sid)}" tabindex="0">'
            f"<title>{esc(sid)}: {esc(status)} (click to show its events)</title>"
            f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8"/>'
            f'<text x="{x + 10}" y="{y + 20}" class="n-id">{esc(_clip(sid, 24))}</text>'
            f'<text x="{x + 10}" y="{y + 37}" class="n-sub">{esc(_clip(step.get("component") or "", 30))}</text>'
            f'<text x="{x + 10}" y="{y + 54}" class="n-sub">{esc(rows)}</text>'
            f'<text x="{x + 10}" y="{y + 70}" class="n-sub">{esc(status)} · {esc(_ms(step.get("duration_ms")))}</text>'
            "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _ticks(total: float, count: int = 6) -> list[float]:
    if total <= 0:
        return [0.0]
    raw = total / count
    for step in (
        0.001,
        0.002,
        0.005,
        0.01,
        0.02,
        0.05,
        0.1,
        0.2,
        0.5,
        1,
        2,
        5,
        10,
        15,
        30,
        60,
        120,
        300,
        600,
        1800,
        3600,
    ):
        if step >= raw:
            break
    else:
        step = 3600 * max(1, round(raw / 3600))
    ticks, t = [], 0.0
    while t <= total + 1e-9:
        ticks.append(round(t, 6))
        t += step
    return ticks


def _fmt_s(t: float) -> str:
    if t >= 60:
        return f"{int(t // 60)}m{t % 60:02.0f}s"
    return f"{t:.3g}s"


def timeline_svg(steps: list[dict[str, Any]], spans: dict[str, dict[str, Any]], total: float) -> str:
    """Each step as a bar from its start to its end, on one time axis from the run's start (the first
    bar, `setup`, is the preflight and driver registration before the first step)."""
    rows = [s for s in steps if s.get("id") in spans]
    if not rows:
        return '<p class="muted">No step started, so there is no timeline.</p>'
    total = max(total, *(spans[s["id"]]["end"] for s in rows), 1e-3)
    bars: list[tuple[str, str, dict[str, Any], str]] = []
    first = min(spans[s["id"]]["start"] for s in rows)
    if first > 0:
        setup = {"start": 0.0, "end": first, "open": False}
        bars.append(("setup", "setup", setup, f"{_fmt_s(first)}: preflight, driver registration"))
    for step in rows:
        span = spans[step["id"]]
        dur = (
            _ms(step.get("duration_ms")) if not span["open"] else f"{_fmt_s(span['end'] - span['start'])}, did not end"
        )
        cls = status_class(step.get("status")) + (" open" if span["open"] else "")
        bars.append((str(step["id"]), cls, span, f"{step.get('status')}, {dur}"))
    label_w, plot_w, row_h, top = 170, 760, 26, 24
    width, height = label_w + plot_w + 30, top + len(bars) * row_h + 10
    parts = [
        f'<svg class="timeline" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="step timeline">'
    ]
    for t in _ticks(total):
        x = label_w + t / total * plot_w
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 6}"/>')
        parts.append(f'<text class="axis" x="{x:.1f}" y="{top - 10}" text-anchor="middle">{esc(_fmt_s(t))}</text>')
    for i, (name, cls, span, text) in enumerate(bars):
        y = top + i * row_h
        x = label_w + span["start"] / total * plot_w
        bw = max((span["end"] - span["start"]) / total * plot_w, 2.0)
        fits_right = x + bw + 6 + 6.5 * len(text) < width
        tx, anchor = (x + bw + 6, "start") if fits_right else (x - 6, "end")
        parts.append(
            f'<text class="label" x="{label_w - 8}" y="{y + 16}" text-anchor="end">{esc(_clip(name, 22))}</text>'
            f'<g class="bar {cls}" data-step="{esc(name)}">'
            f"<title>{esc(name)}: {esc(text)} (from {span['start']:.3f}s to {span['end']:.3f}s)</title>"
            f'<rect x="{x:.1f}" y="{y + 4}" width="{bw:.1f}" height="{row_h - 8}" rx="3"/></g>'
            f'<text class="axis" x="{tx:.1f}" y="{y + 17}" text-anchor="{anchor}">{esc(text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def throughput_svg(series: dict[str, list[tuple[float, float, float]]], total: float) -> str:
    """Rows/s over time, one step line per step."""
    if not series:
        return '<p class="muted">No step recorded rows over a measurable time.</p>'
    total = max(total, *(seg[1] for segs in series.values() for seg in segs), 1e-3)
    peak = max(seg[2] for segs in series.values() for seg in segs) or 1.0
    left, plot_w, plot_h, top = 90, 800, 220, 16
    width, height = left + plot_w + 20, top + plot_h + 40
    parts = [
        f'<svg class="throughput" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="rows per second over time">'
    ]
    for k in range(5):
        v = peak * k / 4
        y = top + plot_h - v / peak * plot_h
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{esc(_rate(v))}</text>')
    for t in _ticks(total):
        x = left + t / total * plot_w
        parts.append(
            f'<text class="axis" x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{esc(_fmt_s(t))}</text>'
        )
    legend = []
    for i, (sid, segs) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        pts = []
        for t1, t2, rate in segs:
            y = top + plot_h - rate / peak * plot_h
            pts += [(left + t1 / total * plot_w, y), (left + t2 / total * plot_w, y)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in pts)
        avg = sum((t2 - t1) * r for t1, t2, r in segs) / max(sum(t2 - t1 for t1, t2, _ in segs), 1e-9)
        parts.append(
            f'<polyline class="series" data-step="{esc(sid)}" points="{path}" stroke="{color}">'
            f"<title>{esc(sid)}: {esc(_rate(avg))} rows/s on average</title></polyline>{dots}"
        )
        legend.append(
            f'<span class="legend-item"><i style="background:{color}"></i>{esc(sid)} ({esc(_rate(avg))} rows/s)</span>'
        )
    parts.append("</svg>")
    return "".join(parts) + f'<div class="legend">{"".join(legend)}</div>'


def _rate(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:.1f}M"
    if v >= 1e4:
        return f"{v / 1e3:.0f}k"
    return f"{v:,.0f}"


# -- sections --------------------------------------------------------------------------------------


def _kv_table(rows: list[tuple[str, Any]], *, code: bool = True) -> str:
    cells = "".join(
        f"<tr><th>{esc(k)}</th><td>{'<code>' + esc(v) + '</code>' if code else esc(v)}</td></tr>"
        for k, v in rows
        if v not in (None, "")
    )
    return f'<table class="kv">{cells}</table>'


def _steps_table(steps: list[dict[str, Any]]) -> str:
    head = "<tr><th>step</th><th>component</th><th>mode</th><th>status</th><th class='r'>rows in</th>"
    head += "<th class='r'>rows out</th><th class='r'>duration</th><th>data_sha256</th></tr>"
    body = []
    for s in steps:
        shas = [o.get("data_sha256") for o in (s.get("outputs") or []) if isinstance(o, dict)]
        sha = "<br>".join(f'<code title="{esc(x)}">{esc(_short(x))}</code>' for x in shas if x) or "-"
        body.append(
            f'<tr class="step-row" data-step="{esc(s.get("id"))}"><td><b>{esc(s.get("id"))}</b></td>'
            f"<td>{esc(s.get('component'))}</td><td>{esc(s.get('mode'))}</td><td>{badge(s.get('status'))}</td>"
            f"<td class='r'>{_num(s.get('rows_in'))}</td><td class='r'>{_num(s.get('rows_out'))}</td>"
            f"<td class='r'>{esc(_ms(s.get('duration_ms')))}</td><td>{sha}</td></tr>"
        )
    return f'<table class="grid-table" id="steps-table"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>'


def _error_block(title: str, err: dict[str, Any], trace: str | None) -> str:
    rows = [
        ("type", err.get("type")),
        ("step", err.get("step")),
        ("exit code", err.get("exit_code")),
        ("retryable", err.get("retryable")),
        ("hint", err.get("hint")),
    ]
    out = f'<div class="error"><h3>{esc(title)}</h3><p class="msg">{esc(err.get("message"))}</p>{_kv_table(rows)}'
    if trace:
        out += f"<details open><summary>traceback (redacted)</summary><pre>{esc(trace)}</pre></details>"
    return out + "</div>"


def _event_details(ev: dict[str, Any]) -> str:
    rest = {k: v for k, v in ev.items() if k not in ("ts", "run_id", "event", "step_id")}
    if not rest:
        return ""
    text = json.dumps(rest, ensure_ascii=False, default=str)
    if len(text) <= MAX_DETAIL:
        return f"<code>{esc(text)}</code>"
    return f"<details><summary><code>{esc(text[:MAX_DETAIL])}…</code></summary><pre>{esc(_json(rest))}</pre></details>"


def _is_problem_event(ev: dict[str, Any]) -> bool:
    name = str(ev.get("event", ""))
    level = str(ev.get("level", "")).lower()
    return level in ("warning", "error") or any(w in name for w in ("fail", "error", "interrupt", "warn", "mismatch"))


def _events_section(events: list[dict[str, Any]], tl: _Timeline) -> str:
    shown = events[:MAX_EVENTS]
    names = sorted({str(e.get("event")) for e in shown})
    steps = sorted({str(e.get("step_id")) for e in shown if e.get("step_id") is not None})
    rows = []
    for ev in shown:
        t = tl.at(ev.get("ts"))
        offset = f"+{t:.3f}s" if t is not None else ""
        step = ev.get("step_id")
        problem = _is_problem_event(ev)
        rows.append(
            f'<tr class="ev{" problem" if problem else ""}" data-event="{esc(ev.get("event"))}" '
            f'data-step="{esc(step if step is not None else "")}" data-problem="{"1" if problem else "0"}">'
            f'<td class="t" title="{esc(ev.get("ts"))}">{esc(offset)}</td><td><b>{esc(ev.get("event"))}</b></td>'
            f"<td>{esc(step if step is not None else '')}</td><td>{_event_details(ev)}</td></tr>"
        )
    more = (
        f'<p class="muted">The first {MAX_EVENTS:,} of {len(events):,} events are shown; all are in events.jsonl.</p>'
        if len(events) > MAX_EVENTS
        else ""
    )
    opts_e = "".join(f'<option value="{esc(n)}">{esc(n)}</option>' for n in names)
    opts_s = "".join(f'<option value="{esc(s)}">{esc(s)}</option>' for s in steps)
    filters = (
        '<div class="filters">'
        f'<label>event <select id="f-event"><option value="">all</option>{opts_e}</select></label>'
        f'<label>step <select id="f-step"><option value="">all</option>{opts_s}</select></label>'
        '<label>text <input id="f-text" type="search" placeholder="filter by any text"></label>'
        '<label><input id="f-problems" type="checkbox"> problems only</label>'
        '<button id="f-reset" type="button">reset</button>'
        f'<span id="f-count" class="muted">{len(shown)} of {len(shown)} events</span></div>'
    )
    table = (
        '<table class="grid-table" id="events-table"><thead><tr><th>time</th><th>event</th><th>step</th>'
        f"<th>details</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return filters + more + table


def _metrics_section(metrics: list[dict[str, Any]], tl: _Timeline) -> str:
    if not metrics:
        return '<p class="muted">No metrics were recorded.</p>'
    rows = []
    for m in metrics[:MAX_EVENTS]:
        t = tl.at(m.get("ts"))
        tags = {k: v for k, v in m.items() if k not in ("ts", "run_id", "metric", "value", "step_id")}
        value = m.get("value")
        shown = f"{value:,}" if isinstance(value, (int, float)) and not isinstance(value, bool) else esc(value)
        rows.append(
            f'<tr data-step="{esc(m.get("step_id") or "")}"><td class="t">{esc(f"+{t:.3f}s" if t is not None else "")}</td>'
            f"<td><b>{esc(m.get('metric'))}</b></td><td>{esc(m.get('step_id') or '')}</td><td class='r'>{shown}</td>"
            f"<td><code>{esc(json.dumps(tags, ensure_ascii=False, default=str)) if tags else ''}</code></td></tr>"
        )
    return (
        '<table class="grid-table" id="metrics-table"><thead><tr><th>time</th><th>metric</th><th>step</th>'
        f"<th class='r'>value</th><th>tags</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _versions(run: RunRecord) -> list[tuple[str, Any]]:
    card = run.card or {}
    manifest = run.manifest or {}
    runtime = card.get("runtime") if isinstance(card.get("runtime"), dict) else {}
    compiler = manifest.get("compiler") if isinstance(manifest.get("compiler"), dict) else {}
    rows: list[tuple[str, Any]] = [
        ("run id", run.run_id),
        ("pipeline", run.pipeline),
        ("run card version", card.get("run_card_version")),
        ("manifest fingerprint", card.get("manifest_fingerprint")),
        ("drivers fingerprint (registration)", card.get("drivers_fingerprint")),
        ("runtime", f"{runtime.get('package', 'osiris-runtime')} {runtime.get('version')}" if runtime else None),
        ("compiler", f"{compiler.get('package')} {compiler.get('version')}" if compiler else None),
    ]
    fps = manifest.get("fingerprints") if isinstance(manifest.get("fingerprints"), dict) else {}
    for key, value in fps.items():
        rows.append((f"manifest fingerprints.{key}", value))
    for d in manifest.get("drivers") or []:
        if isinstance(d, dict):
            extras = f"[{','.join(d.get('extras') or [])}]" if d.get("extras") else ""
            comps = ", ".join(d.get("components") or [])
            rows.append((f"driver package {d.get('package')}{extras}", f"{d.get('version')} ({comps})"))
    sandbox = card.get("sandbox")
    if isinstance(sandbox, dict):
        rows.append(("sandbox", sandbox.get("name")))
    return rows


def _files_section(run: RunRecord) -> str:
    files = [f for f in run.files() if f.path != REPORT_FILE]  # not the report itself (being rewritten)
    rows = "".join(
        f"<tr><td><code>{esc(f.path)}</code></td><td class='r'>{esc(format_bytes(f.size))}</td>"
        f"<td>{'data' if f.data else 'diagnostic'}</td></tr>"
        for f in files
    )
    note = run.retention_note
    removed = ""
    if note and isinstance(note.get("data_removed"), list):
        items = "".join(
            f"<li>{esc(r.get('at'))}: {esc(len(r.get('files') or []))} files ({esc(r.get('rule'))})</li>"
            for r in note["data_removed"]
            if isinstance(r, dict)
        )
        removed = f"<p>Data artifacts removed by retention:</p><ul>{items}</ul>"
    total = sum(f.size for f in files)
    return (
        f'<p class="muted">{len(files)} files, {esc(format_bytes(total))}; '
        f"path <code>{esc(run.path)}</code></p>{removed}"
        f'<table class="grid-table"><thead><tr><th>file</th><th class="r">size</th><th>kind</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _traceback(run: RunRecord, step_id: Any) -> str | None:
    if not isinstance(step_id, str) or "/" in step_id or step_id.startswith("."):
        return None
    path = run.path / "artifacts" / step_id / "error.txt"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return text[:MAX_TRACEBACK] + (
        "\n… (cut; the whole traceback is in error.txt)" if len(text) > MAX_TRACEBACK else ""
    )


def build_report(run: RunRecord, *, generated_at: datetime | None = None) -> str:
    """The HTML text of the report on `run` (self-contained: no network access is needed to view it)."""
    redactor = Redactor()
    card = redactor.redact(run.card) if run.card is not None else None
    events = redactor.redact(run.events)
    metrics = redactor.redact(run.metrics)
    steps = redactor.redact(run.steps)
    tl = _Timeline(run, events)
    spans = step_spans(steps, events, tl)
    series = throughput_series(steps, events, metrics, spans, tl)
    status = run.status
    err = redactor.redact(run.error) if run.error else None
    generated = (generated_at or datetime.now(UTC)).isoformat(timespec="seconds")

    head_rows = [
        ("status", None),
        ("started", (card or {}).get("started_at") or (tl.t0.isoformat() if tl.t0 else None)),
        ("finished", (card or {}).get("finished_at")),
        ("duration", _ms(run.duration_ms) if run.duration_ms is not None else None),
        ("exit code", (err or {}).get("exit_code") if status != "succeeded" else 0),
        ("steps", f"{sum(s.get('status') == 'succeeded' for s in steps)} of {len(steps)} succeeded"),
    ]
    facts = "".join(
        f'<div><span class="k">{esc(k)}</span><b>{badge(status) if k == "status" else esc(v)}</b></div>'
        for k, v in head_rows
        if k == "status" or v not in (None, "")
    )
    notes = ""
    if status not in KNOWN_STATUSES:
        notes += (
            f'<p class="note">This run\'s status is <b>{esc(status)}</b>, which this version of the report '
            f"(osiris-runtime {esc(__version__)}) does not know; it is shown as the run card says.</p>"
        )
    if run.problems:
        notes += '<div class="note damaged"><b>Problems reading this run:</b><ul>'
        notes += "".join(f"<li>{esc(redactor.redact_text(p))}</li>" for p in run.problems) + "</ul></div>"
    if run.steps_source == "events" and steps:
        notes += '<p class="note">The run card has no steps; they are rebuilt from events.jsonl.</p>'

    errors = []
    step_errors = [(s, s["error"]) for s in steps if isinstance(s.get("error"), dict)]
    if err and not any(e == err for _, e in step_errors):
        errors.append(_error_block("run error", err, None))
    for s, e in step_errors:
        errors.append(_error_block(f"step {s.get('id')}: {s.get('status')}", e, _traceback(run, s.get("id"))))
    errors_html = "".join(errors) or '<p class="muted">No errors.</p>'

    sections = [
        ("graph", "Pipeline", f'<div class="scroll">{graph_svg(steps, run.manifest_steps)}</div>'),
        ("steps", "Steps", _steps_table(steps)),
        ("timeline", "Timeline", timeline_svg(steps, spans, tl.total)),
        (
            "throughput",
            "Rows per second",
            throughput_svg(series, tl.total)
            + '<p class="muted">Rows/s between the row counts the run recorded: each step\'s start and end, '
            f"and any <code>{PROGRESS_EVENT}</code> event or <code>{PROGRESS_METRIC}</code> metric in between.</p>",
        ),
        ("errors", f"Errors ({len(errors)})", errors_html),
        (
            "card",
            "Hashes and versions",
            _kv_table(_versions(run))
            + (
                f"<details><summary>the whole run card</summary><pre>{esc(_json(card))}</pre></details>"
                if card is not None
                else '<p class="muted">No readable run card.</p>'
            ),
        ),
        ("events", f"Events ({len(events)})", _events_section(events, tl)),
        ("metrics", f"Metrics ({len(metrics)})", _metrics_section(metrics, tl)),
        ("files", "Files", _files_section(run)),
    ]
    nav = "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{esc(title)}</h2>{content}</section>' for sid, title, content in sections)
    title = f"{run.pipeline} · {run.run_id} · {status}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="osiris-runtime {esc(__version__)}">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f'<header class="top {status_class(status)}"><h1>{esc(run.pipeline)} <small>run {esc(run.run_id)}</small></h1>'
        f'<div class="facts">{facts}</div></header>'
        f"<nav>{nav}</nav><main>{notes}{body}</main>"
        f"<footer>Generated by osiris-runtime {esc(__version__)} at {esc(generated)} from <code>{esc(run.path)}</code>. "
        "Secrets were masked when the run was recorded.</footer>"
        f"<script>{JS}</script></body></html>\n"
    )


def write_report(run: RunRecord, out: Path | None = None) -> Path:
    """Write the report (default: `report.html` in the run directory) atomically; returns its path."""
    target = Path(out) if out is not None else run.path / REPORT_FILE
    if target.is_dir():
        target = target / f"{run.pipeline}-{run.run_id}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    text = build_report(run)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


CSS = """
:root{--ok:#2e7d32;--bad:#c62828;--warn:#ef6c00;--run:#1565c0;--idle:#9e9e9e;--other:#546e7a;--dmg:#6a1b9a;
--bg:#fafafa;--fg:#212121;--muted:#6b6b6b;--line:#e0e0e0}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}
header.top{padding:16px 24px;background:#fff;border-bottom:4px solid var(--other)}
header.top.st-succeeded{border-color:var(--ok)}header.top.st-failed{border-color:var(--bad)}
header.top.st-interrupted{border-color:var(--warn)}header.top.st-running{border-color:var(--run)}
header.top.st-damaged{border-color:var(--dmg)}
h1{margin:0 0 8px;font-size:22px}h1 small{font-weight:400;color:var(--muted);font-size:14px;margin-left:8px}
h2{font-size:17px;margin:0 0 10px}h3{font-size:15px;margin:0 0 6px}
.facts{display:flex;flex-wrap:wrap;gap:8px 28px}.facts .k{display:block;color:var(--muted);font-size:12px}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid var(--line);padding:6px 24px;z-index:2;
display:flex;flex-wrap:wrap;gap:14px}nav a{color:var(--run);text-decoration:none;font-size:13px}
main{padding:8px 24px 24px}section{background:#fff;border:1px solid var(--line);border-radius:8px;
padding:14px 16px;margin:14px 0}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;font-weight:600;
background:var(--other)}
.badge.st-succeeded{background:var(--ok)}.badge.st-failed{background:var(--bad)}
.badge.st-interrupted{background:var(--warn)}.badge.st-running,.badge.st-unfinished{background:var(--run)}
.badge.st-not_run,.badge.st-skipped{background:var(--idle)}.badge.st-damaged{background:var(--dmg)}
.muted{color:var(--muted)}.note{background:#fff8e1;border:1px solid #ffe082;padding:8px 12px;border-radius:6px}
.note.damaged{background:#f3e5f5;border-color:#ce93d8}
table{border-collapse:collapse}.grid-table{width:100%}.grid-table th,.grid-table td{border-bottom:1px solid var(--line);
padding:4px 8px;text-align:left;vertical-align:top}.grid-table th{font-size:12px;color:var(--muted);font-weight:600}
.r{text-align:right!important;font-variant-numeric:tabular-nums}td.t{white-space:nowrap;color:var(--muted)}
.kv th{text-align:left;padding:3px 14px 3px 0;color:var(--muted);font-weight:500;white-space:nowrap;vertical-align:top}
.kv td{padding:3px 0;word-break:break-all}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}pre{font:12px ui-monospace,Menlo,Consolas,monospace;
background:#263238;color:#eceff1;padding:10px;border-radius:6px;overflow:auto;max-height:420px;white-space:pre-wrap}
.scroll{overflow-x:auto}
svg text{font:12px system-ui,sans-serif;fill:var(--fg)}svg .axis{fill:var(--muted);font-size:11px}
svg .grid{stroke:var(--line)}svg .edge{fill:none;stroke:#777;stroke-width:1.5}
.node rect{fill:#eceff1;stroke:var(--other);stroke-width:2}.node{cursor:pointer}.node:focus rect,.node:hover rect{stroke-width:3.5}
.node.st-succeeded rect{fill:#e8f5e9;stroke:var(--ok)}.node.st-failed rect{fill:#ffebee;stroke:var(--bad)}
.node.st-interrupted rect{fill:#fff3e0;stroke:var(--warn)}.node.st-running rect,.node.st-unfinished rect{fill:#e3f2fd;stroke:var(--run)}
.node.st-not_run rect,.node.st-skipped rect{fill:#f5f5f5;stroke:var(--idle);stroke-dasharray:5 3}
.node .n-id{font-weight:700}.node .n-sub{fill:var(--muted);font-size:11px}
.bar rect{fill:var(--other)}.bar.st-succeeded rect{fill:var(--ok)}.bar.st-failed rect{fill:var(--bad)}
.bar.st-interrupted rect{fill:var(--warn)}.bar.st-running rect,.bar.st-unfinished rect{fill:var(--run)}
.bar.open rect{opacity:.6;stroke:#000;stroke-dasharray:4 3}.bar.setup rect{fill:#b0bec5}
.series{fill:none;stroke-width:2.5}.legend{display:flex;flex-wrap:wrap;gap:6px 18px;margin-top:6px}
.legend i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:-1px}
.error{border-left:4px solid var(--bad);padding:6px 12px;margin:8px 0;background:#fffafa}.error .msg{font-weight:600;
white-space:pre-wrap}
.filters{display:flex;flex-wrap:wrap;gap:10px 16px;align-items:center;margin-bottom:8px}
.filters input[type=search]{width:220px}tr.problem td{background:#fff5f5}tr[hidden]{display:none}
footer{color:var(--muted);font-size:12px;padding:0 24px 24px}
"""

JS = """
(function () {
  "use strict";
  var rows = Array.prototype.slice.call(document.querySelectorAll("#events-table tbody tr"));
  var fEvent = document.getElementById("f-event"), fStep = document.getElementById("f-step");
  var fText = document.getElementById("f-text"), fProblems = document.getElementById("f-problems");
  var count = document.getElementById("f-count");
  if (!fEvent || !fStep || !fText || !fProblems || !count) { return; }
  function apply() {
    var ev = fEvent.value, st = fStep.value, text = fText.value.trim().toLowerCase(), pr = fProblems.checked;
    var shown = 0;
    rows.forEach(function (row) {
      var ok = (!ev || row.getAttribute("data-event") === ev) &&
               (!st || row.getAttribute("data-step") === st) &&
               (!pr || row.getAttribute("data-problem") === "1") &&
               (!text || row.textContent.toLowerCase().indexOf(text) !== -1);
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + rows.length + " events";
  }
  [fEvent, fStep, fProblems].forEach(function (el) { el.addEventListener("change", apply); });
  fText.addEventListener("input", apply);
  document.getElementById("f-reset").addEventListener("click", function () {
    fEvent.value = ""; fStep.value = ""; fText.value = ""; fProblems.checked = false; apply();
  });
  function showStep(step) {
    var known = Array.prototype.some.call(fStep.options, function (o) { return o.value === step; });
    fStep.value = known ? step : "";
    apply();
    document.getElementById("events").scrollIntoView();
  }
  Array.prototype.forEach.call(document.querySelectorAll(".node, .step-row"), function (el) {
    el.addEventListener("click", function () { showStep(el.getAttribute("data-step")); });
    el.addEventListener("keydown", function (e) { if (e.key === "Enter") { showStep(el.getAttribute("data-step")); } });
  });
  apply();
})();
"""
