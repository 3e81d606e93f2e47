"""Incremental loading against the real MariaDB and PostgreSQL: no row lost, none duplicated.

Every test changes the source between runs and checks the target equals the source after each run,
and that the watermark stored in the destination moved (or did not) as the rule says.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from databases import postgres_connect
from incremental_kit import Incremental, step, window

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]

SEED = [
    "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40), updated_at DATETIME(6) NULL, KEY (updated_at))",
    "INSERT INTO items VALUES (1, 'a', '2024-01-01 10:00:00'), (2, 'b', '2024-01-01 11:00:00'), "
    "(3, 'c', '2024-01-01 12:00:00.250000')",
]


@pytest.fixture
def inc(new_mysql_db: Any, new_pg_db: Any, tmp_path: Path) -> Incremental:
    """The pipeline over a fresh `items` table (three rows, a DATETIME(6) cursor) and an empty target."""
    sync = Incremental(new_mysql_db("osiris_inc"), new_pg_db("osiris_inc"), tmp_path / "work")
    sync.mysql(*SEED)
    return sync


def wm(value: str, kind: str = "datetime") -> dict[str, str]:
    return {"type": kind, "value": value}


def test_inserts_and_updates_arrive_and_a_rerun_changes_nothing(inc: Incremental) -> None:
    inc.incremental = {"cursor": "updated_at", "lag": "30 minutes"}
    first = inc.run()
    assert inc.target() == inc.source()
    assert window(first)["low"] is None and window(first)["high"] == wm("2024-01-01 12:00:00.250000")
    assert inc.state() == {"watermark": wm("2024-01-01 12:00:00.250000"), "version": 1}

    inc.mysql(
        "INSERT INTO items VALUES (4, 'd', '2024-01-01 13:00:00'), (5, 'e', '2024-01-01 13:00:00')",
        "UPDATE items SET name = 'B', updated_at = '2024-01-01 12:30:00' WHERE id = 2",
    )
    second = inc.run()
    assert inc.target() == inc.source()
    # read: from watermark - lag (11:30:00.25) up to the new MAX; rows 2, 3, 4, 5
    assert window(second)["low"] == wm("2024-01-01 11:30:00.250000")
    assert step(second, "extract")["rows_out"] == 4
    assert inc.state() == {"watermark": wm("2024-01-01 13:00:00.000000"), "version": 2}

    third = inc.run()  # nothing changed: only the lag window is read, and nothing is written
    assert window(third)["low"] == wm("2024-01-01 12:30:00.000000")
    assert step(third, "extract")["rows_out"] == 3  # rows 2, 4, 5 (cursor >= 12:30)
    assert step(third, "load")["facts"]["rows_written"] == 0
    assert inc.target() == inc.source()
    load = step(third, "load")["facts"]["incremental"][0]
    assert load["watermark_before"] == load["watermark_after"] == wm("2024-01-01 13:00:00.000000")


def test_rows_sharing_the_boundary_value_are_loaded_once(inc: Incremental) -> None:
    inc.incremental = {"cursor": "updated_at", "lag": 0}
    inc.run()
    # Rows committed later with exactly the watermark's value: `>=` reads them, the upsert lands them once.
    inc.mysql("INSERT INTO items VALUES (6, 'f', '2024-01-01 12:00:00.250000'), (7, 'g', '2024-01-01 12:00:00.250000')")
    card = inc.run()
    assert step(card, "extract")["rows_out"] == 3  # 3, 6, 7
    assert inc.target() == inc.source()
    card = inc.run()
    assert step(card, "load")["facts"]["rows_written"] == 0 and inc.target() == inc.source()


def test_a_late_commit_is_loaded_when_the_lag_covers_it(inc: Incremental) -> None:
    """A transaction opened before the extract writes an older cursor value and commits after it."""
    from databases import mysql_connect

    for lag, arrives in (("3 hours", True), (0, False)):
        inc.mysql("DELETE FROM items WHERE id >= 10")
        inc.incremental = {"cursor": "updated_at", "lag": lag}
        inc.run(full_refresh=True)
        late = mysql_connect(inc.src.name)
        late.autocommit(False)
        with late.cursor() as cur:
            cur.execute("INSERT INTO items VALUES (10, 'late', '2024-01-01 11:59:00')")  # older than the watermark
        inc.mysql("INSERT INTO items VALUES (11, 'new', '2024-01-01 14:00:00')")
        inc.run()  # reads up to 14:00; row 10 is not committed yet
        assert 10 not in {r[0] for r in inc.target()}
        late.commit()
        late.close()
        card = inc.run()
        loaded = 10 in {r[0] for r in inc.target()}
        assert loaded is arrives, (lag, window(card))
        if arrives:
            assert inc.target() == inc.source()
        else:  # the documented loss with `lag: 0`: the row's cursor is behind the watermark for good
            assert window(card)["low"] == wm("2024-01-01 14:00:00.000000")
            assert [r for r in inc.source() if r[0] != 10] == inc.target()


@pytest.mark.parametrize("policy", ["error", "include", "skip"])
def test_null_cursors_follow_the_policy(inc: Incremental, policy: str) -> None:
    inc.mysql("INSERT INTO items VALUES (8, 'null cursor', NULL)")
    inc.incremental = {"cursor": "updated_at", "on_null_cursor": policy}
    if policy == "error":
        card = inc.run(expect=1)
        assert "NULL cursor" in card["error"]["message"] and "on_null_cursor" in card["error"]["message"]
        assert inc.target() == [] and inc.state() is None
        return
    inc.run()
    inc.mysql("UPDATE items SET name = 'changed' WHERE id = 8")  # a NULL-cursor row changes
    card = inc.run()
    ids = {r[0] for r in inc.target()}
    if policy == "include":
        assert inc.target() == inc.source()  # read every run, so its change arrived
        assert step(card, "extract")["rows_out"] == 2  # row 3 (the boundary) and row 8
    else:
        assert 8 not in ids and inc.target() == [r for r in inc.source() if r[0] != 8]


CURSOR_TYPES = [
    ("DATETIME(6)", "'2024-01-01 10:00:00.000001'", "'2024-01-01 10:00:00.000002'", "datetime", "1 second"),
    ("TIMESTAMP", "'2024-01-01 10:00:00'", "'2024-01-01 10:00:01'", "datetime", "1 second"),
    ("DATE", "'2024-01-01'", "'2024-01-02'", "date", "1 day"),
    ("INT", "-5", "7", "int", 1),
    ("BIGINT UNSIGNED", "18446744073709551610", "18446744073709551615", "int", 2),
]


@pytest.mark.parametrize(("sql_type", "old", "new", "kind", "lag"), CURSOR_TYPES, ids=[c[0] for c in CURSOR_TYPES])
def test_cursor_types(new_mysql_db: Any, new_pg_db: Any, tmp_path: Path, sql_type, old, new, kind, lag) -> None:
    sync = Incremental(new_mysql_db("osiris_inc"), new_pg_db("osiris_inc"), tmp_path / "work", column="c")
    sync.mysql(
        f"CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(10), c {sql_type} NOT NULL)",
        f"INSERT INTO items VALUES (1, 'x', {old}), (2, 'y', {old})",
    )
    sync.incremental = {"cursor": "c", "lag": lag}
    sync.run()
    assert sync.target() == sync.source()
    sync.mysql(f"INSERT INTO items VALUES (3, 'z', {new})", f"UPDATE items SET name = 'Y', c = {new} WHERE id = 2")
    card = sync.run()
    assert sync.target() == sync.source()
    high = window(card)["high"]
    assert high["type"] == kind
    stored = sync.state()["watermark"]
    assert stored == high
    expected = new.strip("'")
    if kind == "datetime" and "." not in expected:
        expected += ".000000"
    assert stored["value"] == expected  # exact: microseconds, 64-bit unsigned
    assert step(sync.run(), "load")["facts"]["rows_written"] == 0


def test_hard_deletes_are_reconciled_in_the_same_transaction(inc: Incremental) -> None:
    inc.incremental = {"cursor": "updated_at", "deletes": "reconcile"}
    inc.run()
    inc.mysql("DELETE FROM items WHERE id IN (1, 3)", "INSERT INTO items VALUES (9, 'i', '2024-02-01 00:00:00')")
    card = inc.run()
    assert inc.target() == inc.source()
    assert step(card, "load")["facts"]["rows_deleted"] == 2
    assert step(card, "load")["facts"]["incremental"][0]["rows_deleted"] == 2
    inc.mysql("DELETE FROM items")  # everything gone: the target follows, the watermark stays
    inc.run()
    assert inc.target() == [] and inc.state()["watermark"] == wm("2024-02-01 00:00:00.000000")


def test_soft_deletes_remove_flagged_rows(inc: Incremental) -> None:
    inc.mysql("ALTER TABLE items ADD COLUMN deleted_at DATETIME NULL")
    inc.incremental = {"cursor": "updated_at", "deletes": {"soft": "deleted_at"}}
    inc.run()
    inc.mysql("UPDATE items SET deleted_at = '2024-03-01', updated_at = '2024-03-01' WHERE id = 2")
    card = inc.run()
    assert [r[0] for r in inc.target()] == [1, 3]
    assert step(card, "load")["facts"]["rows_deleted"] == 1


def test_full_refresh_replaces_and_sets_the_watermark_anew(inc: Incremental) -> None:
    inc.run()
    with inc.pg.cursor() as cur:
        cur.execute("INSERT INTO items (id, name) VALUES (99, 'stray')")
    inc.mysql("UPDATE items SET name = 'older', updated_at = '2023-01-01' WHERE id = 1")  # behind the watermark
    card = inc.run(full_refresh=True)
    assert window(card)["low"] is None and window(card)["full_refresh"] is True
    assert inc.target() == inc.source()
    assert inc.state()["version"] == 2


def test_a_first_load_and_a_full_refresh_copy_straight_into_the_table(inc: Incremental) -> None:
    """No staging and no merge where there is nothing to merge with: the rows and the watermark in one COPY's transaction."""
    first = inc.run()
    assert step(first, "load")["facts"]["strategy"] == "direct"
    assert inc.target() == inc.source() and inc.state()["version"] == 1
    inc.mysql("UPDATE items SET name = 'B', updated_at = '2024-01-02' WHERE id = 2")
    second = inc.run()
    assert step(second, "load")["facts"]["strategy"] != "direct"  # rows are there: merged through staging
    assert inc.target() == inc.source() and inc.state()["version"] == 2
    refresh = inc.run(full_refresh=True)
    assert step(refresh, "load")["facts"]["strategy"] == "direct_swap"
    assert inc.target() == inc.source() and inc.state() == {"watermark": wm("2024-01-02 00:00:00.000000"), "version": 3}
    with inc.pg.cursor() as cur:  # an emptied table and a reset state: a first load again
        cur.execute("TRUNCATE items")
        cur.execute("DELETE FROM _osiris_state")
    again = inc.run()
    assert step(again, "load")["facts"]["strategy"] == "direct"
    assert inc.target() == inc.source() and inc.state()["version"] == 1
    with inc.pg.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE '_osiris_stage_%'")
        assert cur.fetchone()[0] == 0


