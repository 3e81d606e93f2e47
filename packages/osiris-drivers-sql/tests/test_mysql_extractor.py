"""`mysql.extractor` against the real MariaDB: every type round-trips into Parquet exactly.

Long on purpose: one catalogue of values (`every_type`, `decimals`, `legacy_dates`) is checked on
every read path, and the native row parser's own tests (crafted, re-cut and corrupted packets)
run next to it, as `scripts/sanitize_row_parser` selects them.
"""

from __future__ import annotations

import datetime as dt
import struct
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from osiris.drivers.sql import mysql_extractor, mysql_native
from osiris.drivers.sql.mysql_extractor import MySQLExtractor

pytestmark = [pytest.mark.mysql, pytest.mark.usefixtures("read_path")]

DDL = """
CREATE TABLE every_type (
  id INT NOT NULL PRIMARY KEY,
  flag TINYINT(1), bool_col BOOLEAN,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  dec_wide DECIMAL(65,30), dec_money DECIMAL(10,2), dec_big DECIMAL(38,0),
  f FLOAT, d DOUBLE,
  dt DATE, dtm DATETIME(6), dtm0 DATETIME, ts TIMESTAMP(3) NULL, tm TIME(6), yr YEAR,
  c CHAR(10), vc VARCHAR(100), tx TEXT,
  bn BINARY(4), vb VARBINARY(10), bl BLOB,
  js JSON, en ENUM('a','b','c'), st SET('x','y','z'), bt BIT(10), bt1 BIT(1)
) DEFAULT CHARSET=utf8mb4
"""

ROWS = [
    (1, 1, 1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
     -9223372036854775808, 18446744073709551615,
     "12345678901234567890123456789012345.123456789012345678901234567890", "12345678.99",
     "99999999999999999999999999999999999999", 1.5, 2.25,
     "1000-01-01", "2024-02-29 23:59:59.999999", "9999-12-31 23:59:59", "2038-01-19 03:14:07.999",
     "-838:59:59.000000", 1901, "abc", "héllo 😀", "text 🚀 𝄞", b"\x00\xff\x01\x02", b"\xde\xad\xbe\xef",
     b"\x00\x01\x02", '{"a": [1, 2], "e": "😀"}', "b", "x,z", 0b1010101010, 1),
    (2,) + (None,) * 34,
    (3, 0, 0, 127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0,
     "-0.000000000000000000000000000001", "-99999999.99", "-99999999999999999999999999999999999999",
     16777216.0, 1.7976931348623157e308,
     "9999-12-31", "1000-01-01 00:00:00.000001", "1000-01-01 00:00:00", "1970-01-01 00:00:01.001",
     "838:59:59.999999", 2155, "", "", "", b"\x00\x00\x00\x00", b"", b"", "[]", "a", "", 0, 0),
]  # fmt: skip

EXPECTED_TYPES = {
    "id": pa.int32(),
    "flag": pa.bool_(),
    "bool_col": pa.bool_(),
    "ti": pa.int8(),
    "tiu": pa.uint8(),
    "si": pa.int16(),
    "siu": pa.uint16(),
    "mi": pa.int32(),
    "miu": pa.uint32(),
    "i": pa.int32(),
    "iu": pa.uint32(),
    "bi": pa.int64(),
    "biu": pa.uint64(),
    "dec_wide": pa.decimal256(65, 30),
    "dec_money": pa.decimal128(10, 2),
    "dec_big": pa.decimal128(38, 0),
    "f": pa.float32(),
    "d": pa.float64(),
    "dt": pa.date32(),
    "dtm": pa.timestamp("us"),
    "dtm0": pa.timestamp("us"),
    "ts": pa.timestamp("us", tz="UTC"),
    "tm": pa.duration("us"),
    "yr": pa.int16(),
    "c": pa.string(),
    "vc": pa.string(),
    "tx": pa.string(),
    "bn": pa.binary(),
    "vb": pa.binary(),
    "bl": pa.binary(),
    "js": pa.string(),
    "en": pa.string(),
    "st": pa.string(),
    "bt": pa.uint64(),
    "bt1": pa.bool_(),
}

