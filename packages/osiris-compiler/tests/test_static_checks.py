"""Checks that moved from run time to compile, and every error of a file reported in one pass."""

from __future__ import annotations

import msgspec
import pytest

from osiris.compiler.compiler import compile_pipeline
from osiris.core.discovery import Component, ComponentRegistry
from osiris.core.errors import UserInputError
from osiris.core.spec import ComponentSpec

HEAD = 'oml_version: "0.1.0"\nname: checks\nparams: {since: {default: "2020-01-01"}}\nsteps:\n'
READ = "  - {id: src, component: filesystem.csv_extractor, config: {path: a.csv}}\n"


def fails(osiris, write, steps: str, *expected: str, command: str = "validate", args: tuple[str, ...] = ()) -> str:
    path = write("pipeline.yaml", HEAD + steps)
    code, out, err = osiris(command, str(path), *args)
    assert code == 2, (out, err)
    assert err.startswith("error: ") and "Traceback" not in err and "internal error" not in err, err
    for piece in expected:
        assert piece in err, f"{piece!r} not in {err!r}"
    return err


def passes(osiris, write, steps: str, *args: str) -> None:
    path = write("pipeline.yaml", HEAD + steps)
    code, out, err = osiris("validate", str(path), *args)
    assert code == 0, (out, err)


def writer(component: str, config: str, needs: str = "[src]") -> str:
    conn = "connection: '@supabase.default', " if component.startswith("supabase") else ""
    path = "path: w.duckdb, " if component == "duckdb.writer" else ""
    return f"  - {{id: w, component: {component}, needs: {needs}, config: {{{conn}{path}{config}}}}}\n"


@pytest.mark.parametrize("component", ["supabase.writer", "duckdb.writer"])
def test_a_primary_key_naming_a_column_twice_is_refused(osiris, write, component):
    fails(
        osiris,
        write,
        READ + writer(component, "table: t, write_mode: upsert, primary_key: [id, region, id]"),
        "config key `primary_key`: names `id` more than once; expected each only once",
        "at `$.steps[1].config.primary_key`",
    )
    passes(osiris, write, READ + writer(component, "table: t, write_mode: upsert, primary_key: [id, region]"))


@pytest.mark.parametrize("component", ["mysql.extractor", "supabase.extractor"])
def test_columns_named_twice_are_refused(osiris, write, component):
    conn = "mysql.default" if component.startswith("mysql") else "supabase.default"
    fails(
        osiris,
        write,
        f"  - {{id: e, component: {component}, config: {{connection: '@{conn}', table: t, columns: [a, b, a]}}}}\n",
        "config key `columns`: names `a` more than once",
    )


@pytest.mark.parametrize("component", ["supabase.writer", "duckdb.writer", "filesystem.csv_writer"])
def test_a_writer_takes_exactly_one_upstream_step(osiris, write, component):
    config = "path: out.csv" if component.startswith("filesystem") else "table: t"
    two = READ + READ.replace("src", "src2") + writer(component, config, needs="[src, src2]")
    fails(
        osiris,
        write,
        two,
        "a `write` step writes exactly one upstream step; `needs` names 2 (src, src2)",
        "at `$.steps[2].needs`",
    )


@pytest.mark.parametrize("component", ["supabase.writer", "duckdb.writer", "supabase.extractor"])
@pytest.mark.parametrize("table", ["sales.orders", "a.b.c", "orders."])
def test_a_table_name_with_dots_is_refused_where_the_schema_has_its_own_key(osiris, write, component, table):
    mode = "read" if component.endswith("extractor") else "write"
    needs = "needs: [src], " if mode == "write" else ""
    path = "path: w.duckdb, " if component == "duckdb.writer" else ""
    conn = "" if component == "duckdb.writer" else "connection: '@supabase.default', "
    steps = READ + f"  - {{id: t, component: {component}, {needs}config: {{{conn}{path}table: '{table}'}}}}\n"
    fails(
        osiris,
        write,
        steps,
        "config key `table`: expected a table name without dots (the schema goes in `schema`)",
        f"got `{table}`",
    )


