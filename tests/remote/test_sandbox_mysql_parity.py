"""MySQL → DuckDB on the host, with `--sandbox local` and with `--e2b` (stand-in): same rows, same data, same events."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from osiris.remote.plugins import e2b_plugin, local_plugin

pytest.importorskip("osiris.runtime.runner")
pymysql = pytest.importorskip("pymysql")
from osiris.runtime.cli import run_on_host  # noqa: E402
from osiris.runtime.sandbox_api import SandboxOptions  # noqa: E402

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
def mysql_db():
    name = f"osiris_remote_{uuid.uuid4().hex[:8]}"
    con = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    with con.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
        cur.execute(f"CREATE TABLE {name}.customers (id INT PRIMARY KEY, name VARCHAR(50), country CHAR(2))")
        cur.execute(
            f"CREATE TABLE {name}.orders (id INT PRIMARY KEY, customer_id INT, total DECIMAL(10,2), created_at DATETIME)"
        )
        cur.executemany(
            f"INSERT INTO {name}.customers VALUES (%s, %s, %s)",
            [(i, f"c{i}", "DE" if i % 2 else "FR") for i in range(1, 21)],
        )
        cur.executemany(
            f"INSERT INTO {name}.orders VALUES (%s, %s, %s, %s)",
            [(i, 1 + i % 20, f"{i * 1.25:.2f}", f"2024-{1 + i % 12:02d}-15 10:00:00") for i in range(1, 501)],
        )
    yield name
    with con.cursor() as cur:
        cur.execute(f"DROP DATABASE {name}")
    con.close()


def _card(runs: Path) -> tuple[dict, list[tuple]]:
    run_dir = next(runs.glob("*/*"))
    card = json.loads((run_dir / "run_card.json").read_text())
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return card, [(e["event"], e.get("step_id")) for e in events if e.get("origin") != "host"]


def test_mysql_duckdb_parity(mysql_db, workdir, tmp_path, envd):
    (workdir / "pipeline.yaml").write_text(PIPELINE)
    conns = workdir / "osiris_connections.yaml"
    conns.write_text(
        f"connections:\n  mysql:\n    default:\n      host: 127.0.0.1\n      port: 3306\n      user: root\n"
        f"      password: ''\n      database: {mysql_db}\n"
    )
    build = tmp_path / "build"
    subprocess.run(
        [sys.executable, "-m", "osiris.core.cli", "compile", "pipeline.yaml", "-o", str(build)],
        check=True,
        capture_output=True,
        cwd=workdir,
    )
    manifest = next(build.rglob("manifest.yaml"))
    kw = {"connections_file": conns, "verbose": False, "json_output": True}
    assert (
        run_on_host(
            manifest,
            runs_dir=workdir / "host",
            connections_file=str(conns),
            as_json=True,
            verbose=False,
            progress=False,
        )
        == 0
    )
    assert local_plugin(manifest, SandboxOptions(name="local"), runs_dir=workdir / "local", **kw) == 0
    assert e2b_plugin(manifest, SandboxOptions(name="e2b"), runs_dir=workdir / "e2b", **kw) == 0
    cards = [_card(workdir / d) for d in ("host", "local", "e2b")]
    steps = [
        [(s["id"], s["rows_in"], s["rows_out"], [o["data_sha256"] for o in s["outputs"]]) for s in card["steps"]]
        for card, _ in cards
    ]
    assert steps[0] == steps[1] == steps[2]
    assert [s[2] for s in steps[0]] == [20, 500, 60]
    assert cards[0][1] == cards[1][1] == cards[2][1]
