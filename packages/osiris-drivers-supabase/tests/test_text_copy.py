"""Small staged loads go as CSV on the load's own session (`text_copy`); the rows stored are the same, value for
value, as the binary COPY's, and whatever has no exact CSV form here keeps the binary COPY."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import pytest
from type_catalog import ARROW_CASES

pytestmark = pytest.mark.postgres

MAPPED = [c for c in ARROW_CASES if c.refused is None and c.parquet]


def _rows(pg: Any, sql: str) -> list[tuple[Any, ...]]:
    with pg.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def _as_text(pg: Any, table: str) -> list[str]:
    """Every stored row as PostgreSQL prints it (floats in their shortest exact form, `-0` and `NaN` included)."""
    return [r[0] for r in _rows(pg, f'SELECT t::text FROM "{table}" t ORDER BY "#"')]


def _create_empty(run_writer: Any, data: Any, table: str, **conn: Any) -> None:
    """Create `table` with `data`'s columns and no rows (so that the upserts which follow stage and merge)."""
    run_writer(
        data.slice(0, 0), table=table, create_if_missing=True, write_mode="replace", primary_key="#",
        allow_empty_replace=True, **conn,
    )  # fmt: skip


def _load_both_ways(pg: Any, run_writer: Any, monkeypatch: Any, data: Any, name: str) -> tuple[Any, Any]:
    """Upsert `data` into two tables of the same shape, one by each COPY; (text facts+ctx, binary facts+ctx)."""
    for table in (f"{name}_text", f"{name}_binary"):  # created first, so the upserts stage and merge
        _create_empty(run_writer, data, table)
    monkeypatch.delenv("OSIRIS_TEXT_COPY_MAX_ROWS", raising=False)
    text = run_writer(data, table=f"{name}_text", write_mode="upsert", primary_key="#")
    monkeypatch.setenv("OSIRIS_TEXT_COPY_MAX_ROWS", "0")
    binary = run_writer(data, table=f"{name}_binary", write_mode="upsert", primary_key="#")
    monkeypatch.delenv("OSIRIS_TEXT_COPY_MAX_ROWS")
    return text, binary


def _numbered(columns: dict[str, Any]) -> Any:
    import pyarrow as pa

    n = len(next(iter(columns.values())))
    return pa.table({"#": pa.array(range(n), pa.int32()), **columns})


def _has_bytea(data: Any) -> bool:
    from osiris.drivers.supabase.staging import load_schema

    return any(str(f.type) == "binary" for f in load_schema(data.schema))


@pytest.mark.parametrize("case", MAPPED, ids=lambda c: c.name)
def test_every_mapped_type_is_stored_the_same_by_the_text_and_the_binary_copy(pg, run_writer, monkeypatch, case):
    import pyarrow as pa

    data = pa.Table.from_arrays(
        [pa.array(range(len(case.values)), pa.int32()), case.array()],
        schema=pa.schema([("#", pa.int32()), case.field()]),
    )
    (_, text_ctx), (_, binary_ctx) = _load_both_ways(pg, run_writer, monkeypatch, data, f"tc_{case.name}"[:40])
    assert _as_text(pg, f"tc_{case.name}"[:40] + "_text") == _as_text(pg, f"tc_{case.name}"[:40] + "_binary")
    assert bool(text_ctx.events_named("load.text_copy")) == (not _has_bytea(data))
    assert not binary_ctx.events_named("load.text_copy")


