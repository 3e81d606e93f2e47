"""Every writer reads exactly one upstream (`inputs["df"]`), by the one rule of the driver contract."""

from __future__ import annotations

import pyarrow as pa
import pytest

from osiris.core.errors import UserInputError
from osiris.runtime.testing import run_component

WRITERS = {
    "filesystem.csv_writer": {"path": "out.csv"},
    "filesystem.parquet_writer": {"path": "out.parquet"},
    "duckdb.writer": {"path": "out.duckdb", "table": "t"},
    "supabase.writer": {"table": "t", "resolved_connection": {"host": "127.0.0.1", "dbname": "none"}},
}
TABLE = pa.table({"n": [1, 2]})


@pytest.mark.parametrize("component", list(WRITERS))
@pytest.mark.parametrize(
    ("inputs", "said"), [({"a": TABLE, "b": TABLE}, "has 2 (`a`, `b`)"), ({}, "has 0;")], ids=["two", "none"]
)
def test_a_writer_without_exactly_one_upstream_is_a_user_error(tmp_path, component, inputs, said):
    with pytest.raises(UserInputError) as info:
        run_component(component, dict(WRITERS[component]), inputs=inputs, work_dir=tmp_path, step_id="load")
    assert str(info.value).startswith(f"Step `load` writes one input but {said}")
    assert "give it exactly one step in `needs`" in str(info.value) and info.value.step == "load"


@pytest.mark.parametrize("component", ["filesystem.csv_writer", "filesystem.parquet_writer", "duckdb.writer"])
def test_a_writer_with_one_upstream_writes_it(tmp_path, component):
    done = run_component(component, dict(WRITERS[component]), inputs={"up": TABLE}, work_dir=tmp_path)
    assert done.facts.get("rows_written", done.facts.get("rows")) == 2, done.facts
