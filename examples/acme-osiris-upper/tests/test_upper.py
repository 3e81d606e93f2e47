"""Tests of `acme.upper`, with the step runner Osiris gives component authors (`osiris.runtime.testing`)."""

from __future__ import annotations

import pyarrow as pa
import pytest
from acme_osiris_upper.driver import Upper

from osiris.core.discovery import ComponentRegistry
from osiris.core.errors import UserInputError
from osiris.runtime.testing import run_component, run_driver

ORDERS = pa.table(
    {
        "id": [1, 2, 3],
        "country": ["de", "Fr", None],
        "note": ["first", "ça va", "x"],
        "total": [1.5, 2.0, 3.25],
    }
)


def test_the_component_is_discovered_with_its_spec():
    comp = ComponentRegistry.discover().get("acme.upper")
    assert comp.distribution == "acme-osiris-upper"
    assert comp.spec.modes == ["transform"]
    assert comp.spec.x_runtime.driver == "acme_osiris_upper.driver:Upper"


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["country"], {"country": ["DE", "FR", None], "note": ["first", "ça va", "x"]}),
        (None, {"country": ["DE", "FR", None], "note": ["FIRST", "ÇA VA", "X"]}),
    ],
)
def test_upper_cases_the_chosen_text_columns_and_passes_the_rest(tmp_path, columns, expected):
    config = {"columns": columns} if columns else {}
    run = run_component("acme.upper", config, inputs={"orders": ORDERS}, work_dir=tmp_path, step_id="shout")
    out = run.output
    assert out.schema == ORDERS.schema and run.rows_out == 3
    assert {name: out.column(name).to_pylist() for name in expected} == expected
    assert out.column("total").to_pylist() == [1.5, 2.0, 3.25]
    assert run.ctx.event("upper.columns")["columns"] == (columns or ["country", "note"])
    assert sum(run.ctx.progress_reports) == 3


@pytest.mark.parametrize("columns", [["total"], ["nope"], ["country", "id"]])
def test_a_column_that_is_not_text_is_refused_naming_it(tmp_path, columns):
    with pytest.raises(UserInputError) as raised:
        run_driver(Upper, {"columns": columns}, inputs={"orders": ORDERS}, work_dir=tmp_path, step_id="shout")
    bad = [c for c in columns if c not in ("country", "note")]
    assert all(f"`{c}`" in str(raised.value) for c in bad) and "step `shout`" in str(raised.value)


def test_an_empty_input_gives_an_empty_output(tmp_path):
    run = run_driver(Upper, {}, inputs={"orders": ORDERS.slice(0, 0)}, work_dir=tmp_path)
    assert run.output.num_rows == 0 and run.output.schema == ORDERS.schema
