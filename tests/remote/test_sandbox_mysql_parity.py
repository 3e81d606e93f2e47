"""MySQL → DuckDB on the host, with `--sandbox local` and with `--e2b` (stand-in): same rows, same data, same events."""

from __future__ import annotations

import json
from pathlib import Path

import flagship
import pytest
from databases import postgres_connect
from osiris_cli import compile_build
from parity import WHERE, by_step, load_run, run_everywhere

from osiris.remote.plugins import e2b_plugin, local_plugin
from osiris.runtime.cli import run_on_host
from osiris.runtime.sandbox_api import SandboxOptions
from osiris.runtime.versions import differences

pytestmark = pytest.mark.mysql

PIPELINE = """
oml_version: "0.1.0"
name: mysql_parity
steps:
  - id: customers
    component: mysql.extractor
    mode: read
    config: {connection: "@mysql.default", table: customers}
  - id: orders
    component: mysql.extractor
    mode: read
    config: {connection: "@mysql.default", query: "SELECT id, customer_id, total, created_at FROM orders"}
  - id: revenue
    component: duckdb.processor
    mode: transform
    needs: [customers, orders]
    config:
      query: |
        SELECT c.id AS customer_id, c.name, strftime(o.created_at, '%Y-%m') AS month,
               count(*) AS orders, sum(o.total) AS revenue
        FROM customers c JOIN orders o ON o.customer_id = c.id
        GROUP BY ALL ORDER BY customer_id, month
"""


@pytest.fixture
def shop(new_mysql_db):
    """20 customers and 500 orders in a throwaway MariaDB database; its name."""
    db = new_mysql_db("osiris_remote")
    cur = db.cursor()
    cur.execute("CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50), country CHAR(2))")
    cur.execute("CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT, total DECIMAL(10,2), created_at DATETIME)")
    cur.executemany(
        "INSERT INTO customers VALUES (%s, %s, %s)", [(i, f"c{i}", "DE" if i % 2 else "FR") for i in range(1, 21)]
    )
    cur.executemany(
        "INSERT INTO orders VALUES (%s, %s, %s, %s)",
        [(i, 1 + i % 20, f"{i * 1.25:.2f}", f"2024-{1 + i % 12:02d}-15 10:00:00") for i in range(1, 501)],
    )
    return db.name


def _card(run_dir: Path) -> tuple[dict, dict[str | None, list[tuple]]]:
    card, events = load_run(run_dir)
    return card, by_step([(e["event"], e.get("step_id")) for e in events if e.get("origin") != "host"])


def test_mysql_duckdb_parity(shop, workdir, tmp_path, envd):
    (workdir / "pipeline.yaml").write_text(PIPELINE)
    conns = workdir / "osiris_connections.yaml"
    conns.write_text(
        f"connections:\n  mysql:\n    default:\n      host: 127.0.0.1\n      port: 3306\n      user: root\n"
        f"      password: ''\n      database: {shop}\n"
    )
    manifest = compile_build("pipeline.yaml", tmp_path / "build", cwd=workdir)
    runs = run_everywhere(manifest, workdir, conns)
    cards = [_card(runs[w]) for w in WHERE]
    steps = [
        [(s["id"], s["rows_in"], s["rows_out"], [o["data_sha256"] for o in s["outputs"]]) for s in card["steps"]]
        for card, _ in cards
    ]
    assert steps[0] == steps[1] == steps[2]
    assert [s[2] for s in steps[0]] == [20, 500, 60]
    assert cards[0][1] == cards[1][1] == cards[2][1]
    for where in WHERE:
        # The sandboxes install the compiled wheel, so they read through the native row parser too.
        _, events = load_run(runs[where])
        assert {e["path"] for e in events if e["event"] == "extract.plan"} == {"native"}, where


# ---------------------------------------------------------------------------------------------- flagship

TABLE_QUERY = "SELECT customer_id, name, country, month, orders, revenue FROM revenue_by_month ORDER BY 1, 4"
WAREHOUSES = ("host", "local", "e2b")


@pytest.fixture
def flagship_mysql(new_mysql_db):
    """A MariaDB database with the flagship's customers and orders (dropped afterwards)."""
    db = new_mysql_db("osiris_remote_flag")
    flagship.fill_source(db)
    return db.name


@pytest.fixture
def postgres_dbs(new_pg_db):
    """Three PostgreSQL databases standing in for Supabase projects, one per run (dropped afterwards)."""
    return {mode: new_pg_db(f"osiris_remote_{mode}").name for mode in WAREHOUSES}