@pytest.mark.parametrize(("table", "ok"), [("orders", True), ("shop.orders", True), ("a.b.c", False), (".t", False)])
def test_a_mysql_table_is_a_name_or_database_dot_name(osiris, write, table, ok):
    steps = f"  - {{id: e, component: mysql.extractor, config: {{connection: '@mysql.default', table: '{table}'}}}}\n"
    if ok:
        passes(osiris, write, steps)
    else:
        fails(osiris, write, steps, "config key `table`: expected a table name or `database.table`", f"got `{table}`")


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (writer("supabase.writer", "table: t, batch_size: 9223372036854775808"), "expected a value at most 2147483647"),
        (
            writer("supabase.writer", "table: t, timeout: 0.0001"),
            "config key `timeout`: expected a value at least 0.001",
        ),
        (writer("supabase.writer", "table: t, timeout: .inf"), "`inf` is not a number a driver takes"),
        (writer("supabase.writer", "table: t, timeout: .nan"), "`nan` is not a number a driver takes"),
        (writer("supabase.writer", "table: t, retries: 5000"), "config key `retries`: expected a value at most 100"),
        (
            "  - {id: t, component: duckdb.processor, needs: [src], config: {query: 'SELECT 1', threads: 2147483647}}\n",
            "config key `threads`: expected a value at most 1024",
        ),
        (
            "  - {id: e, component: mysql.extractor, config: {connection: '@mysql.default', table: t, "
            "limit: 99999999999999999999}}\n",
            "the integer `99999999999999999999` is outside the 64-bit range every driver takes",
        ),
        (
            "  - {id: e, component: mysql.extractor, config: {connection: '@mysql.default', query: 'SELECT %s', "
            "params: [-9223372036854775809]}}\n",
            "config key `params[0]`: the integer `-9223372036854775809` is outside the 64-bit range",
        ),
    ],
)
def test_numbers_outside_what_the_drivers_take_are_refused(osiris, write, step, expected):
    fails(osiris, write, READ + step, expected)


def test_the_largest_numbers_the_drivers_take_pass(osiris, write):
    passes(
        osiris,
        write,
        READ + "  - {id: t, component: duckdb.processor, needs: [src], config: {query: 'SELECT 1', threads: 1024, "
        "batch_size: 2147483647}}\n"
        + writer("supabase.writer", "table: t, batch_size: 2147483647, timeout: 2147483, retries: 100", needs="[t]"),
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("'x ${params.since'", "the reference `${params.since` is not closed; expected `${params.since}`"),
        ("'${params.since and more'", "is not closed; expected `${params.since}`"),
        ("'${SECRET_DIR'", "the reference `${SECRET_DIR` is not closed; expected `${SECRET_DIR}`"),
        ("'${params.}'", "`${params.}` is not a reference Osiris knows"),
        ("'${FOO.bar}/x'", "`${FOO.bar}` is not a reference Osiris knows; expected `${params.<name>}`"),
        ("'${ params.since }'", "`${ params.since }` is not a reference Osiris knows"),
    ],
)
def test_a_malformed_reference_is_an_error_not_text(osiris, write, value, expected):
    fails(
        osiris,
        write,
        READ + writer("filesystem.csv_writer", f"path: {value}"),
        expected,
        "at `$.steps[1].config.path`",
    )


def test_well_formed_references_and_other_dollar_text_still_pass(osiris, write):
    passes(osiris, write, READ + writer("filesystem.csv_writer", "path: 'out/${params.since}/${OUT_DIR}/$x/${1}.csv'"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2020-01-01", 'YAML reads `2020-01-01` as a date; write it in quotes ("2020-01-01")'),
        ("2020-01-01 10:00:00", "YAML reads `2020-01-01 10:00:00` as a date"),
        ("!!binary aGVsbG8=", "binary data (`!!binary`) is not a value a pipeline can pass on"),
        ("{1: a}", "the mapping key `1` is a number; keys must be text"),
    ],
)
def test_yaml_values_json_cannot_carry_are_refused_where_any_value_is_allowed(osiris, write, value, expected):
    fails(
        osiris,
        write,
        "  - {id: e, component: mysql.extractor, config: {connection: '@mysql.default', query: 'SELECT %s', "
        f"params: [{value}]}}}}\n",
        f"config key `params[0]`: {expected}",
    )


def test_a_date_where_text_is_expected_is_said_once(osiris, write):
    err = fails(osiris, write, READ + writer("filesystem.csv_writer", "path: 2020-01-01"), "as a date")
    assert "expected a string" not in err


def test_a_param_that_json_cannot_carry_is_refused(osiris, write):
    path = write("pipeline.yaml", HEAD.replace('"2020-01-01"', "2020-01-01") + READ)
    code, _, err = osiris("validate", str(path))
    assert code == 2 and "param `since`: YAML reads `2020-01-01` as a date" in err, err


