"""`tables:` patterns -> ordinary steps, expanded against the source's schema snapshot.

Every table of the snapshot matching a pattern becomes a read step (`<id>-<table>-read`) and a write
step (`<id>-<table>-write`) with the table's own primary key, so run cards, parity and data hashes
work per table. The read step carries what the snapshot says of its table (`drift_check`), which
the extractor compares with the live source at run time, and which puts the snapshot under the
manifest's fingerprint (through the step's `cfg_sha256`). Nothing here opens a database.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from osiris.core.connections import parse_reference
from osiris.core.errors import OsirisError
from osiris.core.oml import Pipeline, Step, TablePattern
from osiris.core.snapshot import DEFAULT_DRIFT, Snapshot, SnapshotTable, default_file_name, load_snapshot, select

READ_COMPONENTS = {"mysql": "mysql.extractor", "supabase": "supabase.extractor"}
DEFAULT_WRITER = "supabase.writer"
_MAX_ID = 63
_NOT_ID = re.compile(r"[^A-Za-z0-9_]")

Parts = tuple[str | int, ...]


@dataclass
class Expansion:
    """The steps the patterns became, where each came from, the problems found and the snapshots read."""

    steps: list[Step] = field(default_factory=list)
    where: list[Parts] = field(default_factory=list)
    problems: list[tuple[str, Parts]] = field(default_factory=list)
    snapshots: dict[str, Snapshot] = field(default_factory=dict)  # by `@family.alias`


def snapshot_path(pipeline_file: Path, pattern_snapshot: str | None, family: str, alias: str) -> Path:
    """Where a pattern's snapshot is: its `snapshot` (relative to the pipeline), else the default name beside it."""
    return pipeline_file.parent / (pattern_snapshot or default_file_name(family, alias))


def _slug(table: SnapshotTable, qualified_names: bool) -> str:
    text = f"{table.schema}_{table.name}" if qualified_names else table.name
    return _NOT_ID.sub("_", text)


def _step_id(prefix: str, slug: str, suffix: str, qualified: str) -> str:
    sid = f"{prefix}-{slug}-{suffix}"
    if len(sid) <= _MAX_ID:
        return sid
    digest = hashlib.sha256(qualified.encode("utf-8")).hexdigest()[:8]
    keep = _MAX_ID - len(prefix) - len(suffix) - len(digest) - 3
    return f"{prefix}-{slug[:keep]}_{digest}-{suffix}"


def drift_policy(pattern: TablePattern) -> dict[str, str]:
    """The action for every kind of drift: the pattern's `on_drift` (`all` first) over the defaults."""
    policy = dict(DEFAULT_DRIFT)
    if "all" in pattern.on_drift:
        policy = dict.fromkeys(policy, pattern.on_drift["all"])
    policy.update({k: v for k, v in pattern.on_drift.items() if k != "all"})
    return policy


def expand(pipeline: Pipeline, pipeline_file: Path) -> Expansion:
    """Expand every `tables:` entry of `pipeline` (read from `pipeline_file`)."""
    out = Expansion()
    for i, pattern in enumerate(pipeline.tables):
        _expand_one(pattern, ("tables", i), pipeline, pipeline_file, out)
    return out


