"""The flagship pipeline, docs/examples/mysql_duckdb_supabase.yaml, end to end with `osiris run`:
MySQL (MariaDB) -> DuckDB -> supabase.writer into the real PostgreSQL, then again in replace
mode after rows were deleted and changed in MySQL: Postgres equals the new MySQL result."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "mysql_duckdb_supabase.yaml"
MYSQL_RESULT = """
SELECT c.id, c.name, c.country, DATE_FORMAT(o.created_at, '%Y-%m') AS month, COUNT(*), SUM(o.total)
FROM customers c JOIN orders o ON o.customer_id = c.id
WHERE o.created_at >= '2020-01-01'
GROUP BY c.id, c.name, c.country, month
"""


@pytest.fixture
def mysql_db() -> Any:
    """A MariaDB database with customers and orders (dropped afterwards)."""
    import pymysql

    name = f"osiris_supabase_e2e_{secrets.token_hex(4)}"
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    cur.execute(f"USE `{name}`")
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
    try:
        yield name, cur
    finally:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture
def pg_db() -> Any:
    """A PostgreSQL database standing in for the Supabase project (dropped afterwards)."""
    import psycopg2

    admin = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    admin.autocommit = True
    name = f"osiris_supabase_e2e_{secrets.token_hex(4)}"
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=name)
    conn.autocommit = True
    try:
        yield name, conn
    finally:
        conn.close()
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def osiris_run(cwd: Path) -> subprocess.CompletedProcess[str]:
    """`osiris run` of the flagship example in `cwd` (which holds osiris_connections.yaml)."""
    env = {**os.environ, "MYSQL_PW": "", "SUPABASE_DB_PASSWORD": ""}
    return subprocess.run(
        [sys.executable, "-m", "osiris.core.cli", "run", str(EXAMPLE), "--json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def normalized(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows as (customer_id, name, country, month, orders, revenue) with comparable types."""
    return sorted((int(a), b, c, d, int(n), Decimal(r)) for a, b, c, d, n, r in rows)


def test_flagship_pipeline_end_to_end_and_replace_after_changes(mysql_db: Any, pg_db: Any, tmp_path: Path) -> None:
    mysql_name, my = mysql_db
    pg_name, pg = pg_db
    (tmp_path / "osiris_connections.yaml").write_text(
        textwrap.dedent(
            f"""
            connections:
              mysql:
                default: {{host: 127.0.0.1, port: 3306, user: root, password: "${{MYSQL_PW}}", database: {mysql_name}}}
              supabase:
                default:
                  host: 127.0.0.1
                  port: 5432
                  user: postgres
                  password: "${{SUPABASE_DB_PASSWORD}}"
                  dbname: {pg_name}
                  sslmode: disable
            """
        )
    )

    def postgres_rows() -> list[tuple[Any, ...]]:
        with pg.cursor() as cur:
            cur.execute("SELECT customer_id, name, country, month, orders, revenue FROM revenue_by_month")
            return normalized(cur.fetchall())

    def mysql_rows() -> list[tuple[Any, ...]]:
        my.execute(MYSQL_RESULT)
        return normalized(my.fetchall())

    first = osiris_run(tmp_path)
    assert first.returncode == 0, first.stderr + first.stdout
    expected = mysql_rows()
    assert len(expected) > 1000
    assert postgres_rows() == expected
    with pg.cursor() as cur:
        cur.execute(
            "SELECT string_agg(a.attname, ',' ORDER BY a.attnum) FROM pg_index i JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = 'revenue_by_month'::regclass AND i.indisprimary"
        )
        assert cur.fetchone()[0] == "customer_id,month"

    # Change the source: a customer and all its orders gone, some orders gone, totals changed, a rename.
    my.execute("DELETE FROM orders WHERE customer_id = 7")
    my.execute("DELETE FROM customers WHERE id = 7")
    my.execute("DELETE FROM orders WHERE id % 11 = 0")
    my.execute("UPDATE orders SET total = total + 1.25 WHERE id % 13 = 0")
    my.execute("UPDATE customers SET name = 'renamed' WHERE id = 8")
    second = osiris_run(tmp_path)
    assert second.returncode == 0, second.stderr + second.stdout
    changed = mysql_rows()
    assert changed != expected
    assert postgres_rows() == changed
    assert all(r[0] != 7 for r in postgres_rows())
