"""The DuckDB processor and writer against real Parquet inputs and a real DuckDB file."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from osiris.core.errors import TerminalError, UserInputError
from osiris.drivers.sql.duckdb_processor import DuckDBProcessor
from osiris.drivers.sql.duckdb_writer import DuckDBWriter
from osiris.runtime.contract import InputHandle, StepContext
from osiris.runtime.testing import run_driver


def handle(tmp: Path, name: str, table: pa.Table) -> InputHandle:
    path = tmp / f"{name}.parquet"
    pq.write_table(table, path)
    return InputHandle(name, path)


def ctx(tmp: Path, step: str = "s") -> StepContext:
    (tmp / step).mkdir(exist_ok=True)
    return StepContext(step_id=step, output_dir=tmp / step, base_dir=tmp)


def test_processor_sees_every_input_as_a_view_and_input_df_when_single(tmp_path: Path) -> None:
    """Run as the runner runs it (`run_driver`): every upstream a view by its step id, `input_df` for one."""
    a = pa.table({"k": [1, 2, 3], "x": ["p", "q", "r"]})
    b = pa.table({"k": [1, 2], "y": [10, 20]})
    c = pa.table({"k": [2, 1], "z": [0.5, 1.5]})
    query = 'SELECT a.k, x, y, z FROM a JOIN "b-2" USING (k) JOIN c USING (k) ORDER BY a.k'
    joined = run_driver(
        DuckDBProcessor, {"query": query}, inputs={"a": a, "b-2": b, "c": c}, work_dir=tmp_path / "j", step_id="j"
    )
    assert joined.output.to_pydict() == {"k": [1, 2], "x": ["p", "q"], "y": [10, 20], "z": [1.5, 0.5]}
    single = run_driver(
        DuckDBProcessor,
        {"query": "SELECT sum(k) OVER (ORDER BY k) AS s FROM input_df"},
        inputs={"a": a},
        work_dir=tmp_path / "one",
        step_id="one",
    )
    assert single.output.column("s").to_pylist() == [1, 3, 6] and single.rows_out == 3


def test_processor_bad_sql_is_a_terminal_error_naming_the_step(tmp_path: Path) -> None:
    with pytest.raises(TerminalError, match="step `bad`"):
        DuckDBProcessor().run(step_id="bad", config={"query": "SELEC 1"}, inputs={}, ctx=ctx(tmp_path))


def test_writer_append_replace_and_upsert_on_composite_key(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    first = handle(tmp_path, "first", pa.table({"id": [1, 1, 2], "m": ["a", "b", "a"], "v": [1, 2, 3]}))
    update = handle(tmp_path, "upd", pa.table({"id": [1, 3, 3], "m": ["b", "a", "a"], "v": [20, 30, 31]}))
    base = {"path": str(db), "table": "t", "schema": "main", "create_if_missing": True}

    def write(h: InputHandle, **cfg: object) -> dict:
        return DuckDBWriter().run(step_id="w", config={**base, **cfg}, inputs={"df": h}, ctx=ctx(tmp_path))

    def rows() -> list[tuple]:
        with duckdb.connect(str(db)) as con:
            return con.execute("SELECT id, m, v FROM t ORDER BY id, m").fetchall()

    assert write(first, write_mode="append")["rows_written"] == 3
    write(first, write_mode="append")
    assert len(rows()) == 6
    write(first, write_mode="replace")
    assert rows() == [(1, "a", 1), (1, "b", 2), (2, "a", 3)]
    with pytest.raises(TerminalError, match=r"\(id=3, m=a\) \(2 rows\).*nothing was written"):
        write(update, write_mode="upsert", primary_key=["id", "m"])
    assert rows() == [(1, "a", 1), (1, "b", 2), (2, "a", 3)]
    result = write(update, write_mode="upsert", primary_key=["id", "m"], on_duplicate_keys="keep_last")
    assert result["rows_written"] == 2 and result["duplicate_rows_dropped"] == 1
    assert rows() == [(1, "a", 1), (1, "b", 20), (2, "a", 3), (3, "a", 31)]


def test_writer_failure_leaves_table_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    good = handle(tmp_path, "good", pa.table({"id": [1], "v": [1]}))
    bad = handle(tmp_path, "bad", pa.table({"id": [2], "v": ["not a number"]}))
    cfg = {"path": str(db), "table": "t", "schema": "main", "create_if_missing": True}
    DuckDBWriter().run(step_id="w", config={**cfg, "write_mode": "append"}, inputs={"df": good}, ctx=ctx(tmp_path))
    with pytest.raises(TerminalError):
        DuckDBWriter().run(step_id="w", config={**cfg, "write_mode": "replace"}, inputs={"df": bad}, ctx=ctx(tmp_path))
    with duckdb.connect(str(db)) as con:
        assert con.execute("SELECT * FROM t").fetchall() == [(1, 1)]


# -- exact types and names through DuckDB ------------------------------------------------------


def run_query(tmp: Path, query: str, **inputs: InputHandle) -> pa.Table:
    out = DuckDBProcessor().run(step_id="t", config={"query": query}, inputs=inputs, ctx=ctx(tmp))["df"]
    return out.read_all()


def mysqlish(tmp: Path) -> InputHandle:
    """What mysql.extractor hands on for a table: NOT NULL fields, declared types, the key's positions."""
    import datetime as dt
    from decimal import Decimal

    schema = pa.schema(
        [
            pa.field("id", pa.int32(), nullable=False, metadata={"osiris.primary_key": "1"}),
            pa.field("name", pa.string(), nullable=False, metadata={"osiris.sql_type": "varchar(40)"}),
            pa.field("amount", pa.decimal256(65, 30)),
            pa.field("took", pa.duration("us"), nullable=False),
            pa.field("flags", pa.uint64(), metadata={"osiris.sql_type": "bit(5)"}),
        ]
    )
    rows = [
        {"id": 1, "name": "a", "amount": Decimal("1.5"), "took": dt.timedelta(hours=-800), "flags": 21},
        {"id": 2, "name": "b", "amount": None, "took": dt.timedelta(microseconds=1), "flags": 0},
    ]
    return handle(tmp, "src", pa.Table.from_pylist(rows, schema=schema))


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM src",
        "SELECT id, amount FROM src",
        "SELECT id FROM src WHERE amount > 1",
        "SELECT COLUMNS(*) FROM src",
        "SELECT src.* FROM src",
        "SELECT s FROM src s",
        "SELECT * FROM src a JOIN src b USING (amount)",
    ],
)
def test_a_query_reading_a_decimal_wider_than_duckdb_holds_fails_naming_it(tmp_path: Path, query: str) -> None:
    src = mysqlish(tmp_path)
    with pytest.raises(TerminalError, match=r"Column `amount` of input `src` .* `decimal256\(65, 30\)`.* 38 digits"):
        run_query(tmp_path, query, src=src)