def test_every_error_of_a_file_is_reported_in_one_pass(osiris, write):
    steps = (
        "  - {id: src, component: filesystem.csv_extractor, retries: 3, config: {path: 5}}\n"
        "  - {id: other, component: filesystem.csv_extractr, config: {}}\n"
        "  - 17\n"
        "  - {id: load, component: supabase.writer, needs: [src, nope], config: {connection: '@supabase.default', "
        "table: a.b.c, primary_key: [id, id], batch_size: 0, write_mode: merge}}\n"
    )
    err = fails(
        osiris,
        write,
        steps,
        "errors in",
        "Unknown step key `retries`",  # an unknown key ...
        "Step `src`: config key `path`: expected a string, got `5`",  # ... and the same step's config
        "Unknown component `filesystem.csv_extractr` (did you mean `filesystem.csv_extractor`?)",
        "Expected `object`, got `int` - line 7 at `$.steps[2]`",
        "config key `table`: expected a table name without dots",
        "config key `primary_key`: names `id` more than once",
        "config key `batch_size`: expected a value at least 1",
        "config key `write_mode`: expected one of append, replace, upsert; got `merge`",
        "`needs` names unknown step `nope`",
    )
    assert err.index("line 5") < err.index("line 6") < err.index("line 7") < err.index("line 8")


def test_a_misspelt_step_key_is_said_once_not_as_the_missing_fields_it_causes(osiris, write):
    err = fails(osiris, write, "  - {id: src, componnt: filesystem.csv_extractor, confg: {path: a.csv}}\n", "key")
    assert "Unknown step key `componnt` (did you mean `component`?)" in err
    assert "Unknown step key `confg` (did you mean `config`?)" in err
    assert "missing required" not in err


def test_top_level_and_step_errors_together(osiris, write):
    path = write("pipeline.yaml", 'oml_version: "0.1.0"\nname: ok\nextra: 1\nsteps:\n' + READ.replace("path", "pth"))
    code, _, err = osiris("validate", str(path))
    assert code == 2 and "Unknown top-level key `extra`" in err and "unknown config key `pth`" in err, err


def test_a_param_from_the_command_line_that_is_not_utf8_is_refused(osiris, write):
    path = write("pipeline.yaml", HEAD + READ)
    code, _, err = osiris("validate", str(path), "-p", "since=2020\udcff")
    assert code == 2 and "`--param since=...` is not valid UTF-8 (byte 0xff at position 5)" in err, err


def test_a_param_from_the_environment_that_is_not_utf8_is_refused(osiris, write, monkeypatch):
    path = write("pipeline.yaml", HEAD + READ)
    monkeypatch.setenv("OSIRIS_PARAM_SINCE", "x\udcfe")
    code, _, err = osiris("validate", str(path))
    assert code == 2 and "`OSIRIS_PARAM_SINCE` is not valid UTF-8 (byte 0xfe at position 2)" in err, err


def test_a_pipeline_path_that_is_not_utf8_is_printed_safely(osiris, write, tmp_path):
    path = write("pipeline.yaml", HEAD + READ)
    odd = tmp_path / "caf\udce9.yaml"
    odd.write_bytes(path.read_bytes())
    code, out, err = osiris("validate", str(odd))
    assert code == 0 and "is valid" in out, err
    out.encode("utf-8")  # nothing unprintable reaches the output


def test_a_component_spec_with_an_invalid_schema_is_reported_not_a_crash(write):
    spec = msgspec.convert(
        {
            "name": "broken.thing",
            "version": "0.1.0",
            "modes": ["read"],
            "configSchema": {"type": "object", "properties": {"n": {"type": 5}}},
            "x-runtime": {"driver": "broken:Thing"},
        },
        ComponentSpec,
    )
    registry = ComponentRegistry(
        components={"broken.thing": Component(spec=spec, raw={}, distribution="broken-dist", version="1.0", source="x")}
    )
    path = write("pipeline.yaml", HEAD + "  - {id: b, component: broken.thing, config: {n: 1}}\n")
    with pytest.raises(UserInputError) as info:
        compile_pipeline(path, registry=registry, environ={})
    assert "The spec of component `broken.thing` (x, from `broken-dist` 1.0) has an invalid `configSchema`" in str(
        info.value
    )
