"""supabase.writer over the psycopg2 channel against the real PostgreSQL."""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

import pytest
from databases import postgres_connect

from osiris.core.errors import TerminalError, TransientError, UserInputError

pytestmark = pytest.mark.postgres


def rows(pg: Any, sql: str) -> list[tuple[Any, ...]]:
    """All rows of a query."""
    with pg.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


EXISTING = [
    (1, "eu", Decimal("10.00"), "old1"),
    (2, "eu", Decimal("20.00"), "old2"),
    (3, "us", Decimal("30.00"), "old3"),
]
MERGE_INPUT = [
    (2, "eu", Decimal("21.00"), "new2a"),
    (4, "us", Decimal("40.00"), "new4"),
    (3, "eu", Decimal("33.00"), "new3eu"),
    (2, "eu", Decimal("22.00"), "new2b"),
]
APPEND_INPUT = [(5, "eu", Decimal("50.00"), "a5"), (6, "us", Decimal("60.00"), "a6")]
KEYS = {"single": ["id"], "composite": ["id", "region"], "none": []}


def arrow(data: list[tuple[Any, ...]]) -> Any:
    """The test rows as an Arrow table (id int64, region text, amount numeric(10,2), note text)."""
    import pyarrow as pa

    schema = pa.schema(
        [("id", pa.int64()), ("region", pa.string()), ("amount", pa.decimal128(10, 2)), ("note", pa.string())]
    )
    return pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in data], schema=schema)


def model(mode: str, key: list[str], existing: list[tuple[Any, ...]], data: list[tuple[Any, ...]]) -> list[Any]:
    """What the table must hold afterwards."""
    if mode == "append":
        return sorted(existing + data)
    if mode == "replace" and not key:
        return sorted(data)
    idx = [["id", "region", "amount", "note"].index(k) for k in key]
    latest = {tuple(r[i] for i in idx): r for r in data}
    if mode == "upsert":
        merged = {tuple(r[i] for i in idx): r for r in existing}
        merged.update(latest)
        return sorted(merged.values())
    return sorted(latest.values())


def create_existing(pg: Any, table: str, key: list[str]) -> None:
    """The target table with the existing rows (key as primary key)."""
    pk = f", PRIMARY KEY ({', '.join(key)})" if key else ""
    with pg.cursor() as cur:
        cur.execute(
            f"CREATE TABLE {table} (id bigint NOT NULL, region text NOT NULL, amount numeric(10,2), note text{pk})"
        )
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s, %s, %s)", EXISTING)