def test_a_query_leaving_the_wide_decimal_alone_runs_and_durations_are_intervals(tmp_path: Path) -> None:
    src = mysqlish(tmp_path)
    out = run_query(tmp_path, "SELECT * EXCLUDE (amount) FROM src WHERE took < INTERVAL 0 SECOND", src=src)
    assert out.to_pylist() == [{"id": 1, "name": "a", "took": "-800:00:00", "flags": 21}]
    assert out.schema.field("took").metadata == {b"osiris.sql_type": b"interval"}
    assert run_query(tmp_path, "SELECT id, took + INTERVAL 1 HOUR AS later FROM src ORDER BY id", src=src).column(
        "later"
    ).to_pylist() == ["-799:00:00", "01:00:00.000001"]


def test_columns_passed_through_keep_not_null_metadata_and_the_key(tmp_path: Path) -> None:
    src = mysqlish(tmp_path)

    def shape(query: str) -> dict[str, tuple[bool, dict]]:
        table = run_query(tmp_path, query, src=src)
        return {f.name: (f.nullable, dict(f.metadata or {})) for f in table.schema}

    key = {b"osiris.primary_key": b"1"}
    varchar = {b"osiris.sql_type": b"varchar(40)"}
    assert shape("SELECT id, name AS full_name FROM src WHERE id > 0 ORDER BY name DESC LIMIT 5") == {
        "id": (False, key),
        "full_name": (False, varchar),
    }
    # A computed column: DuckDB's own type; the key is no longer certain, NOT NULL of the others stays.
    assert shape("SELECT id, upper(name) AS name FROM src") == {"id": (False, {}), "name": (True, {})}
    # Without the key column, no key; a join or CTE is not followed at all.
    assert shape("SELECT name FROM src") == {"name": (False, varchar)}
    assert shape("SELECT a.id FROM src a JOIN src b ON a.id = b.id") == {"id": (True, {})}
    assert shape("WITH s AS (SELECT * EXCLUDE (amount) FROM src) SELECT id FROM s") == {"id": (True, {})}
    assert shape("SELECT name FROM src GROUP BY ALL") == {"name": (False, varchar)}
    assert shape("SELECT name FROM src GROUP BY ROLLUP (name)") == {"name": (True, {})}