def test_a_reset_state_over_a_filled_table_merges_instead_of_copying(inc: Incremental) -> None:
    """No watermark but rows in the table (`osiris state reset`): the direct COPY finds them and backs off."""
    inc.run()
    with inc.pg.cursor() as cur:
        cur.execute("DELETE FROM _osiris_state")
        cur.execute("INSERT INTO items (id, name) VALUES (99, 'kept')")  # a row only the target has
    inc.mysql("UPDATE items SET name = 'B', updated_at = '2024-01-02' WHERE id = 2")
    card = inc.run()
    assert step(card, "load")["facts"]["strategy"] != "direct"
    assert [r for r in inc.target() if r[0] != 99] == inc.source() and 99 in {r[0] for r in inc.target()}
    assert inc.state()["version"] == 1


def test_a_first_load_with_repeated_keys_or_soft_deletes_goes_through_staging(inc: Incremental) -> None:
    # Repeated keys (a query joining rows twice): the direct COPY meets the key and the staged load refuses them.
    inc.extractor = {"query": "SELECT i.* FROM items i JOIN (SELECT 1 AS n UNION ALL SELECT 2) t"}
    card = inc.run(expect=1)
    assert "repeat" in card["error"]["message"] and inc.target() == [] and inc.state() is None
    # Soft deletes: a row flagged before the first load never arrives.
    inc.extractor = {"table": "items"}
    inc.mysql(
        "ALTER TABLE items ADD COLUMN deleted_at DATETIME NULL", "UPDATE items SET deleted_at = NOW() WHERE id = 2"
    )
    inc.incremental = {"cursor": "updated_at", "deletes": {"soft": "deleted_at"}}
    card = inc.run()
    assert [r[0] for r in inc.target()] == [1, 3] and inc.state()["version"] == 1


