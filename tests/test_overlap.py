"""Overlapped hand-off on the host: `supabase.writer` reads the MariaDB extract's batches as they are written.

Each test runs the real `osiris run` in a subprocess against the real servers. The source has
`ROWS` rows read in batches of `BATCH` (so `ROWS / BATCH` batches, many more than the queue holds);
the checks are on data (rows, `data_sha256`), run cards and the target table, never on timings.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import flagship
import pytest
from osiris_cli import run_osiris, start_osiris
from stops import events, wait_for

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]

ROWS = 20000
BATCH = 500
OLD = [(1, "old one", 0), (2, "old two", 0), (99999, "old only", 0)]


@pytest.fixture
def project(new_mysql_db: Any, new_pg_db: Any, tmp_path: Path) -> Any:
    """`items` (ROWS rows) in MariaDB, an empty PostgreSQL database, a connections file in `tmp_path`."""
    source, target = new_mysql_db("osiris_overlap"), new_pg_db("osiris_overlap")
    with source.cursor() as cur:
        cur.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), amount DECIMAL(12,2))")
        cur.execute(f"INSERT INTO items SELECT seq, CONCAT('item ', seq), seq / 7 FROM seq_1_to_{ROWS}")
        cur.execute("CREATE TABLE flag (v INT)")
        cur.execute("INSERT INTO flag VALUES (1)")
    flagship.write_connections(
        tmp_path / "osiris_connections.yaml", mysql_database=source.name, pg_database=target.name
    )
    return source, target, tmp_path


def pipeline(
    table: str, *, query: str = "SELECT id, name, amount FROM items ORDER BY id", mode: str = "replace"
) -> str:
    return f"""
oml_version: "0.1.0"
name: overlap
steps:
  - id: items
    component: mysql.extractor
    mode: read
    config:
      connection: "@mysql.default"
      query: "{query}"
      batch_size: {BATCH}
  - id: load
    component: supabase.writer
    mode: write
    needs: [items]
    config:
      connection: "@supabase.default"
      table: {table}
      write_mode: {mode}
      primary_key: [id]
      create_if_missing: true
"""


def run(tmp_path: Path, text: str, name: str, **env: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`osiris run` of `text` (as `name`.yaml); the process and its run card."""
    (tmp_path / f"{name}.yaml").write_text(text)
    done = run_osiris("run", f"{name}.yaml", "--json", cwd=tmp_path, env={**flagship.ENV, **env})
    cards = sorted((tmp_path / "runs").glob("overlap/*/run_card.json"), key=lambda p: p.stat().st_mtime)
    return done, json.loads(cards[-1].read_text())


def steps(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in card["steps"]}


def table_rows(target: Any, table: str) -> list[tuple[Any, ...]]:
    with target.connect().cursor() as cur:
        cur.execute(f"SELECT id, name, amount FROM {table} ORDER BY id")
        return cur.fetchall()


def test_an_overlapped_load_equals_a_sequential_one(project: Any) -> None:
    _, target, tmp_path = project
    done, card = run(tmp_path, pipeline("overlapped"), "a")
    assert done.returncode == 0, done.stderr
    seq_done, seq_card = run(tmp_path, pipeline("sequential"), "b", OSIRIS_OVERLAP="0")
    assert seq_done.returncode == 0, seq_done.stderr

    on, off = steps(card), steps(seq_card)
    # The extract's artifact and its hash do not change; the load read every batch live.
    assert on["items"]["outputs"][0]["data_sha256"] == off["items"]["outputs"][0]["data_sha256"]
    assert on["items"]["rows_out"] == off["items"]["rows_out"] == ROWS
    assert on["load"]["rows_in"] == on["load"]["rows_out"] == ROWS
    overlap = on["load"]["overlap"]
    assert overlap["upstream"] == "items" and overlap["streamed"] is True
    assert overlap["rows_streamed"] == ROWS and overlap["batches_streamed"] == ROWS // BATCH
    assert "overlap" not in off["load"]
    assert table_rows(target, "overlapped") == table_rows(target, "sequential")
    assert len(table_rows(target, "overlapped")) == ROWS


