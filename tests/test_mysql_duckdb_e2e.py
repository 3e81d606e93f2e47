"""The flagship shape without Supabase: MySQL -> DuckDB (join + aggregate) -> duckdb.writer,
run with `osiris run` against the real MariaDB, equals the same SQL run in MariaDB itself."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from osiris_cli import run_osiris

pytestmark = pytest.mark.mysql

SQL = """
SELECT c.country, COUNT(*) AS orders, SUM(o.total) AS revenue, MAX(o.created_at) AS last_order
FROM customers c JOIN orders o ON o.customer_id = c.id
WHERE o.total > 0
GROUP BY c.country
ORDER BY c.country
"""


@pytest.fixture
def shop(new_mysql_db):
    """A MariaDB database with customers and orders (dropped afterwards)."""
    db = new_mysql_db("osiris_test_e2e")
    cur = db.cursor()
    cur.execute("CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50), country CHAR(2))")
    cur.execute(
        "CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT, total DECIMAL(12,2), created_at DATETIME(3))"
    )
    cur.execute(
        "INSERT INTO customers SELECT seq, CONCAT('customer ', seq), ELT(1 + seq % 5, 'DE', 'FR', 'GB', 'NL', 'US') "
        "FROM seq_1_to_300"
    )
    cur.execute(
        "INSERT INTO orders SELECT seq, 1 + seq % 300, (seq % 997) / 4 - 20, "
        "TIMESTAMP('2026-01-01') + INTERVAL seq MINUTE + INTERVAL seq % 1000 * 1000 MICROSECOND "
        "FROM seq_1_to_20000"
    )
    return db.name, cur


def test_mysql_duckdb_pipeline_equals_the_same_sql_in_mariadb(shop, tmp_path: Path) -> None:
    database, cur = shop
    (tmp_path / "osiris_connections.yaml").write_text(
        textwrap.dedent(
            f"""
            connections:
              mysql:
                default: {{host: 127.0.0.1, port: 3306, user: root, password: "${{SHOP_PW}}", database: {database}}}
            """
        )
    )
    query = textwrap.indent(SQL.strip(), " " * 8)
    (tmp_path / "pipeline.yaml").write_text(
        f"""
oml_version: "0.1.0"
name: shop_revenue
steps:
  - id: customers
    component: mysql.extractor
    config: {{connection: "@mysql.default", table: customers, batch_size: 100}}
  - id: orders
    component: mysql.extractor
    config: {{connection: "@mysql.default", query: "SELECT * FROM orders", batch_size: 1000}}
  - id: revenue
    component: duckdb.processor
    needs: [customers, orders]
    config:
      query: |
{query}
  - id: save
    component: duckdb.writer
    needs: [revenue]
    config: {{path: warehouse.duckdb, table: revenue, write_mode: replace}}
"""
    )
    proc = run_osiris("run", "pipeline.yaml", "--json", cwd=tmp_path, env={"SHOP_PW": ""})
    assert proc.returncode == 0, proc.stderr + proc.stdout

    import duckdb

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        got = con.execute("SELECT * FROM revenue ORDER BY country").fetchall()
    cur.execute(SQL)
    expected = cur.fetchall()
    assert len(expected) == 5
    assert [(c, n, Decimal(r), t) for c, n, r, t in got] == [(c, n, Decimal(r), t) for c, n, r, t in expected]