def test_concurrent_first_loads_never_both_commit(inc: Incremental) -> None:
    """Two first loads into an empty table: the second waits on the state lock, then stops."""
    inc.run()
    with inc.pg.cursor() as cur:
        cur.execute("TRUNCATE items")
        cur.execute("DELETE FROM _osiris_state")
    blocker = postgres_connect(inc.dst.name)
    blocker.autocommit = False
    with blocker.cursor() as cur:
        cur.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
    a = inc.popen()
    _wait_for(inc, "Lock", "relation")  # A holds the state lock and waits for the table
    b = inc.popen()
    _wait_for(inc, "Lock", "advisory")
    blocker.rollback()
    _, err_a = a.communicate(timeout=120)
    out_b, _ = b.communicate(timeout=120)
    assert a.returncode == 0, err_a
    assert b.returncode == 1 and "Another run of pipeline" in out_b
    assert inc.state()["version"] == 1 and inc.target() == inc.source()


def test_concurrent_runs_never_both_commit(inc: Incremental) -> None:
    """Run A is held inside its load transaction; run B waits on the state lock, then stops."""
    inc.run()
    inc.mysql("INSERT INTO items VALUES (4, 'd', '2024-01-02 00:00:00')")
    blocker = postgres_connect(inc.dst.name)
    blocker.autocommit = False
    with blocker.cursor() as cur:
        cur.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
    a = inc.popen()
    _wait_for(inc, "Lock", "relation")
    b = inc.popen()
    _wait_for(inc, "Lock", "advisory")
    blocker.rollback()  # A goes on and commits; B then sees the new version
    _, err_a = a.communicate(timeout=120)
    out_b, _ = b.communicate(timeout=120)
    assert a.returncode == 0, err_a
    assert b.returncode == 1 and "Another run of pipeline" in out_b
    assert inc.state()["version"] == 2 and inc.target() == inc.source()


