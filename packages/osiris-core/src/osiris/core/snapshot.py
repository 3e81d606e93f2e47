"""Source schema snapshots: what `osiris discover` writes and the compiler expands table patterns against.

A snapshot is a YAML file next to the pipeline (`<family>.<alias>.snapshot.yaml`) listing a source's
tables: columns in their ordinal order with the declared type, nullability and length, the primary
key, and a row estimate. It is written deterministically (tables sorted by schema and name, one
column per line, no times), so a re-discovery shows as a small diff in review. It is read through
`osiris.core.documents` within limits like every other file.

The compiler never opens a database: it reads the snapshot, and `compare` is what the extractor
(at run time) and `osiris discover --check` use to tell how the live source drifted from it.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import msgspec

from osiris.core.documents import Limits, load_yaml_file, load_yaml_text
from osiris.core.errors import DocumentError
from osiris.core.fingerprint import fingerprint
from osiris.core.oml import convert

SNAPSHOT_VERSION = "1"
# A snapshot of a few thousand tables holds more values than a pipeline; the byte limit still bounds it.
SNAPSHOT_LIMITS = Limits(max_values=2_000_000)


class SnapshotColumn(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One column as the source declares it."""

    name: str
    type: str
    nullable: bool
    length: int | None = None


class SnapshotTable(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One table: its columns in ordinal order, its primary key (in key order) and a row estimate."""

    schema: str
    name: str
    columns: list[SnapshotColumn]
    primary_key: list[str] = []
    row_estimate: int | None = None

    @property
    def qualified(self) -> str:
        """``schema.name``, what table patterns match."""
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> SnapshotColumn | None:
        """The column called `name`, or None."""
        return next((c for c in self.columns if c.name == name), None)

    def shape(self) -> dict[str, object]:
        """What drift is judged on: columns with type and nullability, and the key (not the row estimate)."""
        return {
            "columns": [[c.name, c.type, c.nullable, c.length] for c in self.columns],
            "primary_key": list(self.primary_key),
        }


class Snapshot(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A source's tables as `osiris discover` saw them."""

    snapshot_version: str = SNAPSHOT_VERSION
    source: str
    family: str
    include: list[str] = []
    exclude: list[str] = []
    tables: list[SnapshotTable] = []

    def table(self, qualified: str) -> SnapshotTable | None:
        """The table ``schema.name``, or None."""
        return next((t for t in self.tables if t.qualified == qualified), None)

    def fingerprint(self) -> str:
        """sha256 over the snapshot's canonical JSON."""
        return fingerprint(msgspec.to_builtins(self))


def default_file_name(family: str, alias: str) -> str:
    """The snapshot file of `@family.alias`: ``mysql.sakila.snapshot.yaml``."""
    return f"{family}.{alias}.snapshot.yaml"


def matches(qualified: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether ``schema.name`` matches one `include` pattern and no `exclude` pattern (shell wildcards).

    A pattern without a dot matches the table name in any schema; matching is case-sensitive,
    as table names are on most servers.
    """

    def hit(pattern: str) -> bool:
        target = qualified if "." in pattern else qualified.split(".", 1)[-1]
        return fnmatch.fnmatchcase(target, pattern)

    return (not include or any(hit(p) for p in include)) and not any(hit(p) for p in exclude)


def select(tables: Iterable[SnapshotTable], include: Sequence[str], exclude: Sequence[str]) -> list[SnapshotTable]:
    """The tables matching the patterns, sorted by schema and name."""
    return sorted((t for t in tables if matches(t.qualified, include, exclude)), key=lambda t: (t.schema, t.name))


def make_snapshot(
    source: str, family: str, tables: Iterable[SnapshotTable], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> Snapshot:
    """A snapshot of the tables matching the patterns, in the canonical order."""
    return Snapshot(
        source=source,
        family=family,
        include=list(include),
        exclude=list(exclude),
        tables=select(tables, include, exclude),
    )


def _scalar(value: object) -> str:
    # JSON strings and numbers are valid YAML flow scalars; `null`/`true`/`false` too.
    return json.dumps(value, ensure_ascii=False)


def dump_snapshot(snapshot: Snapshot) -> str:
    """The snapshot as YAML text: identical snapshots give identical bytes, one column per line."""
    lines = [
        "# Source schema snapshot written by `osiris discover`; review changes like code.",
        f"snapshot_version: {_scalar(snapshot.snapshot_version)}",
        f"source: {_scalar(snapshot.source)}",
        f"family: {_scalar(snapshot.family)}",
        f"include: [{', '.join(_scalar(p) for p in snapshot.include)}]",
        f"exclude: [{', '.join(_scalar(p) for p in snapshot.exclude)}]",
        "tables:" if snapshot.tables else "tables: []",
    ]
    for t in sorted(snapshot.tables, key=lambda t: (t.schema, t.name)):
        lines.append(f"  - schema: {_scalar(t.schema)}")
        lines.append(f"    name: {_scalar(t.name)}")
        lines.append(f"    primary_key: [{', '.join(_scalar(k) for k in t.primary_key)}]")
        lines.append(f"    row_estimate: {_scalar(t.row_estimate)}")
        lines.append("    columns:" if t.columns else "    columns: []")
        for c in t.columns:
            length = f", length: {_scalar(c.length)}" if c.length is not None else ""
            lines.append(
                f"      - {{name: {_scalar(c.name)}, type: {_scalar(c.type)}, nullable: {_scalar(c.nullable)}{length}}}"
            )
    return "\n".join(lines) + "\n"


def load_snapshot(path: str | Path) -> Snapshot:
    """Read a snapshot file (bounded like every document), with errors naming the file and line."""
    data, index = load_yaml_file(path, limits=SNAPSHOT_LIMITS)
    return _decode(data, index, str(path))


def parse_snapshot(text: str, *, file: str = "snapshot.yaml") -> Snapshot:
    """A snapshot from its YAML text."""
    data, index = load_yaml_text(text, file=file, limits=SNAPSHOT_LIMITS)
    return _decode(data, index, file)


def _decode(data: object, index: object, file: str) -> Snapshot:
    if not isinstance(data, dict):
        raise DocumentError("Expected a snapshot written by `osiris discover` (a YAML mapping)", file=file)
    snapshot = convert(data, Snapshot, file=file, index=index)  # type: ignore[arg-type]
    if snapshot.snapshot_version != SNAPSHOT_VERSION:
        raise DocumentError(
            f"Unsupported `snapshot_version` {snapshot.snapshot_version!r}; expected {SNAPSHOT_VERSION!r}. "
            "Run `osiris discover` again",
            file=file,
            path="$.snapshot_version",
        )
    seen: set[str] = set()
    for i, t in enumerate(snapshot.tables):
        if t.qualified in seen:
            raise DocumentError(f"Table `{t.qualified}` is listed twice", file=file, path=f"$.tables[{i}]")
        seen.add(t.qualified)
        names = [c.name for c in t.columns]
        missing = [k for k in t.primary_key if k not in names]
        if missing or len(set(names)) != len(names):
            what = f"primary key column `{missing[0]}` is not a column" if missing else "a column is listed twice"
            raise DocumentError(f"Table `{t.qualified}`: {what}", file=file, path=f"$.tables[{i}]")
    return snapshot


DriftKind = Literal["new_column", "dropped_column", "changed_type", "new_table", "dropped_table"]
DRIFT_KINDS: tuple[DriftKind, ...] = ("new_column", "dropped_column", "changed_type", "new_table", "dropped_table")
DriftAction = Literal["warn", "stop"]
# What a pipeline does on drift unless it says otherwise: a change that can lose or bend data stops.
DEFAULT_DRIFT: dict[str, str] = {
    "new_column": "warn",
    "dropped_column": "stop",
    "changed_type": "stop",
    "new_table": "warn",
    "dropped_table": "stop",
}


@dataclass(frozen=True)
class Drift:
    """One difference between the snapshot and the live source."""

    kind: DriftKind
    table: str
    column: str | None = None
    was: str | None = None
    now: str | None = None

    def describe(self) -> str:
        """One line for people: ``sakila.film: column `rating` changed type enum(...) -> varchar(10)``."""
        if self.kind == "new_table":
            return f"new table `{self.table}` matches the pattern"
        if self.kind == "dropped_table":
            return f"table `{self.table}` is gone from the source"
        if self.kind == "new_column":
            return f"`{self.table}`: new column `{self.column}` ({self.now})"
        if self.kind == "dropped_column":
            return f"`{self.table}`: column `{self.column}` was dropped"
        return f"`{self.table}`: column `{self.column}` changed from {self.was} to {self.now}"

    def to_data(self) -> dict[str, object]:
        """The drift as an event field."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


def _type_text(c: SnapshotColumn) -> str:
    return f"{c.type}{'' if c.nullable else ' not null'}"


def compare_table(expected: SnapshotTable, live: SnapshotTable | None) -> list[Drift]:
    """How `live` differs from `expected` (columns by name; the row estimate is ignored)."""
    if live is None:
        return [Drift("dropped_table", expected.qualified)]
    out: list[Drift] = []
    live_cols = {c.name: c for c in live.columns}
    for c in expected.columns:
        now_col = live_cols.get(c.name)
        if now_col is None:
            out.append(Drift("dropped_column", expected.qualified, c.name, was=_type_text(c)))
        elif (now_col.type, now_col.nullable, now_col.length) != (c.type, c.nullable, c.length):
            out.append(Drift("changed_type", expected.qualified, c.name, was=_type_text(c), now=_type_text(now_col)))
    known = {c.name for c in expected.columns}
    for c in live.columns:
        if c.name not in known:
            out.append(Drift("new_column", expected.qualified, c.name, now=_type_text(c)))
    return out


def compare(expected: Snapshot, live_tables: Iterable[SnapshotTable]) -> list[Drift]:
    """Every drift of the live tables (already narrowed to the snapshot's patterns) from the snapshot."""
    live = {t.qualified: t for t in live_tables}
    out: list[Drift] = []
    for t in expected.tables:
        out.extend(compare_table(t, live.get(t.qualified)))
    known = {t.qualified for t in expected.tables}
    out.extend(Drift("new_table", q) for q in sorted(live) if q not in known)
    return out


__all__ = [
    "DEFAULT_DRIFT",
    "DRIFT_KINDS",
    "Drift",
    "Snapshot",
    "SnapshotColumn",
    "SnapshotTable",
    "compare",
    "compare_table",
    "default_file_name",
    "drift_scope",
    "dump_snapshot",
    "judge_drift",
    "load_snapshot",
    "make_snapshot",
    "matches",
    "parse_snapshot",
    "raise_on_drift",
    "read_columns",
    "select",
]


def drift_scope(check: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The patterns a step's `drift_check` asks the live source for: the whole pattern, or its table."""
    pattern = check.get("pattern") or {}
    table = check.get("table") or {}
    if pattern:
        return list(pattern.get("include") or []), list(pattern.get("exclude") or [])
    return [f"{table.get('schema')}.{table.get('name')}"], []


def judge_drift(check: dict[str, Any], live_tables: Iterable[SnapshotTable]) -> tuple[list[Drift], list[Drift]]:
    """The drift of a step's table (and of its pattern, when the step watches it) as (warnings, stops).

    `check` is the step's `drift_check` (written by the compiler from the snapshot); `live_tables` the
    source's tables in `drift_scope(check)`.
    """
    table = msgspec.convert(check["table"], SnapshotTable)
    live = {t.qualified: t for t in live_tables}
    drifts = compare_table(table, live.get(table.qualified))
    pattern = check.get("pattern")
    if pattern:
        known = set(pattern.get("tables") or [])
        drifts += [Drift("new_table", q) for q in sorted(live) if q not in known]
        drifts += [Drift("dropped_table", q) for q in sorted(known) if q not in live and q != table.qualified]
    policy = {**DEFAULT_DRIFT, **(check.get("on_drift") or {})}
    stops = [d for d in drifts if policy.get(d.kind) == "stop"]
    return [d for d in drifts if d not in stops], stops


def read_columns(check: dict[str, Any], live_tables: Iterable[SnapshotTable]) -> list[str]:
    """The columns a pattern's read step selects: the snapshot's that the live table still has
    (a new column is not read until the snapshot knows it)."""
    table = msgspec.convert(check["table"], SnapshotTable)
    live = next((t for t in live_tables if t.qualified == table.qualified), None)
    have = {c.name for c in live.columns} if live is not None else set()
    return [c.name for c in table.columns if c.name in have]


def raise_on_drift(
    check: dict[str, Any], live_tables: list[SnapshotTable], *, step_id: str, emit: Callable[..., Any]
) -> list[str]:
    """Emit a `schema_drift` event per drift; raise (the step fails before it reads) on any `stop`.

    Returns the columns to read (`read_columns`).
    """
    from osiris.core.errors import TerminalError

    warnings, stops = judge_drift(check, live_tables)
    for d, action in [*((d, "warn") for d in warnings), *((d, "stop") for d in stops)]:
        emit("schema_drift", action=action, message=d.describe(), snapshot=check.get("snapshot"), **d.to_data())
    if stops:
        listed = "; ".join(d.describe() for d in stops)
        raise TerminalError(
            f"Step `{step_id}`: the source drifted from snapshot `{check.get('snapshot')}`: {listed}; nothing was "
            "written",
            step=step_id,
            hint="review the change, run `osiris discover` again and compile, or set `on_drift` to `warn` for it",
        )
    return read_columns(check, live_tables)
