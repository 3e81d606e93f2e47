"""`osiris components list|show`: what components are installed and who provides them."""

from __future__ import annotations

import json

import click
import yaml

from osiris.core.discovery import ComponentRegistry


@click.group()
def components() -> None:
    """List and inspect the installed components."""


@components.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def list_components(ctx: click.Context, as_json: bool) -> None:
    """List every installed component with its modes and provider.

    A name that two distributions provide is left out of the list and reported with the
    error compile gives for it (in `--json`, under `failures`); the command then exits 2.
    """
    registry = ComponentRegistry.discover()
    comps = registry.all()
    clashes = registry.clashes()
    if as_json:
        rows = [
            {
                "name": c.name,
                "version": c.spec.version,
                "modes": c.spec.modes,
                "distribution": c.distribution,
                "distribution_version": c.version,
                "title": c.spec.title,
            }
            for c in comps
        ]
        failures = [
            {"provider": f.provider, "distribution": f.distribution, "error": f.error} for f in registry.failures
        ]
        failures += [
            {
                "component": name,
                "provider": ", ".join(c.source for c in providers),
                "distribution": ", ".join(c.distribution for c in providers),
                "error": message,
            }
            for name, providers, message in clashes
        ]
        click.echo(json.dumps({"components": rows, "failures": failures}, indent=2))
        if clashes:
            ctx.exit(2)
        return
    header = ("COMPONENT", "MODES", "PROVIDER", "DESCRIPTION")
    rows_t = [(c.name, ",".join(c.spec.modes), f"{c.distribution} {c.version}", c.spec.title) for c in comps]
    widths = [max(len(r[i]) for r in [header, *rows_t]) for i in range(3)]
    for r in [header, *rows_t]:
        click.echo("  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3])
    for f in registry.failures:
        click.echo(f"warning: provider {f.provider} ({f.distribution}) failed: {f.error}", err=True)
    for _name, _providers, message in clashes:
        click.echo(f"error: {message}", err=True)
    if clashes:
        ctx.exit(2)


@components.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def show_component(name: str, as_json: bool) -> None:
    """Show the full spec of component NAME."""
    comp = ComponentRegistry.discover().get(name)
    doc = {"provider": {"distribution": comp.distribution, "version": comp.version}, **comp.raw}
    if as_json:
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        click.echo(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), nl=False)