UTC = dt.UTC
EXPECTED_ROWS = [
    {
        "id": 1, "flag": True, "bool_col": True, "ti": -128, "tiu": 255, "si": -32768, "siu": 65535,
        "mi": -8388608, "miu": 16777215, "i": -2147483648, "iu": 4294967295,
        "bi": -9223372036854775808, "biu": 18446744073709551615,
        "dec_wide": Decimal("12345678901234567890123456789012345.123456789012345678901234567890"),
        "dec_money": Decimal("12345678.99"), "dec_big": Decimal("99999999999999999999999999999999999999"),
        "f": 1.5, "d": 2.25, "dt": dt.date(1000, 1, 1), "dtm": dt.datetime(2024, 2, 29, 23, 59, 59, 999999),
        "dtm0": dt.datetime(9999, 12, 31, 23, 59, 59), "ts": dt.datetime(2038, 1, 19, 3, 14, 7, 999000, tzinfo=UTC),
        "tm": -dt.timedelta(hours=838, minutes=59, seconds=59), "yr": 1901, "c": "abc", "vc": "héllo 😀",
        "tx": "text 🚀 𝄞", "bn": b"\x00\xff\x01\x02", "vb": b"\xde\xad\xbe\xef", "bl": b"\x00\x01\x02",
        "js": '{"a": [1, 2], "e": "😀"}', "en": "b", "st": "x,z", "bt": 682, "bt1": True,
    },
    {"id": 2, **{k: None for k in EXPECTED_TYPES if k != "id"}},
    {
        "id": 3, "flag": False, "bool_col": False, "ti": 127, "tiu": 0, "si": 32767, "siu": 0, "mi": 8388607,
        "miu": 0, "i": 2147483647, "iu": 0, "bi": 9223372036854775807, "biu": 0,
        "dec_wide": Decimal("-0.000000000000000000000000000001"), "dec_money": Decimal("-99999999.99"),
        "dec_big": Decimal("-99999999999999999999999999999999999999"), "f": 16777216.0,
        "d": 1.7976931348623157e308, "dt": dt.date(9999, 12, 31), "dtm": dt.datetime(1000, 1, 1, 0, 0, 0, 1),
        "dtm0": dt.datetime(1000, 1, 1), "ts": dt.datetime(1970, 1, 1, 0, 0, 1, 1000, tzinfo=UTC),
        "tm": dt.timedelta(hours=838, minutes=59, seconds=59, microseconds=999999), "yr": 2155, "c": "",
        "vc": "", "tx": "", "bn": b"\x00\x00\x00\x00", "vb": b"", "bl": b"", "js": "[]", "en": "a", "st": "",
        "bt": 0, "bt1": False,
    },
]  # fmt: skip


@pytest.fixture(scope="module")
def db(mysql_db: dict[str, Any], mysql_admin: Any) -> dict[str, Any]:
    """The test database with `every_type` (edge values, NULLs) and `numbers` (2,500 rows)."""
    with mysql_admin(mysql_db["database"]) as conn, conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        cur.execute(DDL)
        cur.executemany(f"INSERT INTO every_type VALUES ({', '.join(['%s'] * 35)})", ROWS)
        cur.execute("CREATE TABLE numbers (n INT PRIMARY KEY, label VARCHAR(20))")
        cur.execute("INSERT INTO numbers SELECT seq, CONCAT('n', seq) FROM seq_1_to_2500")
    return mysql_db