def test_sigkill_during_the_load_leaves_watermark_and_table(inc: Incremental) -> None:
    inc.run()
    before = (inc.state(), inc.target())
    inc.mysql(
        "INSERT INTO items VALUES (4, 'd', '2024-01-02 00:00:00')",
        "UPDATE items SET name = 'A', updated_at = '2024-01-03' WHERE id = 1",
    )
    blocker = postgres_connect(inc.dst.name)
    blocker.autocommit = False
    with blocker.cursor() as cur:
        cur.execute("LOCK TABLE items IN ACCESS EXCLUSIVE MODE")
    run = inc.popen()
    _wait_for(inc, "Lock", "relation")  # inside the merge transaction, state row locked
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    blocker.rollback()
    _wait_idle(inc)
    assert (inc.state(), inc.target()) == before
    inc.run()
    assert inc.target() == inc.source() and inc.state()["version"] == 2


@pytest.mark.parametrize("load", ["first", "later", "later_binary"])
def test_a_terminated_copy_leaves_watermark_and_table(inc: Incremental, load: str, monkeypatch) -> None:
    """`first`: the COPY straight into the new table; `later`: the COPY into staging before the merge (a small
    load's CSV COPY on the load's own session); `later_binary`: the same with ADBC's binary COPY."""
    inc.mysql("ALTER TABLE items ADD COLUMN payload MEDIUMTEXT")
    if load == "later_binary":
        monkeypatch.setenv("OSIRIS_TEXT_COPY_MAX_ROWS", "0")
    else:  # 80 MB: more than a CSV COPY holds by default
        monkeypatch.setenv("OSIRIS_TEXT_COPY_MAX_BYTES", str(200 * 1024 * 1024))
    if load != "first":
        inc.run()
    # 20,000 rows of 4 KB: a COPY that lasts long enough to be caught and terminated
    inc.mysql(
        "INSERT INTO items SELECT 1000 + seq, 'x', '2024-01-05' + INTERVAL seq SECOND, REPEAT(MD5(seq), 128) "
        "FROM seq_1_to_20000"
    )
    before = (inc.state(), inc.target())
    inc.writer = {"retries": 0}
    run = inc.popen()
    admin = postgres_connect(inc.dst.name)
    terminated = False
    deadline = time.monotonic() + 120
    while not terminated and run.poll() is None and time.monotonic() < deadline:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state = 'active' AND query ILIKE 'COPY%%'"
            )
            terminated = any(r[0] for r in cur.fetchall())
        time.sleep(0.005)
    out, _ = run.communicate(timeout=120)
    assert terminated, "the bulk COPY was never seen"
    assert run.returncode == 1, out
    assert (inc.state(), inc.target()) == before
    inc.writer = {}
    inc.run()
    assert inc.target() == inc.source() and inc.state()["version"] == (1 if load == "first" else 2)