@pytest.mark.parametrize("exists", [True, False], ids=["exists", "missing"])
@pytest.mark.parametrize("key", ["single", "composite", "none"])
@pytest.mark.parametrize("mode", ["append", "upsert", "replace"])
def test_mode_matrix(pg: Any, run_writer: Any, mode: str, key: str, exists: bool) -> None:
    table = f"m_{mode}_{key}_{'e' if exists else 'm'}"
    pk = KEYS[key]
    data = APPEND_INPUT if mode == "append" else MERGE_INPUT
    existing = EXISTING if exists else []
    if exists:
        create_existing(pg, table, pk)
    config: dict[str, Any] = {"table": table, "write_mode": mode, "create_if_missing": True}
    if pk:
        config["primary_key"] = pk if len(pk) > 1 else pk[0]
        if mode != "append":
            config["on_duplicate_keys"] = "keep_last"  # MERGE_INPUT repeats the key (2, eu)
    if mode == "upsert" and not pk:
        with pytest.raises(UserInputError, match="primary_key"):
            run_writer(arrow(data), **config)
        return
    result, rec = run_writer(arrow(data), **config)
    assert sorted(rows(pg, f"SELECT id, region, amount, note FROM {table}")) == model(mode, pk, existing, data)
    done = rec.last_event("write.complete")
    assert done["channel_used"] == "psycopg2" and done["mode"] == mode
    assert done["rows_written"] == result["rows_written"] > 0
    assert ("rows_written", result["rows_written"]) in [(n, v) for n, v, _ in rec.metrics]
    assert sum(rec.progress_reports) == len(data)
    if not exists:
        assert ("ddl_attempt" in rec.names()) and ("ddl_succeeded" in rec.names())
        plan = (rec.output_dir / "ddl_plan.sql").read_text()
        assert f'CREATE TABLE IF NOT EXISTS "public"."{table}"' in plan
        if pk:
            assert f"PRIMARY KEY ({', '.join(chr(34) + k + chr(34) for k in pk)})" in plan
        assert rows(pg, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '_osiris_stage_%'") == [(0,)]


def test_upsert_without_unique_index_updates_and_inserts(pg: Any, run_writer: Any) -> None:
    create_existing(pg, "no_unique", [])
    run_writer(
        arrow(MERGE_INPUT),
        table="no_unique",
        write_mode="upsert",
        primary_key=["id", "region"],
        on_duplicate_keys="keep_last",
    )
    assert sorted(rows(pg, "SELECT * FROM no_unique")) == model("upsert", ["id", "region"], EXISTING, MERGE_INPUT)


def test_exact_types_of_a_created_table(pg: Any, run_writer: Any) -> None:
    import datetime as dt

    import pyarrow as pa

    ts = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
    table = pa.table(
        {
            "b": pa.array([True]),
            "i16": pa.array([1], pa.int16()),
            "i32": pa.array([2], pa.int32()),
            "i64": pa.array([3], pa.int64()),
            "f32": pa.array([1.5], pa.float32()),
            "f64": pa.array([2.25], pa.float64()),
            "dec": pa.array([Decimal("123.456")], pa.decimal128(9, 3)),
            "s": pa.array(["héllo"], pa.string()),
            "ls": pa.array(["large"], pa.large_string()),
            "bin": pa.array([b"\x00\x01"], pa.binary()),
            "tstz": pa.array([ts], pa.timestamp("us", tz="UTC")),
            "ts": pa.array([ts.replace(tzinfo=None)], pa.timestamp("ms")),
            "d": pa.array([dt.date(2024, 1, 2)], pa.date32()),
            "js": pa.array([{"a": 1, "b": "x"}], pa.struct([("a", pa.int64()), ("b", pa.string())])),
            "lst": pa.array([[1, 2]], pa.list_(pa.int64())),
            "dic": pa.array(["cat"]).dictionary_encode(),
        }
    )
    run_writer(table, table="typed", create_if_missing=True)
    types = dict(
        rows(
            pg,
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'typed'::regclass AND attnum > 0",
        )
    )
    assert types == {
        "b": "boolean",
        "i16": "smallint",
        "i32": "integer",
        "i64": "bigint",
        "f32": "real",
        "f64": "double precision",
        "dec": "numeric(9,3)",
        "s": "text",
        "ls": "text",
        "bin": "bytea",
        "tstz": "timestamp with time zone",
        "ts": "timestamp without time zone",
        "d": "date",
        "js": "jsonb",
        "lst": "jsonb",
        "dic": "text",
    }
    got = rows(pg, "SELECT b, i16, i32, i64, f32, f64, dec, s, ls, bin, tstz, ts, d, js, lst, dic FROM typed")[0]
    assert got[:9] == (True, 1, 2, 3, 1.5, 2.25, Decimal("123.456"), "héllo", "large")
    assert bytes(got[9]) == b"\x00\x01"
    assert got[10] == ts and got[11] == ts.replace(tzinfo=None, microsecond=123000) and got[12] == dt.date(2024, 1, 2)
    assert got[13] == {"a": 1, "b": "x"} and got[14] == [1, 2] and got[15] == "cat"


def test_append_into_existing_table_with_other_column_types_casts(pg: Any, run_writer: Any) -> None:
    import pyarrow as pa

    with pg.cursor() as cur:
        cur.execute("CREATE TABLE casted (id integer, payload jsonb, extra text DEFAULT 'd')")
    run_writer(pa.table({"payload": ['{"k": 1}'], "id": pa.array([7], pa.int64())}), table="casted")
    assert rows(pg, "SELECT id, payload, extra FROM casted") == [(7, {"k": 1}, "d")]


def test_new_column_is_an_error_unless_allowed(pg: Any, run_writer: Any) -> None:
    import pyarrow as pa

    with pg.cursor() as cur:
        cur.execute("CREATE TABLE evolve (id bigint PRIMARY KEY, a text)")
    data = pa.table({"id": [1], "a": ["x"], "fresh": [2.5]})
    with pytest.raises(TerminalError, match=r"`fresh`.*add_new_columns"):
        run_writer(data, table="evolve", write_mode="upsert", primary_key="id")
    assert rows(pg, "SELECT count(*) FROM evolve") == [(0,)]
    _, rec = run_writer(data, table="evolve", write_mode="upsert", primary_key="id", add_new_columns=True)
    assert rows(pg, "SELECT id, a, fresh FROM evolve") == [(1, "x", 2.5)]
    assert rec.last_event("ddl_succeeded")["kind"] == "add_column"


def test_empty_replace_needs_allow_empty_replace(pg: Any, run_writer: Any) -> None:
    create_existing(pg, "emptied", ["id"])
    with pytest.raises(TerminalError, match="allow_empty_replace"):
        run_writer(arrow([]), table="emptied", write_mode="replace", primary_key="id")
    assert len(rows(pg, "SELECT * FROM emptied")) == 3
    run_writer(arrow([]), table="emptied", write_mode="replace", primary_key="id", allow_empty_replace=True)
    assert rows(pg, "SELECT count(*) FROM emptied") == [(0,)]


def test_without_a_sql_channel_the_ddl_is_only_planned(pg: Any, run_writer: Any, connection: dict[str, Any]) -> None:
    with pytest.raises(TerminalError, match=r"ddl_plan\.sql"):
        run_writer(arrow(APPEND_INPUT), table="planned", create_if_missing=True, ddl_channel="http_sql")
    assert rows(pg, "SELECT to_regclass('planned') IS NULL") == [(True,)]


def test_missing_table_without_create_if_missing_fails(pg: Any, run_writer: Any) -> None:
    with pytest.raises(TerminalError, match=r"does not exist.*create_if_missing"):
        run_writer(arrow(APPEND_INPUT), table="nowhere")


def big_input(n: int, bad_at: int | None = None) -> Any:
    """`n` rows keyed 0..n-1; the row at `bad_at` has a NULL note and a negative amount."""
    import pyarrow as pa

    ids = pa.array(range(n), pa.int64())
    notes = pa.array([None if i == bad_at else f"note {i}" for i in range(n)])
    amounts = pa.array([Decimal("-1.00") if i == bad_at else Decimal(i % 1000) for i in range(n)], pa.decimal128(10, 2))
    return pa.table({"id": ids, "region": pa.array(["eu"] * n), "amount": amounts, "note": notes})


def snapshot(pg: Any, table: str) -> list[Any]:
    """Physical rows (ctid included), so 'unchanged' means byte-for-byte the same tuples."""
    return rows(pg, f"SELECT ctid::text, id, region, amount::text, note FROM {table} ORDER BY ctid")


@pytest.mark.parametrize("constraint", ["not_null", "check"])
def test_failed_replace_leaves_table_as_it_was(pg: Any, run_writer: Any, constraint: str) -> None:
    table = f"atomic_{constraint}"
    create_existing(pg, table, ["id"])
    with pg.cursor() as cur:
        if constraint == "not_null":
            cur.execute(f"ALTER TABLE {table} ALTER COLUMN note SET NOT NULL")
        else:
            cur.execute(f"ALTER TABLE {table} ADD CONSTRAINT amount_positive CHECK (amount >= 0)")
    before = snapshot(pg, table)
    n = 20000
    with pytest.raises(TerminalError) as err:
        run_writer(big_input(n, bad_at=n - 3), table=table, write_mode="replace", primary_key="id")
    text = str(err.value)
    assert table in text
    assert ("`note`" in text and "23502" in text) if constraint == "not_null" else ("amount_positive" in text)
    assert snapshot(pg, table) == before


def _kill_copy(pg_db: str, stop: threading.Event, killed: list[int]) -> None:
    conn = postgres_connect(pg_db)
    try:
        with conn.cursor() as cur:
            while not stop.is_set() and not killed:
                cur.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'osiris-supabase-stage' "
                    "AND query ILIKE 'COPY%%' AND state = 'active' AND datname = current_database()"
                )
                pids = [r[0] for r in cur.fetchall()]
                for pid in pids:
                    time.sleep(0.2)  # well inside the stream
                    cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
                    killed.append(pid)
                time.sleep(0.01)
    finally:
        conn.close()