def test_column_names_survive_exactly_or_the_clash_is_named(tmp_path: Path) -> None:
    clash = handle(tmp_path, "clash", pa.table({"Id": [1], "id": [2]}))
    with pytest.raises(UserInputError, match=r"columns `Id` and `id`, which DuckDB cannot tell apart"):
        run_query(tmp_path, "SELECT * FROM clash", clash=clash)
    out = run_query(tmp_path, 'SELECT 1 AS "Id", 2 AS id, 3 AS "ID ☃"')
    assert out.schema.names == ["Id", "id", "ID ☃"]
    with pytest.raises(UserInputError, match=r"two columns named `id`"):
        run_query(tmp_path, "SELECT a.id, b.id FROM (SELECT 1 AS id) a, (SELECT 2 AS id) b")


def test_tagged_text_is_its_duckdb_type_again_in_the_next_step(tmp_path: Path) -> None:
    first = run_query(
        tmp_path,
        "SELECT INTERVAL 90 MINUTE AS i, CAST('12:00:00+02' AS TIMETZ) AS tz, CAST('101' AS BIT) AS b, "
        "CAST('{\"a\": 1}' AS JSON) AS j, uuid() AS u",
    )
    assert [f.metadata[b"osiris.sql_type"] for f in first.schema] == [
        b"interval",
        b"timetz",
        b"varbit",
        b"json",
        b"uuid",
    ]
    prev = handle(tmp_path, "prev", first)
    second = (
        DuckDBProcessor()
        .run(
            step_id="t2",
            config={"query": "SELECT i + INTERVAL 1 HOUR AS later, b, j->>'a' AS a, typeof(u) AS ut FROM prev"},
            inputs={"prev": prev},
            ctx=ctx(tmp_path),
        )["df"]
        .read_all()
    )
    assert second.to_pylist() == [{"later": "02:30:00", "b": "101", "a": "1", "ut": "UUID"}]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("CAST(1 AS UNION(n INTEGER, s VARCHAR))", "a UNION has no single type"),
        ("[INTERVAL 1 DAY]", "`INTERVAL` inside it has no exact form"),
        ("CAST(340282366920938463463374607431768211455 AS UHUGEINT)", "has more than 38 digits"),
    ],
)
def test_a_result_type_with_no_exact_form_is_refused_naming_the_column(tmp_path: Path, expr: str, message: str) -> None:
    with pytest.raises(TerminalError, match=rf"Column `x` of step `t`.*{re.escape(message)}"):
        run_query(tmp_path, f"SELECT {expr} AS x")


