"""What a MySQL/MariaDB source holds, for `osiris discover` and the extractor's drift check.

Reads `information_schema` once per call: base tables, columns in ordinal order with the declared
type (`COLUMN_TYPE`, e.g. `int(10) unsigned`, `enum('a','b')`), nullability and character length,
the primary key in key order, and the server's row estimate (`TABLE_ROWS`, approximate for InnoDB).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from osiris.core.snapshot import SnapshotColumn, SnapshotTable, matches
from osiris.drivers.sql import mysql_client as client

SYSTEM_SCHEMAS = ("information_schema", "mysql", "performance_schema", "sys")


def default_include(connection: dict[str, Any]) -> list[str]:
    """Without patterns, every table of the connection's database."""
    db = connection.get("database")
    return [f"{db}.*"] if db else ["*"]


def list_tables(conn: Any, include: Sequence[str], exclude: Sequence[str]) -> list[SnapshotTable]:
    """The base tables matching the patterns, read through the open pymysql connection `conn`."""
    skip = ", ".join(["%s"] * len(SYSTEM_SCHEMAS))
    with conn.cursor() as cur:
        cur.execute(
            "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES "
            f"WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ({skip})",
            SYSTEM_SCHEMAS,
        )
        found = {
            (str(s), str(n)): (int(r) if r is not None else None)
            for s, n, r in cur.fetchall()
            if matches(f"{s}.{n}", include, exclude)
        }
        if not found:
            return []
        schemas = sorted({s for s, _ in found})
        marks = ", ".join(["%s"] * len(schemas))
        cur.execute(
            "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, CHARACTER_MAXIMUM_LENGTH "
            f"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN ({marks}) "
            "ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
            schemas,
        )
        columns: dict[tuple[str, str], list[SnapshotColumn]] = {}
        for s, n, name, ctype, nullable, length in cur.fetchall():
            if (str(s), str(n)) in found:
                columns.setdefault((str(s), str(n)), []).append(
                    SnapshotColumn(
                        name=str(name),
                        type=_text(ctype),
                        nullable=str(nullable).upper() == "YES",
                        length=int(length) if length is not None else None,
                    )
                )
        cur.execute(
            "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "
            f"WHERE CONSTRAINT_NAME = 'PRIMARY' AND TABLE_SCHEMA IN ({marks}) "
            "ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
            schemas,
        )
        keys: dict[tuple[str, str], list[str]] = {}
        for s, n, name in cur.fetchall():
            keys.setdefault((str(s), str(n)), []).append(str(name))
    return sorted(
        (
            SnapshotTable(
                schema=s, name=n, columns=columns.get((s, n), []), primary_key=keys.get((s, n), []), row_estimate=rows
            )
            for (s, n), rows in found.items()
        ),
        key=lambda t: (t.schema, t.name),
    )


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes | bytearray) else str(value)


def discover(connection: dict[str, Any], include: Sequence[str], exclude: Sequence[str]) -> list[SnapshotTable]:
    """`x-connection.discover` of the `mysql` family: connect, read the matching tables, close."""
    conn = client.connect(connection, step=None)
    try:
        return list_tables(conn, list(include) or default_include(connection), exclude)
    finally:
        conn.close()
