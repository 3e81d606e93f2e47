"""Every type MariaDB and DuckDB can produce, through the drivers into the real PostgreSQL: exact or refused.

The cases live in tests/support/type_catalog.py, which scripts/type_mapping.py also prints into
docs/type-mapping.md. Each test prints a per-column report (`pytest -s` shows it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from databases import MYSQL, POSTGRES, mysql_connect, postgres_connect
from type_catalog import DUCKDB_CASES, MYSQL_CASES, column_types, read_column

from osiris.core.errors import OsirisError
from osiris.runtime.testing import RecordingContext

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]


@pytest.fixture()
def pg(pg_db: str) -> Iterator[Any]:
    conn = postgres_connect(pg_db)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def all_types(mysql_db: dict[str, Any]) -> str:
    """The module's MariaDB database with `all_types`: one column per catalog case, rows 1-2 the case's
    values, row 3 NULL; its name."""
    name = mysql_db["database"]
    with mysql_connect(name) as conn, conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        cols = ", ".join(f"`{c.name}` {c.decl}" for c in MYSQL_CASES)
        cur.execute(f"CREATE TABLE all_types (id INT NOT NULL PRIMARY KEY, {cols})")
        names = ", ".join(f"`{c.name}`" for c in MYSQL_CASES)
        for row in (0, 1):
            values = ", ".join(c.literals[row] for c in MYSQL_CASES)
            cur.execute(f"INSERT INTO all_types (id, {names}) VALUES ({row + 1}, {values})")
        cur.execute("INSERT INTO all_types (id) VALUES (3)")
    return name


class Ctx:
    """The `RecordingContext`s (osiris.runtime.testing) of one test's steps, their events in one list."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.contexts: list[RecordingContext] = []

    def __call__(self, step: str) -> RecordingContext:
        ctx = RecordingContext(step, self.tmp / step)
        ctx.output_dir.mkdir(parents=True, exist_ok=True)
        self.contexts.append(ctx)
        return ctx

    @property
    def events(self) -> list[tuple[str, dict[str, Any]]]:
        """Every event of every step, in the order the steps ran."""
        return [event for ctx in self.contexts for event in ctx.events]


def to_parquet(result: dict[str, Any], path: Path, step: str) -> Any:
    """What the runner does with a step's `df`: stream it into Parquet; the handle the next step gets."""
    from osiris.runtime.contract import InputHandle
    from osiris.runtime.io import as_batches, write_parquet_atomic

    schema, batches = as_batches(result["df"], step_id=step)
    write_parquet_atomic(path, schema, batches, step_id=step)
    return InputHandle(step, path)


def extract(ctx: Ctx, database: str, columns: list[str] | None, path: Path, read_path: str = "auto") -> Any:
    from osiris.drivers.sql.mysql_extractor import MySQLExtractor

    config: dict[str, Any] = {
        "table": "all_types",
        "read_path": read_path,
        "resolved_connection": {**MYSQL, "database": database},
    }
    if columns:
        config["columns"] = columns
    return to_parquet(MySQLExtractor().run(step_id="extract", config=config, ctx=ctx("extract")), path, "extract")


def write(ctx: Ctx, handle: Any, pg_db: str, table: str, **config: Any) -> dict[str, Any]:
    from osiris.drivers.supabase.writer import SupabaseWriter

    cfg = {
        "table": table,
        "create_if_missing": True,
        "write_mode": "replace",
        "retries": 0,
        **config,
        "resolved_connection": {**POSTGRES, "dbname": pg_db, "sslmode": "disable"},
    }
    return SupabaseWriter().run(step_id="load", config=cfg, inputs={"df": handle}, ctx=ctx("load"))


def test_the_catalog_says_what_the_server_says(all_types: str) -> None:
    from osiris.drivers.sql import mysql_client

    conn = mysql_connect(all_types)
    try:
        fields, _ = mysql_client.describe(conn, "SELECT * FROM all_types")
    finally:
        conn.close()
    got = {f.name: (f.type_code, f.flags, f.length, f.scale, f.charsetnr) for f in fields[1:]}
    assert got == {c.name: c.meta for c in MYSQL_CASES}


