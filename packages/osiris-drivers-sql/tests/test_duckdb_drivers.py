"""The DuckDB processor and writer against real Parquet inputs and a real DuckDB file."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from osiris.core.errors import TerminalError
from osiris.drivers.sql.duckdb_processor import DuckDBProcessor
from osiris.drivers.sql.duckdb_writer import DuckDBWriter
from osiris.runtime.contract import InputHandle, StepContext


def handle(tmp: Path, name: str, table: pa.Table) -> InputHandle:
    path = tmp / f"{name}.parquet"
    pq.write_table(table, path)
    return InputHandle(name, path)


def ctx(tmp: Path, step: str = "s") -> StepContext:
    (tmp / step).mkdir(exist_ok=True)
    return StepContext(step_id=step, output_dir=tmp / step, base_dir=tmp)


def test_processor_sees_every_input_as_a_view_and_input_df_when_single(tmp_path: Path) -> None:
    a = handle(tmp_path, "a", pa.table({"k": [1, 2, 3], "x": ["p", "q", "r"]}))
    b = handle(tmp_path, "b-2", pa.table({"k": [1, 2], "y": [10, 20]}))
    c = handle(tmp_path, "c", pa.table({"k": [2, 1], "z": [0.5, 1.5]}))
    query = 'SELECT a.k, x, y, z FROM a JOIN "b-2" USING (k) JOIN c USING (k) ORDER BY a.k'
    out = DuckDBProcessor().run(
        step_id="j", config={"query": query}, inputs={"a": a, "b-2": b, "c": c}, ctx=ctx(tmp_path)
    )["df"]
    assert out.read_all().to_pydict() == {"k": [1, 2], "x": ["p", "q"], "y": [10, 20], "z": [1.5, 0.5]}
    single = DuckDBProcessor().run(
        step_id="one",
        config={"query": "SELECT sum(k) OVER (ORDER BY k) AS s FROM input_df"},
        inputs={"a": a, "df": a},
        ctx=ctx(tmp_path),
    )["df"]
    assert single.read_all().column("s").to_pylist() == [1, 3, 6]


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
