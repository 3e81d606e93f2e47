"""OML -> manifest: validate everything that can be checked before a run, then write
`build/<pipeline>/<manifest_short>/{manifest.yaml, cfg/<step>.json}` and `compile.json`.

Identical inputs give byte-identical `manifest.yaml` and `cfg/*.json`: no times,
no absolute paths and no secrets go into them. Times go to `compile.json`.

A little over 400 lines, on purpose: every check of one pipeline runs in one pass (one `_Checker`
collecting every error of the file); the checks' helpers live apart (`params`, `values`,
`schema_errors`, `secrets`, `graph`), and the build folder is `osiris.core.build`'s.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from osiris.compiler.__about__ import __version__
from osiris.compiler.graph import find_cycle, topological_order
from osiris.compiler.incremental import check_incremental
from osiris.compiler.params import ReferenceSyntaxError, resolve_params, substitute
from osiris.compiler.patterns import READ_COMPONENTS, expand, query_columns, snapshot_path
from osiris.compiler.schema_errors import config_errors, key_path, schema_problem
from osiris.compiler.secrets import find_inline_secrets
from osiris.compiler.values import value_problems
from osiris.core import build
from osiris.core.connections import find_connections_file, load_connections, parse_reference, select_alias
from osiris.core.discovery import Component, ComponentRegistry
from osiris.core.documents import LineIndex, did_you_mean, format_path, load_yaml_file
from osiris.core.errors import DocumentError, OsirisError, UserInputError, ValidationErrors
from osiris.core.fingerprint import fingerprint, sha256_hex
from osiris.core.manifest import (
    DriverRequirement,
    Fingerprints,
    Manifest,
    ManifestStep,
    PipelineInfo,
    ToolInfo,
    dump_manifest,
    seal,
)
from osiris.core.oml import Pipeline, Step, check_pipeline
from osiris.core.snapshot import load_snapshot
from osiris.core.spec import apply_defaults


@dataclass
class CompiledPipeline:
    """The result of compiling, before anything is written."""

    manifest: Manifest
    cfgs: dict[str, bytes]
    params: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def manifest_text(self) -> str:
        """The manifest as written to `manifest.yaml`."""
        return dump_manifest(self.manifest)


@dataclass
class CompileOutput:
    """Where a compile was written and how long it took."""

    compiled: CompiledPipeline
    build_dir: Path
    manifest_path: Path
    duration_ms: float


class _Checker:
    """Collects every error of one pipeline, each tied to the file, path and line."""

    def __init__(self, file: str, index: LineIndex) -> None:
        self.file = file
        self.index = index
        self.errors: list[OsirisError] = []

    def add(self, message: str, parts: tuple[str | int, ...], step: str | None = None) -> None:
        prefix = f"Step `{step}`: " if step else ""
        self.errors.append(
            DocumentError(
                prefix + message,
                file=self.file,
                path=format_path(parts),
                line=self.index.line_of(parts),
                step=step,
            )
        )

    def raise_if_any(self) -> None:
        self.errors.sort(key=lambda e: getattr(e, "line", None) or 0)
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise ValidationErrors(self.errors, file=self.file)


def compile_pipeline(
    path: str | Path,
    *,
    param_overrides: dict[str, str] | None = None,
    connections_file: str | Path | None = None,
    registry: ComponentRegistry | None = None,
    environ: dict[str, str] | None = None,
) -> CompiledPipeline:
    """Parse, validate and compile the OML file at `path` (nothing is written)."""
    file = str(path)
    data, index = load_yaml_file(path)
    decoded = check_pipeline(data, file=file, index=index)
    check = _Checker(file, index)
    check.errors.extend(decoded.errors)
    pipeline = decoded.pipeline
    if pipeline is None:
        check.raise_if_any()
        raise AssertionError("unreachable: a pipeline that cannot be read has errors")
    # `tables:` patterns become ordinary steps (after the written ones), each located at its pattern.
    where_of: list[tuple[str | int, ...]] = [("steps", i) for i in range(len(pipeline.steps))]
    snapshots: dict[str, Any] = {}
    if pipeline.tables:
        expansion = expand(pipeline, Path(path))
        for message, parts in expansion.problems:
            check.add(message, parts)
        where_of += expansion.where
        snapshots = expansion.snapshots
        pipeline = msgspec.structs.replace(pipeline, steps=[*pipeline.steps, *expansion.steps])
    registry = registry or ComponentRegistry.discover()
    warnings: list[str] = []
    unchecked: list[str] = []  # connection references that no connections file could confirm

    params: dict[str, Any] | None
    try:
        params = resolve_params(pipeline.params, param_overrides or {}, environ)
    except UserInputError as exc:
        check.add(exc.message, ("params",))
        params = None
    if params is not None:
        for name, value in params.items():
            for parts, message in value_problems(value, ("params", name)):
                check.add(f"param `{name}`: {message}", parts)

    ids = _check_ids(pipeline, check, where_of)
    components: dict[str, Component] = {}
    configs: dict[str, dict[str, Any]] = {}
    modes: dict[str, str] = {}
    conn_file = find_connections_file(connections_file)
    connections = load_connections(conn_file) if conn_file else None

    for i, step in enumerate(pipeline.steps):
        if i in decoded.invalid_steps:
            continue
        where = where_of[i]
        try:
            comp = registry.get(step.component)
        except OsirisError as exc:
            check.add(exc.message, (*where, "component"), step.id)
            continue
        components[step.id] = comp
        mode = _check_mode(step, comp, where, check)
        if mode:
            modes[step.id] = mode
        if params is None:
            continue  # the configs cannot be read without their params
        try:
            config = substitute(step.config, params, format_path((*where, "config")))
        except ReferenceSyntaxError as exc:
            check.add(exc.message, (*where, "config", *exc.parts), step.id)
            continue
        if not _check_config(comp, config, where, step.id, check):
            continue
        _check_connection(step, comp, config, connections, conn_file, where, check, unchecked)
        if comp.spec.name.endswith(".writer") and config.get("write_mode") == "replace" and "primary_key" not in config:
            warnings.append(
                f"Step `{step.id}`: `replace` without `primary_key` replaces the whole table `{config.get('table')}`"
            )
        configs[step.id] = apply_defaults(comp.spec.config_schema, config)

    needs = _check_needs(pipeline, ids, check, where_of)
    check.raise_if_any()
    assert params is not None

    cycle = find_cycle(needs)
    if cycle:
        first = cycle[0]
        i = next(n for n, s in enumerate(pipeline.steps) if s.id == first)
        check.add(f"The steps form a cycle: {' -> '.join(cycle)}", (*where_of[i], "needs"), first)
        check.raise_if_any()
    for sid in components:
        if modes.get(sid) == "write" and len(needs[sid]) != 1:
            step_index = next(n for n, s in enumerate(pipeline.steps) if s.id == sid)
            if not needs[sid]:
                check.add(
                    "a `write` step needs an upstream step; add `needs: [<step id>]`",
                    where_of[step_index],
                    sid,
                )
            else:
                check.add(
                    f"a `write` step writes exactly one upstream step; `needs` names {len(needs[sid])} "
                    f"({', '.join(needs[sid])}). Combine them in a transform step first (e.g. `duckdb.processor`)",
                    (*where_of[step_index], "needs"),
                    sid,
                )
    check_incremental(pipeline.steps, components, configs, needs, modes, check.add)
    check.raise_if_any()
    _check_columns(pipeline, where_of, components, configs, needs, snapshots, Path(path), check)
    check.raise_if_any()

    order = topological_order(needs)
    continues = {s.id for s in pipeline.steps if (s.on_error or pipeline.on_error) == "continue"}
    cfgs = {sid: _cfg_bytes(configs[sid]) for sid in order}
    used = {components[sid].name: components[sid] for sid in order}
    drivers = _driver_requirements(used.values())
    manifest = seal(
        Manifest(
            pipeline=PipelineInfo(name=pipeline.name, description=pipeline.description),
            compiler=ToolInfo(package="osiris-compiler", version=__version__),
            params=params,
            drivers=drivers,
            steps=[
                ManifestStep(
                    id=sid,
                    component=components[sid].name,
                    mode=modes[sid],  # type: ignore[arg-type]
                    driver=components[sid].spec.x_runtime.driver,
                    needs=needs[sid],
                    cfg_path=build.cfg_path(sid),
                    cfg_sha256=sha256_hex(cfgs[sid]),
                    **({"on_error": "continue"} if sid in continues else {}),
                )
                for sid in order
            ],
            fingerprints=Fingerprints(
                oml=fingerprint(data),
                params=fingerprint(params),
                specs=fingerprint({name: used[name].raw for name in sorted(used)}),
                drivers=fingerprint(msgspec.to_builtins(drivers)),
            ),
        )
    )
    if unchecked:
        warnings.append(
            "No osiris_connections.yaml found (looked in --connections, $OSIRIS_HOME and the current "
            f"directory); these connections are checked at run time: {', '.join(unchecked)}"
        )
    return CompiledPipeline(manifest=manifest, cfgs=cfgs, params=params, warnings=warnings)


def _check_config(
    comp: Component, config: dict[str, Any], where: tuple[str | int, ...], step_id: str, check: _Checker
) -> bool:
    """Add every problem of one step's config; False when it cannot be validated against its spec."""

    def add(message: str, parts: tuple[str | int, ...]) -> None:
        check.add(message, (*where, "config", *parts), step_id)

    def named(parts: tuple[str | int, ...], message: str) -> str:
        return f"config key `{key_path(parts)}`: {message}" if parts else message

    values = list(value_problems(config))
    secrets = list(find_inline_secrets(config, comp.spec.secrets))
    for parts, reason in secrets:
        add(
            f"{reason} at `config.{key_path(parts)}`; secrets must come from a connection "
            f'(`connection: "@{comp.spec.family}.<alias>"`) or an environment variable (`${{MY_SECRET}}`)',
            parts,
        )
    problem = None if secrets else _schema_problem(comp)
    if secrets or problem:
        for parts, message in values:
            add(named(parts, message), parts)
        if problem:
            check.add(problem, (*where, "component"), step_id)
        return False
    schema = list(config_errors(comp.spec.config_schema, config))
    by_schema = {parts for parts, _ in schema}
    said: list[tuple[str | int, ...]] = []
    for parts, message in values:
        if parts in by_schema and isinstance(_value_at(config, parts), int):
            continue  # the spec's own range says it better than "outside 64 bits"
        add(named(parts, message), parts)
        said.append(parts)
    for parts, message in schema:
        if not any(parts[: len(p)] == p for p in said):  # a date where text is expected: said once
            add(message, parts)
    return True


