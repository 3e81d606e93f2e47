"""Never change data silently, on the host and in a `--sandbox local`: the same run card, exit code and
PostgreSQL table for repeated keys, a refused type, and the NOT NULL / lengths / key a created table keeps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from databases import postgres_connect
from osiris_cli import compile_build

from osiris.remote.plugins import local_plugin
from osiris.runtime.cli import run_on_host
from osiris.runtime.sandbox_api import SandboxOptions

pytestmark = [pytest.mark.mysql, pytest.mark.postgres, pytest.mark.slow]
WHERE = ("host", "local")

SALARIES = [(emp, year, 1000 * emp + year) for emp in (10001, 10002, 10003) for year in (2019, 2020, 2021)]

PIPELINE = """
oml_version: "0.1.0"
name: exact_{name}
steps:
  - id: src
    component: mysql.extractor
    mode: read
    config: {{connection: "@mysql.default", {source}}}
{middle}  - id: load
    component: supabase.writer
    mode: write
    needs: [{last}]
    config:
      connection: "@supabase.default"
{load}
"""


@pytest.fixture
def mysql_db(new_mysql_db):
    """A throwaway MariaDB database with `salaries` (a composite key) and `wide` (a DECIMAL(65,30)); its name."""
    db = new_mysql_db("osiris_exact")
    cur = db.cursor()
    cur.execute(
        "CREATE TABLE salaries (emp_no INT NOT NULL, year INT NOT NULL, salary INT NOT NULL, PRIMARY KEY (emp_no, year))"
    )
    cur.executemany("INSERT INTO salaries VALUES (%s, %s, %s)", SALARIES)
    cur.execute(
        "CREATE TABLE wide (id INT NOT NULL PRIMARY KEY, name VARCHAR(40) NOT NULL, code CHAR(3), amount DECIMAL(65,30))"
    )
    cur.execute("INSERT INTO wide VALUES (1, 'Ann', 'abc', 1.5), (2, 'Bo', NULL, NULL)")
    return db.name


@pytest.fixture
def pg_dbs(new_pg_db):
    """One PostgreSQL database per place the pipeline runs."""
    return {where: new_pg_db(f"osiris_exact_{where}").name for where in WHERE}


def pg_rows(dbname: str, sql: str) -> list[tuple[Any, ...]]:
    con = postgres_connect(dbname)
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        con.close()


def pg_exec(dbname: str, sql: str) -> None:
    con = postgres_connect(dbname)
    try:
        con.cursor().execute(sql)
    finally:
        con.close()


def run_everywhere(
    workdir: Path, tmp: Path, mysql: str, pg_dbs: dict[str, str], name: str, pipeline: str
) -> dict[str, tuple[int, dict]]:
    """Compile `pipeline` once; run it on the host and in a `local` sandbox, each into its own database."""
    (workdir / f"{name}.yaml").write_text(pipeline)
    manifest = compile_build(f"{name}.yaml", tmp / f"build_{name}", cwd=workdir)
    out = {}
    for where in WHERE:
        conns = workdir / f"connections_{name}_{where}.yaml"
        conns.write_text(
            "connections:\n"
            f"  mysql:\n    default: {{host: 127.0.0.1, port: 3306, user: root, password: '', database: {mysql}}}\n"
            "  supabase:\n    default: {host: 127.0.0.1, port: 5432, user: postgres, "
            f"dbname: {pg_dbs[where]}, sslmode: disable}}\n"
        )
        runs = workdir / f"runs_{name}_{where}"
        if where == "host":
            code = run_on_host(manifest, runs_dir=runs, connections_file=conns).exit_code
        else:
            code = local_plugin(manifest, SandboxOptions(name="local"), connections_file=conns, runs_dir=runs).exit_code
        run_dir = max(runs.glob("*/*"), key=lambda p: p.stat().st_mtime)
        out[where] = (code, json.loads((run_dir / "run_card.json").read_text()))
    return out


def step(card: dict, step_id: str) -> dict:
    return next(s for s in card["steps"] if s["id"] == step_id)


def test_repeated_keys_fail_and_nothing_changes_then_keep_last_reports_the_drops(mysql_db, pg_dbs, workdir, tmp_path):
    for db in pg_dbs.values():
        pg_exec(
            db,
            "CREATE TABLE salaries (emp_no integer PRIMARY KEY, year integer, salary integer); "
            "INSERT INTO salaries VALUES (1, 1999, 1)",
        )
    source = 'query: "SELECT emp_no, year, salary FROM salaries ORDER BY emp_no, year"'
    load = "      table: salaries\n      write_mode: upsert\n      primary_key: emp_no\n"
    failed = run_everywhere(
        workdir,
        tmp_path,
        mysql_db,
        pg_dbs,
        "dups",
        PIPELINE.format(name="dups", source=source, middle="", last="src", load=load),
    )
    for where, (code, card) in failed.items():
        assert code == 1, where
        error = step(card, "load")["error"]
        assert error["type"] == "DuplicateKeysError", where
        assert "repeats 3 value(s) of the key `emp_no`" in error["message"] and "6 of its 9 rows" in error["message"]
        assert "emp_no=10001 (3 rows)" in error["message"]
        assert pg_rows(pg_dbs[where], "SELECT * FROM salaries") == [(1, 1999, 1)], where
    kept = run_everywhere(
        workdir,
        tmp_path,
        mysql_db,
        pg_dbs,
        "dups_kept",
        PIPELINE.format(
            name="dups_kept", source=source, middle="", last="src", load=load + "      on_duplicate_keys: keep_last\n"
        ),
    )
    for where, (code, card) in kept.items():
        assert code == 0, where
        facts = step(card, "load")["facts"]
        assert facts["duplicate_rows_dropped"] == 6 and facts["rows_written"] == 3, where
        assert sorted(pg_rows(pg_dbs[where], "SELECT * FROM salaries")) == [
            (1, 1999, 1),
            (10001, 2021, 10003021),
            (10002, 2021, 10004021),
            (10003, 2021, 10005021),
        ], where


def test_a_type_duckdb_cannot_hold_is_refused_and_nothing_is_created(mysql_db, pg_dbs, workdir, tmp_path):
    middle = (
        "  - id: t\n    component: duckdb.processor\n    mode: transform\n    needs: [src]\n"
        '    config: {query: "SELECT * FROM src"}\n'
    )
    load = "      table: wide\n      write_mode: replace\n      create_if_missing: true\n"
    runs = run_everywhere(
        workdir,
        tmp_path,
        mysql_db,
        pg_dbs,
        "refused",
        PIPELINE.format(name="refused", source="table: wide", middle=middle, last="t", load=load),
    )
    for where, (code, card) in runs.items():
        assert code == 1, where
        error = step(card, "t")["error"]
        assert "Column `amount` of input `src`" in error["message"] and "decimal256(65, 30)" in error["message"]
        assert step(card, "load")["status"] == "not_run", where
        assert pg_rows(pg_dbs[where], "SELECT to_regclass('wide') IS NULL") == [(True,)], where


def test_a_created_table_keeps_not_null_lengths_and_key_through_duckdb(mysql_db, pg_dbs, workdir, tmp_path):
    middle = (
        "  - id: t\n    component: duckdb.processor\n    mode: transform\n    needs: [src]\n"
        '    config: {query: "SELECT * EXCLUDE (amount) FROM src ORDER BY id"}\n'
    )
    load = "      table: people\n      write_mode: replace\n      create_if_missing: true\n"
    runs = run_everywhere(
        workdir,
        tmp_path,
        mysql_db,
        pg_dbs,
        "shape",
        PIPELINE.format(name="shape", source="table: wide", middle=middle, last="t", load=load),
    )
    tables = {}
    for where, (code, card) in runs.items():
        assert code == 0, (where, card.get("error"), [s.get("error") for s in card["steps"]])
        db = pg_dbs[where]
        tables[where] = (
            pg_rows(
                db,
                "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
                "WHERE attrelid = 'people'::regclass AND attnum > 0 ORDER BY attnum",
            ),
            pg_rows(db, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'people'::regclass"),
            pg_rows(db, "SELECT * FROM people ORDER BY id"),
        )
    assert tables["host"] == tables["local"]
    columns, constraints, rows = tables["host"]
    assert columns == [
        ("id", "integer", True),
        ("name", "character varying(40)", True),
        ("code", "character(3)", False),
    ]
    assert constraints == [("PRIMARY KEY (id)",)]
    assert rows == [(1, "Ann", "abc"), (2, "Bo", None)]
