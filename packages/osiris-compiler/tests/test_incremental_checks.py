"""`incremental` blocks: their shape, and combinations that could lose or duplicate rows, refused at compile."""

from __future__ import annotations

import pytest

HEAD = 'oml_version: "0.1.0"\nname: inc\nsteps:\n'


def extract(incremental: str, extra: str = "") -> str:
    return (
        "  - {id: e, component: mysql.extractor, config: {connection: '@mysql.default', table: t, "
        f"{extra}incremental: {{{incremental}}}}}}}\n"
    )


def load(component: str = "supabase.writer", config: str = "write_mode: upsert, primary_key: id", needs: str = "[e]"):
    conn = "connection: '@supabase.default', " if component.startswith("supabase") else ""
    path = "path: w.duckdb, " if component == "duckdb.writer" else ""
    path = "path: out.csv" if component == "filesystem.csv_writer" else path + f"table: t, {config}"
    return f"  - {{id: w, component: {component}, needs: {needs}, config: {{{conn}{path}}}}}\n"


def check(osiris, write, steps: str, *expected: str) -> str:
    code, out, err = osiris("validate", str(write("pipeline.yaml", HEAD + steps)))
    if not expected:
        assert code == 0, (out, err)
        return out
    assert code == 2, (out, err)
    assert "Traceback" not in err
    for piece in expected:
        assert piece in err, f"{piece!r} not in {err!r}"
    return err


@pytest.mark.parametrize("component", ["supabase.writer", "duckdb.writer"])
@pytest.mark.parametrize(
    "block",
    [
        "cursor: updated_at",
        "cursor: 'COALESCE(updated_at, created_at)', lag: '10 minutes', initial_value: '2020-01-01 00:00:00'",
        "cursor: id, lag: 100, initial_value: 0, on_null_cursor: skip, deletes: reconcile",
        "cursor: v, lag: '1 day', on_null_cursor: include, deletes: {soft: deleted_at}",
    ],
)
def test_valid_blocks_compile(osiris, write, component, block):
    check(osiris, write, extract(block) + load(component))


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("lag: 5", "missing required config key `cursor`"),
        ("cursor: ''", "config key `incremental.cursor`"),
        ("cursor: c, lag: 'ten minutes'", 'expected a duration such as "10 minutes"'),
        ("cursor: c, lag: '3 fortnights'", "config key `incremental.lag`"),
        ("cursor: c, lag: -1", "config key `incremental.lag`"),
        ("cursor: c, on_null_cursor: sometimes", "expected one of error, include, skip; got `sometimes`"),
        ("cursor: c, deletes: hard", "config key `incremental.deletes`"),
        ("cursor: c, deletes: {soft: ''}", "config key `incremental.deletes"),
        ("cursor: c, since: x", "incremental"),
    ],
)
def test_malformed_blocks_name_the_key_and_line(osiris, write, block, expected):
    err = check(osiris, write, extract(block) + load(), expected)
    assert "pipeline.yaml" in err and "$.steps[0].config.incremental" in err


@pytest.mark.parametrize(
    ("writer", "expected"),
    [
        (load(config="write_mode: append"), "`append` would store twice"),
        (load(config="write_mode: append, primary_key: id"), "`append` would store twice"),
        (load(config="write_mode: replace, primary_key: id"), "would delete every row outside the window"),
        (load(config=""), "needs `write_mode: upsert` with a `primary_key`"),
        (load("duckdb.writer", "write_mode: append"), "`append` would store twice"),
        (load("filesystem.csv_writer"), "cannot commit a watermark in the same transaction"),
    ],
)
def test_combinations_that_lose_or_duplicate_rows_are_refused(osiris, write, writer, expected):
    err = check(osiris, write, extract("cursor: updated_at, lag: '5 minutes'") + writer, expected)
    assert "$.steps[1]" in err and "Step `w`" in err


def test_a_limit_or_no_writer_is_refused(osiris, write):
    check(
        osiris,
        write,
        extract("cursor: c", "limit: 10, ") + load(),
        "`limit` with `incremental`",
        "$.steps[0].config.limit",
    )
    check(osiris, write, extract("cursor: c"), "add a `write` step downstream")


def test_a_transform_between_extract_and_writer_is_followed(osiris, write):
    middle = "  - {id: m, component: duckdb.processor, needs: [e], config: {query: 'SELECT * FROM input_df'}}\n"
    check(osiris, write, extract("cursor: c") + middle + load(needs="[m]"))
    check(osiris, write, extract("cursor: c") + middle + load(config="write_mode: append", needs="[m]"), "`append`")