def _value_at(value: Any, parts: tuple[str | int, ...]) -> Any:
    for p in parts:
        value = value[p]
    return value


def _schema_problem(comp: Component) -> str | None:
    problem = schema_problem(comp.spec.config_schema)
    if problem is None:
        return None
    return (
        f"The spec of component `{comp.name}` ({comp.source}, from `{comp.distribution}` {comp.version}) has an "
        f"invalid `configSchema`: {problem}; report it to the component's authors"
    )


def _check_ids(pipeline: Pipeline, check: _Checker, where_of: list[tuple[str | int, ...]]) -> set[str]:
    seen: dict[str, int] = {}
    for i, step in enumerate(pipeline.steps):
        if step.id in seen:
            check.add(
                f"Duplicate step id `{step.id}` (first used by step {seen[step.id] + 1}); step ids must be unique",
                (*where_of[i], "id"),
            )
        else:
            seen[step.id] = i
    return set(seen)


def _check_mode(step: Step, comp: Component, where: tuple[str | int, ...], check: _Checker) -> str | None:
    supported = comp.spec.modes
    if step.mode is None:
        if len(supported) == 1:
            return supported[0]
        check.add(f"`mode` is required; `{comp.name}` supports {', '.join(supported)}", where, step.id)
        return None
    if step.mode not in supported:
        check.add(
            f"Component `{comp.name}` does not support mode `{step.mode}`; it supports {', '.join(supported)}",
            (*where, "mode"),
            step.id,
        )
        return None
    return step.mode