def _wait_for(inc: Incremental, wait_type: str, wait_event: str, timeout: float = 120) -> None:
    """Until a backend of the target database waits on a lock of this kind."""
    admin = postgres_connect(inc.dst.name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = %s AND wait_event = %s",
                (wait_type, wait_event),
            )
            if cur.fetchone()[0]:
                admin.close()
                return
        time.sleep(0.05)
    admin.close()
    raise AssertionError(f"no backend waited on {wait_type}/{wait_event} within {timeout} s")


def _wait_idle(inc: Incremental, timeout: float = 60) -> None:
    """Until no backend of a killed run is left in a transaction."""
    admin = postgres_connect(inc.dst.name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND xact_start IS NOT NULL"
            )
            if not cur.fetchone()[0]:
                admin.close()
                return
        time.sleep(0.05)
    admin.close()


def test_query_mode_with_an_expression_cursor(inc: Incremental) -> None:
    inc.mysql("ALTER TABLE items ADD COLUMN created_at DATETIME(6) NOT NULL DEFAULT '2024-01-01 09:00:00'")
    inc.mysql("UPDATE items SET updated_at = NULL WHERE id = 1")  # never updated: the expression falls back
    inc.extractor = {
        "query": "SELECT id, name, updated_at, created_at FROM items WHERE name <> %s",
        "params": ["hidden"],
    }
    inc.incremental = {"cursor": "COALESCE(updated_at, created_at)", "lag": "1 minute"}
    inc.run()
    assert inc.target() == inc.source()
    inc.mysql(
        "INSERT INTO items (id, name, updated_at) VALUES (4, 'd', NULL), (5, 'hidden', '2030-01-01')",
        "UPDATE items SET created_at = '2025-01-01' WHERE id = 4",
    )
    card = inc.run()
    assert [r[0] for r in inc.target()] == [1, 2, 3, 4]  # the query's own filter still applies
    assert window(card)["high"] == wm("2025-01-01 00:00:00.000000")


def test_state_commands(inc: Incremental) -> None:
    import json

    from osiris_cli import run_osiris

    inc.run()
    pipeline = str(inc.work / "pipeline.yaml")
    shown = run_osiris("state", "show", pipeline, "--json", cwd=inc.work)
    assert shown.returncode == 0, shown.stderr
    [record] = json.loads(shown.stdout)
    assert record["step"] == "extract" and record["destination"] == "load:public.items"
    assert record["watermark"] == wm("2024-01-01 12:00:00.250000") and record["version"] == 1
    done = run_osiris("state", "set", pipeline, "2024-01-01 10:30:00", "--json", cwd=inc.work)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["watermark"] == wm("2024-01-01 10:30:00.000000")
    inc.mysql("UPDATE items SET name = 'B' WHERE id = 2")  # inside the window the watermark now opens
    card = inc.run()
    assert window(card)["low"] == wm("2024-01-01 10:30:00.000000") and inc.target() == inc.source()
    assert run_osiris("state", "reset", pipeline, cwd=inc.work).returncode == 0
    assert inc.state() is None
    wrong = run_osiris("state", "show", pipeline, "--step", "nope", cwd=inc.work)
    assert wrong.returncode == 2 and "`extract` -> `load:public.items`" in wrong.stderr


def test_duckdb_writer_keeps_state_and_deletes_in_its_transaction(inc: Incremental) -> None:
    import duckdb
    import yaml

    from osiris.compiler.compiler import compile_to_build
    from osiris.runtime.cli import run_on_host

    pipeline = inc.pipeline()
    pipeline["steps"][0]["config"]["incremental"] = {"cursor": "updated_at", "deletes": "reconcile"}
    pipeline["steps"][1] = {
        "id": "load",
        "component": "duckdb.writer",
        "mode": "write",
        "needs": ["extract"],
        "config": {"path": str(inc.work / "w.duckdb"), "table": "items", "write_mode": "upsert", "primary_key": "id"},
    }
    path = inc.work / "duck.yaml"
    path.write_text(yaml.safe_dump(pipeline))

    def run() -> None:
        manifest = compile_to_build(path, inc.work / "build").manifest_path
        result = run_on_host(
            manifest, runs_dir=inc.work / "runs", connections_file=inc.work / "osiris_connections.yaml"
        )
        assert result.exit_code == 0, result.error

    def target() -> tuple[list[tuple[Any, ...]], str]:
        with duckdb.connect(str(inc.work / "w.duckdb"), read_only=True) as con:
            rows = con.sql("SELECT id, name, updated_at FROM items ORDER BY id").fetchall()
            [(mark,)] = con.sql("SELECT watermark FROM _osiris_state").fetchall()
        return [tuple(r) for r in rows], mark

    run()
    assert target()[0] == inc.source()
    inc.mysql("DELETE FROM items WHERE id = 1", "INSERT INTO items VALUES (4, 'd', '2024-02-01')")
    run()
    rows, mark = target()
    assert rows == inc.source() and '"2024-02-01 00:00:00.000000"' in mark