@pytest.fixture
def extract(tmp_path: Path, recorder: Any, read_path: str) -> Any:
    """`extract(connection, **config)`: run the driver on the test's read path (`read_path: ...` in the config,
    unless it names one), stream its reader into a Parquet file as the runtime does, read the file back."""

    def run(connection: dict[str, Any], **config: Any) -> pa.Table:
        out = MySQLExtractor().run(
            step_id="extract",
            config={"read_path": read_path, **config, "resolved_connection": connection},
            inputs={},
            ctx=recorder,
        )
        reader = out["df"]
        assert isinstance(reader, pa.RecordBatchReader)
        path = tmp_path / "output.parquet"
        with pq.ParquetWriter(path, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
        return pq.read_table(path)

    return run


def check_every_type(table: pa.Table) -> None:
    assert {f.name: f.type for f in table.schema} == EXPECTED_TYPES
    assert table.sort_by("id").to_pylist() == EXPECTED_ROWS


@pytest.mark.read_path("connectorx")
def test_table_mode_round_trips_every_type_exactly(tmp_path, db, recorder, extract):
    table = extract(db, table="every_type", batch_size=2)
    check_every_type(table)
    plan = recorder.event("extract.plan")
    assert plan["path"] == "connectorx"
    assert "`dec_wide` DECIMAL(65,30)" in plan["reason"] and "`tm` TIME" in plan["reason"]


@pytest.mark.read_path("connectorx")
def test_query_without_order_by_reads_inexact_columns_as_text_through_connectorx(tmp_path, db, recorder, extract):
    table = extract(db, query="SELECT * FROM every_type WHERE id > 0", batch_size=2)
    check_every_type(table)
    assert recorder.event("extract.plan")["path"] == "connectorx"


@pytest.mark.read_path("connectorx")
def test_query_with_order_by_and_inexact_columns_uses_pymysql_and_keeps_the_order(tmp_path, db, recorder, extract):
    query = "SELECT id, dec_wide, tm, dtm FROM every_type ORDER BY id DESC"
    table = extract(db, query=query, batch_size=2)
    assert recorder.event("extract.plan")["path"] == "pymysql"
    keep = ("id", "dec_wide", "tm", "dtm")
    assert table.to_pylist() == [{k: r[k] for k in keep} for r in reversed(EXPECTED_ROWS)]


@pytest.mark.read_path("pymysql")
def test_pymysql_path_alone_is_exact_except_float_text(tmp_path, db, recorder, extract):
    table = extract(db, table="every_type")
    assert recorder.event("extract.plan")["path"] == "pymysql"
    assert recorder.event("extract.warning")["columns"] == ["f"]
    # FLOAT over the text protocol carries 6 significant digits: 16777216 arrives as 16777200.
    expected = [dict(r, f=16777200.0 if r["f"] == 16777216.0 else r["f"]) for r in EXPECTED_ROWS]
    assert {f.name: f.type for f in table.schema} == EXPECTED_TYPES
    assert table.sort_by("id").to_pylist() == expected


@pytest.mark.read_path("connectorx")
def test_query_with_only_fast_columns_uses_connectorx(tmp_path, db, recorder, extract):
    cols = ", ".join(k for k in EXPECTED_TYPES if k not in ("dec_wide", "dec_big", "tm"))
    table = extract(db, query=f"SELECT {cols} FROM every_type ORDER BY id")
    assert recorder.event("extract.plan")["path"] == "connectorx"
    assert table.to_pylist() == [
        {k: v for k, v in r.items() if k not in ("dec_wide", "dec_big", "tm")} for r in EXPECTED_ROWS
    ]


@pytest.mark.parametrize("path", ["native", "connectorx", "pymysql"])
def test_zero_rows_still_give_the_exact_schema(tmp_path, db, recorder, monkeypatch, path, extract):
    table = extract(db, table="every_type", where="id < 0")
    assert table.num_rows == 0
    assert {f.name: f.type for f in table.schema} == EXPECTED_TYPES
    assert recorder.metric("rows_read") == 0


@pytest.mark.parametrize("path", ["native", "connectorx", "pymysql"])
def test_batches_progress_and_metrics(tmp_path, db, recorder, monkeypatch, path, extract):
    table = extract(db, table="numbers", batch_size=1000)
    assert table.num_rows == 2500
    assert sorted(table.column("n").to_pylist()) == list(range(1, 2501))
    assert sum(recorder.progress_reports) == 2500 and max(recorder.progress_reports) <= 1000
    assert recorder.metric("rows_read") == 2500
    assert recorder.metric("batches_read") == len(recorder.progress_reports) >= 3
    assert recorder.metric("bytes_read") > 0
    assert recorder.metric("duration_ms") >= 0
    assert recorder.event("extract.complete")["rows"] == 2500


def test_table_with_columns_where_limit(tmp_path, db, recorder, extract):
    table = extract(db, table="numbers", columns=["label", "n"], where="n > 10", limit=5)
    assert table.column_names == ["label", "n"]
    assert table.num_rows == 5 and all(n > 10 for n in table.column("n").to_pylist())


@pytest.mark.parametrize(
    ("query", "params"),
    [
        ("SELECT n, label FROM numbers WHERE label = %s OR n = %s ORDER BY n", ["n7", 9]),
        ("SELECT n, label FROM numbers WHERE label = %(l)s OR n = %(n)s ORDER BY n", {"l": "n7", "n": 9}),
    ],
)
def test_params_are_escaped_not_pasted(tmp_path, db, recorder, query, params, extract):
    table = extract(db, query=query, params=params)
    assert table.to_pylist() == [{"n": 7, "label": "n7"}, {"n": 9, "label": "n9"}]
    hostile = extract(db, query="SELECT n FROM numbers WHERE label = %s", params=["x' OR '1'='1"])
    assert hostile.num_rows == 0


def test_timestamp_is_utc_whatever_the_server_zone(tmp_path, db, recorder, extract):
    table = extract(db, query="SELECT ts FROM every_type WHERE id = 3")
    assert table.column("ts").to_pylist() == [dt.datetime(1970, 1, 1, 0, 0, 1, 1000, tzinfo=UTC)]


def test_query_and_table_together_is_a_user_error(tmp_path, db, recorder, extract):
    from osiris.core.errors import UserInputError

    with pytest.raises(UserInputError, match="either `query`, or `table`"):
        extract(db, query="SELECT 1", table="numbers")


DECIMALS_DDL = """
CREATE TABLE decimals (
  id INT NOT NULL PRIMARY KEY, d1 DECIMAL(1,0), d5 DECIMAL(5,2), d18 DECIMAL(18,0),
  f18 DECIMAL(18,18), u18 DECIMAL(18,6) UNSIGNED, d19 DECIMAL(19,4)
)
"""
DECIMAL_ROWS = [
    (1, "9", "999.99", "999999999999999999", "0.999999999999999999", "999999999999.999999", "999999999999999.9999"),
    (2, "-9", "-999.99", "-999999999999999999", "-0.999999999999999999", "0.000001", "-999999999999999.9999"),
    (3, "0", "0.01", "0", "0.000000000000000001", "0", "0.0001"),
    (4, None, None, None, None, None, None),
]  # fmt: skip


DECIMAL_TYPES = {
    "id": pa.int32(), "d1": pa.decimal128(1, 0), "d5": pa.decimal128(5, 2), "d18": pa.decimal128(18, 0),
    "f18": pa.decimal128(18, 18), "u18": pa.decimal128(18, 6), "d19": pa.decimal128(19, 4),
}  # fmt: skip


def create_decimals(mysql_admin: Any, connection: dict[str, Any]) -> None:
    with mysql_admin(connection["database"]) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS decimals")
        cur.execute(DECIMALS_DDL)
        cur.executemany("INSERT INTO decimals VALUES (%s, %s, %s, %s, %s, %s, %s)", DECIMAL_ROWS)


def check_decimals(table: pa.Table) -> None:
    """The columns `table` has of `decimals`, with their exact types and values."""
    assert {f.name: f.type for f in table.schema} == {k: DECIMAL_TYPES[k] for k in table.column_names}
    expected = [
        {
            k: v if k == "id" or v is None else Decimal(v)
            for k, v in zip(DECIMAL_TYPES, r, strict=True)
            if k in table.column_names
        }
        for r in DECIMAL_ROWS
    ]
    assert table.sort_by("id").to_pylist() == expected


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"table": "decimals"}, "connectorx"),  # scaled integers from a generated column list
        ({"query": "SELECT * FROM decimals WHERE id > 0"}, "connectorx"),  # ... from a derived table
        ({"query": "SELECT id, d1, d5, d18, u18, d19 FROM decimals ORDER BY id"}, "connectorx"),  # not rewritten
        ({"query": "SELECT * FROM decimals ORDER BY id"}, "pymysql"),  # not rewritten, and f18 has scale 18
        ({"table": "decimals", "read_path": "pymysql"}, "pymysql"),
    ],
)
@pytest.mark.read_path("connectorx")
def test_decimals_up_to_18_digits_read_as_scaled_integers_stay_exact(
    tmp_path, db, recorder, mysql_admin, monkeypatch, config, expected, extract
):
    create_decimals(mysql_admin, db)
    table = extract(db, **config)
    assert recorder.event("extract.plan")["path"] == expected
    check_decimals(table)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT n, NULL AS nothing FROM numbers WHERE n <= 3",  # only the column connectorx can't read
        "SELECT n, CAST(n / 4 AS DECIMAL(10,2)) AS q, NULL AS nothing FROM numbers WHERE n <= 3",  # and a rewrite
    ],
)
@pytest.mark.read_path("connectorx")
def test_a_column_no_expression_makes_exact_sends_the_read_to_pymysql(tmp_path, db, recorder, query, extract):
    table = extract(db, query=query)
    plan = recorder.event("extract.plan")
    assert plan["path"] == "pymysql" and "`nothing` NULL" in plan["reason"]
    assert table.schema.field("nothing").type == pa.null()
    assert table.sort_by("n").column("n").to_pylist() == [1, 2, 3]