def test_a_slow_writer_holds_the_extract_at_the_queue_bound(project: Any) -> None:
    _, target, tmp_path = project
    with target.connect().cursor() as cur:
        cur.execute("CREATE TABLE slow (id integer PRIMARY KEY, name text, amount numeric(12,2))")
    # The load waits for a lock on its table before it reads a batch: the extract may only run ahead
    # by what the queue holds, then it waits.
    lock = target.connect()
    lock.autocommit = False
    with lock.cursor() as cur:
        cur.execute("LOCK TABLE slow IN ACCESS EXCLUSIVE MODE")
    (tmp_path / "slow.yaml").write_text(pipeline("slow"))

    proc = start_osiris("run", "slow.yaml", cwd=tmp_path, env=flagship.ENV)
    try:

        def load_waits() -> bool:
            with target.connect().cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                return cur.fetchone()[0] > 0

        wait_for("the load to wait for its table", load_waits)
    finally:
        lock.rollback()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    card = json.loads(next((tmp_path / "runs").glob("overlap/*/run_card.json")).read_text())
    overlap = steps(card)["load"]["overlap"]
    bound = overlap["queue_bound"]["batches"]
    assert overlap["streamed"] is True and overlap["batches_streamed"] == ROWS // BATCH > 4 * bound
    assert 1 <= overlap["queue_peak"]["batches"] <= bound
    assert overlap["upstream_waits"] >= 1  # it waited for the writer instead of buffering the table
    assert len(table_rows(target, "slow")) == ROWS


def test_an_extract_failing_mid_stream_leaves_the_target_unchanged(project: Any) -> None:
    _, target, tmp_path = project
    with target.connect().cursor() as cur:
        cur.execute("CREATE TABLE kept (id integer PRIMARY KEY, name text, amount numeric(12,2))")
        cur.executemany("INSERT INTO kept VALUES (%s, %s, %s)", OLD)
    # Row 15,000 fails on the server (a subquery with two rows) after 29 batches were sent.
    query = "SELECT id, name, IF(id = 15000, (SELECT 1 UNION SELECT 2), amount) AS amount FROM items ORDER BY id"
    done, card = run(tmp_path, pipeline("kept", query=query), "fails")
    assert done.returncode == 1, done.stderr
    by_id = steps(card)
    assert by_id["items"]["status"] == "failed"
    assert by_id["load"]["status"] == "not_run"  # as when it had not started: the extract failed first
    assert by_id["load"]["overlap"]["rows_streamed"] > 0  # it had read part of the stream
    assert card["error"]["step"] == "items"
    with target.connect().cursor() as cur:
        cur.execute("SELECT id, name, amount FROM kept ORDER BY id")
        assert [(i, n, int(a)) for i, n, a in cur.fetchall()] == OLD
        cur.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE '%osiris_stage%'")
        assert cur.fetchone()[0] == 0


def test_a_failing_writer_stops_the_extract(project: Any) -> None:
    _, _, tmp_path = project
    # The CSV writer refuses its `columns` once it knows the input's schema, before it reads a batch:
    # the extract, with far more batches than the queue holds, is still producing and must stop.
    text = pipeline("unused").split("  - id: load")[0] + (
        "  - id: load\n"
        "    component: filesystem.csv_writer\n"
        "    mode: write\n"
        "    needs: [items]\n"
        "    config: {path: out.csv, columns: [id, missing]}\n"
    )
    done, card = run(tmp_path, text, "csv")
    assert done.returncode == 1, done.stderr
    by_id = steps(card)
    assert by_id["load"]["status"] == "failed" and "missing" in by_id["load"]["error"]["message"]
    assert by_id["load"]["overlap"]["upstream"] == "items"
    assert by_id["items"]["status"] == "failed"
    assert by_id["items"]["error"]["type"] == "ConsumerFailed" and "`load`" in by_id["items"]["error"]["message"]
    # The extract stopped before its end: no artifact, and the run's error is the writer's.
    assert by_id["items"]["outputs"] == []
    assert not list((tmp_path / "runs").glob("overlap/*/artifacts/items/*.parquet"))
    assert not list((tmp_path / "runs").glob("overlap/*/artifacts/items/.*.tmp"))
    assert card["error"]["step"] == "load"
    assert not (tmp_path / "out.csv").exists()