@pytest.mark.parametrize("retries", [0, 1])
def test_backend_killed_mid_copy(pg: Any, pg_db: str, run_writer: Any, retries: int) -> None:
    table = f"killed_{retries}"
    create_existing(pg, table, ["id"])
    before = snapshot(pg, table)
    stop, killed = threading.Event(), []
    watcher = threading.Thread(target=_kill_copy, args=(pg_db, stop, killed))
    watcher.start()
    data = big_input(300_000)
    try:
        if retries == 0:
            with pytest.raises(TransientError):
                run_writer(data, table=table, write_mode="replace", primary_key="id", batch_size=5000)
            assert killed
            assert snapshot(pg, table) == before
        else:
            _, rec = run_writer(data, table=table, write_mode="replace", primary_key="id", batch_size=5000, retries=1)
            assert killed and "step_retry" in rec.names()
            assert rows(pg, f"SELECT count(*), min(id), max(id) FROM {table}") == [(300_000, 0, 299_999)]
    finally:
        stop.set()
        watcher.join()
    assert rows(pg, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '_osiris_stage_%'") == [(0,)]


def test_connect_lists_every_address_tried(connection: dict[str, Any]) -> None:
    from osiris.drivers.supabase.connection import SupabaseConnection
    from osiris.drivers.supabase.postgres_connect import connect

    pg, target = connect(SupabaseConnection.from_dict({**connection, "host": "localhost"}), timeout=5)
    pg.close()
    assert target.hostaddr == "127.0.0.1"
    with pytest.raises(TransientError, match=r"localhost:1`.*127\.0\.0\.1"):
        connect(SupabaseConnection.from_dict({**connection, "host": "localhost", "port": 1}), timeout=2)


def test_replace_of_a_referenced_table_merges_instead_of_swapping(pg: Any, run_writer: Any) -> None:
    create_existing(pg, "parent", ["id"])
    with pg.cursor() as cur:
        cur.execute("CREATE TABLE child (pid bigint REFERENCES parent (id))")
        cur.execute("INSERT INTO child VALUES (2), (3)")
    result, _ = run_writer(
        arrow(MERGE_INPUT), table="parent", write_mode="replace", primary_key="id", on_duplicate_keys="keep_last"
    )
    assert result["strategy"] == "merge" and result["rows_deleted"] == 1
    assert sorted(rows(pg, "SELECT * FROM parent")) == model("replace", ["id"], EXISTING, MERGE_INPUT)
    assert sorted(rows(pg, "SELECT pid FROM child")) == [(2,), (3,)]


def test_staging_tables_left_by_a_killed_run_are_swept_and_live_ones_kept(pg: Any, run_writer: Any) -> None:
    # `dead` is what a SIGKILLed load leaves: a staging table and no session holding its lock.
    # `live` is held by another session (here the test's own), as a running load holds its own.
    dead, live = "_osiris_stage_orders_dead0001", "_osiris_stage_orders_live0001"
    lock = "hashtext('osiris-stage'), hashtext(%s)"
    with pg.cursor() as cur:
        cur.execute(f'CREATE UNLOGGED TABLE public."{dead}" (id int)')
        cur.execute(f"SELECT pg_advisory_lock({lock})", (f"public.{live}",))
        cur.execute(f'CREATE UNLOGGED TABLE public."{live}" (id int)')
    try:
        _, rec = run_writer(arrow(APPEND_INPUT), table="sweep_target", write_mode="append", create_if_missing=True)
        left = rows(pg, "SELECT tablename FROM pg_tables WHERE starts_with(tablename, '_osiris_stage_') ORDER BY 1")
        assert left == [(live,)]
        assert rec.last_event("staging_swept") == {"schema": "public", "tables": [dead]}
        assert sorted(rows(pg, "SELECT id FROM sweep_target")) == [(5,), (6,)]
    finally:
        with pg.cursor() as cur:
            cur.execute(f"SELECT pg_advisory_unlock({lock})", (f"public.{live}",))
            cur.execute(f'DROP TABLE IF EXISTS public."{live}"')


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("batch_size", 2**63, "`batch_size` must be an integer from 1 to 2147483647; got `9223372036854775808`"),
        ("batch_size", 0, "`batch_size` must be an integer from 1"),
        ("timeout", float("nan"), "`timeout` must be a number from 0.001"),
        ("timeout", 10**9, "`timeout` must be a number from 0.001 to 2147483"),
        ("retries", 5000, "`retries` must be an integer from 0 to 100"),
    ],
)
def test_an_out_of_range_setting_is_refused_before_connecting(run_writer, key, value, expected):
    with pytest.raises(UserInputError) as info:
        run_writer(arrow(APPEND_INPUT), table="out_of_range", **{key: value})
    assert expected in str(info.value) and "Traceback" not in str(info.value)


