"""Every kind of bad input gets one clear error, exit code 2 and no traceback."""

from __future__ import annotations

import pytest
from osiris_cli import run_osiris

HEAD = 'oml_version: "0.1.0"\nname: bad\n'
READ = "  - {id: src, component: filesystem.csv_extractor, config: {path: a.csv}}\n"


def _steps(*lines: str) -> str:
    return HEAD + "steps:\n" + "".join(lines)


def _fails(osiris, write, text: str, *expected: str, command: str = "compile") -> str:
    path = write("pipeline.yaml", text)
    code, out, err = osiris(command, str(path))
    assert code == 2, (out, err)
    assert "Traceback" not in err
    assert err.startswith("error: "), err
    for piece in expected:
        assert piece in err, f"{piece!r} not in {err!r}"
    return err


def test_yaml_syntax_error_names_the_line(osiris, write):
    _fails(
        osiris, write, HEAD + "steps:\n  - id: a\n    config: {path: [unclosed\n", "YAML syntax error", "pipeline.yaml:"
    )
    err = _fails(osiris, write, 'oml_version: "0.1.0"\nname: x\n  bad: indent\n', "YAML syntax error")
    assert "pipeline.yaml:3" in err


def test_unknown_top_level_key_suggests_the_right_one(osiris, write):
    _fails(
        osiris,
        write,
        HEAD + "stepz: []\n",
        "Unknown top-level key `stepz` (did you mean `steps`?)",
        "at `$.stepz`",
        "pipeline.yaml:3",
    )


def test_unknown_step_key_suggests_the_right_one(osiris, write):
    _fails(
        osiris,
        write,
        _steps("  - id: src\n    component: filesystem.csv_extractor\n    confg: {path: a.csv}\n"),
        "Unknown step key `confg` (did you mean `config`?)",
        "at `$.steps[0].confg`",
        "pipeline.yaml:6",
    )


def test_a_bare_yaml_null_where_the_string_null_is_meant_says_to_quote_it(osiris, write):
    err = _fails(
        osiris,
        write,
        _steps(
            "  - {id: src, component: mysql.extractor, config: {connection: '@mysql.main', table: t, zero_dates: null}}\n"
        ),
        "config key `zero_dates`: expected one of error, null; got a bare `null`, which YAML reads as no value: "
        'write "null"',
    )
    assert "expected a string" not in err


def test_wrong_type_names_the_path(osiris, write):
    _fails(
        osiris, write, _steps("  - {id: 12, component: filesystem.csv_extractor}\n"), "Expected `str`", "$.steps[0].id"
    )


def test_unknown_component_suggests_a_known_one(osiris, write):
    _fails(
        osiris,
        write,
        _steps("  - {id: src, component: mysql.extracter, config: {table: t}}\n"),
        "Unknown component `mysql.extracter` (did you mean `mysql.extractor`?)",
        "Step `src`",
        "$.steps[0].component",
    )


def test_config_failing_the_schema_lists_every_failing_key(osiris, write):
    err = _fails(
        osiris,
        write,
        _steps(
            READ,
            "  - id: load\n    component: duckdb.writer\n    needs: [src]\n    config:\n"
            "      path: w.duckdb\n      tabel: t\n      write_mode: merge\n      create_if_missing: maybe\n",
        ),
        "4 errors",
        "unknown config key `tabel` (did you mean `table`?)",
        "missing required config key `table`",
        "config key `write_mode`: expected one of append, replace, upsert; got `merge`",
        "$.steps[1].config.write_mode",
        "config key `create_if_missing`: expected a boolean, got `maybe`",
    )
    assert "line 11 at `$.steps[1].config.write_mode`" in err


def test_query_and_table_together_are_refused(osiris, write):
    _fails(
        osiris,
        write,
        _steps("  - {id: src, component: mysql.extractor, config: {query: 'SELECT 1', table: t}}\n"),
        "give only one of `query`, `table`",
    )


def test_needs_naming_a_missing_step(osiris, write):
    _fails(
        osiris,
        write,
        _steps(READ, "  - {id: t, component: duckdb.processor, needs: [scr], config: {query: 'SELECT 1'}}\n"),
        "`needs` names unknown step `scr` (did you mean `src`?)",
        "$.steps[1].needs[0]",
    )


def test_cycle_is_reported_with_its_path(osiris, write):
    _fails(
        osiris,
        write,
        _steps(
            "  - {id: a, component: duckdb.processor, needs: [b], config: {query: 'SELECT 1'}}\n",
            "  - {id: b, component: duckdb.processor, needs: [a], config: {query: 'SELECT 1'}}\n",
        ),
        "The steps form a cycle: a -> b -> a",
    )


