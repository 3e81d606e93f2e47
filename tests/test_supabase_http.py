"""supabase.writer's `http` and `http_sql` channels: the real supabase-py client against a
local PostgREST / Management API stand-in (tests/support) backed by the real PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from databases import POSTGRES, postgres_connect
from supabase_standin import Server, StandIn

from osiris.core.errors import TerminalError

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def standin(pg_db: str) -> Iterator[Any]:
    """The running stand-in, backed by the module's database."""
    cfg = StandIn(
        dsn=f"host=127.0.0.1 user=postgres dbname={pg_db}", key="service-key-123", access_token="sbp_token_456"
    )
    with Server(cfg) as running:
        yield running


@pytest.fixture()
def pg(pg_db: str) -> Iterator[Any]:
    """An autocommit connection to the test database."""
    conn = postgres_connect(pg_db)
    yield conn
    conn.close()


def rows(pg: Any, sql: str) -> list[tuple[Any, ...]]:
    """All rows of a query, sorted."""
    with pg.cursor() as cur:
        cur.execute(sql)
        return sorted(cur.fetchall())


def run_writer(tmp_path: Path, data: Any, connection: dict[str, Any], **config: Any) -> tuple[Any, list[Any]]:
    """Run a `supabase.writer` step on an Arrow table as the runner does; returns (facts, events)."""
    from osiris.runtime.testing import run_component

    cfg = {"retries": 0, "batch_size": 2, **config, "resolved_connection": connection}
    done = run_component(
        "supabase.writer", cfg, inputs={"up": data}, work_dir=tmp_path / secrets.token_hex(3), step_id="load"
    )
    return done.facts, done.ctx.events


def data(items: list[tuple[Any, ...]]) -> Any:
    """Rows (id, region, amount, note) as Arrow."""
    import pyarrow as pa

    schema = pa.schema(
        [("id", pa.int64()), ("region", pa.string()), ("amount", pa.decimal128(10, 2)), ("note", pa.string())]
    )
    return pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in items], schema=schema)


EXISTING = [(1, "eu", Decimal("10.00"), "old1"), (2, "eu", Decimal("20.00"), "old2"), (3, "us", Decimal("30.00"), "o3")]
INPUT = [
    (2, "eu", Decimal("21.00"), "new2a"),
    (4, "us", Decimal("40.00"), 'q"uo,te(s)'),
    (3, "eu", Decimal("33.00"), "new3eu"),
    (2, "eu", Decimal("22.00"), "new2b"),
]


def rest_conn(standin: Any, **extra: Any) -> dict[str, Any]:
    """A connection with only url + service key (plus `extra`)."""
    return {"url": standin.url, "service_role_key": standin.key, **extra}


def make_table(pg: Any, name: str, key: list[str]) -> None:
    """The target table with the existing rows."""
    pk = f", PRIMARY KEY ({', '.join(key)})" if key else ""
    with pg.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {name}")
        cur.execute(
            f"CREATE TABLE {name} (id bigint NOT NULL, region text NOT NULL, amount numeric(10,2), note text{pk})"
        )
        cur.executemany(f"INSERT INTO {name} VALUES (%s, %s, %s, %s)", EXISTING)


@pytest.mark.parametrize(
    ("mode", "key", "expected"),
    [
        ("append", [], sorted(EXISTING + INPUT)),
        ("upsert", ["id"], [EXISTING[0], INPUT[3], INPUT[2], INPUT[1]]),
        ("upsert", ["id", "region"], sorted([EXISTING[0], INPUT[3], INPUT[2], EXISTING[2], INPUT[1]])),
        ("replace", ["id"], sorted([INPUT[3], INPUT[2], INPUT[1]])),
        ("replace", ["id", "region"], sorted([INPUT[3], INPUT[2], INPUT[1]])),
        ("replace", [], sorted(INPUT)),
    ],
    ids=["append", "upsert-single", "upsert-composite", "replace-single", "replace-composite", "replace-nokey"],
)
def test_http_channel_modes(
    pg: Any, standin: Any, tmp_path: Path, mode: str, key: list[str], expected: list[Any]
) -> None:
    table = f"h_{mode}_{len(key)}"
    make_table(pg, table, key)
    config: dict[str, Any] = {"table": table, "write_mode": mode}
    if key:
        config["primary_key"] = key
        if mode != "append":
            config["on_duplicate_keys"] = "keep_last"  # INPUT repeats (2, eu), in another batch of 2
    result, events = run_writer(tmp_path, data(INPUT), rest_conn(standin), **config)
    assert rows(pg, f"SELECT id, region, amount, note FROM {table}") == sorted(expected)
    names = [n for n, _ in events]
    assert "write.non_atomic" in names
    done = dict(events)["write.complete"]
    assert done["channel_used"] == "http" and done["mode"] == mode
    assert result["duplicate_rows_dropped"] == (1 if key and mode != "append" else 0)


@pytest.mark.parametrize("mode", ["upsert", "replace"])
def test_http_channel_refuses_repeated_keys_before_any_request(
    pg: Any, standin: Any, tmp_path: Path, mode: str
) -> None:
    from osiris.drivers.supabase.loadchecks import DuplicateKeysError

    table = f"h_dup_{mode}"
    make_table(pg, table, ["id"])
    before = rows(pg, f"SELECT * FROM {table}")
    sent = len(standin.requests)
    with pytest.raises(DuplicateKeysError, match=r"id=2 \(2 rows\)"):
        run_writer(tmp_path, data(INPUT), rest_conn(standin), table=table, write_mode=mode, primary_key="id")
    assert rows(pg, f"SELECT * FROM {table}") == before
    assert [m for m, _ in standin.requests[sent:] if m != "GET"] == []


