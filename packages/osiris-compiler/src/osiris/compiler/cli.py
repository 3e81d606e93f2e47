"""`osiris compile` and `osiris validate`."""

from __future__ import annotations

import json
import sys
import time

import click

from osiris.core.cli_types import Folder


def _common(f):  # type: ignore[no-untyped-def]
    f = click.option(
        "-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="Set a pipeline param (repeatable)."
    )(f)
    f = click.option(
        "--connections",
        "connections",
        type=click.Path(dir_okay=False),
        help="The osiris_connections.yaml to check references against.",
    )(f)
    f = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(f)
    return click.argument("pipeline", type=click.Path(dir_okay=True))(f)


def _warn(warnings: list[str]) -> None:
    for w in warnings:
        click.echo(f"warning: {w}", err=True)


@click.command("compile")
@_common
@click.option("-o", "--out", "out_dir", default="build", show_default=True, type=Folder(), help="Build folder.")
def compile_command(
    pipeline: str, params: tuple[str, ...], connections: str | None, as_json: bool, out_dir: str
) -> None:
    """Compile PIPELINE (an OML file) into a fingerprinted manifest."""
    from osiris.compiler.compiler import compile_pipeline, write_build
    from osiris.compiler.params import parse_param_args

    started = time.perf_counter()
    compiled = compile_pipeline(pipeline, param_overrides=parse_param_args(list(params)), connections_file=connections)
    out = write_build(compiled, out_dir, source=pipeline, started=started)
    m = compiled.manifest
    if as_json:
        click.echo(
            json.dumps(
                {
                    "pipeline": m.pipeline.name,
                    "manifest": str(out.manifest_path),
                    "fingerprint": m.fingerprints.manifest,
                    "steps": [s.id for s in m.steps],
                    "drivers": [{"package": d.package, "version": d.version} for d in m.drivers],
                    "warnings": compiled.warnings,
                    "duration_ms": out.duration_ms,
                },
                indent=2,
            )
        )
        return
    _warn(compiled.warnings)
    click.echo(f"Compiled `{m.pipeline.name}`: {len(m.steps)} steps in {out.duration_ms:.0f} ms")
    click.echo(f"  manifest     {click.format_filename(out.manifest_path)}")
    click.echo(f"  fingerprint  {m.fingerprints.manifest}")
    click.echo(f"  drivers      {', '.join(f'{d.package} {d.version}' for d in m.drivers)}")


@click.command("validate")
@_common
def validate_command(pipeline: str, params: tuple[str, ...], connections: str | None, as_json: bool) -> None:
    """Check PIPELINE without writing anything; exit code 2 when it is invalid."""
    from osiris.compiler.compiler import compile_pipeline
    from osiris.compiler.params import parse_param_args

    compiled = compile_pipeline(pipeline, param_overrides=parse_param_args(list(params)), connections_file=connections)
    m = compiled.manifest
    if as_json:
        click.echo(json.dumps({"valid": True, "pipeline": m.pipeline.name, "warnings": compiled.warnings}, indent=2))
        return
    _warn(compiled.warnings)
    shown = click.format_filename(pipeline)  # a path that is not UTF-8 must not break the output
    click.echo(f"`{shown}` is valid: pipeline `{m.pipeline.name}`, {len(m.steps)} steps", file=sys.stdout)