@pytest.mark.parametrize("path", ["native", "connectorx"])
def test_binary_path_extraction_never_imports_pandas(db, mysql_admin, path):
    # pandas costs about 50 MiB and a second of start-up; some pyarrow calls import it as a side
    # effect (e.g. comparing with a bare Python scalar), so check a fresh process end to end on
    # the binary paths (native, connectorx) with the everyday types. (The text fallback builds
    # arrays from Python lists, which imports it.)
    import json
    import subprocess
    import sys

    probe = (
        "import json, sys\n"
        "from osiris.drivers.sql.mysql_extractor import MySQLExtractor\n"
        "from osiris.runtime.contract import StepContext\n"
        "cfg = json.loads(sys.argv[1])\n"
        "out = MySQLExtractor().run(step_id='e', config=cfg, inputs={}, ctx=StepContext(step_id='e', output_dir='.'))\n"
        "rows = sum(b.num_rows for b in out['df'])\n"
        "print(json.dumps({'rows': rows, 'pandas': 'pandas' in sys.modules}))\n"
    )
    with mysql_admin(db["database"]) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS everyday")
        cur.execute(
            "CREATE TABLE everyday (id BIGINT PRIMARY KEY, flag BOOLEAN, amount DECIMAL(12,2), "
            "name VARCHAR(20), at DATETIME(6), day DATE, doc JSON)"
        )
        cur.execute(
            "INSERT INTO everyday SELECT seq, seq % 2, seq / 4, CONCAT('n', seq), "
            "TIMESTAMP('2026-01-01') + INTERVAL seq SECOND, DATE('2026-01-01'), JSON_OBJECT('k', seq) "
            "FROM seq_1_to_300"
        )
    config = {"table": "everyday", "batch_size": 100, "read_path": path, "resolved_connection": db}
    proc = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(config)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"rows": 300, "pandas": False}


