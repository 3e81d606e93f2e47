"""`tables:` patterns expanded against snapshots, and what snapshots let the compiler check (no database)."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from osiris.compiler.compiler import compile_pipeline
from osiris.compiler.patterns import query_columns
from osiris.core.errors import OsirisError
from osiris.core.snapshot import (
    SnapshotColumn,
    SnapshotTable,
    compare,
    dump_snapshot,
    load_snapshot,
    make_snapshot,
    parse_snapshot,
)

HEAD = 'oml_version: "0.1.0"\nname: p\n'
WRITE = '    write: {connection: "@supabase.t", schema: public, write_mode: %s}\n'


def _table(schema: str, name: str, cols: list[str], key: list[str]) -> SnapshotTable:
    return SnapshotTable(
        schema=schema,
        name=name,
        columns=[SnapshotColumn(name=c, type="int(11)", nullable=c not in key) for c in cols],
        primary_key=key,
        row_estimate=10,
    )


def _write_snapshot(folder: Path, tables: list[SnapshotTable], name: str = "mysql.src.snapshot.yaml") -> Path:
    path = folder / name
    path.write_text(dump_snapshot(make_snapshot("@mysql.src", "mysql", tables)))
    return path


def _compile(folder: Path, text: str):
    path = folder / "p.yaml"
    path.write_text(text)
    return compile_pipeline(path, connections_file=None)


def _errors(folder: Path, text: str) -> str:
    with pytest.raises(OsirisError) as info:
        _compile(folder, text)
    return str(info.value)


@pytest.mark.parametrize("seed", range(4))
def test_every_matching_table_gets_a_read_and_a_write_step_with_its_own_key(tmp_path, seed):
    rng = random.Random(seed)
    names = ["film", "Order", "select", "my table", "my_table", "my-table", "x" * 70, "x" * 69 + "y", "ünïcode"]
    tables = [
        _table("db", n, ["id", "a", "b"], rng.choice([["id"], ["a", "id"], ["id"]])) for n in rng.sample(names, 5)
    ]
    rng.shuffle(tables)
    _write_snapshot(tmp_path, tables)
    text = HEAD + 'tables:\n  - id: copy\n    source: "@mysql.src"\n    include: ["db.*"]\n' + WRITE % "upsert"
    first = _compile(tmp_path, text)
    again = _compile(tmp_path, text)
    assert first.manifest_text == again.manifest_text and first.cfgs == again.cfgs
    steps = first.manifest.steps
    assert len(steps) == 2 * len(tables)
    assert len({s.id for s in steps}) == len(steps)
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,62}", s.id) for s in steps)
    import json

    for t in tables:
        writes = [json.loads(first.cfgs[s.id]) for s in steps if s.mode == "write"]
        cfg = next(c for c in writes if c["table"] == t.name)
        assert cfg["primary_key"] == t.primary_key
    # The snapshot is under the fingerprint: another snapshot, another manifest.
    _write_snapshot(tmp_path, [*tables[:-1], _table("db", tables[-1].name, ["id", "a"], ["id"])])
    assert _compile(tmp_path, text).manifest.fingerprints.manifest != first.manifest.fingerprints.manifest


def test_what_a_pattern_cannot_do_is_said_before_anything_runs(tmp_path):
    _write_snapshot(tmp_path, [_table("db", "keyed", ["id"], ["id"]), _table("db", "loose", ["a"], [])])
    pattern = 'tables:\n  - id: copy\n    source: "@mysql.src"\n    include: [%s]\n'
    upsert = _errors(tmp_path, HEAD + pattern % '"db.*"' + WRITE % "upsert")
    assert "`db.loose` has no primary key" in upsert and "keyed" not in upsert.split("no primary key")[0][-30:]
    assert "matches no table" in _errors(tmp_path, HEAD + pattern % '"other.*"' + WRITE % "replace")
    missing = _errors(tmp_path, HEAD + pattern.replace("@mysql.src", "@mysql.gone") % '"db.*"' + WRITE % "replace")
    assert "osiris discover @mysql.gone" in missing
    keys = _errors(
        tmp_path, HEAD + pattern % '"db.*"' + WRITE % "upsert" + "    primary_keys: {loose: [nope], ghost: [a]}\n"
    )
    assert "`nope` is not a column of `db.loose`" in keys and "`ghost`" in keys
    assert "unknown kind of drift `colour`" in _errors(
        tmp_path, HEAD + pattern % '"db.*"' + WRITE % "replace" + "    on_drift: {colour: warn}\n"
    )
    ok = _compile(tmp_path, HEAD + pattern % '"db.*"' + WRITE % "upsert" + "    primary_keys: {loose: [a]}\n")
    assert len(ok.manifest.steps) == 4


def test_a_snapshot_lets_the_compiler_check_tables_columns_and_keys_through_duckdb(tmp_path):
    _write_snapshot(tmp_path, [_table("db", "film", ["id", "title", "year"], ["id"])])
    read = '  - {id: r, component: mysql.extractor, config: {connection: "@mysql.src", table: %s}}\n'
    sql = '  - {id: t, component: duckdb.processor, needs: [r], config: {query: "%s"}}\n'
    write = '  - {id: w, component: supabase.writer, needs: [%s], config: {connection: "@supabase.t", table: x, write_mode: upsert, primary_key: %s}}\n'
    assert "table `flim` is not in the snapshot" in _errors(tmp_path, HEAD + "steps:\n" + read % "flim")
    assert "`primary_key` column `nope`" in _errors(tmp_path, HEAD + "steps:\n" + read % "film" + write % ("r", "nope"))
    through = HEAD + "steps:\n" + read % "film" + sql % "SELECT id AS film_id, title FROM input_df"
    assert "`primary_key` column `id` is not a column of the input `t`" in _errors(
        tmp_path, through + write % ("t", "id")
    )
    assert _compile(tmp_path, through + write % ("t", "film_id"))
    star = HEAD + "steps:\n" + read % "film" + sql % "SELECT * FROM r" + write % ("t", "[id]")
    assert _compile(tmp_path, star)


def test_query_columns_says_none_when_it_cannot_be_sure():
    up = {"a": ["x", "y"], "input_df": ["x", "y"]}
    assert query_columns("SELECT x, y AS z, a.* FROM a", up) == ["x", "z", "x", "y"]
    assert query_columns('select "Odd ""name""" from input_df', up) == ['Odd "name"']
    for unsure in (
        "SELECT x FROM a UNION SELECT y FROM a",
        "SELECT * EXCLUDE (x) FROM a",
        "SELECT x + 1 FROM a",
        "SELECT (SELECT 1) FROM a",
        "WITH c AS (SELECT 1) SELECT * FROM c",
    ):
        assert query_columns(unsure, up) is None, unsure