def test_http_channel_keep_first_across_batches(pg: Any, standin: Any, tmp_path: Path) -> None:
    make_table(pg, "h_first", ["id"])
    result, _ = run_writer(
        tmp_path,
        data(INPUT),
        rest_conn(standin),
        table="h_first",
        write_mode="replace",
        primary_key="id",
        on_duplicate_keys="keep_first",
    )
    assert rows(pg, "SELECT id, note FROM h_first") == [(2, "new2a"), (3, "new3eu"), (4, 'q"uo,te(s)')]
    assert result["duplicate_rows_dropped"] == 1


def test_http_channel_creates_a_missing_table_over_http_sql(pg: Any, standin: Any, tmp_path: Path) -> None:
    conn = rest_conn(standin, sql_url=standin.url, access_token=standin.access_token, project_ref=standin.project_ref)
    run_writer(
        tmp_path,
        data(INPUT),
        conn,
        table="h_created",
        write_mode="upsert",
        primary_key="id",
        create_if_missing=True,
        on_duplicate_keys="keep_last",
    )
    assert rows(pg, "SELECT id, note FROM h_created") == [(2, "new2b"), (3, "new3eu"), (4, 'q"uo,te(s)')]
    assert rows(
        pg,
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'h_created'::regclass AND attname = 'amount'",
    ) == [("numeric(10,2)",)]


def test_http_sql_ddl_events_and_psycopg2_load(pg: Any, standin: Any, tmp_path: Path, pg_db: str) -> None:
    conn = {
        **POSTGRES,
        "dbname": pg_db,
        "sql_url": standin.url,
        "access_token": standin.access_token,
        "project_ref": standin.project_ref,
    }
    result, events = run_writer(
        tmp_path,
        data(INPUT),
        conn,
        table="h_ddl_http",
        write_mode="replace",
        primary_key="id",
        create_if_missing=True,
        ddl_channel="http_sql",
        on_duplicate_keys="keep_last",
    )
    kinds = [(n, d.get("channel"), d.get("kind")) for n, d in events if n.startswith("ddl_")]
    assert kinds == [("ddl_attempt", "http_sql", "create_table"), ("ddl_succeeded", "http_sql", "create_table")]
    assert result["channel_used"] == "psycopg2"
    assert len(rows(pg, "SELECT * FROM h_ddl_http")) == 3
    assert any("/v1/projects/localref/database/query" in url for _, url in standin.requests)


def test_http_channel_without_sql_channel_only_plans(pg: Any, standin: Any, tmp_path: Path) -> None:
    with pytest.raises(TerminalError, match=r"ddl_plan\.sql"):
        run_writer(tmp_path, data(INPUT), rest_conn(standin), table="h_planned", create_if_missing=True)
    (plan_file,) = tmp_path.glob("*/artifacts/load/ddl_plan.sql")
    plan = plan_file.read_text()
    assert 'CREATE TABLE IF NOT EXISTS "public"."h_planned"' in plan and "not executed" in plan
    assert rows(pg, "SELECT to_regclass('h_planned') IS NULL") == [(True,)]


def test_http_terminal_error_names_column_and_code(pg: Any, standin: Any, tmp_path: Path) -> None:
    make_table(pg, "h_bad", ["id"])
    bad = [(9, None, Decimal("1.00"), "x")]
    with pytest.raises(TerminalError, match=r"region.*23502"):
        run_writer(tmp_path, data(bad), rest_conn(standin), table="h_bad", write_mode="upsert", primary_key="id")


def test_http_transient_failure_is_retried(pg: Any, standin: Any, tmp_path: Path) -> None:
    make_table(pg, "h_retry", ["id"])
    standin.fail_writes.extend([503, 429])
    _, events = run_writer(
        tmp_path,
        data(INPUT),
        rest_conn(standin),
        table="h_retry",
        write_mode="upsert",
        primary_key="id",
        retries=5,
        on_duplicate_keys="keep_last",
    )
    standin.fail_writes.clear()
    assert "step_retry" in [n for n, _ in events]
    assert len(rows(pg, "SELECT * FROM h_retry")) == 4


def test_wrong_key_is_terminal(pg: Any, standin: Any, tmp_path: Path) -> None:
    make_table(pg, "h_auth", [])
    with pytest.raises(TerminalError, match=r"401|Invalid API key") as err:
        run_writer(tmp_path, data(INPUT), {"url": standin.url, "key": "wrong-key-999"}, table="h_auth")
    assert "wrong-key-999" not in str(err.value)


def test_extractor_over_rest_pages(pg: Any, standin: Any, tmp_path: Path) -> None:
    from osiris.drivers.supabase.extractor import SupabaseExtractor
    from osiris.runtime.contract import StepContext

    with pg.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS h_src")
        cur.execute("CREATE TABLE h_src AS SELECT g AS id, 'n' || g AS name FROM generate_series(1, 25) g")
    ctx = StepContext(step_id="src", output_dir=tmp_path)
    config = {"table": "h_src", "columns": ["id", "name"], "batch_size": 10, "resolved_connection": rest_conn(standin)}
    table = SupabaseExtractor().run(step_id="src", config=config, inputs={}, ctx=ctx)["df"].read_all()
    assert table.column("id").to_pylist() == list(range(1, 26))
    assert sum(1 for m, url in standin.requests if "h_src" in url and m == "GET") >= 3


def test_doctor_over_rest(standin: Any) -> None:
    from osiris.drivers.supabase.doctor import check

    assert check(rest_conn(standin), timeout=5)["ok"] is True
    bad = check({"url": standin.url, "key": "nope-key"}, timeout=5)
    assert bad["ok"] is False and "nope-key" not in bad["message"]