def test_writer_repeated_keys_fail_by_default_keep_first_or_last(tmp_path: Path) -> None:
    db = tmp_path / "k.duckdb"
    data = handle(tmp_path, "k", pa.table({"id": [1, 2, 1, 1], "v": ["a", "b", "c", "d"]}))
    base = {"path": str(db), "table": "t", "write_mode": "replace", "primary_key": "id"}

    def write(**cfg: object) -> dict:
        return DuckDBWriter().run(step_id="w", config={**base, **cfg}, inputs={"df": data}, ctx=ctx(tmp_path))

    with pytest.raises(
        TerminalError, match=r"repeats 1 value\(s\) of the key `id`: 2 of its 4 rows .* id=1 \(3 rows\)"
    ):
        write()
    assert not db.exists() or duckdb.connect(str(db)).execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 't'"
    ).fetchall() == [(0,)]
    assert write(on_duplicate_keys="keep_first")["duplicate_rows_dropped"] == 2
    with duckdb.connect(str(db)) as con:
        assert con.execute("SELECT * FROM t ORDER BY id").fetchall() == [(1, "a"), (2, "b")]
    write(on_duplicate_keys="keep_last")
    with duckdb.connect(str(db)) as con:
        assert con.execute("SELECT * FROM t ORDER BY id").fetchall() == [(1, "d"), (2, "b")]


def test_writer_refuses_a_decimal_wider_than_duckdb_holds(tmp_path: Path) -> None:
    src = mysqlish(tmp_path)
    with pytest.raises(TerminalError, match=r"Column `amount` .* 38 digits"):
        DuckDBWriter().run(
            step_id="w",
            config={"path": str(tmp_path / "w.duckdb"), "table": "t"},
            inputs={"df": src},
            ctx=ctx(tmp_path),
        )


class StillWritten(InputHandle):
    """An upstream still running, as an overlapped hand-off shows it: its batches stream before its
    file exists, and asking for the whole output (`num_rows`) waits for the finished file."""

    def __init__(self, tmp: Path, table: pa.Table) -> None:
        super().__init__("up", tmp / "up" / "output.parquet")
        self.table = table
        self.pulled = 0
        self.streams = 0
        self.waited = False

    @property
    def schema(self) -> pa.Schema:
        return self.table.schema

    def iter_batches(self, batch_size: int = 65536, columns: list[str] | None = None):
        self.streams += 1
        for batch in self.table.to_batches(max_chunksize=1000):
            self.pulled += batch.num_rows
            yield batch

    def _parquet(self):
        if not self.path.is_file():
            self.waited = True
            self.path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(self.table, self.path)
        return super()._parquet()


def orders(n: int = 10_000) -> pa.Table:
    return pa.table({"k": [i % 7 for i in range(n)], "v": list(range(n))})


def test_an_input_still_being_written_is_scanned_as_it_arrives_when_the_query_reads_it_once(tmp_path: Path) -> None:
    query = "SELECT k, sum(v) AS total, count(*) AS n FROM input_df WHERE v % 2 = 0 GROUP BY k ORDER BY k"
    live = StillWritten(tmp_path, orders())
    c = ctx(tmp_path)
    out = DuckDBProcessor().run(step_id="t", config={"query": query}, inputs={"df": live, "up": live}, ctx=c)
    streamed = out["df"].read_all()
    assert live.streams == 1 and live.pulled == 10_000 and not live.waited
    assert streamed.equals(run_query(tmp_path, query, df=handle(tmp_path, "up", orders())))


def test_a_query_stopping_early_still_reads_the_stream_to_its_end(tmp_path: Path) -> None:
    live = StillWritten(tmp_path, orders())
    rows = run_query(tmp_path, "SELECT v FROM input_df LIMIT 3", df=live)
    assert rows.num_rows == 3 and live.pulled == 10_000  # the upstream is never left waiting


@pytest.mark.parametrize(
    "query",
    [
        "SELECT a.v FROM input_df a JOIN input_df b USING (v)",
        "SELECT v FROM input_df UNION ALL SELECT v FROM up",
        "WITH c AS (SELECT * FROM input_df) SELECT count(*) AS n FROM c",
        "SELECT v FROM input_df WHERE v IN (SELECT max(v) FROM input_df)",
        "SELECT count(*) AS n FROM query_table('input_df')",
    ],
)
def test_a_query_that_may_read_the_input_twice_waits_for_its_file(tmp_path: Path, query: str) -> None:
    live = StillWritten(tmp_path, orders())
    from_stream_or_file = run_query(tmp_path, query, df=live, up=live)
    assert live.streams == 0 and live.waited
    done = handle(tmp_path, "up", orders())
    assert from_stream_or_file.equals(run_query(tmp_path, query, df=done, up=done))
