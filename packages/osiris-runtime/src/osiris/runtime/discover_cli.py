"""`osiris discover @family.alias`: write (or `--check`) a source schema snapshot.

The snapshot (`osiris.core.snapshot`) is what the compiler expands `tables:` patterns against, so
compiling never opens a database. The live read is the function a component spec names in
`x-connection.discover` for the family (`mysql`, `supabase`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from osiris.core.errors import UserInputError


def _discover_function(family: str) -> tuple[str, dict[str, Any]]:
    from osiris.core.discovery import ComponentRegistry

    for comp in ComponentRegistry.discover().all():
        info = comp.spec.x_connection
        if info is not None and info.family == family and info.discover:
            return info.discover, info.schema
    raise UserInputError(
        f"No installed component can discover `{family}` sources (none names `x-connection.discover`)",
        hint="`osiris discover` knows mysql (osiris-drivers-sql[mysql]) and supabase (osiris-drivers-supabase[postgres])",
    )


def live_tables(
    reference: str, include: list[str], exclude: list[str], connections_file: str | None
) -> tuple[str, str, list[Any]]:
    """Family, alias and the live tables of `@family.alias` matching the patterns."""
    from osiris.core.connections import parse_reference
    from osiris.runtime.registry import load_object
    from osiris.runtime.resolve import load_connections_for_run, resolve_connection

    family, alias = parse_reference(reference)
    target, schema = _discover_function(family)
    conns = load_connections_for_run(connections_file)
    if conns is None:
        raise UserInputError(
            "No osiris_connections.yaml found (looked at --connections, $OSIRIS_HOME and the current directory)"
        )
    chosen, fields = resolve_connection(conns, family, alias, schema=schema)
    return family, chosen, list(load_object(target)(fields, include, exclude))


@click.command("discover")
@click.argument("source", metavar="@FAMILY.ALIAS")
@click.option("--tables", "include", multiple=True, metavar="PATTERN", help="Tables to include (`db.*`, `db.film*`).")
@click.option("--exclude", multiple=True, metavar="PATTERN", help="Tables to leave out.")
@click.option(
    "--dir", "directory", default=".", show_default=True, help="Folder of the pipeline (snapshot goes there)."
)
@click.option(
    "--out", type=click.Path(dir_okay=False), help="The snapshot file (default DIR/FAMILY.ALIAS.snapshot.yaml)."
)
@click.option("--check", is_flag=True, help="Compare the live source with the snapshot; exit 1 on drift.")
@click.option("--connections", type=click.Path(dir_okay=False), help="The osiris_connections.yaml to use.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def discover_command(
    source: str,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    directory: str,
    out: str | None,
    check: bool,
    connections: str | None,
    as_json: bool,
) -> None:
    """Read a source's tables, columns, keys and row estimates into a reviewable snapshot file."""
    from osiris.core.connections import parse_reference
    from osiris.core.snapshot import compare, default_file_name, dump_snapshot, load_snapshot, make_snapshot

    family, alias = parse_reference(source)
    existing = None
    if out is None and alias is not None:
        out = str(Path(directory) / default_file_name(family, alias))
    if out is not None and Path(out).is_file():
        existing = load_snapshot(out)
    # Re-discovering without patterns keeps the ones the snapshot was made with.
    inc = list(include) or (existing.include if existing else [])
    exc = list(exclude) or (existing.exclude if existing else [])
    family, chosen, tables = live_tables(source, inc, exc, connections)
    if out is None:
        out = str(Path(directory) / default_file_name(family, chosen))
        if Path(out).is_file():
            existing = load_snapshot(out)
    snapshot = make_snapshot(f"@{family}.{chosen}", family, tables, inc, exc)
    if check:
        if existing is None:
            raise UserInputError(f"`--check`: no snapshot at `{out}`; run `osiris discover {source}` first")
        drifts = compare(existing, tables)
        if as_json:
            click.echo(json.dumps({"snapshot": out, "drift": [d.to_data() for d in drifts]}, indent=2))
        elif drifts:
            click.echo(f"{out}: the source drifted from the snapshot ({len(drifts)}):")
            for d in drifts:
                click.echo(f"  {d.kind}: {d.describe()}")
        else:
            click.echo(f"{out}: no drift ({len(existing.tables)} tables)")
        click.get_current_context().exit(1 if drifts else 0)
    text = dump_snapshot(snapshot)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(out).with_name(Path(out).name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    if as_json:
        click.echo(json.dumps({"snapshot": out, "tables": [t.qualified for t in snapshot.tables]}, indent=2))
    else:
        columns = sum(len(t.columns) for t in snapshot.tables)
        click.echo(f"wrote {out}: {len(snapshot.tables)} tables, {columns} columns")