def test_edge_values_of_floats_text_and_time_zones_are_stored_exactly(pg, run_writer, monkeypatch):
    import pyarrow as pa

    floats = [0.1, -0.0, float("nan"), float("inf"), float("-inf"), 1e308, 5e-324, 1 / 3, 2.0**53 + 2, None]
    rome = [
        dt.datetime(1850, 6, 1, 12, 0, tzinfo=dt.UTC),  # Rome's local mean time then: +00:49:56
        dt.datetime(2024, 3, 31, 1, 30, tzinfo=dt.UTC),  # the hour of the change to summer time
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    ] + [None] * 6
    data = _numbered(
        {
            "f8": pa.array(floats, pa.float64()),
            "f4": pa.array(
                [0.1, -0.0, float("nan"), 3.4028234663852886e38, 1e-45, 1 / 3, 16777217.0, 1.5, None, 0.0], pa.float32()
            ),
            "s": pa.array(["", None, 'a"b', "x,y", "line1\nline2", "\\.", "\r\n", "ünï 日本", " lead ", "\\N"]),
            "rome": pa.array(rome, pa.timestamp("us", tz="Europe/Rome")),
            "naive": pa.array(
                [dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999)] + [None] * 8, pa.timestamp("us")
            ),
            "day": pa.array([dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(2024, 2, 29)] + [None] * 7),
            "amount": pa.array(
                [Decimal("-0.50"), Decimal("0.00"), None] + [Decimal("99999999.99")] * 7, pa.decimal128(10, 2)
            ),
            "flag": pa.array([True, False, None] * 3 + [True]),
            "big": pa.array([-(2**63), 2**63 - 1, None] * 3 + [0], pa.int64()),
        }
    )
    (_, text_ctx), _ = _load_both_ways(pg, run_writer, monkeypatch, data, "tc_edges")
    assert text_ctx.events_named("load.text_copy")
    assert _as_text(pg, "tc_edges_text") == _as_text(pg, "tc_edges_binary")
    got = _rows(pg, 'SELECT f8, s, rome FROM "tc_edges_text" ORDER BY "#"')
    assert [r[1] for r in got] == data.column("s").to_pylist()  # '' and NULL apart, every character kept
    assert math.copysign(1.0, got[1][0]) == -1.0 and math.isnan(got[2][0])
    assert [r[2] for r in got][:4] == rome[:4]


def test_dates_outside_the_years_1_to_9999_keep_the_binary_copy(pg, run_writer, monkeypatch):
    import pyarrow as pa

    data = _numbered(
        {
            "day": pa.array([-800_000, 3_000_000, 0], pa.date32()),  # about 221 BC, 10183 AD, and 1970
            "at": pa.array([0, 0, 0], pa.timestamp("us")),
        }
    )
    (_, text_ctx), _ = _load_both_ways(pg, run_writer, monkeypatch, data, "tc_far_dates")
    assert not text_ctx.events_named("load.text_copy")
    assert _as_text(pg, "tc_far_dates_text") == _as_text(pg, "tc_far_dates_binary")
    expected = _rows(pg, "SELECT (DATE '1970-01-01' + d)::text FROM unnest(ARRAY[-800000, 3000000, 0]) d")
    assert _rows(pg, 'SELECT day::text FROM "tc_far_dates_text" ORDER BY "#"') == expected


def _upsert(run_writer: Any, monkeypatch: Any, data: Any, table: str, *, max_rows: str, max_bytes: str = "") -> Any:
    """Upsert `data` into `table` under these `text_copy` limits; the run's recording context."""
    monkeypatch.setenv("OSIRIS_TEXT_COPY_MAX_ROWS", max_rows)
    if max_bytes:
        monkeypatch.setenv("OSIRIS_TEXT_COPY_MAX_BYTES", max_bytes)
    return run_writer(data, table=table, write_mode="upsert", primary_key="#")[1]


