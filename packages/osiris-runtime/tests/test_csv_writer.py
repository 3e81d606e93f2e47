"""`filesystem.csv_writer` line endings: the default on every pyarrow, CRLF where pyarrow can write it."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from osiris.core.errors import UserInputError
from osiris.runtime.drivers.csv_writer import CsvWriter
from osiris.runtime.testing import run_driver


def _write(tmp_path, **config):
    table = pa.table({"id": [1, 2], "name": ["a", "b"]})
    run = run_driver(CsvWriter, {"path": "out.csv", **config}, inputs={"src": table}, work_dir=tmp_path, step_id="out")
    assert run.facts["rows_written"] == 2 and run.output is None
    return (tmp_path / "out.csv").read_bytes()


def test_default_line_terminator_is_lf(tmp_path):
    assert _write(tmp_path) == b'"id","name"\n1,"a"\n2,"b"\n'


def test_crlf_is_written_or_refused_naming_the_pyarrow_it_needs(tmp_path):
    if "eol" in (pcsv.WriteOptions.__doc__ or ""):
        assert _write(tmp_path, line_terminator="\r\n") == b'"id","name"\r\n1,"a"\r\n2,"b"\r\n'
    else:
        with pytest.raises(UserInputError, match="needs pyarrow 26 or newer"):
            _write(tmp_path, line_terminator="\r\n")