def test_host_and_local_sandbox_commit_the_same_watermark_and_table(
    new_mysql_db: Any, new_pg_db: Any, tmp_path: Path
) -> None:
    src = new_mysql_db("osiris_inc")
    host = Incremental(src, new_pg_db("osiris_inc"), tmp_path / "host")
    sandbox = Incremental(src, new_pg_db("osiris_inc"), tmp_path / "sandbox")
    host.mysql(*SEED)
    for sync in (host, sandbox):
        sync.incremental = {"cursor": "updated_at", "lag": "30 minutes", "deletes": "reconcile"}

    def both() -> tuple[dict[str, Any], dict[str, Any]]:
        a = host.run()
        b = sandbox.run(sandbox="local")
        assert host.target() == sandbox.target() == host.source()
        assert host.state() == sandbox.state()
        return a, b

    both()
    host.mysql(
        "INSERT INTO items VALUES (4, 'd', '2024-01-01 13:00:00')",
        "UPDATE items SET name = 'B', updated_at = '2024-01-01 12:10:00' WHERE id = 2",
        "DELETE FROM items WHERE id = 1",
    )
    a, b = both()
    assert window(a) == window(b) and window(b)["watermark_before"] == wm("2024-01-01 12:00:00.250000")
    assert step(a, "load")["facts"]["rows_deleted"] == step(b, "load")["facts"]["rows_deleted"] == 1


def test_supabase_extractor_reads_incrementally(new_pg_db: Any, tmp_path: Path) -> None:
    import yaml

    from osiris.compiler.compiler import compile_to_build
    from osiris.runtime.cli import run_on_host

    src, dst = new_pg_db("osiris_inc"), new_pg_db("osiris_inc")
    s, d = src.cursor(), dst.cursor()
    s.execute("CREATE TABLE items (id int PRIMARY KEY, name text, updated_at timestamptz)")
    s.execute("INSERT INTO items VALUES (1, 'a', '2024-01-01 10:00+00'), (2, 'b', '2024-01-01 11:00+00')")
    work = tmp_path / "work"
    work.mkdir()
    pg = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "password": "", "sslmode": "disable"}
    conns = {"connections": {"supabase": {"src": {**pg, "dbname": src.name}, "dst": {**pg, "dbname": dst.name}}}}
    (work / "osiris_connections.yaml").write_text(yaml.safe_dump(conns))
    incremental = {"cursor": "updated_at", "lag": "5 minutes", "deletes": "reconcile"}
    pipeline = {
        "oml_version": "0.1.0",
        "name": "pg_sync",
        "steps": [
            {"id": "e", "component": "supabase.extractor", "mode": "read",
             "config": {"connection": "@supabase.src", "table": "items", "incremental": incremental}},
            {"id": "w", "component": "supabase.writer", "mode": "write", "needs": ["e"],
             "config": {"connection": "@supabase.dst", "table": "items", "write_mode": "upsert",
                        "primary_key": "id", "create_if_missing": True}},
        ],
    }  # fmt: skip
    (work / "p.yaml").write_text(yaml.safe_dump(pipeline))

    def run() -> dict[str, Any]:
        manifest = compile_to_build(work / "p.yaml", work / "build", connections_file=work / "osiris_connections.yaml")
        result = run_on_host(
            manifest.manifest_path, runs_dir=work / "runs", connections_file=work / "osiris_connections.yaml"
        )
        assert result.exit_code == 0, result.error
        return next(st for st in result.steps if st.step_id == "e").facts["incremental"]

    def same() -> bool:
        s.execute("SELECT * FROM items ORDER BY id")
        d.execute("SELECT * FROM items ORDER BY id")
        return s.fetchall() == d.fetchall()

    run()
    assert same()
    s.execute("INSERT INTO items VALUES (3, 'c', '2024-01-01 12:00+00')")
    s.execute("UPDATE items SET name = 'B', updated_at = '2024-01-01 11:30+00' WHERE id = 2")
    s.execute("DELETE FROM items WHERE id = 1")
    window = run()
    assert same()
    assert window["low"] == wm("2024-01-01 10:55:00.000000") and window["high"] == wm("2024-01-01 12:00:00.000000")
