"""`InputHandle.to_pandas()` says which extra to install when pandas is missing."""

from __future__ import annotations

import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from osiris.core.errors import UserInputError
from osiris.runtime.contract import InputHandle


@pytest.fixture
def handle(tmp_path):
    path = tmp_path / "out.parquet"
    pq.write_table(pa.table({"a": [1, 2, 3], "b": ["x", "y", None]}), path)
    return InputHandle("extract", path)


def test_to_pandas_gives_a_dataframe_when_pandas_is_installed(handle):
    frame = handle.to_pandas()
    assert list(frame.columns) == ["a", "b"] and len(frame) == 3


@pytest.mark.parametrize("blocked", ["pandas", "pandas.core"])
def test_to_pandas_without_pandas_names_the_extra(handle, monkeypatch, blocked):
    for name in [m for m in sys.modules if m == "pandas" or m.startswith("pandas.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, blocked, None)  # `import pandas` now raises ImportError
    with pytest.raises(UserInputError) as raised:
        handle.to_pandas()
    assert "needs pandas" in str(raised.value) and "`extract`" in str(raised.value)
    assert "osiris-runtime[pandas]" in (raised.value.hint or "")
    assert raised.value.exit_code == 2
