"""Table introspection and the DDL plan: what must change before the load, and through which channel."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osiris.core.errors import TerminalError, UserInputError
from osiris.drivers.supabase import typefit
from osiris.drivers.supabase.sqltypes import (
    add_column_sql,
    alter_type_sql,
    create_table_sql,
    mapping,
    quote_ident,
    source_primary_key,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from osiris.drivers.supabase.connection import SupabaseConnection
    from osiris.drivers.supabase.options import WriteOptions

SqlRunner = Callable[[str], list[dict[str, Any]]]


def literal(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def describe_sql(schema: str, table: str) -> str:
    """SQL listing a table's columns (`name`, `type`, `not_null`, `filled`) in order; no rows if it is missing.

    `filled`: the table gives the column a value itself (a default, an identity or a generated column).
    """
    return (
        "SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null, "
        "(a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') AS filled "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE n.nspname = {literal(schema)} AND c.relname = {literal(table)} "
        "AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
    )


def unique_keys_sql(schema: str, table: str) -> str:
    """SQL listing the column sets of a table's non-partial unique indexes (one row each, `cols`)."""
    reg = literal(f"{quote_ident(schema)}.{quote_ident(table)}")
    return (
        "SELECT string_agg(a.attname, ',' ORDER BY a.attname) AS cols FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        f"WHERE i.indrelid = to_regclass({reg}) AND i.indisunique AND i.indpred IS NULL "
        "GROUP BY i.indexrelid"
    )


def schema_exists_sql(schema: str) -> str:
    """SQL returning one row if the schema exists."""
    return f"SELECT 1 AS present FROM pg_namespace WHERE nspname = {literal(schema)}"


@dataclass
class TableInfo:
    """A target table as Postgres knows it."""

    columns: dict[str, str]
    not_null: set[str] = field(default_factory=set)
    unique_keys: list[set[str]] = field(default_factory=list)
    filled: set[str] = field(default_factory=set)

    def has_unique(self, key: list[str]) -> bool:
        """Whether some unique index covers exactly `key` (so `ON CONFLICT (key)` works)."""
        return set(key) in self.unique_keys


def describe(run: SqlRunner, schema: str, table: str) -> TableInfo | None:
    """The table's columns and unique keys, or None when it does not exist."""
    rows = run(describe_sql(schema, table))
    if not rows:
        return None
    keys = [set(str(r["cols"]).split(",")) for r in run(unique_keys_sql(schema, table))]
    return TableInfo(
        columns={r["name"]: r["type"] for r in rows},
        not_null={r["name"] for r in rows if r["not_null"]},
        unique_keys=keys,
        filled={r["name"] for r in rows if r.get("filled")},
    )


@dataclass
class Statement:
    """One DDL statement and what kind it is (`create_schema`, `create_table`, `add_column`, `alter_column_type`)."""

    kind: str
    sql: str
    column: str | None = None


def table_primary_key(opts: WriteOptions, arrow_schema: pa.Schema) -> list[str]:
    """The key a created table gets: the step's `primary_key`, else the source's (field metadata)."""
    return list(opts.primary_key) or source_primary_key(arrow_schema)


def missing_columns(info: TableInfo, arrow_schema: pa.Schema) -> list[str]:
    """Columns of the table that the input lacks and that the table does not fill itself."""
    names = set(arrow_schema.names)
    return [c for c in info.columns if c not in names and c not in info.filled]


