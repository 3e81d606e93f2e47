"""`osiris run` and `osiris connections list|doctor`."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from osiris.core.errors import OsirisError, UserInputError
from osiris.runtime.runner import RunListener

LAST_COMPILE = ".last_compile.json"


def _verbose(ctx: click.Context, flag: bool) -> bool:
    root = ctx.find_root().obj or {}
    return bool(flag or root.get("verbose") or os.environ.get("OSIRIS_DEBUG"))


def _last_compile_manifest(build_dir: str) -> Path:
    pointer = Path(build_dir) / LAST_COMPILE
    try:
        info = json.loads(pointer.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserInputError(f"No compile found: `{pointer}` does not exist; run `osiris compile` first") from None
    except json.JSONDecodeError as exc:
        raise UserInputError(f"`{pointer}` is not valid JSON ({exc}); compile again") from None
    manifest = Path(str(info.get("manifest", "")))
    if not manifest.is_file():
        raise UserInputError(f"The newest compile's manifest `{manifest}` no longer exists; compile again")
    return manifest


def _compile_first(pipeline: str, params: tuple[str, ...], connections: str | None, build_dir: str) -> Path:
    try:
        from osiris.compiler.compiler import compile_to_build
        from osiris.compiler.params import parse_param_args
    except ImportError:
        raise UserInputError(
            f"`{pipeline}` is a pipeline (OML) and compiling needs `osiris-compiler`, which is not installed",
            hint="install osiris-compiler, or run a compiled manifest: `osiris run build/<pipeline>/<id>/manifest.yaml`",
        ) from None
    out = compile_to_build(
        pipeline, build_dir, param_overrides=parse_param_args(list(params)), connections_file=connections
    )
    for w in out.compiled.warnings:
        click.echo(f"warning: {w}", err=True)
    return out.manifest_path


class ProgressDisplay(RunListener):
    """Live rows and rows/s per step on a terminal (stderr); used only when stderr is a TTY."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self._last = 0.0

    def on_event(self, record: dict[str, Any]) -> None:
        """Print a line when a step starts, completes or fails."""
        name, step = record.get("event"), record.get("step_id")
        if name == "step_start":
            self._write(f"  {step}: running ({record.get('component')})")
        elif name == "step_complete":
            rows, ms = record.get("rows_out", 0), record.get("duration_ms", 0)
            self._write(f"  {step}: done, {rows:,} rows in {ms / 1000:.2f} s", end="\n")
        elif name == "step_failed":
            self._write(f"  {step}: FAILED", end="\n")

    def on_metric(self, record: dict[str, Any]) -> None:
        """Metrics are not displayed live."""

    def on_progress(self, step_id: str, rows: int, elapsed_s: float) -> None:
        """Redraw the step's line at most ten times a second."""
        now = time.monotonic()
        if now - self._last < 0.1:
            return
        self._last = now
        rate = rows / elapsed_s if elapsed_s > 0 else 0.0
        self._write(f"  {step_id}: {rows:,} rows, {rate:,.0f} rows/s")

    def _write(self, text: str, end: str = "") -> None:
        self.stream.write("\r\033[K" + text + end)
        self.stream.flush()