@pytest.mark.parametrize("path", ["native", "connectorx", "pymysql"])
def test_every_mysql_type_reaches_postgres_exactly(
    all_types: str, pg: Any, pg_db: str, tmp_path: Path, path: str
) -> None:
    """MariaDB `all_types` → mysql.extractor (table read) → supabase.writer, creating the table."""
    ctx = Ctx(tmp_path)
    handle = extract(ctx, all_types, None, tmp_path / "extract.parquet", read_path=path)
    used = {n: d for n, d in ctx.events if n == "extract.plan"}["extract.plan"]["path"]
    # connectorx cannot read DECIMAL(65,30) or TIME exactly in a plain table read: the text path then.
    assert used == (path if path != "connectorx" else "pymysql")
    table = f"all_types_{path}"
    write(ctx, handle, pg_db, table)
    types = column_types(pg, table)
    report = []
    for case in MYSQL_CASES:
        got = read_column(pg, table, case.name, case.pg, "id")
        ok = types[case.name] == case.pg and got == [*case.back, None]
        report.append(f"  {case.decl:34} -> {types[case.name]:30} {'exact' if ok else f'DIFFERS: {got}'}")
    print(f"\nMariaDB -> PostgreSQL ({path} read path):\n" + "\n".join(report))
    assert {c.name: types[c.name] for c in MYSQL_CASES} == {c.name: c.pg for c in MYSQL_CASES}
    for case in MYSQL_CASES:
        assert read_column(pg, table, case.name, case.pg, "id") == [*case.back, None], case.name
    key = [
        r[0]
        for r in _rows(
            pg,
            f"SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            f"AND a.attnum = ANY(i.indkey) WHERE i.indrelid = '{table}'::regclass AND i.indisprimary",
        )
    ]
    assert key == ["id"]


def _rows(pg: Any, sql: str) -> list[tuple[Any, ...]]:
    with pg.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_every_mysql_type_through_duckdb_select_star(all_types: str, pg: Any, pg_db: str, tmp_path: Path) -> None:
    """Per column: MariaDB → mysql.extractor → duckdb.processor `SELECT * FROM src` → supabase.writer, creating the
    table. Every column is exact in PostgreSQL, or the run is refused naming the column and its type."""
    from osiris.drivers.sql.duckdb_processor import DuckDBProcessor

    report = []
    for case in MYSQL_CASES:
        ctx = Ctx(tmp_path / case.name)
        handle = extract(ctx, all_types, ["id", case.name], tmp_path / f"{case.name}_src.parquet")
        table = f"via_duckdb_{case.name}"
        try:
            out = DuckDBProcessor().run(
                step_id="transform",
                config={"query": "SELECT * FROM src"},
                inputs={"src": handle, "df": handle},
                ctx=ctx("transform"),
            )
            moved = to_parquet(out, tmp_path / f"{case.name}_out.parquet", "transform")
            write(ctx, moved, pg_db, table)
        except OsirisError as exc:
            assert case.via_duckdb is not None and case.via_duckdb in str(exc), (case.name, str(exc))
            assert f"`{case.name}`" in str(exc)
            assert not _rows(pg, f"SELECT to_regclass('{table}') IS NOT NULL")[0][0]
            report.append(f"  {case.decl:34} refused: {str(exc).splitlines()[0][:110]}")
            continue
        assert case.via_duckdb is None, f"{case.name} was expected to be refused"
        got_type = column_types(pg, table)[case.name]
        got = read_column(pg, table, case.name, case.pg, "id")
        report.append(f"  {case.decl:34} -> {got_type:30} {'exact' if got == [*case.back, None] else got}")
        assert got_type == case.pg, case.name
        assert got == [*case.back, None], case.name
    print("\nMariaDB -> DuckDB `SELECT *` -> PostgreSQL:\n" + "\n".join(report))