@pytest.mark.parametrize("write_mode", ["append", "replace"])
def test_an_error_reading_the_input_during_copy_is_reported_as_itself(run_writer, pg, monkeypatch, write_mode):
    """ADBC pasted the Python traceback of the input's iterator into its own error message."""
    from osiris.drivers.supabase import writer

    real = writer.stream_batches

    def failing(handle, batch_size):
        yield from list(real(handle, batch_size))[:1]
        raise OverflowError("Python int too large to convert to C long")

    monkeypatch.setattr(writer, "stream_batches", failing)
    rows(
        pg,
        "DROP TABLE IF EXISTS read_fails; CREATE TABLE read_fails (id bigint primary key, region text, "
        "amount numeric(10,2), note text); SELECT 1",
    )
    with pytest.raises(TerminalError) as info:
        run_writer(arrow(APPEND_INPUT), table="read_fails", write_mode=write_mode, primary_key=["id"])
    message = str(info.value)
    assert "Reading the input to load into `public.read_fails` failed: OverflowError: Python int too large" in message
    assert "Traceback" not in message and "File " not in message
    assert rows(pg, "SELECT count(*) FROM read_fails") == [(0,)]  # nothing half-written


def test_adbc_messages_lose_a_pasted_traceback():
    from osiris.drivers.supabase.errors import from_postgres

    text = (
        "INTERNAL: nanoarrow call failed: (22) Invalid argument. Detail: Python exception: Traceback (most recent "
        'call last):\n  File "x.py", line 1, in f\n    g()\nOverflowError: Python int too large to convert to C long'
    )
    err = from_postgres(RuntimeError(text), step="load", table="public.t", doing="Bulk COPY for")
    assert str(err) == (
        "Bulk COPY for `public.t` failed: nanoarrow call failed: (22) Invalid argument. "
        "(OverflowError: Python int too large to convert to C long)"
    )


