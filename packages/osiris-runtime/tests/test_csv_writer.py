"""`filesystem.csv_writer` line endings: the default on every pyarrow, CRLF where pyarrow can write it."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from osiris.core.errors import UserInputError
from osiris.runtime.contract import InputHandle, StepContext
from osiris.runtime.drivers.csv_writer import CsvWriter


def _write(tmp_path, **config):
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": [1, 2], "name": ["a", "b"]}), source)
    ctx = StepContext(step_id="out", output_dir=tmp_path / "artifacts", base_dir=tmp_path)
    CsvWriter().run(
        step_id="out", config={"path": "out.csv", **config}, inputs={"df": InputHandle("src", source)}, ctx=ctx
    )
    return (tmp_path / "out.csv").read_bytes()


def test_default_line_terminator_is_lf(tmp_path):
    assert _write(tmp_path) == b'"id","name"\n1,"a"\n2,"b"\n'


def test_crlf_is_written_or_refused_naming_the_pyarrow_it_needs(tmp_path):
    if "eol" in (pcsv.WriteOptions.__doc__ or ""):
        assert _write(tmp_path, line_terminator="\r\n") == b'"id","name"\r\n1,"a"\r\n2,"b"\r\n'
    else:
        with pytest.raises(UserInputError, match="needs pyarrow 26 or newer"):
            _write(tmp_path, line_terminator="\r\n")
