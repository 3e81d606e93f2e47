"""`osiris state show|set|reset PIPELINE`: the incremental watermarks a pipeline keeps in its destinations."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from osiris.core.errors import UserInputError


@dataclass
class _Slot:
    """One watermark: the extractor step, the writer step, its key, the writer's driver and config."""

    step: str
    writer: str
    key: Any
    driver: Any
    config: dict[str, Any]


def _slots(target: str, build_dir: str, connections: str | None, params: tuple[str, ...]) -> tuple[str, list[_Slot]]:
    from osiris.core.build import is_manifest_document, load_build
    from osiris.runtime import incremental as inc
    from osiris.runtime.cli import _compile_first
    from osiris.runtime.session import RunSession

    if not Path(target).is_file():
        raise UserInputError(f"`{target}` not found")
    path = Path(target) if is_manifest_document(target) else _compile_first(target, params, connections, build_dir)
    session = RunSession.for_build(
        load_build(path), runs_dir=Path(tempfile.gettempdir()), connections_file=connections
    )  # never opened: it writes no run directory
    if session.setup_error is not None:
        raise session.setup_error
    manifest = session.manifest
    steps = {s.id: s for s in manifest.steps}
    summary = session.registry.populate_from_component_specs(session.components, allow=list(session.components))
    out = []
    for src in inc.incremental_steps(manifest, session.configs):
        for w in inc.destinations_of(manifest, src):
            if steps[w].component in summary.failed:
                raise UserInputError(
                    f"Cannot load the driver of `{steps[w].component}`: {summary.failed[steps[w].component]}"
                )
            driver = session.registry.create(steps[w].component)
            config = session.configs.get(w, {})
            key = inc.StateKey(manifest.pipeline.name, src, inc.destination_name(w, config))
            out.append(_Slot(src, w, key, driver, config))
    if not out:
        raise UserInputError(f"Pipeline `{manifest.pipeline.name}` has no step with an `incremental` block")
    return manifest.pipeline.name, out


def _chosen(slots: list[_Slot], step: str | None, destination: str | None) -> Iterator[_Slot]:
    found = False
    for s in slots:
        if (step is None or s.step == step) and (destination is None or destination in (s.writer, s.key.destination)):
            found = True
            yield s
    if not found:
        names = ", ".join(f"`{s.step}` -> `{s.key.destination}`" for s in slots)
        raise UserInputError(f"No incremental state matches; this pipeline keeps: {names}")


def _guess(value: str, kind: str | None) -> dict[str, str]:
    """`osiris state set`'s VALUE as an encoded watermark of the cursor's type (the stored one's, else guessed)."""
    from osiris.runtime import incremental as inc

    if kind is None:
        text = value.strip()
        if text.lstrip("-").isdigit():
            kind = "int"
        else:
            try:
                date.fromisoformat(text)
                kind = "date"
            except ValueError:
                try:
                    datetime.fromisoformat(text)
                    kind = "datetime"
                except ValueError:
                    kind = "string"
    encoded = inc.encode_value(inc.coerce_like(value, kind, what="`osiris state set`"))
    assert encoded is not None
    return encoded


_common = [
    click.argument("target", metavar="PIPELINE", type=click.Path(dir_okay=False)),
    click.option("--step", help="Only the state of this incremental (extractor) step."),
    click.option("--destination", help="Only the state kept by this writer step (or `writer:schema.table`)."),
    click.option("--build-dir", default="build", show_default=True, help="Where pipelines are compiled to."),
    click.option("--connections", type=click.Path(dir_okay=False), help="The osiris_connections.yaml to use."),
    click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="Pipeline param."),
    click.option("--json", "as_json", is_flag=True, help="Print JSON."),
]


def _options(fn: Any) -> Any:
    for deco in reversed(_common):
        fn = deco(fn)
    return fn


def _record(slot: _Slot, state: dict[str, Any] | None) -> dict[str, Any]:
    return {**slot.key.to_data(), "writer": slot.writer, **(state or {"watermark": None, "version": None})}


def _print(records: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(records, indent=2, default=str))
        return
    for r in records:
        wm = r.get("watermark")
        shown = f"{wm['value']} ({wm['type']})" if wm else "none (the next run reads from `initial_value`)"
        extra = f"  version {r['version']}, run {r.get('run_id')}, {r.get('updated_at')}" if r.get("version") else ""
        click.echo(f"{r['step']} -> {r['destination']}: {shown}{extra}")


@click.group("state")
def state_group() -> None:
    """Show, set or reset the incremental watermarks of a pipeline (kept in its destinations)."""


@state_group.command("show")
@_options
def show(
    target: str,
    step: str | None,
    destination: str | None,
    build_dir: str,
    connections: str | None,
    params: tuple[str, ...],
    as_json: bool,
) -> None:
    """Show every watermark of PIPELINE (a pipeline or a compiled manifest.yaml)."""
    _, slots = _slots(target, build_dir, connections, params)
    _print(
        [_record(s, s.driver.read_state(config=s.config, key=s.key)) for s in _chosen(slots, step, destination)],
        as_json,
    )


@state_group.command("set")
@_options
@click.argument("value")
def set_(
    target: str,
    step: str | None,
    destination: str | None,
    build_dir: str,
    connections: str | None,
    params: tuple[str, ...],
    as_json: bool,
    value: str,
) -> None:
    """Set the watermark of PIPELINE to VALUE (the next run reads from VALUE - lag)."""
    _, slots = _slots(target, build_dir, connections, params)
    records = []
    for s in _chosen(slots, step, destination):
        before = s.driver.read_state(config=s.config, key=s.key)
        kind = ((before or {}).get("watermark") or {}).get("type")
        s.driver.set_state(config=s.config, key=s.key, watermark=_guess(value, kind))
        records.append(_record(s, s.driver.read_state(config=s.config, key=s.key)))
    _print(records, as_json)


@state_group.command("reset")
@_options
def reset(
    target: str,
    step: str | None,
    destination: str | None,
    build_dir: str,
    connections: str | None,
    params: tuple[str, ...],
    as_json: bool,
) -> None:
    """Remove the watermarks of PIPELINE: the next run reads from `initial_value` (or everything)."""
    _, slots = _slots(target, build_dir, connections, params)
    records = []
    for s in _chosen(slots, step, destination):
        s.driver.set_state(config=s.config, key=s.key, watermark=None)
        records.append(_record(s, None))
    _print(records, as_json)
