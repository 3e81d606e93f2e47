"""A generated multi-table MariaDB source for the `tables:` pattern tests and benchmark, and the
comparison of a copied table with its source (row count and a hash of the sorted rows)."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from databases import Database


@dataclass(frozen=True)
class SourceTable:
    """One generated table: its name, DDL body and a row maker."""

    name: str
    ddl: str
    key: tuple[str, ...]


# Several key shapes (int, composite, text, unsigned bigint, none) and names PostgreSQL and MariaDB
# reserve or keep case-sensitive.
TABLES = (
    SourceTable("Order", "id INT PRIMARY KEY, `select` VARCHAR(20) NOT NULL, total DECIMAL(10,2)", ("id",)),
    SourceTable(
        "line_items",
        "order_id INT, line_no SMALLINT, qty INT NOT NULL, placed DATETIME, PRIMARY KEY (order_id, line_no)",
        ("order_id", "line_no"),
    ),
    SourceTable("codes", "code VARCHAR(12) PRIMARY KEY, note TEXT, valid_from DATE", ("code",)),
    SourceTable("group", "gid BIGINT UNSIGNED PRIMARY KEY, label CHAR(3), score DOUBLE", ("gid",)),
    SourceTable("events_log", "kind VARCHAR(10), payload VARCHAR(40), at DATETIME", ()),
    SourceTable("MixedCase", "Id INT PRIMARY KEY, `Value` VARCHAR(30)", ("Id",)),
)


def _row(table: str, i: int, rng: random.Random) -> tuple[Any, ...]:
    base = datetime(2024, 1, 1) + timedelta(minutes=rng.randrange(500_000))

    def maybe(v: Any) -> Any:
        return None if rng.random() < 0.2 else v

    if table == "Order":
        return (i, f"sel {rng.randrange(99)}", maybe(Decimal(rng.randrange(100_000)) / 100))
    if table == "line_items":
        return (i // 4 + 1, i % 4 + 1, rng.randrange(1, 50), maybe(base))
    if table == "codes":
        return (f"C{i:05d}x{rng.randrange(9)}", maybe(f"note {i} ✓"), maybe(date(2020, 1, 1) + timedelta(days=i)))
    if table == "group":
        return (2**63 + i * 7, maybe(f"g{i % 10:02d}"), maybe(rng.random() * 1000))
    if table == "events_log":  # no key: repeated rows are kept as they are
        return (f"k{rng.randrange(3)}", "same" if i % 5 == 0 else f"p{i}", base if i % 7 else None)
    return (i, maybe(f"V{i}"))


def fill_source(db: Database, *, seed: int, rows: dict[str, int] | None = None) -> dict[str, int]:
    """Create every table of `TABLES` in `db` with a random number of rows (or `rows[name]`); the counts."""
    rng = random.Random(seed)
    cur = db.cursor()
    counts = {}
    for t in TABLES:
        n = (rows or {}).get(t.name, rng.randrange(1, 120))
        cur.execute(f"CREATE TABLE `{t.name}` ({t.ddl})")
        values = [_row(t.name, i, rng) for i in range(n)]
        if values:
            marks = ", ".join(["%s"] * len(values[0]))
            cur.executemany(f"INSERT INTO `{t.name}` VALUES ({marks})", values)
        counts[t.name] = n
    cur.execute("CREATE TABLE scratch (x INT)")  # left out by `exclude`
    return counts


def _norm(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, float):
        return repr(round(value, 9))
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return repr(value)


def rows_digest(rows: list[tuple[Any, ...]]) -> tuple[int, str]:
    """Row count and a hash of the rows sorted, values in one form on both servers."""
    lines = sorted("\x1f".join(_norm(v) for v in row) for row in rows)
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()


def mysql_table(db: Database, table: str) -> tuple[int, str]:
    """`rows_digest` of a MariaDB table."""
    cur = db.cursor()
    cur.execute(f"SELECT * FROM `{table}`")
    return rows_digest(list(cur.fetchall()))


def pg_table(db: Database, table: str, schema: str = "public") -> tuple[int, str]:
    """`rows_digest` of a PostgreSQL table."""
    cur = db.cursor()
    cur.execute(f'SELECT * FROM "{schema}"."{table}"')
    return rows_digest(list(cur.fetchall()))


def write_connections(path: Any, *, mysql_database: str, pg_database: str) -> Any:
    """`@mysql.src` and `@supabase.target` on this machine's servers."""
    path.write_text(
        "connections:\n"
        "  mysql:\n"
        f"    src: {{host: 127.0.0.1, port: 3306, user: root, password: '', database: {mysql_database}}}\n"
        "  supabase:\n"
        "    target: {host: 127.0.0.1, port: 5432, user: postgres, password: '', "
        f"dbname: {pg_database}, sslmode: disable}}\n"
    )
    return path


def pipeline_text(database: str, *, write_mode: str = "replace", extra: str = "") -> str:
    """The all-tables pipeline over `database`: one pattern, every table but `scratch`."""
    return (
        'oml_version: "0.1.0"\n'
        "name: all-tables\n"
        "on_error: continue\n"
        "tables:\n"
        "  - id: copy\n"
        '    source: "@mysql.src"\n'
        f'    include: ["{database}.*"]\n'
        '    exclude: ["scratch"]\n'
        "    write:\n"
        '      connection: "@supabase.target"\n'
        "      schema: public\n"
        f"      write_mode: {write_mode}\n"
        "      create_if_missing: true\n"
        "      allow_empty_replace: true\n" + extra
    )
