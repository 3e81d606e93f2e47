"""The flagship pipeline's test data: docs/examples/mysql_duckdb_supabase.yaml over a small shop.

Shared by the end-to-end test on the host and the parity test across sandboxes, so both run the
same pipeline over the same rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from databases import Database

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "mysql_duckdb_supabase.yaml"
# The variables the connections file below refers to (trust auth: the passwords are not checked).
ENV = {"MYSQL_PW": "", "SUPABASE_DB_PASSWORD": ""}


def fill_source(db: Database) -> Any:
    """Create and fill the pipeline's `customers` (200) and `orders` (30,000) in `db`; a cursor on it."""
    cur = db.cursor()
    cur.execute("CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50), country CHAR(2))")
    cur.execute("CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT, total DECIMAL(12,2), created_at DATETIME)")
    cur.execute(
        "INSERT INTO customers SELECT seq, CONCAT('customer ', seq), ELT(1 + seq % 4, 'DE', 'FR', 'GB', 'US') "
        "FROM seq_1_to_200"
    )
    cur.execute(
        "INSERT INTO orders SELECT seq, 1 + seq % 200, (seq % 997) / 4, "
        "TIMESTAMP('2019-10-01') + INTERVAL (seq * 37) MINUTE FROM seq_1_to_30000"
    )
    return cur


def write_connections(path: Path, *, mysql_database: str, pg_database: str) -> Path:
    """An osiris_connections.yaml at `path`: `@mysql.default` and `@supabase.default` on this machine's servers."""
    path.write_text(
        "connections:\n"
        "  mysql:\n"
        "    default: {host: 127.0.0.1, port: 3306, user: root, password: '${MYSQL_PW}', "
        f"database: {mysql_database}}}\n"
        "  supabase:\n"
        "    default: {host: 127.0.0.1, port: 5432, user: postgres, password: '${SUPABASE_DB_PASSWORD}', "
        f"dbname: {pg_database}, sslmode: disable}}\n"
    )
    return path
