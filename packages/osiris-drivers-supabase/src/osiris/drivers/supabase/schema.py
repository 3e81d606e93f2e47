"""What a Supabase (PostgreSQL) source holds, for `osiris discover` and the extractor's drift check.

Reads the catalogs once per call: ordinary and partitioned tables, columns in ordinal order with
the declared type as PostgreSQL prints it (`format_type`: `character varying(40)`, `numeric(12,2)`),
nullability and character length, the primary key in key order, and the planner's row estimate
(`reltuples`; none before the table was first analysed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from osiris.core.snapshot import SnapshotColumn, SnapshotTable, matches

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")

_TABLES = """
SELECT n.nspname, c.relname, c.reltuples::bigint, c.oid
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN %s AND n.nspname NOT LIKE 'pg_temp%%'
"""
_COLUMNS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
       information_schema._pg_char_max_length(a.atttypid, a.atttypmod)
FROM pg_attribute a
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""
_KEYS = """
SELECT i.indrelid, a.attname
FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indisprimary AND i.indrelid = ANY(%s)
ORDER BY i.indrelid, k.pos
"""


def default_include(connection: dict[str, Any]) -> list[str]:
    """Without patterns, every table of the connection's schema (default `public`)."""
    return [f"{connection.get('schema') or 'public'}.*"]


def list_tables(pg: Any, include: Sequence[str], exclude: Sequence[str]) -> list[SnapshotTable]:
    """The tables matching the patterns, read through the open psycopg2 connection `pg`."""
    with pg.cursor() as cur:
        cur.execute(_TABLES, (SYSTEM_SCHEMAS,))
        found = {
            int(oid): (str(s), str(n), int(r) if r is not None and r >= 0 else None)
            for s, n, r, oid in cur.fetchall()
            if matches(f"{s}.{n}", include, exclude)
        }
        if not found:
            return []
        oids = sorted(found)
        cur.execute(_COLUMNS, (oids,))
        columns: dict[int, list[SnapshotColumn]] = {}
        for oid, name, ctype, nullable, length in cur.fetchall():
            columns.setdefault(int(oid), []).append(
                SnapshotColumn(
                    name=str(name),
                    type=str(ctype),
                    nullable=bool(nullable),
                    length=int(length) if length is not None else None,
                )
            )
        cur.execute(_KEYS, (oids,))
        keys: dict[int, list[str]] = {}
        for oid, name in cur.fetchall():
            keys.setdefault(int(oid), []).append(str(name))
    return sorted(
        (
            SnapshotTable(schema=s, name=n, columns=columns.get(oid, []), primary_key=keys.get(oid, []), row_estimate=r)
            for oid, (s, n, r) in found.items()
        ),
        key=lambda t: (t.schema, t.name),
    )


def discover(connection: dict[str, Any], include: Sequence[str], exclude: Sequence[str]) -> list[SnapshotTable]:
    """`x-connection.discover` of the `supabase` family (direct Postgres connections only)."""
    from osiris.core.errors import UserInputError
    from osiris.drivers.supabase.connection import SupabaseConnection
    from osiris.drivers.supabase.postgres_connect import connect

    conn = SupabaseConnection.from_dict(connection)
    if not conn.has_postgres:
        raise UserInputError(
            "`osiris discover` reads a Supabase source's catalog over a direct Postgres connection; "
            "this connection has only `url` + key (add `dsn`, or `host`/`user`/`password`)"
        )
    pg, _ = connect(conn)
    try:
        pg.set_session(readonly=True)
        return list_tables(pg, list(include) or default_include({"schema": conn.schema}), exclude)
    finally:
        pg.close()
