"""supabase.writer never changes data silently: types, repeated keys, values that do not fit, missing
columns, long names and concurrent first loads, against the real PostgreSQL.

Long on purpose: every load path is checked against one catalogue of types and values
(tests/support/type_catalog.py).
"""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from type_catalog import ARROW_CASES, ARROW_VALUE_REFUSALS, column_types, read_column

from osiris.core.errors import TerminalError, UserInputError

pytestmark = pytest.mark.postgres


def rows(pg: Any, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    """All rows of a query."""
    with pg.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def table_exists(pg: Any, table: str) -> bool:
    return rows(pg, "SELECT to_regclass(%s) IS NOT NULL", (f'public."{table}"',))[0][0]


def snapshot(pg: Any, table: str) -> list[Any]:
    """Physical rows (ctid included): 'unchanged' means the same tuples."""
    return rows(pg, f'SELECT ctid::text, t::text FROM "{table}" t ORDER BY ctid')


# -- every Arrow type ------------------------------------------------------------------------


MAPPED = [c for c in ARROW_CASES if c.refused is None and c.parquet]


def _wide_table(cases: list[Any]) -> Any:
    """One column per case, the cases' values in rows (shorter columns padded with NULL)."""
    import pyarrow as pa

    n = max(len(c.values) for c in cases)
    arrays, fields = [], []
    for c in cases:
        arr = c.array()
        if len(arr) < n:
            arr = pa.concat_arrays([arr, pa.nulls(n - len(arr), arr.type)])
        arrays.append(arr)
        fields.append(c.field())
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _read_back(pg: Any, table: str, case: Any, n: int) -> list[Any]:
    return read_column(pg, table, case.name, case.pg, "#")[: len(case.values)]


def test_every_arrow_type_in_one_table_is_created_exactly_with_exact_values(pg: Any, run_writer: Any) -> None:
    import pyarrow as pa

    data = _wide_table(MAPPED)
    data = data.add_column(0, "#", pa.array(range(data.num_rows), pa.int32()))
    run_writer(data, table="all_arrow", create_if_missing=True, write_mode="replace", primary_key="#")
    types = column_types(pg, "all_arrow")
    assert {c.name: types[c.name] for c in MAPPED} == {c.name: c.pg for c in MAPPED}
    for case in MAPPED:
        assert _read_back(pg, "all_arrow", case, data.num_rows) == case.expected, case.name


@pytest.mark.parametrize("case", MAPPED, ids=lambda c: c.name)
def test_each_arrow_type_is_exact_on_every_load_path(pg: Any, run_writer: Any, case: Any) -> None:
    """Created by a keyed replace (direct swap where the COPY can write the type straight in), then appended
    to (direct COPY where it can) and upserted: the values stay exact every time."""
    import pyarrow as pa

    n = len(case.values)
    table = f"one_{case.name}"
    data = pa.Table.from_arrays(
        [pa.array(range(n), pa.int32()), case.array()], schema=pa.schema([("#", pa.int32()), case.field()])
    )
    first, _ = run_writer(data, table=table, create_if_missing=True, write_mode="replace", primary_key="#")
    assert column_types(pg, table)[case.name] == case.pg
    assert _read_back(pg, table, case, n) == case.expected
    rows(pg, f'DELETE FROM "{table}" RETURNING 1')
    second, _ = run_writer(data, table=table, write_mode="append")
    assert _read_back(pg, table, case, n) == case.expected
    assert (first["strategy"] == "direct_swap") == (second["strategy"] == "direct")
    run_writer(data, table=table, write_mode="upsert", primary_key="#")
    assert _read_back(pg, table, case, n) == case.expected


def test_the_catalog_covers_what_the_mapping_gives() -> None:
    from osiris.drivers.supabase.sqltypes import mapping

    def spelled(pg_type: str) -> str:
        from osiris.drivers.supabase.typefit import parse

        return parse(pg_type).sql

    for case in ARROW_CASES:
        if case.refused:
            continue
        assert spelled(mapping(case.field()).pg) == spelled(case.pg), case.name


@pytest.mark.parametrize("case", [c for c in ARROW_CASES if c.refused], ids=lambda c: c.name)
def test_a_refused_type_names_the_column_and_type_before_any_sql(pg: Any, run_writer: Any, case: Any) -> None:
    import pyarrow as pa

    from osiris.drivers.supabase.sqltypes import TypeRefused, mapping

    with pytest.raises(TypeRefused, match=case.refused) as err:
        mapping(case.field())
    assert f"`{case.name}`" in str(err.value)
    if not case.parquet:
        return
    data = pa.table({"id": pa.array([1], pa.int64())})
    data = data.append_column(case.field(), pa.nulls(1, case.field().type) if not case.values else case.array())
    with pytest.raises(TypeRefused, match=case.refused):
        run_writer(data, table=f"refused_{case.name}", create_if_missing=True)
    assert not table_exists(pg, f"refused_{case.name}")


@pytest.mark.parametrize(
    "name,typ,values,message", [v[:4] for v in ARROW_VALUE_REFUSALS], ids=[v[0] for v in ARROW_VALUE_REFUSALS]
)
@pytest.mark.parametrize("exists", [False, True], ids=["created", "existing"])
def test_a_value_with_no_exact_form_fails_and_nothing_changes(
    pg: Any, run_writer: Any, name: str, typ: Any, values: list[Any], message: str, exists: bool
) -> None:
    import pyarrow as pa

    from osiris.drivers.supabase.sqltypes import TypeRefused, mapping

    field = typ() if isinstance(typ(), pa.Field) else pa.field("v", typ())
    field = field.with_name("v")
    data = pa.table({"id": pa.array(range(len(values)), pa.int64()), "v": pa.array(values, field.type)})
    table = f"value_{name}_{exists}"
    if exists:
        rows(pg, f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, v {mapping(field).pg}); SELECT 1')
        rows(pg, f'INSERT INTO "{table}" (id) VALUES (42) RETURNING 1')
    with pytest.raises(TypeRefused, match=message) as err:
        run_writer(data, table=table, create_if_missing=True, write_mode="replace", primary_key="id")
    assert "`v`" in str(err.value)
    if exists:
        assert rows(pg, f'SELECT id FROM "{table}"') == [(42,)]
    else:
        assert not table_exists(pg, table)


def test_month_day_nano_intervals_are_sent_exactly() -> None:
    import pyarrow as pa

    from osiris.drivers.supabase.sqltypes import TypeRefused, mapping

    m = mapping(pa.field("i", pa.month_day_nano_interval()))
    assert m.pg == "interval"
    got = m.encode(pa.array([(1, 2, 3000), (-1, 0, -1_000_000_000), None], pa.month_day_nano_interval()))
    assert got.to_pylist() == ["1 mons 2 days 0:00:00.000003", "-1 mons 0 days -0:00:01", None]
    with pytest.raises(TypeRefused, match="nanosecond fraction"):
        m.encode(pa.array([(0, 0, 1)], pa.month_day_nano_interval()))


# -- NOT NULL and the key from the source ----------------------------------------------------


def test_created_table_keeps_not_null_lengths_and_the_source_key(pg: Any, run_writer: Any) -> None:
    import pyarrow as pa

    schema = pa.schema(
        [
            pa.field("k2", pa.int32(), nullable=False, metadata={"osiris.primary_key": "2"}),
            pa.field(
                "k1", pa.string(), nullable=False, metadata={"osiris.primary_key": "1", "osiris.sql_type": "char(2)"}
            ),
            pa.field("name", pa.string(), nullable=False, metadata={"osiris.sql_type": "varchar(40)"}),
            pa.field("note", pa.string()),
        ]
    )
    data = pa.Table.from_pylist([{"k2": 1, "k1": "de", "name": "Ann", "note": None}], schema=schema)
    _, rec = run_writer(data, table="shaped", create_if_missing=True)
    assert column_types(pg, "shaped") == {
        "k2": "integer",
        "k1": "character(2)",
        "name": "character varying(40)",
        "note": "text",
    }
    not_null = rows(
        pg, "SELECT attname FROM pg_attribute WHERE attrelid = 'shaped'::regclass AND attnum > 0 AND attnotnull"
    )
    assert sorted(r[0] for r in not_null) == ["k1", "k2", "name"]
    key = rows(
        pg,
        "SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = 'shaped'::regclass AND i.indisprimary ORDER BY k.n",
    )
    assert [r[0] for r in key] == ["k1", "k2"]
    plan = (rec.output_dir / "ddl_plan.sql").read_text()
    assert '"name" varchar(40) NOT NULL' in plan and 'PRIMARY KEY ("k1", "k2")' in plan
    assert rows(pg, "SELECT k2, k1, name, note FROM shaped") == [(1, "de", "Ann", None)]


def test_the_steps_primary_key_wins_over_the_sources(pg: Any, run_writer: Any) -> None:
    import pyarrow as pa

    schema = pa.schema([pa.field("a", pa.int64(), metadata={"osiris.primary_key": "1"}), pa.field("b", pa.int64())])
    data = pa.Table.from_pylist([{"a": 1, "b": 1}, {"a": 1, "b": 2}], schema=schema)
    run_writer(data, table="own_key", create_if_missing=True, primary_key="b")
    key = rows(pg, "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'own_key'::regclass")
    assert [k[1] for k in key] == ["PRIMARY KEY (b)"]


# -- repeated keys -----------------------------------------------------------------------------

SALARIES = [(emp, year, 1000 * emp + year) for emp in (1, 2, 3) for year in (2020, 2021, 2022)] + [(4, 2020, 4000)]


def salaries() -> Any:
    import pyarrow as pa

    return pa.table(
        {
            "emp_no": pa.array([r[0] for r in SALARIES], pa.int64()),
            "year": pa.array([r[1] for r in SALARIES], pa.int32()),
            "salary": pa.array([r[2] for r in SALARIES], pa.int64()),
        }
    )


def create_salaries_target(pg: Any, table: str, unique: bool) -> None:
    key = " PRIMARY KEY" if unique else ""
    rows(pg, f'CREATE TABLE "{table}" (emp_no bigint{key}, year integer, salary bigint); SELECT 1')
    rows(pg, f'INSERT INTO "{table}" VALUES (1, 1999, 1), (9, 1999, 9) RETURNING 1')


@pytest.mark.parametrize("target", ["unique", "no_unique_index", "missing"])
@pytest.mark.parametrize("mode", ["upsert", "replace"])
def test_repeated_keys_fail_by_default_and_nothing_changes(pg: Any, run_writer: Any, mode: str, target: str) -> None:
    from osiris.drivers.supabase.loadchecks import DuplicateKeysError

    table = f"dup_{mode}_{target}"
    if target != "missing":
        create_salaries_target(pg, table, target == "unique")
        before = snapshot(pg, table)
    with pytest.raises(DuplicateKeysError) as err:
        run_writer(salaries(), table=table, write_mode=mode, primary_key="emp_no", create_if_missing=True)
    text = str(err.value)
    assert "repeats 3 value(s) of the key `emp_no`" in text
    assert "6 of its 10 rows" in text
    assert "emp_no=1 (3 rows), emp_no=2 (3 rows), emp_no=3 (3 rows)" in text
    assert "on_duplicate_keys: keep_last" in text and "nothing was written" in text
    if target == "missing":
        assert not table_exists(pg, table)
    else:
        assert snapshot(pg, table) == before


@pytest.mark.parametrize("policy", ["keep_last", "keep_first"])
@pytest.mark.parametrize("target", ["unique", "no_unique_index", "missing"])
@pytest.mark.parametrize("mode", ["upsert", "replace"])
def test_keep_last_or_first_drops_and_reports_the_repeats(
    pg: Any, run_writer: Any, mode: str, target: str, policy: str
) -> None:
    table = f"keep_{mode}_{target}_{policy}"
    if target != "missing":
        create_salaries_target(pg, table, target == "unique")
    result, rec = run_writer(
        salaries(), table=table, write_mode=mode, primary_key="emp_no", create_if_missing=True, on_duplicate_keys=policy
    )
    kept: dict[int, tuple[int, int, int]] = {}
    for r in SALARIES:
        if policy == "keep_last" or r[0] not in kept:
            kept[r[0]] = r
    expected = dict(kept)
    if mode == "upsert" and target != "missing":
        expected = {9: (9, 1999, 9), **kept}
    assert sorted(rows(pg, f'SELECT * FROM "{table}"')) == sorted(expected.values())
    assert result["duplicate_rows_dropped"] == 6
    assert rec.event("load.duplicates_dropped") == {
        "level": "warning",
        "table": f"public.{table}",
        "policy": policy,
        "key": ["emp_no"],
        "rows_dropped": 6,
    }
    assert rec.event("write.complete")["duplicate_rows_dropped"] == 6


def test_every_column_in_the_key_still_counts_repeats(pg: Any, run_writer: Any) -> None:
    import pyarrow as pa

    from osiris.drivers.supabase.loadchecks import DuplicateKeysError

    rows(pg, "CREATE TABLE pairs (a int, b int, PRIMARY KEY (a, b)); SELECT 1")
    data = pa.table({"a": pa.array([1, 1, 2], pa.int32()), "b": pa.array([1, 1, 2], pa.int32())})
    with pytest.raises(DuplicateKeysError, match=r"\(a=1, b=1\) \(2 rows\)"):
        run_writer(data, table="pairs", write_mode="upsert", primary_key=["a", "b"])
    assert rows(pg, "SELECT count(*) FROM pairs") == [(0,)]
    result, _ = run_writer(
        data, table="pairs", write_mode="upsert", primary_key=["a", "b"], on_duplicate_keys="keep_first"
    )
    assert result["duplicate_rows_dropped"] == 1
    assert sorted(rows(pg, "SELECT * FROM pairs")) == [(1, 1), (2, 2)]


def test_append_with_a_key_refuses_repeats_and_keeps_postgres_errors_for_conflicts(pg: Any, run_writer: Any) -> None:
    from osiris.drivers.supabase.loadchecks import DuplicateKeysError

    create_salaries_target(pg, "dup_append", unique=True)
    before = snapshot(pg, "dup_append")
    with pytest.raises(DuplicateKeysError, match="an `append` keeps every row"):
        run_writer(salaries(), table="dup_append", write_mode="append", primary_key="emp_no")
    assert snapshot(pg, "dup_append") == before
    # A key already in the table (not repeated in the input) is PostgreSQL's own unique violation.
    import pyarrow as pa

    clash = pa.table({"emp_no": pa.array([1], pa.int64()), "year": pa.array([1], pa.int32()), "salary": [5]})
    with pytest.raises(TerminalError, match="23505") as err:
        run_writer(clash, table="dup_append", write_mode="append", primary_key="emp_no")
    assert not isinstance(err.value, DuplicateKeysError)
    assert snapshot(pg, "dup_append") == before
    with pytest.raises(UserInputError, match="applies to `upsert` and `replace`"):
        run_writer(
            salaries(), table="dup_append", write_mode="append", primary_key="emp_no", on_duplicate_keys="keep_last"
        )


def test_another_unique_index_violated_is_not_reported_as_repeated_keys(pg: Any, run_writer: Any) -> None:
    import pyarrow as pa

    from osiris.drivers.supabase.loadchecks import DuplicateKeysError

    rows(pg, "CREATE TABLE emails (id bigint PRIMARY KEY, email text UNIQUE); SELECT 1")
    data = pa.table({"id": pa.array([1, 2], pa.int64()), "email": ["a@x", "a@x"]})
    with pytest.raises(TerminalError, match="emails_email_key") as err:
        run_writer(data, table="emails", write_mode="replace", primary_key="id")
    assert not isinstance(err.value, DuplicateKeysError)
    assert rows(pg, "SELECT count(*) FROM emails") == [(0,)]


# -- values that do not fit an existing column --------------------------------------------------


FIT_CASES = [
    # (column type, Arrow type, values that fit, a value that does not, the widened type as written and as
    # PostgreSQL's format_type spells it)
    ("numeric(9,2)", "decimal_9_4", [Decimal("1.2300"), Decimal("-2.5")], Decimal("1.2345"), "numeric(11,4)", None),
    ("character varying(5)", "string", ["abc", "abcde"], "abcdef", "text", None),
    ("integer", "int64", [5, -(2**31)], 2**40, "bigint", None),
    ("real", "float64", [0.5, 1.25], 0.1, "double precision", None),
    (
        "timestamp(0) without time zone",
        "timestamp_us",
        ["2024-01-01 10:00:00"],
        "2024-01-01 10:00:00.5",
        "timestamp",
        "timestamp without time zone",
    ),
    ("smallint", "decimal_9_4", [Decimal("7.0000")], Decimal("7.5"), "numeric(9,4)", None),
]


def _fit_input(arrow: str, values: list[Any], start: int = 0) -> Any:
    import datetime as dt

    import pyarrow as pa

    typ = {
        "decimal_9_4": pa.decimal128(9, 4),
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "timestamp_us": pa.timestamp("us"),
    }[arrow]
    if arrow == "timestamp_us":
        values = [dt.datetime.fromisoformat(v) for v in values]
    return pa.table({"id": pa.array(range(start, start + len(values)), pa.int64()), "v": pa.array(values, typ)})


@pytest.mark.parametrize("mode", ["append", "upsert", "replace"])
@pytest.mark.parametrize("case", FIT_CASES, ids=[c[0].split("(")[0].replace(" ", "_") for c in FIT_CASES])
def test_a_value_that_does_not_fit_fails_naming_the_column_unless_widening_is_allowed(
    pg: Any, run_writer: Any, case: tuple[Any, ...], mode: str
) -> None:
    have, arrow, fitting, bad, wider, wider_spelled = case
    table = f"fit_{arrow}_{have.split('(')[0].replace(' ', '_')}_{mode}"
    rows(pg, f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, v {have}); SELECT 1')
    key = {"primary_key": "id"} if mode != "append" else {}
    # Values that fit are loaded as they are, even though the input's type is wider.
    run_writer(_fit_input(arrow, fitting), table=table, write_mode=mode, **key)
    before = snapshot(pg, table)
    assert len(before) == len(fitting)
    data = _fit_input(arrow, [bad], start=99) if mode == "append" else _fit_input(arrow, [*fitting, bad])
    with pytest.raises(TerminalError) as err:
        run_writer(data, table=table, write_mode=mode, **key)
    text = str(err.value)
    assert f"Column `v` of `public.{table}` is `{have}`" in text and "nothing was written" in text
    assert f"widen_columns: true` to widen it to `{wider}`" in text
    assert snapshot(pg, table) == before
    _, rec = run_writer(data, table=table, write_mode=mode, widen_columns=True, **key)
    assert column_types(pg, table)["v"] == (wider_spelled or wider)
    assert [e for n, e in rec.events if n == "ddl_succeeded"] == [
        {"channel": "psycopg2", "kind": "alter_column_type", "table": f"public.{table}"}
    ]
    assert "ALTER COLUMN" in (rec.output_dir / "ddl_plan.sql").read_text()
    got = rows(pg, f'SELECT v::text FROM "{table}" WHERE id = %s', (int(data.column("id")[-1].as_py()),))
    assert got and got[0][0] is not None


def test_text_into_a_varchar_column_is_never_cut(pg: Any, run_writer: Any) -> None:
    import pyarrow as pa

    rows(pg, "CREATE TABLE short_names (id bigint PRIMARY KEY, v varchar(3)); SELECT 1")
    field = pa.field("v", pa.string(), metadata={"osiris.sql_type": "varchar(3)"})  # a wrong declaration
    data = pa.Table.from_arrays(
        [pa.array([1], pa.int64()), pa.array(["abcd"])], schema=pa.schema([("id", pa.int64()), field])
    )
    for mode in ("append", "replace"):
        with pytest.raises(TerminalError, match="too long"):
            run_writer(data, table="short_names", write_mode=mode, primary_key="id")
    assert rows(pg, "SELECT count(*) FROM short_names") == [(0,)]


# -- columns the input lacks ----------------------------------------------------------------------


def test_a_table_column_missing_from_the_input_fails_unless_kept(pg: Any, run_writer: Any) -> None:
    import pyarrow as pa

    rows(
        pg,
        "CREATE TABLE wide (id bigint PRIMARY KEY, a text, gone text, made timestamptz DEFAULT now(), "
        "n bigint GENERATED ALWAYS AS IDENTITY); INSERT INTO wide (id, a, gone) VALUES (1, 'x', 'kept'); SELECT 1",
    )
    before = snapshot(pg, "wide")
    data = pa.table({"id": pa.array([1, 2], pa.int64()), "a": ["y", "z"]})
    for mode in ("append", "upsert", "replace"):
        with pytest.raises(TerminalError, match=r"`gone` text that the input .* lacks.*on_missing_columns: keep"):
            run_writer(data, table="wide", write_mode=mode, primary_key="id")
    assert snapshot(pg, "wide") == before
    result, rec = run_writer(data, table="wide", write_mode="upsert", primary_key="id", on_missing_columns="keep")
    assert sorted(rows(pg, "SELECT id, a, gone FROM wide")) == [(1, "y", "kept"), (2, "z", None)]
    assert rec.event("load.missing_columns")["columns"] == ["gone"]
    assert result["missing_columns"] == ["gone"]


# -- identifiers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where,name",
    [("table", "t" * 64), ("table", "é" * 32), ("schema", "s" * 64), ("column", "c" * 64), ("column", "ü" * 40)],
)
def test_a_name_over_63_bytes_is_refused_before_any_sql(pg: Any, run_writer: Any, where: str, name: str) -> None:
    import pyarrow as pa

    data = pa.table({"id": [1], **({name: [1]} if where == "column" else {})})
    config: dict[str, Any] = {"table": name if where == "table" else "names", "create_if_missing": True}
    if where == "schema":
        config["schema"] = name
    from osiris.drivers.supabase.identifiers import truncate_bytes

    n = len(name.encode())
    with pytest.raises(UserInputError, match=rf"`{name}` is {n} bytes long .* keeps only the first 63 bytes"):
        run_writer(data, **config)
    cut = truncate_bytes(name, 63)
    assert not table_exists(pg, cut if where == "table" else "names")
    assert rows(pg, "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (cut,)) == [(0,)]


def test_two_long_names_sharing_63_bytes_never_become_one_table(pg: Any, run_writer: Any) -> None:
    import pyarrow as pa

    first, second = "x" * 63 + "_first", "x" * 63 + "_other"
    for name in (first, second):
        with pytest.raises(UserInputError, match="69 bytes long"):
            run_writer(pa.table({"id": [1]}), table=name, create_if_missing=True, write_mode="replace")
    assert not table_exists(pg, "x" * 63)


def test_staging_names_stay_unique_and_within_63_bytes() -> None:
    from osiris.drivers.supabase.identifiers import byte_length, stage_name

    for table in ("t", "x" * 63, "é" * 31, "日本語のとても長いテーブル名" * 3, "a" * 40 + "€"):
        names = {stage_name(table, f"{i:08x}") for i in range(50)}
        assert len(names) == 50
        assert all(byte_length(n) <= 63 and n.startswith("_osiris_stage_") for n in names)
        assert all(n.encode().decode() == n for n in names)  # whole characters only


def test_loads_into_a_63_byte_non_ascii_table_work_on_every_path(pg: Any, run_writer: Any) -> None:
    import pyarrow as pa

    name = "é" * 31 + "x"  # 63 bytes
    data = pa.table({"id": pa.array([1, 2], pa.int64()), "v": ["a", "b"]})
    run_writer(data, table=name, create_if_missing=True, write_mode="replace", primary_key="id")
    run_writer(data, table=name, write_mode="upsert", primary_key="id")
    run_writer(pa.table({"id": pa.array([3], pa.int64()), "v": ["c"]}), table=name, write_mode="append")
    assert sorted(rows(pg, f'SELECT id, v FROM "{name}"')) == [(1, "a"), (2, "b"), (3, "c")]
    assert rows(pg, "SELECT count(*) FROM pg_tables WHERE starts_with(tablename, '_osiris_stage_')") == [(0,)]


# -- concurrent first loads ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["append", "upsert", "replace"])
def test_two_concurrent_first_loads_of_a_missing_table_both_succeed(
    pg: Any, pg_db: str, tmp_path: Path, mode: str
) -> None:
    """Two loads race to create the same table, several times over: every run succeeds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from osiris.drivers.supabase.writer import SupabaseWriter
    from osiris.runtime.contract import InputHandle, StepContext

    connection = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": pg_db, "sslmode": "disable"}
    for trial in range(6):
        table = f"race_{mode}_{trial}"
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def load(i: int, table: str = table, barrier: threading.Barrier = barrier, errors: list = errors) -> None:
            path = tmp_path / f"{table}_{i}.parquet"
            ids = range(i * 1000, i * 1000 + 1000)
            pq.write_table(pa.table({"id": pa.array(ids, pa.int64()), "v": [f"r{i}"] * 1000}), path)
            ctx = StepContext(step_id="load", output_dir=tmp_path / f"{table}_{i}")
            config = {
                "table": table,
                "write_mode": mode,
                "primary_key": "id",
                "create_if_missing": True,
                "retries": 0,
                "resolved_connection": connection,
            }
            barrier.wait()
            try:
                SupabaseWriter().run(step_id="load", config=config, inputs={"df": InputHandle("up", path)}, ctx=ctx)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=load, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [], f"trial {trial}: {errors}"
        got = rows(pg, f'SELECT min(v), max(v), count(*) FROM "{table}"')
        if mode == "replace":
            assert got in ([("r0", "r0", 1000)], [("r1", "r1", 1000)])
        else:
            assert got == [("r0", "r1", 2000)]