# -- zero dates read as NULL (`zero_dates: "null"`) ------------------------------------------------

LEGACY_TYPES = {
    "id": pa.int32(),
    "d": pa.date32(),
    "dtm": pa.timestamp("us"),
    "ts": pa.timestamp("us", tz="UTC"),
    "tm": pa.duration("us"),
}
TM = -dt.timedelta(hours=12, seconds=0.5)
LEGACY_AS_NULL = [
    {"id": 1, "d": None, "dtm": None, "ts": None, "tm": TM},
    {"id": 2, "d": None, "dtm": None, "ts": dt.datetime(2038, 1, 19, 3, 14, 7, 999999, tzinfo=UTC), "tm": TM},
    {"id": 3, "d": None, "dtm": None, "ts": None, "tm": None},
    {
        "id": 4,
        "d": dt.date(2024, 2, 29),
        "dtm": dt.datetime(2024, 2, 29, 23, 59, 59, 999000),
        "ts": dt.datetime(1970, 1, 1, 0, 0, 1, 1, tzinfo=UTC),
        "tm": TM,
    },
    {
        "id": 5,
        "d": dt.date(1000, 1, 1),
        "dtm": None,
        "ts": dt.datetime(2024, 2, 29, 12, 0, 0, 500000, tzinfo=UTC),
        "tm": TM,
    },
]


@pytest.fixture(scope="module")
def legacy(db: dict[str, Any], create_legacy_dates: Any) -> dict[str, Any]:
    """The test database with `legacy_dates`: zero, partial, NULL and ordinary DATE/DATETIME(3)/TIMESTAMP(6) values."""
    create_legacy_dates(db["database"])
    return db