def _table(dbname: str) -> list[tuple]:
    con = postgres_connect(dbname)
    try:
        with con.cursor() as cur:
            cur.execute(TABLE_QUERY)
            return cur.fetchall()
    finally:
        con.close()


def _flagship_events(events_file: Path) -> list[tuple]:
    """The worker's (or host runner's) events: name, step, and the facts that must not differ."""
    out = []
    for line in events_file.read_text().splitlines():
        e = json.loads(line)
        if e.get("origin") == "host":
            continue
        facts = {k: e[k] for k in ("rows", "rows_written", "rows_out", "channel_used", "write_mode") if k in e}
        out.append((e["event"], e.get("step_id"), tuple(sorted(facts.items()))))
    return out


@pytest.mark.postgres
def test_flagship_mysql_duckdb_supabase_parity(flagship_mysql, postgres_dbs, workdir, tmp_path, envd, monkeypatch):
    """The flagship pipeline on the host, in `--sandbox local` and in `--e2b` (stand-in), each into its own
    Postgres database: same rows and data hashes per step, same final table, same step events."""
    monkeypatch.setenv("MYSQL_PW", "")
    monkeypatch.setenv("SUPABASE_DB_PASSWORD", "not-checked-by-trust-auth")
    manifest = compile_build(flagship.EXAMPLE, tmp_path / "build", cwd=workdir)
    conns = {
        mode: flagship.write_connections(
            workdir / f"connections_{mode}.yaml", mysql_database=flagship_mysql, pg_database=pg_name
        )
        for mode, pg_name in postgres_dbs.items()
    }
    assert run_on_host(manifest, runs_dir=workdir / "host", connections_file=conns["host"]).exit_code == 0
    for where, plugin in (("local", local_plugin), ("e2b", e2b_plugin)):
        opts = SandboxOptions(name=where)
        assert plugin(manifest, opts, connections_file=conns[where], runs_dir=workdir / where).exit_code == 0

    run_dirs = {mode: next((workdir / mode).glob("*/*")) for mode in ("host", "local", "e2b")}
    cards = {mode: json.loads((d / "run_card.json").read_text()) for mode, d in run_dirs.items()}
    steps = {
        mode: [
            (s["id"], s["status"], s["rows_in"], s["rows_out"], [o["data_sha256"] for o in s["outputs"]])
            for s in card["steps"]
        ]
        for mode, card in cards.items()
    }
    assert steps["host"] == steps["local"] == steps["e2b"]
    assert [s[0] for s in steps["host"]] == ["customers", "orders", "revenue", "load"]
    assert all(s[1] == "succeeded" for s in steps["host"])
    assert steps["host"][0][3] == 200 and steps["host"][2][3] > 1000

    tables = {mode: _table(pg_name) for mode, pg_name in postgres_dbs.items()}
    assert len(tables["host"]) == steps["host"][2][3]
    assert tables["host"] == tables["local"] == tables["e2b"]

    events = {mode: _flagship_events(d / "events.jsonl") for mode, d in run_dirs.items()}
    assert by_step(events["host"]) == by_step(events["local"]) == by_step(events["e2b"])
    names = [e[0] for e in events["host"]]
    assert "write.complete" in names and "ddl_succeeded" in names
    for mode in ("local", "e2b"):
        verified = [
            json.loads(line)
            for line in (run_dirs[mode] / "events.jsonl").read_text().splitlines()
            if '"driver_file_verified"' in line
        ]
        assert {e["distribution"] for e in verified} >= {"osiris-drivers-sql", "osiris-drivers-supabase"}
        assert all(e["sha256_match"] for e in verified)
        # Versions on both sides: every distribution used and the data libraries the flagship loads; any
        # difference is in the card and in one `sandbox_versions_differ` event, never silent.
        card, host_env = cards[mode], cards[mode]["sandbox"]["host_environment"]
        assert (
            card["environment"]["distributions"]
            == host_env["distributions"]
            == cards["host"]["environment"]["distributions"]
        )
        assert {"osiris-drivers-sql", "osiris-drivers-supabase"} <= set(host_env["distributions"])
        for env in (card["environment"], host_env):
            assert all(env["libraries"][lib] for lib in ("pyarrow", "duckdb", "pymysql", "psycopg2")), env
        assert card["sandbox"]["version_differences"] == differences(host_env, card["environment"])
        differ = [
            e
            for e in map(json.loads, (run_dirs[mode] / "events.jsonl").read_text().splitlines())
            if e["event"] == "sandbox_versions_differ"
        ]
        assert [e["differences"] for e in differ] == (
            [card["sandbox"]["version_differences"]] if card["sandbox"]["version_differences"] else []
        )