# -- parallel COPY into the staging table ------------------------------------------------------

STAGE_COPIES = (
    "SELECT pid FROM pg_stat_activity WHERE application_name = 'osiris-supabase-stage' "
    "AND query ILIKE 'COPY%%' AND state = 'active' AND datname = current_database()"
)


class _CopyWatcher(threading.Thread):
    """Watches the load's COPY sessions; `then(pids)` acts once `wanted` of them run at the same time."""

    def __init__(self, pg_db: str, wanted: int, then: Any = None) -> None:
        super().__init__(daemon=True)
        self.pg_db, self.wanted, self.then = pg_db, wanted, then
        self.most = 0
        self.acted = threading.Event()
        self.done = threading.Event()

    def run(self) -> None:
        conn = postgres_connect(self.pg_db)
        try:
            with conn.cursor() as cur:
                while not self.done.is_set():
                    cur.execute(STAGE_COPIES)
                    pids = [r[0] for r in cur.fetchall()]
                    self.most = max(self.most, len(pids))
                    if self.then is not None and len(pids) >= self.wanted and not self.acted.is_set():
                        self.then(cur, pids)
                        self.acted.set()
                    time.sleep(0.01)
        finally:
            conn.close()

    def stop(self) -> None:
        self.done.set()
        self.join()