def _check_needs(
    pipeline: Pipeline, ids: set[str], check: _Checker, where_of: list[tuple[str | int, ...]]
) -> dict[str, list[str]]:
    needs: dict[str, list[str]] = {}
    for i, step in enumerate(pipeline.steps):
        if step.id in needs:
            continue
        deps: list[str] = []
        for j, dep in enumerate(step.needs):
            if dep == step.id:
                check.add("a step cannot need itself", (*where_of[i], "needs", j), step.id)
            elif dep not in ids:
                check.add(
                    f"`needs` names unknown step `{dep}`{did_you_mean(dep, ids)}; steps: {', '.join(sorted(ids))}",
                    (*where_of[i], "needs", j),
                    step.id,
                )
            elif dep not in deps:
                deps.append(dep)
        needs[step.id] = deps
    return needs


def _check_connection(
    step: Step,
    comp: Component,
    config: dict[str, Any],
    connections: dict[str, dict[str, dict[str, Any]]] | None,
    conn_file: Path | None,
    where: tuple[str | int, ...],
    check: _Checker,
    unchecked: list[str],
) -> None:
    info = comp.spec.x_connection
    ref = config.get("connection")
    if info is None or (ref is not None and not isinstance(ref, str)):
        return
    parts = (*where, "config", "connection") if ref else (*where, "config")
    family, alias = info.family, None
    if ref:
        try:
            family, alias = parse_reference(ref)
        except OsirisError as exc:
            check.add(exc.message, parts, step.id)
            return
        if family != info.family:
            check.add(
                f"`{comp.name}` uses `{info.family}` connections; got `{ref}`. "
                f'Expected `connection: "@{info.family}.<alias>"`',
                parts,
                step.id,
            )
            return
    if connections is None:
        if info.required:
            unchecked.append(f"`{ref or '@' + family}` (step `{step.id}`)")
        return
    try:
        select_alias(connections, family, alias)
    except OsirisError as exc:
        check.add(f"{exc.message} (in {conn_file})", parts, step.id)


