"""`osiris run` and `osiris connections list|doctor`."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from osiris.core.cli_types import Folder, positive_seconds, refuse_unused
from osiris.core.errors import OsirisError, TerminalError, UserInputError
from osiris.runtime.runcard import RunResult
from osiris.runtime.runlog import RunListener


def _verbose(ctx: click.Context, flag: bool) -> bool:
    root = ctx.find_root().obj or {}
    return bool(flag or root.get("verbose") or os.environ.get("OSIRIS_DEBUG"))


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


@click.command("run")
@click.argument("target", required=False, type=click.Path(dir_okay=False))
@click.option("--last-compile", is_flag=True, help="Run the newest compile (build/.last_compile.json).")
@click.option(
    "--build-dir",
    default="build",
    show_default=True,
    type=Folder(writable=False),
    help="Where pipelines are compiled to (and --last-compile looks).",
)
@click.option("--runs-dir", default="runs", show_default=True, type=Folder(), help="Where run directories are created.")
@click.option("--connections", type=click.Path(dir_okay=False), help="The osiris_connections.yaml to use.")
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="Pipeline param when compiling.")
@click.option("--json", "as_json", is_flag=True, help="Print the run result as JSON (no progress display).")
@click.option("--verbose", "verbose_flag", is_flag=True, help="Show tracebacks of failures.")
@click.option("--no-progress", is_flag=True, help="No live progress display even on a terminal.")
@click.option(
    "--max-parallel",
    type=click.IntRange(min=1),
    metavar="N",
    help="Run at most N independent steps at once (default: the machine's cores).",
)
@click.option("--resume", metavar="RUN_ID", help="Rerun only the failed and not-run steps of RUN_ID (same manifest).")
@click.option("--sandbox", "sandbox", metavar="NAME", help="Run in a sandbox plugin (`e2b`, `local`...).")
@click.option("--e2b", is_flag=True, help="Same as `--sandbox e2b`.")
@click.option("--e2b-cpu", type=click.IntRange(min=1), help="Sandbox CPUs.")
@click.option("--e2b-mem", type=click.IntRange(min=1), metavar="MB", help="Sandbox memory in MB.")
@click.option("--e2b-timeout", type=positive_seconds(), metavar="SECONDS", help="Sandbox timeout.")
@click.option("--e2b-template", metavar="NAME", help="Sandbox template.")
@click.option("--e2b-install-deps", is_flag=True, help="Install the manifest's driver distributions in the sandbox.")
@click.option("--e2b-env", multiple=True, metavar="K=V", help="Set an environment variable in the sandbox.")
@click.option("--e2b-pass-env", multiple=True, metavar="NAME", help="Pass a host environment variable through.")
@click.option("--download-data", is_flag=True, help="Download data artifacts from the sandbox.")
@click.option(
    "--index-url",
    metavar="URL",
    help="Package index for the osiris wheels a sandbox needs and the host has no copy of "
    "(default: $OSIRIS_INDEX_URL, then pip's index-url).",
)
@click.option(
    "--artifact-max-mb", type=click.FloatRange(min=0), help="Download data artifacts under this size (default 5)."
)
@click.option(
    "--full-refresh",
    is_flag=True,
    help="Incremental steps ignore their watermark once: the destination is replaced and the watermark set anew.",
)
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
    max_parallel: int | None,
    resume: str | None,
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
    index_url: str | None,
    artifact_max_mb: float | None,
    full_refresh: bool,
) -> None:
    """Run TARGET: a pipeline (compiled first), a compiled manifest.yaml, or --last-compile."""
    verbose = _verbose(ctx, verbose_flag)
    if (target and last_compile) or not (target or last_compile or resume):
        raise click.UsageError("give a PIPELINE.yaml or a manifest.yaml, or --last-compile (one of them)")
    if target and not Path(target).is_file():
        raise UserInputError(f"`{target}` not found")
    if e2b and sandbox and sandbox != "e2b":
        raise click.UsageError(f"`--e2b` and `--sandbox {sandbox}` contradict each other")
    sandbox_name = "e2b" if e2b else sandbox
    if not sandbox_name:
        refuse_unused(
            ctx,
            "without a sandbox (add `--sandbox NAME` or `--e2b`)",
            "e2b_cpu",
            "e2b_mem",
            "e2b_timeout",
            "e2b_template",
            "e2b_install_deps",
            "e2b_env",
            "e2b_pass_env",
            "download_data",
            "artifact_max_mb",
        )
    from osiris.runtime.retention import after_run_hook, policy_from_env

    retention = policy_from_env()  # a bad retention setting is an error before anything runs

    from osiris.core.build import is_manifest_document
    from osiris.core.build import last_compile as last_compile_manifest

    previous: tuple[Path, dict[str, Any]] | None = None
    if resume:
        from osiris.runtime.resume import build_for, previous_run

        previous = previous_run(Path(runs_dir), resume)
    if previous is not None and not (target or last_compile):
        manifest_path = build_for(previous[0], Path(build_dir))
    elif last_compile:
        refuse_unused(ctx, "with `--last-compile`: the newest compile is run as it was compiled", "params")
        manifest_path = last_compile_manifest(build_dir)
    elif is_manifest_document(target):  # type: ignore[arg-type]
        refuse_unused(ctx, f"when running a compiled manifest (`{target}`): params are set when compiling", "params")
        refuse_unused(
            ctx, f"when running a compiled manifest (`{target}`): it is where pipelines are compiled to", "build_dir"
        )
        manifest_path = Path(target)  # type: ignore[arg-type]
    else:
        build_param = next(p for p in ctx.command.params if p.name == "build_dir")
        build_dir = Folder().convert(build_dir, build_param, ctx)  # compiling writes there
        manifest_path = _compile_first(target, params, connections, build_dir)  # type: ignore[arg-type]
    ctx.call_on_close(after_run_hook(Path(runs_dir), manifest_path, retention))  # `osiris runs` retention

    from osiris.runtime.console import print_report
    from osiris.runtime.display import DisplayListener, make_display

    # Live rows on a terminal, plain lines otherwise (stderr); nothing with --json or --no-progress.
    display = None if (as_json or no_progress) else make_display(sys.stderr)
    listeners = [DisplayListener(display)] if display is not None else []
    if display is not None:
        ctx.call_on_close(display.close)  # whatever happens, the terminal gets its cursor back
    from osiris.runtime.interrupts import handle_signals

    # SIGINT / SIGTERM stop the run cleanly (run card `interrupted`, exit 130 / 143); a second one forces the exit.
    ctx.with_resource(handle_signals(announce=not as_json))

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
            full_refresh=full_refresh,
            max_parallel=max_parallel,
            index_url=index_url,
        )
        if previous is not None:
            raise UserInputError("`--resume` runs on the host for now; leave out `--sandbox`/`--e2b`")
        plugin = load_sandbox_plugin(sandbox_name)
        result = plugin(
            manifest_path,
            options,
            connections_file=Path(connections) if connections else None,
            runs_dir=Path(runs_dir),
            listeners=listeners,
        )
        if not isinstance(result, RunResult):
            raise TerminalError(
                f"Sandbox plugin `{sandbox_name}` returned `{type(result).__name__}`; expected a `RunResult` "
                "(see osiris.runtime.sandbox_api.SandboxPlugin)"
            )
    else:
        result = run_on_host(
            manifest_path,
            runs_dir=Path(runs_dir),
            connections_file=connections,
            listeners=listeners,
            full_refresh=full_refresh,
            max_parallel=max_parallel,
            resume_from=previous,
        )
    if display is not None:
        display.close()
    print_report(result, as_json=as_json, verbose=verbose)
    ctx.exit(result.exit_code)


def run_on_host(
    manifest_path: Path,
    *,
    runs_dir: Path,
    connections_file: str | Path | None = None,
    listeners: Iterable[RunListener] = (),
    full_refresh: bool = False,
    max_parallel: int | None = None,
    resume_from: tuple[Path, dict[str, Any]] | None = None,
) -> RunResult:
    """Run a compiled manifest on this machine; returns the result (nothing is printed).

    `resume_from` is an earlier run (its directory and run card) of the same manifest whose succeeded
    steps are reused (`osiris.runtime.resume`); a different manifest is refused before anything runs.
    """
    from osiris.core.build import load_build
    from osiris.runtime.runner import Runner
    from osiris.runtime.session import RunSession

    build = load_build(manifest_path)
    if resume_from is not None:
        from osiris.runtime.resume import check_same_manifest

        check_same_manifest(resume_from[0], build.manifest.fingerprints.manifest)
    session = RunSession.for_build(
        build,
        runs_dir=runs_dir,
        connections_file=connections_file,
        listeners=listeners,
        full_refresh=full_refresh,
    )
    runner = Runner(session)
    if resume_from is None:
        return runner.run(max_parallel=max_parallel)
    from osiris.core.errors import OsirisError
    from osiris.runtime.resume import reuse_succeeded

    try:
        runner.prepare()
    except OsirisError as exc:
        return runner.finish(error=exc)
    session.emit("run_resumed", from_run=resume_from[0].name)
    reuse_succeeded(runner, resume_from[0], resume_from[1])
    runner.run_steps(max_parallel=max_parallel)
    return runner.finish()


# -- connections ---------------------------------------------------------------------------------


@click.group("connections")
def connections_group() -> None:
    """List and check the connections in osiris_connections.yaml."""


def _load_conns(connections: str | None) -> tuple[Path, dict[str, dict[str, dict[str, Any]]]]:
    from osiris.core.connections import find_connections_file, load_connections
    from osiris.runtime.resolve import check_connections, raise_connection_errors

    path = find_connections_file(connections)
    if path is None:
        raise UserInputError(
            "No osiris_connections.yaml found (looked at --connections, $OSIRIS_HOME and the current directory)"
        )
    conns = load_connections(path)
    if check_connections is not None:
        raise_connection_errors(check_connections(conns, _family_schemas()), str(path))
    return path, conns


def _family_schemas() -> dict[str, Any]:
    """Each connection family's schema, from the first installed component that declares it."""
    from osiris.core.discovery import ComponentRegistry
    from osiris.runtime.resolve import ConnectionSchema

    schemas: dict[str, Any] = {}
    for comp in ComponentRegistry.discover().all():
        info = comp.spec.x_connection
        if info is not None and info.schema and info.family not in schemas:
            schemas[info.family] = ConnectionSchema.of(info.schema, comp.spec.secrets)
    return schemas


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
@click.option("--timeout", type=positive_seconds(), default=10.0, show_default=True, help="Seconds per connection.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def doctor_connections(connections: str | None, family: str | None, timeout: float, as_json: bool) -> None:
    """Connect for real to every connection and say why one fails.

    Exit code 2 when a connection is misconfigured (a missing variable, a bad field), else 1 when any
    connection fails."""
    from osiris.core.redaction import Redactor
    from osiris.runtime.registry import load_object
    from osiris.runtime.resolve import resolve_connection, step_secrets

    path, conns = _load_conns(connections)
    if family and family not in conns:
        raise UserInputError(
            f"`--family {family}`: no connections of that family in `{path}`; families: "
            f"{', '.join(sorted(conns)) or 'none'}"
        )
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
                if isinstance(exc, UserInputError):
                    entry["input_error"] = True  # the connection is misconfigured: nothing was tried
            entry["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
            results.append(redactor.redact(entry))
    if as_json:
        click.echo(json.dumps({"file": str(path), "results": results}, indent=2, default=str))
    else:
        click.echo(f"# {path}")
        for r in results:
            state = {True: "ok  ", False: "FAIL", None: "skip"}[r["ok"]]
            click.echo(f"{state}  @{r['family']}.{r['alias']}  {r.get('message', '')}")
    misconfigured = [f"@{r['family']}.{r['alias']}" for r in results if r.get("input_error")]
    if misconfigured:
        click.echo(f"error: misconfigured, not tried: {', '.join(misconfigured)} (see above)", err=True)
        click.get_current_context().exit(UserInputError.exit_code)
    if any(r["ok"] is False for r in results):
        click.get_current_context().exit(1)