def _no_stage_left(pg: Any) -> None:
    assert rows(pg, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '_osiris_stage_%'") == [(0,)]
    for _ in range(100):  # a closed session leaves pg_stat_activity a moment later
        left = rows(
            pg,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'osiris-supabase-stage' "
            "AND datname = current_database()",
        )
        if left == [(0,)]:
            return
        time.sleep(0.05)
    raise AssertionError(f"COPY sessions still open: {left}")


def test_a_large_upsert_fills_its_staging_table_with_parallel_streams(pg: Any, pg_db: str, run_writer: Any) -> None:
    create_existing(pg, "par_up", ["id"])
    data = big_input(300_000)
    watcher = _CopyWatcher(pg_db, 2)
    watcher.start()
    try:
        result, rec = run_writer(
            data, table="par_up", write_mode="upsert", primary_key="id", batch_size=2000, copy_streams=2
        )
    finally:
        watcher.stop()
    assert [e["streams"] for e in rec.events_named("load.copy_streams")] == [2]
    assert watcher.most == 2  # two COPY sessions ran at the same time
    assert result["rows_written"] == 300_000 and result["rows_input"] == 300_000
    # Every input row once, exactly as given (the existing keys 1-3 updated), and the progress counted once.
    assert rows(pg, "SELECT count(*), count(DISTINCT id), min(id), max(id), sum(amount) FROM par_up") == [
        (300_000, 300_000, 0, 299_999, sum(Decimal(i % 1000) for i in range(300_000)))
    ]
    assert rows(pg, "SELECT note FROM par_up WHERE id = 2") == [("note 2",)]
    assert sum(rec.progress_reports) == 300_000
    _no_stage_left(pg)


def test_one_copy_stream_killed_fails_the_load_and_changes_nothing(pg: Any, pg_db: str, run_writer: Any) -> None:
    create_existing(pg, "par_kill", ["id"])
    before = snapshot(pg, "par_kill")
    killed: list[int] = []

    def kill_one(cur: Any, pids: list[int]) -> None:
        cur.execute("SELECT pg_terminate_backend(%s)", (pids[0],))
        killed.append(pids[0])

    watcher = _CopyWatcher(pg_db, 2, kill_one)
    watcher.start()
    try:
        with pytest.raises(TransientError):
            run_writer(
                big_input(300_000),
                table="par_kill",
                write_mode="upsert",
                primary_key="id",
                batch_size=2000,
                copy_streams=2,
            )
    finally:
        watcher.stop()
    assert len(killed) == 1
    assert snapshot(pg, "par_kill") == before
    _no_stage_left(pg)


def test_a_stop_during_parallel_copy_rolls_back_and_drops_the_staging_table(
    pg: Any, pg_db: str, run_writer: Any
) -> None:
    import os
    import signal

    from osiris.runtime import interrupts

    create_existing(pg, "par_stop", ["id"])
    before = snapshot(pg, "par_stop")
    watcher = _CopyWatcher(pg_db, 2, lambda cur, pids: os.kill(os.getpid(), signal.SIGINT))
    watcher.start()
    try:
        with interrupts.handle_signals(), pytest.raises(interrupts.RunInterrupted):
            run_writer(
                big_input(300_000),
                table="par_stop",
                write_mode="upsert",
                primary_key="id",
                batch_size=2000,
                copy_streams=2,
            )
    finally:
        watcher.stop()
    assert watcher.acted.is_set()
    assert snapshot(pg, "par_stop") == before
    _no_stage_left(pg)


def test_keep_last_small_loads_and_the_default_use_one_copy_stream(pg: Any, run_writer: Any) -> None:
    # `keep_last` picks rows by input order, which only one stream keeps in the staging table.
    create_existing(pg, "par_one", ["id"])
    data = big_input(150_000)
    one = {"table": "par_one", "write_mode": "upsert", "primary_key": "id", "copy_streams": 2}
    _, rec = run_writer(data, **one, on_duplicate_keys="keep_last")
    _, small = run_writer(big_input(1000), **one)
    _, default = run_writer(data, **{k: v for k, v in one.items() if k != "copy_streams"})
    assert "load.copy_streams" not in rec.names() + small.names() + default.names()
    assert rows(pg, "SELECT count(*) FROM par_one") == [(150_000,)]


def test_a_connection_limit_leaves_the_load_on_the_sessions_it_allows(
    pg: Any, connection: dict[str, Any], run_writer: Any
) -> None:
    import secrets

    # The writer's own connection plus one COPY session: the second COPY session is refused.
    role = f"osiris_limited_{secrets.token_hex(4)}"
    with pg.cursor() as cur:
        cur.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 2")
        cur.execute(f"GRANT CREATE, USAGE ON SCHEMA public TO {role}")
    try:
        create_existing(pg, "par_limit", ["id"])
        with pg.cursor() as cur:
            cur.execute(f"ALTER TABLE par_limit OWNER TO {role}")
        result, rec = run_writer(
            big_input(150_000),
            conn={**connection, "user": role},
            table="par_limit",
            write_mode="upsert",
            primary_key="id",
            copy_streams=2,
        )
        assert rec.event("load.copy_streams_limited")["streams"] == 1
        assert "load.copy_streams" not in rec.names()
        assert result["rows_written"] == 150_000
        assert rows(pg, "SELECT count(*) FROM par_limit") == [(150_000,)]
    finally:
        with pg.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS par_limit; DROP OWNED BY {role}; DROP ROLE {role}")