def _expand_one(pattern: TablePattern, at: Parts, pipeline: Pipeline, pipeline_file: Path, out: Expansion) -> None:
    def problem(message: str, *parts: str | int) -> None:
        out.problems.append((f"`tables` entry `{pattern.id}`: {message}", (*at, *parts)))

    try:
        family, alias = parse_reference(pattern.source)
    except OsirisError as exc:
        problem(exc.message, "source")
        return
    component = READ_COMPONENTS.get(family)
    if component is None:
        problem(
            f"cannot read tables of `{family}` sources; expected one of {', '.join(sorted(READ_COMPONENTS))}", "source"
        )
        return
    if alias is None and pattern.snapshot is None:
        problem(f'name the alias (`"@{family}.<alias>"`) or the `snapshot` file', "source")
        return
    path = snapshot_path(pipeline_file, pattern.snapshot, family, alias or "")
    if not path.is_file():
        problem(
            f"no snapshot `{path}`; run `osiris discover {pattern.source} --dir {path.parent}` "
            "(the compiler reads the snapshot, never the database)",
            "snapshot" if pattern.snapshot else "source",
        )
        return
    try:
        snapshot = load_snapshot(path)
    except OsirisError as exc:
        problem(exc.message, "snapshot" if pattern.snapshot else "source")
        return
    if snapshot.family != family:
        problem(f"snapshot `{path.name}` is of a `{snapshot.family}` source, not `{family}`", "snapshot")
        return
    out.snapshots[pattern.source] = snapshot
    tables = select(snapshot.tables, pattern.include, pattern.exclude)
    if not tables:
        problem(
            f"`include` {pattern.include} matches no table of snapshot `{path.name}` "
            f"(it has {', '.join(t.qualified for t in snapshot.tables) or 'no tables'})",
            "include",
        )
        return
    for key in ("table", "query"):
        if key in pattern.read:
            problem(f"`read.{key}` is set per table by the pattern; leave it out", "read", key)
    write = dict(pattern.write)
    writer = str(write.pop("component", DEFAULT_WRITER))
    for key in ("table", "primary_key"):
        if key in write:
            hint = "; give keys per table in `primary_keys`" if key == "primary_key" else ""
            problem(f"`write.{key}` is set per table from the snapshot{hint}", "write", key)
    names = {t.name for t in tables} | {t.qualified for t in tables}
    for name in pattern.primary_keys:
        if name not in names:
            problem(f"`primary_keys` names `{name}`, which is not one of the pattern's tables", "primary_keys", name)
    short = [t.name for t in tables]
    qualified_names = len(set(short)) != len(short)
    if qualified_names:
        twice = sorted({n for n in short if short.count(n) > 1})
        problem(
            f"tables of the same name in different schemas ({', '.join(twice)}) would be written to one "
            "target table; narrow `include` or use one pattern per schema",
            "include",
        )
        return
    for kind in pattern.on_drift:
        if kind != "all" and kind not in DEFAULT_DRIFT:
            problem(
                f"unknown kind of drift `{kind}`; expected one of all, {', '.join(DEFAULT_DRIFT)}", "on_drift", kind
            )
    policy = drift_policy(pattern)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    group = [t.qualified for t in tables]
    slugs = [_slug(t, qualified_names) for t in tables]
    twice = {s for s in slugs if slugs.count(s) > 1}  # `a-b` and `a_b` both become `a_b`: hashes tell them apart
    slugs = [
        s + "_" + hashlib.sha256(t.qualified.encode("utf-8")).hexdigest()[:8] if s in twice else s
        for s, t in zip(slugs, tables, strict=True)
    ]
    for n, table in enumerate(tables):
        key = pattern.primary_keys.get(table.qualified) or pattern.primary_keys.get(table.name) or table.primary_key
        missing = [k for k in key if table.column(k) is None]
        if missing:
            problem(f"primary key `{missing[0]}` is not a column of `{table.qualified}`", "primary_keys")
            continue
        if write.get("write_mode") == "upsert" and not key:
            problem(
                f"table `{table.qualified}` has no primary key, and `upsert` needs one; name its key in "
                f"`primary_keys: {{{table.name}: [...]}}` or add it to `exclude`",
                "write",
                "write_mode",
            )
            continue
        slug = slugs[n]
        read_id = _step_id(pattern.id, slug, "read", table.qualified)
        write_id = _step_id(pattern.id, slug, "write", table.qualified)
        check: dict[str, Any] = {
            "snapshot": path.name,
            "snapshot_sha256": sha,
            "table": {
                "schema": table.schema,
                "name": table.name,
                "columns": msgspec.to_builtins(table.columns),
                "primary_key": list(table.primary_key),
            },
            "on_drift": policy,
        }
        if n == 0:  # one step watches the pattern for tables that appeared or went
            check["pattern"] = {"include": list(pattern.include), "exclude": list(pattern.exclude), "tables": group}
        read = {**pattern.read, "connection": pattern.source, "drift_check": check}
        if family == "mysql":
            read["table"] = table.qualified
        else:
            read.update(schema=table.schema, table=table.name)
        target = {**write, "table": table.name}
        if key:
            target["primary_key"] = list(key)
        on_error = pattern.on_error
        out.steps.append(Step(id=read_id, component=component, mode="read", config=read, on_error=on_error))
        out.steps.append(
            Step(id=write_id, component=writer, mode="write", config=target, needs=[read_id], on_error=on_error)
        )
        out.where.extend([at, at])


__all__ = ["Expansion", "drift_policy", "expand", "snapshot_path"]


# -- what the compiler can tell of a step's output columns -----------------------------------------

_SELECT = re.compile(r"^\s*select\s+(?P<list>.*?)\s+from\s+(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
_ALIAS = re.compile(r"^(?P<expr>.+?)\s+as\s+(?P<name>\"(?:[^\"]|\"\")+\"|[A-Za-z_][A-Za-z0-9_$]*)$", re.I | re.S)
_IDENT = re.compile(
    r"^(?:(?P<rel>\"(?:[^\"]|\"\")+\"|[A-Za-z_][A-Za-z0-9_$]*)\.)?(?P<name>\"(?:[^\"]|\"\")+\"|[A-Za-z_][A-Za-z0-9_$]*|\*)$"
)
_UNSURE = re.compile(r"\b(union|intersect|except|exclude|replace|columns|pivot|unpivot)\b|\(\s*select\b", re.I)


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name


def _split_top(text: str) -> list[str]:
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def query_columns(query: str, inputs: dict[str, list[str] | None]) -> list[str] | None:
    """The output columns of a plain `SELECT <list> FROM ...` over the step's inputs, or None when unsure.

    Handles `*`, `rel.*`, plain and qualified names, and `expr AS name`; anything cleverer (set
    operations, `EXCLUDE`, sub-selects in the list) gives None, and nothing is checked.
    """
    m = _SELECT.match(query.strip().rstrip(";"))
    if not m or _UNSURE.search(m.group("list")) or re.match(r"\s*distinct\s+on\b", m.group("list"), re.I):
        return None
    if re.search(r"\b(union|intersect|except)\b", m.group("rest"), re.I):  # `UNION BY NAME` reorders
        return None
    items = _split_top(re.sub(r"^\s*distinct\s+", "", m.group("list"), flags=re.I))
    known = [cols for cols in inputs.values() if cols is not None]
    out: list[str] = []
    for item in items:
        alias = _ALIAS.match(item)
        if alias:
            out.append(_unquote(alias.group("name")))
            continue
        ident = _IDENT.match(item)
        if not ident:
            return None
        if ident.group("name") == "*":
            rel = _unquote(ident.group("rel")) if ident.group("rel") else None
            cols = inputs.get(rel) if rel else (known[0] if len(inputs) == 1 and known else None)
            if cols is None:
                return None
            out.extend(cols)
        else:
            out.append(_unquote(ident.group("name")))
    return out