def test_a_transient_extract_failure_mid_stream_retries_and_loads_everything(project: Any) -> None:
    source, target, tmp_path = project
    # The first read stalls at row 12,000 while `flag` says so; the test then kills that connection
    # (a lost connection: transient), so the extract retries from the start, without the stall.
    query = (
        "SELECT id, name, amount, SLEEP(IF(id = 12000 AND (SELECT v FROM flag) = 1, 60, 0)) AS s FROM items ORDER BY id"
    )
    (tmp_path / "retry.yaml").write_text(pipeline("retried", query=query))

    proc = start_osiris("run", "retry.yaml", cwd=tmp_path, env=flagship.ENV)
    admin = source.connect()

    def sleeping() -> int | None:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT id FROM information_schema.processlist WHERE info LIKE 'SELECT id, name, amount, SLEEP%'"
            )
            found = cur.fetchone()
            return found[0] if found else None

    query_id = wait_for("the extract to stall", sleeping)
    with admin.cursor() as cur:
        cur.execute("UPDATE flag SET v = 0")
        cur.execute(f"KILL {int(query_id)}")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    card = json.loads(next((tmp_path / "runs").glob("overlap/*/run_card.json")).read_text())
    run_dir = next((tmp_path / "runs").glob("overlap/*"))
    names = [e["event"] for e in events(run_dir)]
    assert "step_retry" in names and "step_restarted" in names
    by_id = steps(card)
    assert by_id["items"]["status"] == by_id["load"]["status"] == "succeeded"
    assert by_id["load"]["rows_out"] == ROWS
    with target.connect().cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT id) FROM retried")
        assert cur.fetchone() == (ROWS, ROWS)


@pytest.mark.parametrize("where", ["host", "sandbox"])
def test_sigterm_during_an_overlapped_run_stops_both_steps_and_rolls_back(project: Any, where: str) -> None:
    source, target, tmp_path = project
    with target.connect().cursor() as cur:
        cur.execute("CREATE TABLE kept (id integer PRIMARY KEY, name text, amount numeric(12,2), s bigint)")
        cur.executemany("INSERT INTO kept (id, name, amount) VALUES (%s, %s, %s)", OLD)
    # The extract stalls in the database at row 12,000, while the load has part of the rows.
    # (The query names this test's database, so a query an earlier run left sleeping is not taken for it.)
    query = (
        f"SELECT id, name, amount, SLEEP(IF(id = 12000, 60, 0)) AS s FROM items WHERE '{source.name}' <> '' ORDER BY id"
    )
    (tmp_path / "stop.yaml").write_text(pipeline("kept", query=query))
    extra = ["--sandbox", "local"] if where == "sandbox" else []
    proc = start_osiris("run", "stop.yaml", *extra, cwd=tmp_path, env={**flagship.ENV, "PYTHONFAULTHANDLER": "1"})
    admin = source.connect()

    def stalled() -> bool:
        with admin.cursor() as cur:
            cur.execute(
                f"SELECT count(*) FROM information_schema.processlist WHERE info LIKE 'SELECT id, name, amount, SLEEP%{source.name}%'"
            )
            return cur.fetchone()[0] > 0

    wait_for("the extract to stall", stalled, timeout=300)
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"the stopped run did not exit:\n{err[-20000:]}") from None
    assert proc.returncode == 143, err
    card = json.loads(next((tmp_path / "runs").glob("overlap/*/run_card.json")).read_text())
    assert card["status"] == "interrupted" and card["interrupted"]["signal"] == "SIGTERM"
    assert {s["id"]: s["status"] for s in card["steps"]} == {"items": "interrupted", "load": "interrupted"}
    assert card["interrupted"]["step"] in ("items", "load")
    with target.connect().cursor() as cur:
        cur.execute("SELECT id, name, amount FROM kept ORDER BY id")
        assert [(i, n, int(a)) for i, n, a in cur.fetchall()] == OLD
        cur.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE '%osiris_stage%'")
        assert cur.fetchone()[0] == 0
    assert not list((tmp_path / "runs").glob("overlap/*/artifacts/*/.*.tmp"))
    assert not list((tmp_path / "runs").glob("overlap/*/artifacts/items/output.parquet"))