def test_snapshots_round_trip_and_malformed_ones_are_refused_with_the_line(tmp_path):
    tables = [_table("s", n, ["id", "v"], ["id"]) for n in ("b", "a", "C")]
    snap = make_snapshot("@mysql.src", "mysql", tables, ["s.*"], [])
    text = dump_snapshot(snap)
    assert [t.name for t in parse_snapshot(text).tables] == ["C", "a", "b"]
    assert parse_snapshot(text) == snap and dump_snapshot(parse_snapshot(text)) == text
    for bad, said in (
        (text.replace('primary_key: ["id"]', 'primary_key: ["nope"]', 1), "primary key column `nope`"),
        (text.replace("nullable: false", "nullable: maybe", 1), "Expected `bool`"),
        (text.replace("row_estimate", "row_estimat", 1), "row_estimat"),
        (text.replace('snapshot_version: "1"', 'snapshot_version: "9"'), "snapshot_version"),
        ("&a [*a]", "self-referencing"),
    ):
        path = tmp_path / "bad.snapshot.yaml"
        path.write_text(bad)
        with pytest.raises(OsirisError) as info:
            load_snapshot(path)
        assert said in str(info.value) and "bad.snapshot.yaml" in str(info.value), (said, str(info.value))
    live = [_table("s", "a", ["id", "w"], ["id"]), _table("s", "b", ["id", "v"], ["id"]), _table("s", "d", ["id"], [])]
    assert sorted((d.kind, d.table, d.column) for d in compare(snap, live)) == [
        ("dropped_column", "s.a", "v"),
        ("dropped_table", "s.C", None),
        ("new_column", "s.a", "w"),
        ("new_table", "s.d", None),
    ]


def test_a_broken_snapshot_beside_the_pipeline_is_reported_at_the_step_that_uses_it(tmp_path):
    (tmp_path / "mysql.src.snapshot.yaml").write_text("snapshot_version: '1'\nsource: x\nfamily: mysql\ntables: 5\n")
    text = HEAD + 'steps:\n  - {id: r, component: mysql.extractor, config: {connection: "@mysql.src", table: t}}\n'
    said = _errors(tmp_path, text)
    assert "Step `r`: the snapshot of `@mysql.src` cannot be read" in said and "mysql.src.snapshot.yaml" in said