@pytest.mark.parametrize(
    ("forced", "config", "chosen"),
    [
        # The server sends NULL for them: table mode, and a query without ORDER BY (wrapped).
        (None, {"table": "legacy_dates"}, "connectorx"),
        (None, {"table": "legacy_dates", "columns": ["tm", "ts", "id"], "where": "id > 0"}, "connectorx"),
        (None, {"query": "SELECT * FROM legacy_dates WHERE id > 0"}, "connectorx"),
        # Text rows, parsed here: a query that cannot be wrapped, or pymysql by force.
        (None, {"query": "SELECT * FROM legacy_dates ORDER BY id DESC"}, "pymysql"),
        ("pymysql", {"table": "legacy_dates"}, "pymysql"),
        ("pymysql", {"query": "SELECT id, d, dtm, ts, tm FROM legacy_dates WHERE id > 0"}, "pymysql"),
    ],
)
@pytest.mark.read_path("connectorx")
def test_zero_dates_null_reads_zero_and_partial_dates_as_null_and_the_rest_exactly(
    tmp_path, legacy, recorder, monkeypatch, forced, config, chosen, extract
):
    if forced:
        config = {**config, "read_path": forced}
    table = extract(legacy, zero_dates="null", batch_size=2, **config)
    names = config.get("columns") or list(LEGACY_TYPES)
    assert {f.name: f.type for f in table.schema} == {n: LEGACY_TYPES[n] for n in names}
    expected = [{n: r[n] for n in names} for r in LEGACY_AS_NULL]
    if "ORDER BY id DESC" in config.get("query", ""):
        assert table.to_pylist() == expected[::-1]
    else:
        assert table.sort_by("id").to_pylist() == expected

    plan = recorder.event("extract.plan")
    assert plan["path"] == chosen
    dates = [n for n in names if n in ("d", "dtm", "ts")]
    listing = ", ".join(
        f"`{n}` {t}" for n, t in (("d", "DATE"), ("dtm", "DATETIME"), ("ts", "TIMESTAMP")) if n in dates
    )
    if chosen == "connectorx":
        assert f"zero dates read as NULL by the server: {listing}" in plan["reason"]
        assert "columns read as text and parsed exactly: `tm` TIME" in plan["reason"]
    elif forced is None:
        assert f"zero dates read as NULL while parsing text: {listing}" in plan["reason"]
        assert "not wrapped" in plan["reason"]
    warning = recorder.event("extract.warning")
    assert warning["columns"] == dates and 'zero_dates: "null"' in warning["message"]
    complete = recorder.event("extract.complete")
    if chosen == "pymysql":
        # Text rows tell zero dates from NULLs, so this path counts them.
        assert complete["zero_dates_as_null"] == {"d": 2, "dtm": 3, "ts": 1}
    else:
        assert "zero_dates_as_null" not in complete


@pytest.mark.read_path("connectorx")
def test_zero_dates_null_falls_back_to_text_when_the_rewrite_changes_a_column(
    tmp_path, legacy, recorder, monkeypatch, extract
):
    # A server that describes the rewritten date differently (here: forced to text) must not get the fast path.
    real = mysql_extractor._rewrite

    def as_text(plan, prefix):
        if plan.kind in ("date", "timestamp", "timestamp_utc"):
            col = prefix + mysql_extractor._quote_column(plan.name)
            return f"CAST({col} AS CHAR) AS {mysql_extractor._quote_column(plan.name)}"
        return real(plan, prefix)

    monkeypatch.setattr(mysql_extractor, "_rewrite", as_text)
    table = extract(legacy, table="legacy_dates", zero_dates="null")
    plan = recorder.event("extract.plan")
    assert plan["path"] == "pymysql"
    assert "(the rewritten statement describes `d` differently)" in plan["reason"]
    assert table.sort_by("id").to_pylist() == LEGACY_AS_NULL


@pytest.mark.read_path("connectorx")
def test_zero_dates_null_changes_nothing_without_date_columns(tmp_path, legacy, recorder, extract):
    table = extract(legacy, table="numbers", zero_dates="null", limit=3)
    assert table.num_rows == 3
    assert recorder.event("extract.plan")["reason"] == "every column is exact through connectorx"
    assert not [d for n, d in recorder.events if n == "extract.warning"]


# -- the native path (`mysql_native`, `_mysql_rows.c`) ------------------------------------------------
# The tests above run on the native path (the default wherever the row parser is built, as users
# get it) unless they name another; these are about the native path itself.

native = pytest.mark.read_path("native")
rows = mysql_native.module()


def test_the_native_row_parser_is_built():
    assert rows is not None, "the native row parser is not built: run scripts/bootstrap (it needs a C compiler)"


@pytest.mark.parametrize(
    "config",
    [
        {"table": "every_type", "batch_size": 2},
        {"table": "every_type", "batch_size": 1000},
        # ORDER BY, wide DECIMAL and TIME: nothing is rewritten on this path, so nothing needs wrapping.
        {"query": "SELECT * FROM every_type ORDER BY id DESC", "batch_size": 1},
    ],
)
@native
def test_every_type_round_trips_exactly_including_float(tmp_path, db, recorder, config, extract):
    table = extract(db, **config)
    check_every_type(table)  # FLOAT 16777216 stays 16777216: binary values, not 6-digit text
    plan = recorder.event("extract.plan")
    assert plan["path"] == "native" and "binary protocol" in plan["reason"]
    assert "extract.warning" not in [name for name, _ in recorder.events]
    if "ORDER BY" in config.get("query", ""):
        assert table.column("id").to_pylist() == [r["id"] for r in reversed(EXPECTED_ROWS)]


@pytest.mark.parametrize("chunk", [1, 5, 7, 64])
@native
def test_packets_split_anywhere_between_reads_decode_the_same(tmp_path, db, recorder, monkeypatch, chunk, extract):
    monkeypatch.setattr(mysql_native, "CHUNK", chunk)
    check_every_type(extract(db, table="every_type", batch_size=2))


