"""The live display of `osiris run` as a person sees it: in a terminal, in a log, on a dumb terminal.

A MySQL table read gets a bar with a percentage from the server's row estimate; steps without a
total get none; without a terminal, or with `TERM=dumb`, the same facts come as plain lines with
no escape codes. The row estimate itself is checked against every shape of read it depends on.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from osiris_cli import ANSI_ESCAPE, run_osiris, run_osiris_in_terminal, terminal_lines

from osiris.runtime.testing import RecordingContext

pytestmark = pytest.mark.mysql

ROWS = 20_000


@pytest.fixture
def project(new_mysql_db, tmp_path: Path) -> tuple[Path, str]:
    """A pipeline reading a 20,000-row MariaDB table (statistics fresh) and aggregating it in DuckDB."""
    db = new_mysql_db("osiris_test_progress")
    cur = db.cursor()
    cur.execute("CREATE TABLE events (id INT PRIMARY KEY, kind VARCHAR(10), amount DECIMAL(10,2))")
    cur.execute(f"INSERT INTO events SELECT seq, ELT(1 + seq % 3, 'a', 'b', 'c'), seq / 100 FROM seq_1_to_{ROWS}")
    cur.execute("ANALYZE TABLE events")
    cur.fetchall()
    (tmp_path / "osiris_connections.yaml").write_text(
        textwrap.dedent(
            f"""
            connections:
              mysql:
                default: {{host: 127.0.0.1, port: 3306, user: root, password: "", database: {db.name}}}
            """
        )
    )
    (tmp_path / "pipeline.yaml").write_text(
        textwrap.dedent(
            """
            oml_version: "0.1.0"
            name: progress_demo
            steps:
              - id: events
                component: mysql.extractor
                config: {connection: "@mysql.default", table: events, batch_size: 500}
              - id: by_kind
                component: duckdb.processor
                needs: [events]
                config:
                  query: SELECT kind, count(*) AS n, sum(amount) AS total FROM input_df GROUP BY kind
            """
        )
    )
    return tmp_path, db.name


def _server_estimate(database: str, admin) -> int:
    cur = admin().cursor()
    cur.execute(
        "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'events'", [database]
    )
    return int(cur.fetchone()[0])


def _progress_events(run_root: Path) -> list[dict]:
    run_dir = next((run_root / "runs" / "progress_demo").iterdir())
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return [e for e in events if e["event"] == "step_progress"]


def test_a_terminal_shows_a_percentage_for_a_mysql_table_and_none_without_a_total(project, mysql_admin) -> None:
    root, database = project
    code, received = run_osiris_in_terminal("run", "pipeline.yaml", cwd=root)
    assert code == 0, received
    assert ANSI_ESCAPE in received, "a terminal gets the live display"
    lines = terminal_lines(received)
    extract = [line for line in lines if re.match(r"^\W*events\s", line)]
    transform = [line for line in lines if re.match(r"^\W*by_kind\s", line)]
    assert any(re.search(r"\b\d{1,3}%", line) for line in extract), extract
    assert any(f"{ROWS:,} rows" in line and "rows/s" in line for line in extract), extract
    assert transform and not any("%" in line for line in transform), "a transform has no total, so no percentage"
    assert "run succeeded" in received

    progress = [e for e in _progress_events(root) if e["step_id"] == "events"]
    estimate = _server_estimate(database, mysql_admin)  # InnoDB's is close to, not always, the count
    assert abs(estimate - ROWS) < ROWS * 0.2
    assert progress and all(e["total_rows"] == estimate for e in progress), "the server's estimate is the total"
    assert any(e["rows"] > 0 for e in progress), "the first rows are an event at once"
    assert max(e["rows"] for e in progress) <= ROWS and all(e["bytes"] >= 0 for e in progress)


@pytest.mark.parametrize("how", ["pipe", "dumb terminal"])
def test_plain_lines_without_a_terminal_or_on_a_dumb_one(project, how: str) -> None:
    root, _ = project
    if how == "pipe":
        proc = run_osiris("run", "pipeline.yaml", cwd=root)
        code, shown = proc.returncode, proc.stderr
    else:
        code, shown = run_osiris_in_terminal("run", "pipeline.yaml", cwd=root, term="dumb")
    assert code == 0, shown
    assert ANSI_ESCAPE not in shown and "\r\x1b" not in shown, "no escape codes"
    assert "  events: started (mysql.extractor)" in shown
    assert re.search(rf"  events: done, {ROWS:,} rows in \d+\.\d\d s", shown), shown
    assert "  by_kind: done, 3 rows" in shown


def test_json_and_no_progress_print_no_display(project) -> None:
    root, _ = project
    quiet = run_osiris("run", "pipeline.yaml", "--no-progress", cwd=root)
    assert quiet.returncode == 0 and "started" not in quiet.stderr
    code, received = run_osiris_in_terminal("run", "pipeline.yaml", "--json", cwd=root)
    assert code == 0 and "started" not in received and ANSI_ESCAPE not in received


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"table": "events"}, "estimate"),
        ({"table": "{db}.events"}, "estimate"),
        ({"table": "events", "limit": 1234}, 1234),
        ({"table": "events", "limit": ROWS * 2}, "estimate"),
        ({"table": "events", "where": "kind = 'a'"}, None),
        ({"query": "SELECT * FROM events"}, None),
        ({"table": "no_such_view_stats", "columns": None}, "error"),
    ],
    ids=["table", "qualified", "limit-under", "limit-over", "where", "query", "missing-table"],
)
def test_the_extractor_reports_the_row_estimate_of_whole_table_reads_only(
    project, mysql_admin, tmp_path, config, expected
):
    """Every read shape: a whole table (plain or qualified) has the server's estimate, capped by `limit`;
    a `where` or a `query` has none; a missing table still fails as before (the estimate is no error)."""
    from osiris.drivers.sql.mysql_extractor import MySQLExtractor

    _, database = project
    if expected == "estimate":
        expected = _server_estimate(database, mysql_admin)
    config = {k: (v.format(db=database) if isinstance(v, str) else v) for k, v in config.items() if v is not None}
    conn = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": database}
    ctx = RecordingContext("events", tmp_path)
    run = lambda: MySQLExtractor().run(  # noqa: E731
        step_id="events", config={**config, "resolved_connection": conn}, inputs={}, ctx=ctx
    )
    if expected == "error":
        with pytest.raises(Exception, match="no_such_view_stats"):
            run()
        return
    rows = run()["df"].read_all().num_rows
    totals = [rows_total for rows_total, _ in ctx.progress_totals]
    assert totals == ([] if expected is None else [expected])
    assert ctx.event("extract.plan")["estimated_rows"] == expected
    assert sum(ctx.progress_reports) == rows and sum(ctx.progress_bytes) > 0
