"""The flagship pipeline, docs/examples/mysql_duckdb_supabase.yaml, end to end with `osiris run`:
MySQL (MariaDB) -> DuckDB -> supabase.writer into the real PostgreSQL, then again in replace
mode after rows were deleted and changed in MySQL: Postgres equals the new MySQL result."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import flagship
import pytest
from osiris_cli import run_osiris

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]

MYSQL_RESULT = """
SELECT c.id, c.name, c.country, DATE_FORMAT(o.created_at, '%Y-%m') AS month, COUNT(*), SUM(o.total)
FROM customers c JOIN orders o ON o.customer_id = c.id
WHERE o.created_at >= '2020-01-01'
GROUP BY c.id, c.name, c.country, month
"""


@pytest.fixture
def shop(new_mysql_db: Any) -> Any:
    """A MariaDB database with the flagship's customers and orders (dropped afterwards)."""
    db = new_mysql_db("osiris_supabase_e2e")
    return db.name, flagship.fill_source(db)


@pytest.fixture
def warehouse(new_pg_db: Any) -> Any:
    """A PostgreSQL database standing in for the Supabase project (dropped afterwards)."""
    db = new_pg_db("osiris_supabase_e2e")
    return db.name, db.connect()


def osiris_run(cwd: Path) -> subprocess.CompletedProcess[str]:
    """`osiris run` of the flagship example in `cwd` (which holds osiris_connections.yaml)."""
    return run_osiris("run", flagship.EXAMPLE, "--json", cwd=cwd, env=flagship.ENV)


def normalized(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows as (customer_id, name, country, month, orders, revenue) with comparable types."""
    return sorted((int(a), b, c, d, int(n), Decimal(r)) for a, b, c, d, n, r in rows)


def test_flagship_pipeline_end_to_end_and_replace_after_changes(shop: Any, warehouse: Any, tmp_path: Path) -> None:
    mysql_name, my = shop
    pg_name, pg = warehouse
    flagship.write_connections(tmp_path / "osiris_connections.yaml", mysql_database=mysql_name, pg_database=pg_name)

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