def _driver_requirements(components: Any) -> list[DriverRequirement]:
    """One entry per providing distribution: its version, the components used, the extras they need."""
    names: dict[tuple[str, str], list[str]] = {}
    extras: dict[tuple[str, str], set[str]] = {}
    for comp in components:
        key = (comp.distribution, comp.version)
        names.setdefault(key, []).append(comp.name)
        extras.setdefault(key, set()).update(comp.spec.x_runtime.requirements.extras)
    return [
        DriverRequirement(
            package=dist, version=version, components=sorted(found), extras=sorted(extras[(dist, version)])
        )
        for (dist, version), found in sorted(names.items())
    ]


def _cfg_bytes(config: dict[str, Any]) -> bytes:
    return (json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def write_build(compiled: CompiledPipeline, out_dir: str | Path, *, source: str, started: float) -> CompileOutput:
    """Write the build folder (atomically, see `osiris.core.build`) and point `.last_compile.json` at it."""
    manifest = compiled.manifest
    target = build.build_dir(out_dir, manifest)
    duration_ms = round((time.perf_counter() - started) * 1000, 3)
    info = {
        "pipeline": manifest.pipeline.name,
        "manifest": _text_path(target / build.MANIFEST_FILE),
        "fingerprint": manifest.fingerprints.manifest,
        "source": _text_path(Path(source)),
        "compiled_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "duration_ms": duration_ms,
        "compiler": {"package": "osiris-compiler", "version": __version__},
        "params": compiled.params,
        "warnings": compiled.warnings,
    }
    build.write_build(out_dir, manifest, compiled.manifest_text, compiled.cfgs, info)
    return CompileOutput(compiled, target, target / build.MANIFEST_FILE, duration_ms)


def _text_path(path: Path) -> str:
    """An absolute path as UTF-8 text; bytes that are not UTF-8 become `\\xNN` escapes."""
    return os.fsencode(path.resolve()).decode("utf-8", "backslashreplace")


def compile_to_build(
    path: str | Path,
    out_dir: str | Path = "build",
    *,
    param_overrides: dict[str, str] | None = None,
    connections_file: str | Path | None = None,
) -> CompileOutput:
    """Compile the OML at `path` and write its build folder under `out_dir`."""
    started = time.perf_counter()
    compiled = compile_pipeline(path, param_overrides=param_overrides, connections_file=connections_file)
    return write_build(compiled, out_dir, source=str(path), started=started)


def _check_columns(
    pipeline: Pipeline,
    where_of: list[tuple[str | int, ...]],
    components: dict[str, Component],
    configs: dict[str, dict[str, Any]],
    needs: dict[str, list[str]],
    snapshots: dict[str, Any],
    pipeline_file: Path,
    check: _Checker,
) -> None:
    """With a source's snapshot: tables and columns a read names exist, and a writer's `primary_key`
    is a column of its input (through `duckdb.processor` queries whose output columns can be derived)."""

    def snapshot_for(ref: str, parts: tuple[str | int, ...], sid: str) -> Any:
        if ref not in snapshots:
            snapshots[ref] = None
            try:
                family, alias = parse_reference(ref)
            except OsirisError:
                return None  # reported by the connection check
            path = snapshot_path(pipeline_file, None, family, alias or "")
            if alias and path.is_file():
                try:
                    snapshots[ref] = load_snapshot(path)
                except OsirisError as exc:
                    check.add(f"the snapshot of `{ref}` cannot be read: {exc.message}", parts, sid)
        return snapshots[ref]

    columns: dict[str, list[str] | None] = {}
    index = {s.id: i for i, s in enumerate(pipeline.steps)}
    for sid in topological_order(needs):
        comp, config = components.get(sid), configs.get(sid)
        columns[sid] = None
        if comp is None or config is None or sid not in index:
            continue
        where = (*where_of[index[sid]], "config")
        if comp.name in READ_COMPONENTS.values() and config.get("table") and isinstance(config.get("connection"), str):
            snap = snapshot_for(config["connection"], (*where, "connection"), sid)
            if snap is None:
                continue
            name = str(config["table"])
            if comp.name == "supabase.extractor":
                name = f"{config.get('schema') or 'public'}.{name}"
            table = snap.table(name) if "." in name else None
            if table is None and "." not in name:
                found = [t for t in snap.tables if t.name == name]
                table = found[0] if len(found) == 1 else None
            if table is None:
                names = [t.qualified for t in snap.tables]
                check.add(
                    f"table `{name}` is not in the snapshot of `{config['connection']}`"
                    f"{did_you_mean(name, names)}; if it is new, run `osiris discover {config['connection']}` again",
                    (*where, "table"),
                    sid,
                )
                continue
            have = [c.name for c in table.columns]
            picked = config.get("columns")
            if isinstance(picked, list):
                for j, col in enumerate(picked):
                    if col not in have:
                        check.add(
                            f"column `{col}` is not a column of `{table.qualified}`{did_you_mean(str(col), have)}",
                            (*where, "columns", j),
                            sid,
                        )
                columns[sid] = [c for c in picked if c in have]
            else:
                columns[sid] = have
        elif comp.name == "duckdb.processor" and isinstance(config.get("query"), str):
            ups = {n: columns.get(n) for n in needs[sid]}
            if len(ups) == 1:
                ups["input_df"] = next(iter(ups.values()))
            columns[sid] = query_columns(config["query"], ups)
        elif comp.spec.name.endswith(".writer") and len(needs[sid]) == 1:
            have_in = columns.get(needs[sid][0])
            key = config.get("primary_key")
            keys = [key] if isinstance(key, str) else key if isinstance(key, list) else []
            if have_in is None:
                continue
            for j, col in enumerate(keys):
                if col not in have_in:
                    check.add(
                        f"`primary_key` column `{col}` is not a column of the input `{needs[sid][0]}` "
                        f"(its columns: {', '.join(have_in)})",
                        (*where, "primary_key", *((j,) if isinstance(key, list) else ())),
                        sid,
                    )