def _summary_table(run: Any) -> str:
    header = ("STEP", "COMPONENT", "STATUS", "ROWS IN", "ROWS OUT", "TIME")
    rows = [
        (
            s.step_id,
            s.component,
            s.status,
            f"{s.rows_in:,}",
            f"{s.rows_out:,}",
            f"{s.duration_ms / 1000:.2f}s" if s.status != "not_run" else "-",
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


@click.command("run")
@click.argument("target", required=False, type=click.Path(dir_okay=False))
@click.option("--last-compile", is_flag=True, help="Run the newest compile (build/.last_compile.json).")
@click.option("--build-dir", default="build", show_default=True, help="Where pipelines are compiled to.")
@click.option("--runs-dir", default="runs", show_default=True, help="Where run directories are created.")
@click.option("--connections", type=click.Path(dir_okay=False), help="The osiris_connections.yaml to use.")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="Pipeline param when compiling.")
@click.option("--json", "as_json", is_flag=True, help="Print the run result as JSON (no progress display).")
@click.option("--verbose", "verbose_flag", is_flag=True, help="Show tracebacks of failures.")
@click.option("--no-progress", is_flag=True, help="No live progress display even on a terminal.")
@click.option("--sandbox", "sandbox", metavar="NAME", help="Run in a sandbox plugin (`e2b`, `local`...).")
@click.option("--e2b", is_flag=True, help="Same as `--sandbox e2b`.")
@click.option("--e2b-cpu", type=int, help="Sandbox CPUs.")
@click.option("--e2b-mem", type=int, metavar="MB", help="Sandbox memory in MB.")
@click.option("--e2b-timeout", type=float, metavar="SECONDS", help="Sandbox timeout.")
@click.option("--e2b-template", metavar="NAME", help="Sandbox template.")
@click.option("--e2b-install-deps", is_flag=True, help="Install the manifest's driver distributions in the sandbox.")
@click.option("--e2b-env", multiple=True, metavar="K=V", help="Set an environment variable in the sandbox.")
@click.option("--e2b-pass-env", multiple=True, metavar="NAME", help="Pass a host environment variable through.")
@click.option("--download-data", is_flag=True, help="Download data artifacts from the sandbox.")
@click.option("--artifact-max-mb", type=float, help="Download data artifacts under this size (default 5).")
@click.pass_context
def run_command(
    ctx: click.Context,
    target: str | None,
    last_compile: bool,
    build_dir: str,
    runs_dir: str,
    connections: str | None,
    params: tuple[str, ...],
    as_json: bool,
    verbose_flag: bool,
    no_progress: bool,
    sandbox: str | None,
    e2b: bool,
    e2b_cpu: int | None,
    e2b_mem: int | None,
    e2b_timeout: float | None,
    e2b_template: str | None,
    e2b_install_deps: bool,
    e2b_env: tuple[str, ...],
    e2b_pass_env: tuple[str, ...],
    download_data: bool,
    artifact_max_mb: float | None,
) -> None:
    """Run TARGET: a pipeline (compiled first), a compiled manifest.yaml, or --last-compile."""
    verbose = _verbose(ctx, verbose_flag)
    if bool(target) == bool(last_compile):
        raise click.UsageError("give a PIPELINE.yaml or a manifest.yaml, or --last-compile (one of them)")
    if target and not Path(target).is_file():
        raise UserInputError(f"`{target}` not found")
    if e2b and sandbox and sandbox != "e2b":
        raise click.UsageError(f"`--e2b` and `--sandbox {sandbox}` contradict each other")
    sandbox_name = "e2b" if e2b else sandbox
    from osiris.runtime.retention import after_run_hook, policy_from_env

    retention = policy_from_env()  # a bad retention setting is an error before anything runs

    from osiris.runtime.runner import is_manifest_document

    if last_compile:
        manifest_path = _last_compile_manifest(build_dir)
    elif is_manifest_document(target):  # type: ignore[arg-type]
        manifest_path = Path(target)  # type: ignore[arg-type]
    else:
        manifest_path = _compile_first(target, params, connections, build_dir)  # type: ignore[arg-type]
    ctx.call_on_close(after_run_hook(Path(runs_dir), manifest_path, retention))  # `osiris runs` retention

    if sandbox_name:
        from osiris.runtime.sandbox_api import (
            SandboxOptions,
            default_artifact_max_mb,
            load_sandbox_plugin,
            parse_env_pairs,
        )

        options = SandboxOptions(
            name=sandbox_name,
            cpu=e2b_cpu,
            memory_mb=e2b_mem,
            timeout_s=e2b_timeout,
            template=e2b_template,
            install_deps=e2b_install_deps,
            env=parse_env_pairs(e2b_env),
            pass_env=list(e2b_pass_env),
            download_data=download_data or os.environ.get("E2B_DOWNLOAD_DATA_ARTIFACTS") == "1",
            artifact_max_mb=artifact_max_mb if artifact_max_mb is not None else default_artifact_max_mb(),
        )
        plugin = load_sandbox_plugin(sandbox_name)
        code = plugin(
            manifest_path,
            options,
            connections_file=Path(connections) if connections else None,
            runs_dir=Path(runs_dir),
            verbose=verbose,
            json_output=as_json,
        )
        ctx.exit(int(code))
        return

    code = run_on_host(
        manifest_path,
        runs_dir=Path(runs_dir),
        connections_file=connections,
        as_json=as_json,
        verbose=verbose,
        progress=not no_progress and not as_json and sys.stderr.isatty(),
    )
    ctx.exit(code)


def run_on_host(
    manifest_path: Path,
    *,
    runs_dir: Path,
    connections_file: str | None,
    as_json: bool,
    verbose: bool,
    progress: bool,
) -> int:
    """Run a compiled manifest on this machine, print the summary, return the exit code."""
    from osiris.runtime.resolve import load_connections_for_run
    from osiris.runtime.runner import Runner, load_build, manifest_components, new_run_id, resolve_configs

    manifest, text, cfgs = load_build(manifest_path)
    components = manifest_components(manifest)
    run_id = new_run_id()
    run_dir = runs_dir / manifest.pipeline.name / run_id
    listeners = [ProgressDisplay()] if progress else []
    try:
        conns = None
        if any(getattr(c, "spec", c).x_connection for c in components.values()):
            conns = load_connections_for_run(connections_file)
        configs = resolve_configs(manifest, cfgs, components, conns)
        error: OsirisError | None = None
    except OsirisError as exc:
        configs, error = {s.id: {} for s in manifest.steps}, exc
    runner = Runner(
        manifest, configs, run_dir, components=components, listeners=listeners, run_id=run_id, manifest_text=text
    )
    if error is not None:
        runner.prepare_dir_only()
        runner.emit("run_start", pipeline=manifest.pipeline.name, manifest_fingerprint=manifest.fingerprints.manifest)
        result = runner.finish(error=error)
    else:
        result = runner.run()
    _report(result, as_json=as_json, verbose=verbose)
    return result.exit_code


def _report(result: Any, *, as_json: bool, verbose: bool) -> None:
    card = result.run_card
    if as_json:
        click.echo(
            json.dumps(
                {
                    "status": result.status,
                    "exit_code": result.exit_code,
                    "run_id": result.run_id,
                    "run_dir": str(result.run_dir),
                    "run_card": str(result.run_dir / "run_card.json"),
                    "error": result.error,
                    "steps": card["steps"],
                },
                indent=2,
            )
        )
        return
    click.echo(_summary_table(result))
    click.echo(f"run {result.status} in {result.duration_ms / 1000:.2f}s: {result.run_dir}")
    click.echo(f"  run card  {result.run_dir / 'run_card.json'}")
    for step in result.steps:
        for fact_key in ("path", "table"):
            if step.status == "succeeded" and step.facts.get(fact_key):
                click.echo(f"  output    {step.step_id}: {step.facts[fact_key]}")
    if result.status != "succeeded":
        failed = result.failed_step
        message = (result.error or {}).get("message", "unknown error")
        where = f"step `{failed.step_id}` failed: " if failed else ""
        if verbose and failed is not None and failed.traceback:
            click.echo(failed.traceback, err=True)
        click.echo(f"error: {where}{message}", err=True)


# -- connections ---------------------------------------------------------------------------------


@click.group("connections")
def connections_group() -> None:
    """List and check the connections in osiris_connections.yaml."""


def _load_conns(connections: str | None) -> tuple[Path, dict[str, dict[str, dict[str, Any]]]]:
    from osiris.core.connections import find_connections_file, load_connections

    path = find_connections_file(connections)
    if path is None:
        raise UserInputError(
            "No osiris_connections.yaml found (looked at --connections, $OSIRIS_HOME and the current directory)"
        )
    return path, load_connections(path)


def _masked_fields(fields: dict[str, Any]) -> dict[str, Any]:
    from osiris.core.redaction import Redactor, is_secret_key

    redactor = Redactor()
    out = {}
    for k, v in fields.items():
        literal_secret = is_secret_key(k) and isinstance(v, str) and not (v.startswith("${") and v.endswith("}"))
        out[k] = redactor.mask if literal_secret else redactor.redact(v)
    return out


@connections_group.command("list")
@click.option("--connections", type=click.Path(dir_okay=False), help="The osiris_connections.yaml to use.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def list_connections(connections: str | None, as_json: bool) -> None:
    """List every connection (secrets masked, `${VAR}` references shown as written)."""
    from osiris.core.connections import select_alias

    path, conns = _load_conns(connections)
    rows = []
    for family in sorted(conns):
        try:
            default = select_alias(conns, family, None)
        except OsirisError:
            default = None
        for alias in sorted(conns[family]):
            fields = {k: v for k, v in conns[family][alias].items() if k != "default"}
            rows.append(
                {"family": family, "alias": alias, "default": alias == default, "fields": _masked_fields(fields)}
            )
    if as_json:
        click.echo(json.dumps({"file": str(path), "connections": rows}, indent=2))
        return
    click.echo(f"# {path}")
    for r in rows:
        mark = " (default)" if r["default"] else ""
        shown = ", ".join(f"{k}={v}" for k, v in r["fields"].items())
        click.echo(f"@{r['family']}.{r['alias']}{mark}  {shown}")


def _doctor_function(family: str) -> tuple[Any, dict[str, Any]] | None:
    from osiris.core.discovery import ComponentRegistry

    schema: dict[str, Any] = {}
    for comp in ComponentRegistry.discover().all():
        info = comp.spec.x_connection
        if info is not None and info.family == family:
            schema = schema or info.schema
            if info.doctor:
                return info.doctor, info.schema
    return (None, schema) if schema else None


@connections_group.command("doctor")
@click.option("--connections", type=click.Path(dir_okay=False), help="The osiris_connections.yaml to use.")
@click.option("--family", help="Check only this family.")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds per connection.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def doctor_connections(connections: str | None, family: str | None, timeout: float, as_json: bool) -> None:
    """Connect for real to every connection and say why one fails; exit code 1 when any fails."""
    from osiris.core.redaction import Redactor
    from osiris.runtime.registry import load_object
    from osiris.runtime.resolve import resolve_connection, step_secrets

    path, conns = _load_conns(connections)
    results = []
    for fam in sorted(conns):
        if family and fam != family:
            continue
        found = _doctor_function(fam)
        for alias in sorted(conns[fam]):
            entry: dict[str, Any] = {"family": fam, "alias": alias}
            redactor = Redactor()
            started = time.perf_counter()
            try:
                _, fields = resolve_connection(conns, fam, alias, schema=found[1] if found else None)
                for v in step_secrets({"resolved_connection": fields}, None):
                    redactor.add(v)
                if not found or not found[0]:
                    entry.update(ok=None, message="no check available for this family")
                else:
                    fn = load_object(found[0])
                    out = fn(fields, timeout)
                    entry.update({k: v for k, v in dict(out).items()})
                    entry["ok"] = bool(out.get("ok"))
            except Exception as exc:
                entry.update(
                    ok=False, message=str(exc) if isinstance(exc, OsirisError) else f"{type(exc).__name__}: {exc}"
                )
            entry["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
            results.append(redactor.redact(entry))
    if as_json:
        click.echo(json.dumps({"file": str(path), "results": results}, indent=2, default=str))
    else:
        click.echo(f"# {path}")
        for r in results:
            state = {True: "ok  ", False: "FAIL", None: "skip"}[r["ok"]]
            click.echo(f"{state}  @{r['family']}.{r['alias']}  {r.get('message', '')}")
    if any(r["ok"] is False for r in results):
        click.get_current_context().exit(1)