def test_a_load_over_the_limit_or_with_bytea_keeps_the_binary_copy(pg, run_writer, monkeypatch):
    import pyarrow as pa

    rows = _numbered({"v": pa.array([f"v{i}" for i in range(20)])})
    _create_empty(run_writer, rows, "tc_limit")
    assert not _upsert(run_writer, monkeypatch, rows, "tc_limit", max_rows="19").events_named("load.text_copy")
    assert _upsert(run_writer, monkeypatch, rows, "tc_limit", max_rows="20").event("load.text_copy")["rows"] == 20
    blobs = _numbered({"b": pa.array([b"\x00\xff", b"", None], pa.binary())})
    _create_empty(run_writer, blobs, "tc_bytes")
    _, ctx = run_writer(blobs, table="tc_bytes", write_mode="upsert", primary_key="#")
    assert not ctx.events_named("load.text_copy")
    assert [bytes(r[0]) for r in _rows(pg, 'SELECT b FROM "tc_bytes" ORDER BY "#"')[:2]] == [b"\x00\xff", b""]

    wide = _numbered({"v": pa.array(["x" * 1000] * 20)})  # about 20 KB of Arrow data
    ctx = _upsert(run_writer, monkeypatch, wide, "tc_limit", max_rows="100", max_bytes="10000")
    assert not ctx.events_named("load.text_copy")
    ctx = _upsert(run_writer, monkeypatch, wide, "tc_limit", max_rows="100", max_bytes="100000")
    assert ctx.event("load.text_copy")["rows"] == 20
    assert [r[0] for r in _rows(pg, 'SELECT v FROM "tc_limit" ORDER BY "#"')] == ["x" * 1000] * 20


def test_a_database_in_another_encoding_stores_the_same_text(pg, connection, run_writer, monkeypatch):
    """The CSV is UTF-8; a LATIN1 database still stores exactly the characters sent."""
    import pyarrow as pa
    from databases import postgres_connect

    name = f"{connection['dbname']}_latin1"[:63]
    _rows(pg, "SELECT 1")
    pg.autocommit = True
    with pg.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f"CREATE DATABASE \"{name}\" ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    try:
        latin = {**connection, "dbname": name}
        data = _numbered({"s": pa.array(["ünï", "café", "", None, "plain"])})
        _create_empty(run_writer, data, "t", conn=latin)
        _, ctx = run_writer(data, conn=latin, table="t", write_mode="upsert", primary_key="#")
        assert ctx.events_named("load.text_copy")
        other = postgres_connect(name)
        try:
            other.set_client_encoding("UTF8")
            assert [r[0] for r in _rows(other, 'SELECT s FROM "t" ORDER BY "#"')] == ["ünï", "café", "", None, "plain"]
        finally:
            other.close()
    finally:
        with pg.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_small_load_leaves_no_staging_table_and_a_role_without_temporary_tables_stages_as_before(
    pg, connection, run_writer
):
    import secrets

    import pyarrow as pa

    data = _numbered({"v": pa.array(["a", "b", None])})
    _create_empty(run_writer, data, "tc_temp")
    _, ctx = run_writer(data, table="tc_temp", write_mode="upsert", primary_key="#")
    assert ctx.event("load.text_copy")["rows"] == 3
    assert _rows(pg, "SELECT count(*) FROM pg_tables WHERE tablename LIKE '\\_osiris\\_stage%%'") == [(0,)]

    role = f"osiris_notemp_{secrets.token_hex(4)}"
    db = connection["dbname"]
    pg.autocommit = True
    with pg.cursor() as cur:
        cur.execute(f"CREATE ROLE {role} LOGIN")
        cur.execute(f"GRANT CREATE, USAGE ON SCHEMA public TO {role}")
        cur.execute(f'REVOKE TEMPORARY ON DATABASE "{db}" FROM PUBLIC')
        cur.execute(f"ALTER TABLE tc_temp OWNER TO {role}")
    try:
        more = _numbered({"v": pa.array(["x", "y", "z", "w"])})
        _, ctx = run_writer(
            more, conn={**connection, "user": role}, table="tc_temp", write_mode="upsert", primary_key="#"
        )
        assert "permission denied" in ctx.event("load.temp_stage_refused")["error"]
        assert not ctx.events_named("load.text_copy")
        assert [r[0] for r in _rows(pg, 'SELECT v FROM "tc_temp" ORDER BY "#"')] == ["x", "y", "z", "w"]
    finally:
        with pg.cursor() as cur:
            cur.execute(f'GRANT TEMPORARY ON DATABASE "{db}" TO PUBLIC')
            cur.execute(f"DROP TABLE IF EXISTS tc_temp; DROP OWNED BY {role}; DROP ROLE {role}")