def plan(
    opts: WriteOptions, info: TableInfo | None, arrow_schema: pa.Schema, *, schema_exists: bool, step: str
) -> list[Statement]:
    """The DDL needed before loading `arrow_schema` into the table; errors when it is not allowed."""
    names = arrow_schema.names
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserInputError(f"Step `{step}`: the input has duplicate column names: {', '.join(dupes)}", step=step)
    missing_key = [k for k in opts.primary_key if k not in names]
    if missing_key:
        raise UserInputError(
            f"Step `{step}`: `primary_key` column(s) {', '.join(f'`{k}`' for k in missing_key)} are not in the "
            f"input; input columns: {', '.join(names)}",
            step=step,
        )
    if info is None:
        if not opts.create_if_missing:
            raise TerminalError(
                f"Table `{opts.display}` does not exist (step `{step}`); set `create_if_missing: true` to create it "
                "from the input's schema",
                step=step,
            )
        out = []
        if not schema_exists:
            out.append(Statement("create_schema", f"CREATE SCHEMA IF NOT EXISTS {quote_ident(opts.schema)};"))
        key = table_primary_key(opts, arrow_schema)
        out.append(Statement("create_table", create_table_sql(opts.schema, opts.table, arrow_schema, key)))
        return out
    new = [f for f in arrow_schema if f.name not in info.columns]
    if new and not opts.add_new_columns:
        cols = ", ".join(f"`{f.name}`" for f in new)
        raise TerminalError(
            f"Table `{opts.display}` has no column(s) {cols} that the input of step `{step}` has; "
            "set `add_new_columns: true` to add them, or drop them upstream",
            step=step,
        )
    missing = missing_columns(info, arrow_schema)
    if missing and opts.on_missing_columns == "error":
        cols = ", ".join(f"`{c}` {info.columns[c]}" for c in missing)
        raise TerminalError(
            f"Table `{opts.display}` has column(s) {cols} that the input of step `{step}` lacks "
            "(and no default fills them); set `on_missing_columns: keep` to keep them (rows this load "
            "writes get NULL there), or add them to the input",
            step=step,
        )
    return [Statement("add_column", add_column_sql(opts.schema, opts.table, f), f.name) for f in new]


def misfits(info: TableInfo, arrow_schema: pa.Schema, *, step: str | None = None) -> list[tuple[str, str, str]]:
    """(column, input type, table type) for input columns whose type the table's column does not hold by type alone."""
    out = []
    for f in arrow_schema:
        have = info.columns.get(f.name)
        if have is None:
            continue
        wanted = mapping(f, step=step).pg
        if not typefit.fits(wanted, have):
            out.append((f.name, wanted, have))
    return out


def widen_statement(opts: WriteOptions, column: str, wanted: str, have: str) -> Statement | None:
    """The `ALTER … TYPE` that makes `column` (of type `have`) hold `wanted` values too; None when none is safe."""
    wider = typefit.widening(have, wanted)
    if wider is None or typefit.parse(wider) == typefit.parse(have):
        return None
    return Statement("alter_column_type", alter_type_sql(opts.schema, opts.table, column, wider), column)


def save_plan(
    statements: list[Statement],
    output_dir: Path,
    *,
    channel: str | None,
    reason: str | None = None,
    append: bool = False,
) -> Path:
    """Write the DDL plan to `ddl_plan.sql` in the step's artifact folder (`append`: add to it)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "ddl_plan.sql"
    body = "\n\n".join(s.sql for s in statements) + "\n"
    if append and path.is_file():
        with path.open("a", encoding="utf-8") as f:
            f.write("\n" + body)
        return path
    head = [f"-- DDL plan by osiris supabase.writer; channel: {channel or 'none (planned only)'}"]
    if reason:
        head.append(f"-- not executed: {reason}")
    path.write_text("\n".join(head) + "\n" + body, encoding="utf-8")
    return path


def choose_ddl_channel(requested: str, conn: SupabaseConnection) -> tuple[str | None, str | None]:
    """The DDL channel to use and, when there is none, why."""
    if requested == "psycopg2":
        if conn.has_postgres:
            return "psycopg2", None
        return None, "`ddl_channel: psycopg2` needs a Postgres DSN or `host` in the connection"
    if requested == "http_sql":
        if conn.has_http_sql:
            return "http_sql", None
        return None, "`ddl_channel: http_sql` needs `sql_url` and `access_token` (and `project_ref`) in the connection"
    if conn.has_postgres:
        return "psycopg2", None
    if conn.has_http_sql:
        return "http_sql", None
    return None, "no SQL channel: the connection has neither a Postgres DSN/host nor `sql_url` + `access_token`"