@pytest.mark.parametrize(
    "config",
    [{"table": "decimals"}, {"query": "SELECT * FROM decimals ORDER BY id"}, {"query": "SELECT d19, id FROM decimals"}],
)
@native
def test_decimals_are_exact_at_every_precision_and_scale(tmp_path, db, recorder, mysql_admin, config, extract):
    create_decimals(mysql_admin, db)
    table = extract(db, **config)
    assert recorder.event("extract.plan")["path"] == "native"
    check_decimals(table)


@native
def test_zero_dates_null_are_counted_per_column(tmp_path, legacy, recorder, extract):
    table = extract(legacy, table="legacy_dates", zero_dates="null", batch_size=2)
    assert {f.name: f.type for f in table.schema} == LEGACY_TYPES
    assert table.sort_by("id").to_pylist() == LEGACY_AS_NULL
    assert recorder.event("extract.plan")["path"] == "native"
    assert recorder.event("extract.complete")["zero_dates_as_null"] == {"d": 2, "dtm": 3, "ts": 1}


@native
def test_a_row_of_several_packets_is_joined(tmp_path, db, recorder, mysql_admin, extract):
    # A row of 16 MiB or more travels as several protocol packets. The server only sends one when
    # max_allowed_packet allows it: raise it for this test (new sessions read it) and put it back.
    size = 17 * 2**20
    with mysql_admin() as admin, admin.cursor() as cur:
        cur.execute("SELECT @@GLOBAL.max_allowed_packet")
        (before,) = cur.fetchone()
        cur.execute("SET GLOBAL max_allowed_packet = %s", (64 * 2**20,))
        try:
            query = f"SELECT seq, REPEAT(CHAR(64 + seq), {size}) AS big, 'after' AS tail FROM seq_1_to_3"
            table = extract(db, query=query, batch_size=2)
        finally:
            cur.execute("SET GLOBAL max_allowed_packet = %s", (before,))
    assert recorder.event("extract.plan")["path"] == "native"
    assert table.column("seq").to_pylist() == [1, 2, 3]
    assert table.column("tail").to_pylist() == ["after"] * 3
    for seq, big in zip(table.column("seq").to_pylist(), table.column("big").to_pylist(), strict=True):
        assert big == bytes([64 + seq]) * size  # CHAR() gives a binary string: BLOB-like bytes


# -- the parser on crafted packets ---------------------------------------------------------------------


def packet(payload: bytes, seq: int = 0) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


EOF_PACKET = packet(b"\xfe\x00\x00\x22\x00")


def int_row(value: int | None) -> bytes:
    """A binary row of one INT column."""
    if value is None:
        return packet(b"\x00\x04")  # NULL bitmap: column 0 is bit 2
    return packet(b"\x00\x00" + struct.pack("<i", value))


def test_parser_batches_rows_and_stops_at_eof():
    parser = rows.RowParser([(rows.K_FIX4, 0, 0, False)], 2)
    batches = parser.feed(b"".join([int_row(1), int_row(None), int_row(3), EOF_PACKET, b"ignored"]))
    assert parser.done and parser.rows == 3
    (n, [(validity, data, offsets)]) = batches[0]
    assert n == 2 and offsets is None and validity == b"\x01"
    assert struct.unpack("<2i", data) == (1, 0)
    n, [(validity, data, _)] = parser.finish()
    assert n == 1 and validity is None and struct.unpack("<i", data) == (3,)
    assert parser.finish() is None


def test_parser_hands_back_the_servers_error_packet():
    err = b"\xff" + struct.pack("<H", 1927) + b"#70100Connection was killed"
    parser = rows.RowParser([(rows.K_FIX4, 0, 0, False)], 10)
    parser.feed(int_row(1) + packet(err))
    assert parser.error_packet == err and not parser.done
    with pytest.raises(RuntimeError, match="already failed"):
        parser.feed(EOF_PACKET)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"\x00\x00\x01\x02", "truncated number"),
        (b"\x00\x00\x01\x02\x03\x04\x05", "row packet longer than its columns"),
        (b"\x07\x00", "not a binary row packet"),
        (b"", "empty packet"),
    ],
)
def test_parser_names_malformed_rows(payload, why):
    parser = rows.RowParser([(rows.K_FIX4, 0, 0, False)], 10)
    parser.feed(packet(payload))
    assert parser.protocol_error == f"malformed row 1 from the server: {why}"