def test_duplicate_step_ids(osiris, write):
    _fails(osiris, write, _steps(READ, READ), "Duplicate step id `src`", "$.steps[1].id")


def test_mode_the_component_lacks(osiris, write):
    _fails(
        osiris,
        write,
        _steps("  - {id: src, component: filesystem.csv_extractor, mode: write, config: {path: a.csv}}\n"),
        "Component `filesystem.csv_extractor` does not support mode `write`; it supports read",
    )


def test_upsert_without_primary_key(osiris, write):
    _fails(
        osiris,
        write,
        _steps(
            READ,
            "  - {id: load, component: supabase.writer, needs: [src], config: {table: t, write_mode: upsert}}\n",
        ),
        "missing required config key `primary_key` when `write_mode` is `upsert`",
        "Step `load`",
    )


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ("{path: a.csv, password: hunter2-canary}", "config.password"),
        ("{path: a.csv, options: {auth: {api_key: hunter2-canary}}}", "config.options.auth.api_key"),
        ("{path: 'postgresql://u:hunter2-canary@db/x'}", "config.path"),
    ],
)
def test_literal_secret_inline_is_refused_without_echoing_it(osiris, write, config, where):
    err = _fails(
        osiris,
        write,
        _steps(f"  - {{id: src, component: filesystem.csv_extractor, config: {config}}}\n"),
        "literal",
        where,
        "${MY_SECRET}",
    )
    assert "hunter2" not in err


def test_secret_passed_through_a_param_is_refused(osiris, write):
    text = HEAD + "params: {pw: {default: hunter2-canary}}\nsteps:\n"
    text += "  - {id: src, component: filesystem.csv_extractor, config: {path: a.csv, password: '${params.pw}'}}\n"
    err = _fails(osiris, write, text, "literal secret")
    assert "hunter2" not in err


def test_param_named_like_a_secret_is_refused(osiris, write):
    _fails(osiris, write, HEAD + "params: {db_password: {default: x}}\nsteps:\n" + READ, "looks like a secret")


def test_unknown_connection_alias(osiris, write):
    write("osiris_connections.yaml", "connections:\n  mysql:\n    default: {host: h, user: u, password: '${PW}'}\n")
    _fails(
        osiris,
        write,
        _steps("  - {id: src, component: mysql.extractor, config: {connection: '@mysql.defualt', table: t}}\n"),
        "Unknown connection `@mysql.defualt` (did you mean `default`?)",
        "$.steps[0].config.connection",
    )


def test_unknown_connection_family(osiris, write):
    write("osiris_connections.yaml", "connections:\n  mysql:\n    default: {host: h, user: u}\n")
    _fails(
        osiris,
        write,
        _steps("  - {id: src, component: supabase.extractor, config: {table: t}}\n"),
        "No connections of family `supabase`",
    )


def test_connection_of_the_wrong_family(osiris, write):
    _fails(
        osiris,
        write,
        _steps("  - {id: src, component: mysql.extractor, config: {connection: '@supabase.main', table: t}}\n"),
        "`mysql.extractor` uses `mysql` connections; got `@supabase.main`",
    )


def test_empty_file(osiris, write):
    _fails(osiris, write, "\n  \n", "The document is empty")
    _fails(osiris, write, "# only a comment\n", "The document is empty")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_document_that_is_not_a_mapping(osiris, write, text):
    _fails(osiris, write, text, "Expected a YAML mapping")


def test_missing_file(osiris, tmp_path):
    code, _, err = osiris("compile", str(tmp_path / "nope.yaml"))
    assert code == 2 and "File not found" in err


def test_unknown_param_override(osiris, write, pipeline_text):
    path = write("p.yaml", pipeline_text)
    code, _, err = osiris("compile", str(path), "--param", "min_qtty=3")
    assert code == 2 and "Unknown param `min_qtty` in `--param` (did you mean `min_qty`?)" in err


def test_wrong_param_type(osiris, write, pipeline_text):
    path = write("p.yaml", pipeline_text)
    code, _, err = osiris("compile", str(path), "--param", "min_qty=many")
    assert code == 2 and "must be of type `integer`" in err


def test_validate_reports_the_same_errors_and_writes_nothing(osiris, write, tmp_path):
    _fails(osiris, write, _steps(READ, READ), "Duplicate step id", command="validate")
    assert not (tmp_path / "build").exists()


def test_a_real_process_exits_2_without_traceback(tmp_path):
    (tmp_path / "p.yaml").write_text(HEAD + "stepz: []\n")
    proc = run_osiris("compile", "p.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "did you mean `steps`" in proc.stderr
