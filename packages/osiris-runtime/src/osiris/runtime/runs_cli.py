"""`osiris runs list|show|diff|prune|report`: the run history under `--runs-dir`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from osiris.core.cli_types import Folder
from osiris.core.errors import UserInputError
from osiris.runtime.history import RunRecord, resolve_run, scan_runs
from osiris.runtime.retention import (
    ENV_KEEP,
    ENV_KEEP_DATA,
    ENV_MAX_AGE,
    Policy,
    format_bytes,
    parse_duration,
    policy_from_env,
    prune,
)

RUNS_DIR_HELP = "Where run directories are (the `--runs-dir` of `osiris run`)."


def _runs_dir_option(f: Any) -> Any:
    return click.option(
        "--runs-dir", default="runs", show_default=True, type=Folder(writable=False), help=RUNS_DIR_HELP
    )(f)


def _json_option(f: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(f)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], right: set[int]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for r in [header, *rows]:
        cells = [r[i].rjust(widths[i]) if i in right else r[i].ljust(widths[i]) for i in range(len(header))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _when(run: RunRecord) -> str:
    return run.started.strftime("%Y-%m-%d %H:%M:%S") if run.started else "-"


def _dur(ms: Any) -> str:
    if not isinstance(ms, (int, float)):
        return "-"
    return f"{ms / 1000:.2f}s"


def _int(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "-"


@click.group("runs")
def runs_group() -> None:
    """List, show, compare, prune and report on past runs (`runs/<pipeline>/<run_id>/`).

    RUN_ID is a run id, a unique prefix of one, PIPELINE/RUN_ID, `latest`, PIPELINE/latest,
    or the path of a run directory.
    """


@runs_group.command("list")
@click.argument("pipeline", required=False)
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True, help="Newest N runs (0: all).")
@_runs_dir_option
@_json_option
def list_runs(pipeline: str | None, limit: int, runs_dir: str, as_json: bool) -> None:
    """List runs, newest first (of PIPELINE, if given). A run without a usable run card is `damaged`."""
    records = scan_runs(Path(runs_dir), pipeline)
    newest = list(reversed(records))
    shown = newest[:limit] if limit else newest
    if as_json:
        _echo_json({"runs_dir": runs_dir, "total": len(records), "runs": [r.summary() for r in shown]})
        return
    if not records:
        click.echo(f"No runs in `{runs_dir}`" + (f" of pipeline `{pipeline}`" if pipeline else ""))
        return
    rows = []
    for r in shown:
        s = r.summary()
        rows.append(
            (
                r.run_id,
                r.pipeline,
                r.status,
                _when(r),
                _dur(s["duration_ms"]),
                f"{s['steps_succeeded']}/{s['steps']}",
                _int(s["rows_out"]),
                format_bytes(s["size_bytes"]),
                s["data"],
            )
        )
    header = ("RUN ID", "PIPELINE", "STATUS", "STARTED (UTC)", "TIME", "STEPS OK", "ROWS OUT", "SIZE", "DATA")
    click.echo(_table(header, rows, right={4, 5, 6, 7}))
    if len(shown) < len(newest):
        click.echo(f"... {len(newest) - len(shown)} older runs not shown (`--limit 0` shows all)")
    for r in shown:
        if r.status == "damaged" and r.problems:
            click.echo(f"damaged: {r.ref}: {r.problems[0]}")


def _versions(run: RunRecord) -> dict[str, Any]:
    card = run.card or {}
    manifest = run.manifest or {}
    runtime = card.get("runtime") if isinstance(card.get("runtime"), dict) else {}
    compiler = manifest.get("compiler") if isinstance(manifest.get("compiler"), dict) else {}
    out: dict[str, Any] = {
        "manifest_fingerprint": card.get("manifest_fingerprint")
        or ((manifest.get("fingerprints") or {}).get("manifest") if isinstance(manifest, dict) else None),
        "drivers_fingerprint": card.get("drivers_fingerprint"),
        "osiris-runtime": runtime.get("version"),
        "compiler": f"{compiler.get('package')} {compiler.get('version')}" if compiler else None,
    }
    for d in manifest.get("drivers") or []:
        if isinstance(d, dict) and d.get("package"):
            out[f"driver {d['package']}"] = d.get("version")
    sandbox = card.get("sandbox")
    out["sandbox"] = sandbox.get("name") if isinstance(sandbox, dict) else None
    return out


def _show_data(run: RunRecord) -> dict[str, Any]:
    files = run.files()
    return {
        "run": run.summary(),
        "versions": _versions(run),
        "steps_source": run.steps_source,
        "steps": run.steps,
        "error": run.error,
        "events": len(run.events),
        "metrics": len(run.metrics),
        "files": [{"path": f.path, "bytes": f.size, "data": f.data} for f in files],
        "retention": run.retention_note,
        "run_card": run.card,
        "problems": run.problems,
    }


@runs_group.command("show")
@click.argument("run_id")
@_runs_dir_option
@_json_option
def show_run(run_id: str, runs_dir: str, as_json: bool) -> None:
    """Show one run: status, times, versions and hashes, every step, the error and the files."""
    run = resolve_run(Path(runs_dir), run_id)
    data = _show_data(run)
    if as_json:
        _echo_json(data)
        return
    s = data["run"]
    lines: list[tuple[str, Any]] = [
        ("run", f"{run.run_id}  ({run.pipeline})"),
        ("status", run.status),
        ("started", s["started_at"] or "-"),
        ("finished", f"{s['finished_at']}  ({_dur(s['duration_ms'])})" if s["finished_at"] else None),
        ("path", run.path),
        *((k, v) for k, v in data["versions"].items()),
        ("data", f"{s['data']} ({format_bytes(s['data_bytes'])} of {format_bytes(s['size_bytes'])} in the run)"),
    ]
    note = data["retention"]
    if note and note.get("data_removed"):
        last = note["data_removed"][-1]
        lines.append(("", f"data removed at {last.get('at')} ({last.get('rule')})"))
    width = max(len(k) for k, v in lines if v)
    for key, value in lines:
        if value:
            click.echo(f"{key:<{width}}  {value}")
    click.echo("")
    if data["steps_source"] == "events" and run.steps:
        click.echo("(no steps in the run card: rebuilt from events.jsonl)")
    rows = []
    for st in run.steps:
        shas = [o.get("data_sha256") for o in (st.get("outputs") or []) if isinstance(o, dict) and o.get("data_sha256")]
        rows.append(
            (
                str(st.get("id")),
                str(st.get("component") or "-"),
                str(st.get("status")),
                _int(st.get("rows_in")),
                _int(st.get("rows_out")),
                _dur(st.get("duration_ms")) if st.get("status") not in ("not_run", "skipped") else "-",
                ", ".join(str(x)[:19] for x in shas) or "-",
            )
        )
    if rows:
        header = ("STEP", "COMPONENT", "STATUS", "ROWS IN", "ROWS OUT", "TIME", "DATA SHA256")
        click.echo(_table(header, rows, right={3, 4, 5}))
    err = data["error"]
    if err:
        where = f" in step `{err.get('step')}`" if err.get("step") else ""
        click.echo(f"\nerror{where}: {err.get('message')}")
    for p in run.problems:
        click.echo(f"problem: {p}")
    click.echo(f"\n{len(data['files'])} files, {data['events']} events, {data['metrics']} metrics")


def _step_view(step: dict[str, Any] | None) -> dict[str, Any] | None:
    if step is None:
        return None
    shas = [o.get("data_sha256") for o in (step.get("outputs") or []) if isinstance(o, dict)]
    return {
        "status": step.get("status"),
        "rows_in": step.get("rows_in"),
        "rows_out": step.get("rows_out"),
        "duration_ms": step.get("duration_ms"),
        "data_sha256": [x for x in shas if x],
    }


def diff_runs(a: RunRecord, b: RunRecord) -> dict[str, Any]:
    """The differences between two runs: per step (status, rows, `data_sha256`, duration) and versions."""
    a_steps = {str(s.get("id")): s for s in a.steps}
    b_steps = {str(s.get("id")): s for s in b.steps}
    order = list(a_steps) + [s for s in b_steps if s not in a_steps]
    steps = []
    for sid in order:
        va, vb = _step_view(a_steps.get(sid)), _step_view(b_steps.get(sid))
        row: dict[str, Any] = {"id": sid, "a": va, "b": vb}
        if va is None or vb is None:
            row.update(same_status=False, same_rows=False, same_data=False, duration_change_pct=None)
        else:
            row["same_status"] = va["status"] == vb["status"]
            row["same_rows"] = (va["rows_in"], va["rows_out"]) == (vb["rows_in"], vb["rows_out"])
            row["same_data"] = va["data_sha256"] == vb["data_sha256"] and row["same_rows"]
            da, db = va["duration_ms"], vb["duration_ms"]
            row["duration_change_pct"] = (
                round((db - da) / da * 100, 1)
                if isinstance(da, (int, float)) and isinstance(db, (int, float)) and da
                else None
            )
        steps.append(row)
    va, vb = _versions(a), _versions(b)
    versions = [
        {"name": k, "a": va.get(k), "b": vb.get(k), "same": va.get(k) == vb.get(k)}
        for k in list(va) + [k for k in vb if k not in va]
    ]
    same_data = all(r["same_data"] and r["same_status"] for r in steps)
    return {
        "a": {"run_id": a.run_id, "pipeline": a.pipeline, "status": a.status, "duration_ms": a.duration_ms},
        "b": {"run_id": b.run_id, "pipeline": b.pipeline, "status": b.status, "duration_ms": b.duration_ms},
        "same_pipeline": a.pipeline == b.pipeline,
        "same_data": same_data,
        "versions": versions,
        "steps": steps,
    }


def _pair(a: Any, b: Any, fmt: Any = str) -> str:
    fa, fb = ("-" if a is None else fmt(a)), ("-" if b is None else fmt(b))
    return fa if fa == fb else f"{fa} -> {fb}"


@runs_group.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--exit-code", is_flag=True, help="Exit 1 when the runs differ in status, rows or data_sha256.")
@_runs_dir_option
@_json_option
def diff_command(run_a: str, run_b: str, exit_code: bool, runs_dir: str, as_json: bool) -> None:
    """Compare two runs: per step status, rows, data_sha256 and duration, and every version and hash."""
    a = resolve_run(Path(runs_dir), run_a)
    b = resolve_run(Path(runs_dir), run_b)
    data = diff_runs(a, b)
    if as_json:
        _echo_json(data)
    else:
        click.echo(f"A  {a.ref}  {a.status}  {_dur(a.duration_ms)}")
        click.echo(f"B  {b.ref}  {b.status}  {_dur(b.duration_ms)}")
        if not data["same_pipeline"]:
            click.echo("note: the two runs are of different pipelines")
        rows = []
        for r in data["steps"]:
            va, vb = r["a"] or {}, r["b"] or {}
            if r["a"] is None or r["b"] is None:
                verdict = "only in A" if r["b"] is None else "only in B"
            elif not r["same_status"]:
                verdict = "status differs"
            elif not r["same_rows"]:
                verdict = "rows differ"
            elif not r["same_data"]:
                verdict = "data differs"
            else:
                verdict = "same"
            change = r["duration_change_pct"]
            rows.append(
                (
                    r["id"],
                    _pair(va.get("status"), vb.get("status")),
                    _pair(va.get("rows_in"), vb.get("rows_in"), _int),
                    _pair(va.get("rows_out"), vb.get("rows_out"), _int),
                    _pair(va.get("duration_ms"), vb.get("duration_ms"), _dur)
                    + (f" ({change:+.0f}%)" if change is not None else ""),
                    verdict,
                )
            )
        click.echo("")
        click.echo(_table(("STEP", "STATUS", "ROWS IN", "ROWS OUT", "TIME", "DATA"), rows, right=set()))
        changed = [v for v in data["versions"] if not v["same"]]
        click.echo("")
        if changed:
            click.echo("versions and hashes that differ:")
            for v in changed:
                click.echo(f"  {v['name']}: {v['a'] or '-'} -> {v['b'] or '-'}")
        else:
            click.echo("versions and hashes: the same")
        click.echo(f"data: {'the same' if data['same_data'] else 'differs'}")
    if exit_code and not data["same_data"]:
        click.get_current_context().exit(1)


@runs_group.command("prune")
@click.argument("pipeline", required=False)
@click.option("--keep", type=click.IntRange(min=1), help="Keep the newest N runs of each pipeline; delete the rest.")
@click.option("--older-than", metavar="DURATION", help="Delete runs that started longer ago than this (30d, 12h, 2w).")
@click.option(
    "--keep-data", type=click.IntRange(min=0), help="Keep data artifacts of the newest N runs only (diagnostics stay)."
)
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@_runs_dir_option
@_json_option
def prune_command(
    pipeline: str | None,
    keep: int | None,
    older_than: str | None,
    keep_data: int | None,
    dry_run: bool,
    runs_dir: str,
    as_json: bool,
) -> None:
    """Delete old runs, or only their data artifacts; a run that is still running is never touched.

    With --keep and --older-than, a run is deleted only when both say so. With no rule, the retention
    setting from the environment is applied (OSIRIS_RUNS_KEEP, OSIRIS_RUNS_MAX_AGE, OSIRIS_RUNS_KEEP_DATA).
    """
    policy = Policy(
        keep=keep,
        older_than=parse_duration(older_than, where="`--older-than`") if older_than is not None else None,
        keep_data=keep_data,
    )
    if policy.empty:
        policy = policy_from_env()
        if policy.empty:
            raise click.UsageError(
                f"give --keep N, --older-than DURATION or --keep-data N (or set {ENV_KEEP}, {ENV_MAX_AGE} or "
                f"{ENV_KEEP_DATA})"
            )
    result = prune(Path(runs_dir), policy, pipeline=pipeline, dry_run=dry_run)
    if as_json:
        _echo_json(result.to_data())
    else:
        verb = "would delete" if dry_run else "deleted"
        for d in result.deleted:
            click.echo(f"{verb} run {d['pipeline']}/{d['run_id']} ({format_bytes(d['bytes'])})")
        verb_d = "would remove" if dry_run else "removed"
        for d in result.data_removed:
            click.echo(
                f"{verb_d} data of {d['pipeline']}/{d['run_id']}: {len(d['files'])} files ({format_bytes(d['bytes'])})"
            )
        for s in result.skipped:
            click.echo(f"skipped {s['pipeline']}/{s['run_id']}: {s['reason']}")
        for e in result.errors:
            click.echo(f"error: {e}", err=True)
        total = format_bytes(result.freed_bytes)
        click.echo(
            f"{policy.describe()}: {len(result.deleted)} runs {verb}, data of {len(result.data_removed)} runs "
            f"{verb_d}, {len(result.plan.kept)} kept as they are, {total} {'would be ' if dry_run else ''}freed"
        )
    if result.errors:
        click.get_current_context().exit(1)


@runs_group.command("report")
@click.argument("run_id")
@click.option(
    "-o",
    "--out",
    type=click.Path(),
    help="Where to write the HTML (a file or folder; default: report.html in the run).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the report in the default web browser.")
@_runs_dir_option
@_json_option
def report_command(run_id: str, out: str | None, open_browser: bool, runs_dir: str, as_json: bool) -> None:
    """Write one self-contained HTML report of a run (viewable offline: no network access needed)."""
    from osiris.runtime.report import write_report

    run = resolve_run(Path(runs_dir), run_id)
    try:
        path = write_report(run, Path(out) if out else None)
    except OSError as exc:
        raise UserInputError(f"Cannot write the report to `{out or run.path}`: {exc}") from None
    opened = None
    if open_browser:
        import webbrowser

        opened = webbrowser.open(path.resolve().as_uri())
    if as_json:
        _echo_json(
            {
                "run_id": run.run_id,
                "pipeline": run.pipeline,
                "status": run.status,
                "report": str(path),
                "opened": opened,
            }
        )
    else:
        click.echo(f"report: {path}")
        if open_browser and not opened:
            click.echo("warning: no web browser could be started; open the file yourself", err=True)