def test_not_null_lengths_and_key_survive_duckdb_pass_through(
    pg: Any, pg_db: str, tmp_path: Path, new_mysql_db: Any
) -> None:
    from osiris.drivers.sql.duckdb_processor import DuckDBProcessor

    name = new_mysql_db("osiris_shape").name
    cur = mysql_connect().cursor()
    try:
        cur.execute(
            f"CREATE TABLE `{name}`.emp (dept CHAR(4) NOT NULL, emp_no INT NOT NULL, name VARCHAR(40) NOT NULL, "
            "note TEXT, hired DATE NOT NULL, PRIMARY KEY (dept, emp_no))"
        )
        cur.execute(
            f"INSERT INTO `{name}`.emp VALUES ('d001', 1, 'Ann', NULL, '2020-01-01'), ('d002', 1, 'Bo', 'x', '2021-02-03')"
        )
        from osiris.drivers.sql.mysql_extractor import MySQLExtractor

        ctx = Ctx(tmp_path)
        src = to_parquet(
            MySQLExtractor().run(
                step_id="emp",
                config={"table": "emp", "resolved_connection": {**MYSQL, "database": name}},
                ctx=ctx("emp"),
            ),
            tmp_path / "emp.parquet",
            "emp",
        )
        for query, table, key, not_null in [
            ("SELECT * FROM emp", "shape_star", ["dept", "emp_no"], ["dept", "emp_no", "name", "hired"]),
            (
                "SELECT emp_no, dept, name AS full_name FROM emp WHERE hired > DATE '2000-01-01' ORDER BY 1",
                "shape_pick",
                ["dept", "emp_no"],
                ["emp_no", "dept", "full_name"],
            ),
            ("SELECT dept, upper(name) AS name, emp_no FROM emp", "shape_computed", [], ["dept", "emp_no"]),
        ]:
            out = DuckDBProcessor().run(
                step_id="t", config={"query": query}, inputs={"emp": src, "df": src}, ctx=ctx("t")
            )
            write(ctx, to_parquet(out, tmp_path / f"{table}.parquet", "t"), pg_db, table)
            plan = (tmp_path / "load" / "ddl_plan.sql").read_text()
            got_key = [
                r[0]
                for r in _rows(
                    pg,
                    (
                        "SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(n, pos) ON true "
                        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n "
                        f"WHERE i.indrelid = '{table}'::regclass AND i.indisprimary ORDER BY k.pos"
                    ),
                )
            ]
            got_nn = [
                r[0]
                for r in _rows(
                    pg,
                    f"SELECT attname FROM pg_attribute WHERE attrelid = '{table}'::regclass "
                    "AND attnum > 0 AND attnotnull ORDER BY attnum",
                )
            ]
            assert (got_key, got_nn) == (key, not_null), (query, plan)
            types = column_types(pg, table)
            if "name" in types and table != "shape_computed":
                assert types["name"] == "character varying(40)"
            if "full_name" in types:
                assert types["full_name"] == "character varying(40)"
            assert types["dept"] == "character(4)"
    finally:
        cur.connection.close()


@pytest.mark.parametrize("case", DUCKDB_CASES, ids=lambda c: c.name)
def test_every_duckdb_type_reaches_postgres_exactly_or_is_refused(
    case: Any, pg: Any, pg_db: str, tmp_path: Path
) -> None:
    """duckdb.processor computing the type → Parquet → supabase.writer creating the table."""
    import duckdb

    from osiris.drivers.sql.duckdb_processor import DuckDBProcessor

    try:
        duckdb.sql(f"SELECT CAST(NULL AS {case.duckdb})")
    except duckdb.Error:
        pytest.skip(f"this DuckDB has no {case.duckdb}")
    ctx = Ctx(tmp_path)
    query = f'SELECT v AS "#", {case.sql} AS x FROM (VALUES (1), (2)) AS t(v) ORDER BY v'
    table = f"duck_{case.name}"
    try:
        out = DuckDBProcessor().run(step_id="t", config={"query": query}, inputs={}, ctx=ctx("t"))
        write(ctx, to_parquet(out, tmp_path / "t.parquet", "t"), pg_db, table)
    except OsirisError as exc:
        assert case.refused is not None, f"{case.name}: {exc}"
        assert case.refused in str(exc) and "`x`" in str(exc), str(exc)
        assert not _rows(pg, f"SELECT to_regclass('{table}') IS NOT NULL")[0][0]
        return
    assert case.refused is None, f"{case.name} was expected to be refused"
    assert column_types(pg, table)["x"] == case.pg
    assert read_column(pg, table, "x", case.pg, "#") == list(case.back)
