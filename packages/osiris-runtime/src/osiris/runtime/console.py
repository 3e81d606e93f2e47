"""What `osiris run` prints on the console at the end of a run (the live display is `osiris.runtime.display`).

Only the CLI prints; a run (on the host or in a sandbox) returns a `RunResult` and the
same report is made of it wherever it ran: a table of the steps, where the run dir and
the run card are, and the error (with its hint); `--json` prints the same as data.
"""

from __future__ import annotations

import json
from typing import Any

import click

from osiris.core.errors import ErrorInfo
from osiris.runtime.runcard import RunResult


def summary_table(run: RunResult) -> str:
    """The steps of a run as an aligned table: step, component, status, rows in and out, time."""
    header = ("STEP", "COMPONENT", "STATUS", "ROWS IN", "ROWS OUT", "TIME")
    rows = [
        (
            s.step_id,
            s.component,
            f"{s.status} (reused)" if s.reused_from else s.status,
            f"{s.rows_in:,}",
            f"{s.rows_out:,}",
            f"{s.duration_ms / 1000:.2f}s" if s.status not in ("not_run", "skipped") and not s.reused_from else "-",
        )
        for s in run.steps
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    right = {3, 4, 5}
    lines = []
    for r in [header, *rows]:
        cells = [r[i].rjust(widths[i]) if i in right else r[i].ljust(widths[i]) for i in range(len(header))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def result_data(result: RunResult) -> dict[str, Any]:
    """The result as `osiris run --json` prints it (a sandboxed run adds its `sandbox` section)."""
    data: dict[str, Any] = {
        "status": result.status,
        "exit_code": result.exit_code,
        "run_id": result.run_id,
        "run_dir": str(result.run_dir),
        "run_card": str(result.run_dir / "run_card.json"),
        "error": result.error,
        "steps": result.run_card.get("steps", []),
    }
    if result.sandbox is not None:
        data["sandbox"] = result.sandbox
    if result.diagnostics_incomplete:
        data["diagnostics_incomplete"] = result.diagnostics_incomplete
    return data


def warn_diagnostics(result: RunResult) -> None:
    """Say on stderr which diagnostics could not be written (the run's status and exit code stand)."""
    if not result.diagnostics_incomplete:
        return
    click.echo(
        f"warning: the run {result.status} (exit code {result.exit_code} stands), but its diagnostics are incomplete:",
        err=True,
    )
    for line in result.diagnostics_incomplete:
        click.echo(f"warning:   {line}", err=True)


def print_report(result: RunResult, *, as_json: bool, verbose: bool) -> None:
    """Print the outcome of a run: as JSON on stdout, or the table and where things are (errors on stderr)."""
    warn_diagnostics(result)
    if as_json:
        click.echo(json.dumps(result_data(result), indent=2))
        return
    sandbox = result.sandbox
    where = f" in sandbox `{sandbox.get('name', '?')}`" if sandbox is not None else ""
    click.echo(summary_table(result))
    click.echo(f"run {result.status} in {result.duration_ms / 1000:.2f}s{where}: {result.run_dir}")
    click.echo(f"  run card  {result.run_dir / 'run_card.json'}")
    if sandbox is not None:
        t = sandbox.get("timings") or {}
        phases = ("layer", "environment", "install", "registration")
        click.echo("  bootstrap " + ", ".join(f"{k} {t[k]:.2f}s" for k in phases if k in t))
    for step in result.steps:
        for fact_key in ("path", "table"):
            if step.status == "succeeded" and step.facts.get(fact_key):
                click.echo(f"  output    {step.step_id}: {step.facts[fact_key]}")
    failed_ids = [s.step_id for s in result.steps if s.status == "failed"]
    skipped = [s for s in result.steps if s.status == "skipped"]
    if len(failed_ids) > 1 or skipped:
        click.echo(f"  failed    {', '.join(failed_ids)}")
    if skipped:
        click.echo(f"  skipped   {', '.join(s.step_id for s in skipped)} (an upstream step failed)")
    if result.status != "succeeded":
        failed = result.failed_step
        message = str(ErrorInfo.from_data(result.error)) if result.error else "unknown error"
        where = f"step `{failed.step_id}` failed: " if failed else ""
        if verbose and failed is not None and failed.traceback:
            click.echo(failed.traceback, err=True)
        click.echo(f"error: {where}{message}", err=True)