def test_parser_refuses_a_decimal_wider_than_its_column():
    parser = rows.RowParser([(rows.K_DEC128, 2, 5, False)], 10)
    parser.feed(packet(b"\x00\x00\x071234.56"))
    assert parser.protocol_error == "a value has more digits than DECIMAL(5,2) holds: 1234.56"


def test_parser_rejects_bad_column_kinds():
    with pytest.raises(ValueError, match="bad kind"):
        rows.RowParser([(99, 0, 0, False)], 10)
    with pytest.raises(ValueError, match="bad kind"):
        rows.RowParser([(rows.K_DEC128, 0, 39, False)], 10)


def _lenenc(data: bytes) -> bytes:
    n = len(data)
    return (bytes([n]) if n < 251 else b"\xfc" + struct.pack("<H", n)) + data


def _row_of_every_kind(i: int) -> bytes:
    """A binary row for `EVERY_KIND`: NULL in column i % 13 (none when that is the NULL column's own)."""
    values = [
        struct.pack("<b", i % 100 - 50),  # FIX1
        struct.pack("<h", i * 7),  # FIX2
        struct.pack("<i", -i * 1001),  # FIX4
        struct.pack("<q", i * 10**12),  # FIX8
        _lenenc(f"{i * 3 - 50}.{i % 100:02d}".encode()),  # DEC128(10,2)
        bytes([4]) + struct.pack("<HBB", 2000 + i % 30, 1 + i % 12, 1 + i % 28),  # DATE
        bytes([11]) + struct.pack("<HBBBBBI", 1999, 12, 31, 23, 59, 59, i % 10**6),  # DATETIME
        bytes([12]) + struct.pack("<BIBBBI", i % 2, i % 34, 1, 2, 3, i % 10**6),  # TIME
        _lenenc(struct.pack(">H", i % 1024)),  # BIT
        _lenenc(("é" * (i % 300)).encode()),  # BYTES
        bytes([i % 3]),  # BOOL
        _lenenc(bytes([i % 2])),  # BITBOOL
        b"",  # NULL
    ]
    null_col = i % 13
    bitmap = bytearray((13 + 9) // 8)
    for col in (null_col, 12):
        bitmap[(col + 2) // 8] |= 1 << ((col + 2) % 8)
    return packet(b"\x00" + bytes(bitmap) + b"".join(v for c, v in enumerate(values) if c not in (null_col, 12)))


def _every_kind(parser_module):
    r = parser_module
    return [
        (r.K_FIX1, 0, 0, False), (r.K_FIX2, 0, 0, False), (r.K_FIX4, 0, 0, False), (r.K_FIX8, 0, 0, False),
        (r.K_DEC128, 2, 10, False), (r.K_DATE, 0, 0, True), (r.K_DATETIME, 0, 0, False), (r.K_TIME, 0, 0, False),
        (r.K_BIT, 0, 0, False), (r.K_BYTES, 0, 0, False), (r.K_BOOL, 0, 0, False), (r.K_BITBOOL, 0, 0, False),
        (r.K_NULL, 0, 0, False),
    ]  # fmt: skip


def test_parser_decodes_every_kind_the_same_however_the_bytes_are_cut():
    import random

    stream = b"".join(_row_of_every_kind(i) for i in range(500)) + EOF_PACKET
    whole = rows.RowParser(_every_kind(rows), 64)
    expected = [*whole.feed(stream), whole.finish()]
    assert whole.done and whole.rows == 500 and whole.protocol_error is None
    rng = random.Random(7)
    for _ in range(20):
        parser = rows.RowParser(_every_kind(rows), 64)
        got, pos = [], 0
        while pos < len(stream):
            step = rng.choice([1, 2, 3, 5, 17, 300, 4096])
            got += parser.feed(stream[pos : pos + step])
            pos += step
        assert [*got, parser.finish()] == expected


def test_parser_survives_corrupted_bytes():
    # Damaged input must end in a clean failure (or, by chance, other values), never a crash.
    import random

    stream = b"".join(_row_of_every_kind(i) for i in range(200)) + EOF_PACKET
    rng = random.Random(11)
    for _ in range(3000):
        damaged = bytearray(stream)
        for _ in range(rng.randint(1, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        cut = rng.randrange(len(damaged) + 1)
        parser = rows.RowParser(_every_kind(rows), 50)
        try:
            parser.feed(bytes(damaged[:cut]))
            if not (parser.error_packet or parser.bad_date or parser.protocol_error):
                parser.feed(bytes(damaged[cut:]))
        except RuntimeError:
            pass  # fed after failing
        parser.finish()
