"""`mysql.extractor`: stream a MySQL/MariaDB query result as Arrow record batches with exact types.

How it reads:

1. pymysql connects (clear errors for refused, wrong password, unknown database),
   binds `params` with the server connection's own escaping, and asks the server to
   prepare the SQL (COM_STMT_PREPARE) for the result's column metadata without running
   it. The Arrow schema is decided from that metadata alone (see `mysql_types`), so
   zero rows still give the right schema, and invalid SQL fails before any data moves.
2. Where the package is built with its native row parser (`mysql_native`, `_mysql_rows.c`),
   the statement runs as a prepared statement and its binary rows are decoded straight
   into Arrow buffers, every type exact: the default path.
3. Without it, connectorx streams the result (`arrow_stream`, Rust, binary protocol), then
   each column is cast to the planned type, when every column is exact through
   connectorx. With `table`, or a `query` without ORDER BY (wrapped as
   a derived table), columns connectorx cannot carry exactly (wide DECIMAL, TIME) are
   selected as text by the server and parsed exactly here; with `zero_dates: "null"`,
   DATE/DATETIME/TIMESTAMP columns are selected so that the server sends NULL for zero
   and partial dates (`0000-00-00`, `2024-02-00`), which have no Arrow value; and a
   DECIMAL of up to 18 digits is selected as its unscaled integer, which connectorx
   reads far more cheaply (each column's expression: `ColumnPlan.cx_select`).
4. Otherwise (a `query` with ORDER BY and such columns, `ssl`, `?` placeholders, a
   statement that cannot be prepared) pymysql streams the rows unbuffered (`SSCursor`) as
   raw text, and Arrow's own parsers build each column (zero dates become NULL there, or an error).

`read_path` (`auto`, the default: the first of these that applies) narrows the choice to
`native`, `connectorx` or `pymysql`, e.g. to compare them; `ssl`, `?` placeholders and
statements that cannot be prepared are read with pymysql whatever it says.

Only a few batches are held in memory at a time, as long as the consumer keeps up
(connectorx reads ahead into a queue without a bound; see the package README).

Longer than most modules, on purpose: one driver whose read paths share the planning (the
prepared statement's metadata, the column plans, the rewrites) and the translation of their
failures; what each path needs below that lives apart (`mysql_native` and `_mysql_rows.c`,
`mysql_client`, `mysql_types`).
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from osiris.core.errors import OsirisError, TerminalError, UserInputError
from osiris.drivers.sql import mysql_client as client
from osiris.drivers.sql import mysql_native
from osiris.drivers.sql.mysql_types import (
    CHARSET_MAX_BYTES,
    DATE_KINDS,
    PRI_KEY_FLAG,
    BadDateValue,
    ColumnPlan,
    arrow_schema,
    plan_column,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from osiris.runtime.contract import InputHandle, StepContext

PATH_NATIVE = "native"
PATH_CONNECTORX = "connectorx"
PATH_PYMYSQL = "pymysql"
READ_PATHS = ("auto", PATH_NATIVE, PATH_CONNECTORX, PATH_PYMYSQL)
ZERO_DATES_MODES = ("error", "null")


def _quote_column(name: str) -> str:
    return "`" + str(name).replace("`", "``") + "`"


def build_sql(config: dict[str, Any], *, step_id: str, expressions: dict[str, str] | None = None) -> str:
    """The SQL to run for `config`: its `query`, or a SELECT over `table` with `columns`, `where`, `limit`.

    `expressions` maps a column name to the select expression that replaces it (table mode only).
    """
    if config.get("query"):
        if any(config.get(k) is not None for k in ("table", "columns", "where", "limit")):
            raise UserInputError(
                f"Step `{step_id}` sets `query` together with `table`/`columns`/`where`/`limit`; "
                "expected either `query`, or `table` with optional `columns`, `where` and `limit`",
                step=step_id,
            )
        return str(config["query"]).strip().rstrip(";").strip()
    table = config.get("table")
    if not table:
        raise UserInputError(f"Step `{step_id}` needs `query` or `table`", step=step_id)
    columns = config.get("columns")
    if columns:
        names = [str(c) for c in columns]
        if expressions:
            select = ", ".join(expressions.get(n, _quote_column(n)) for n in names)
        else:
            select = ", ".join(_quote_column(n) for n in names)
    elif expressions:
        raise AssertionError("rewritten columns need an explicit column list")  # callers pass the described names
    else:
        select = "*"
    sql = f"SELECT {select} FROM {client.quote_identifier(str(table), what='`table`', step=step_id)}"
    if config.get("where"):
        sql += f" WHERE {config['where']}"
    if config.get("limit") is not None:
        sql += f" LIMIT {int(config['limit'])}"
    return sql


@dataclass(frozen=True)
class Shape:
    """What the column plans take from the step besides each column's metadata.

    `char_bytes`: bytes per character of the connection's character set (None: unknown);
    `trust_not_null`: whether the server's NOT NULL flags hold for this statement; `key`: the
    source table's primary key columns and their positions (table reads only).
    """

    zero_dates_as_null: bool = False
    char_bytes: int | None = 4
    trust_not_null: bool = True
    key: dict[str, int] = field(default_factory=dict)


def _plans(fields: list[Any], *, zero_dates_as_null: bool = False, shape: Shape | None = None) -> list[ColumnPlan]:
    shape = shape or Shape(zero_dates_as_null=zero_dates_as_null)
    return [
        plan_column(
            f.name,
            f.type_code,
            f.flags,
            f.length,
            f.scale,
            f.charsetnr,
            zero_dates_as_null=shape.zero_dates_as_null,
            char_bytes=shape.char_bytes,
            declared=bool(getattr(f, "org_name", "")),
            trust_not_null=shape.trust_not_null,
        )
        for f in fields
    ]


_ROLLUP = re.compile(r"\bwith\s+rollup\b", re.I)


def _source_key(meta: Any, config: dict[str, Any], fields: list[Any]) -> dict[str, int]:
    """The primary key of the table a `table` read comes from, when every key column is in the result.

    Only `table` reads: a query's rows need not be unique on the key of a table it reads.
    """
    table = config.get("table")
    if not table or config.get("query") or not any(f.flags & PRI_KEY_FLAG for f in fields):
        return {}
    parts = str(table).split(".")
    schema_sql = "DATABASE()" if len(parts) == 1 else "%s"
    args = [parts[-1]] if len(parts) == 1 else [parts[0], parts[1]]
    cur = meta.cursor()
    try:
        cur.execute(
            "SELECT COLUMN_NAME, SEQ_IN_INDEX FROM information_schema.STATISTICS "
            f"WHERE TABLE_SCHEMA = {schema_sql} AND TABLE_NAME = %s AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
            args,
        )
        key = {str(name): int(seq) for name, seq in cur.fetchall()}
    finally:
        cur.close()
    names = {f.name for f in fields if getattr(f, "org_name", "")}
    return key if key and set(key) <= names else {}


def estimated_rows(meta: Any, config: dict[str, Any]) -> int | None:
    """The server's row estimate for a `table` read (`information_schema.TABLES.TABLE_ROWS`), or None.

    Only a whole-table read has one: with `where` the count is unknown, `limit` caps it, a
    `query` has none. InnoDB's figure is an estimate (exact after `ANALYZE TABLE`); it is used
    for the progress display only, so a failure to read it is no error.
    """
    table = config.get("table")
    if not table or config.get("query") or config.get("where"):
        return None
    parts = str(table).split(".")
    schema_sql = "DATABASE()" if len(parts) == 1 else "%s"
    args = [parts[-1]] if len(parts) == 1 else [parts[0], parts[1]]
    try:
        cur = meta.cursor()
        try:
            cur.execute(
                f"SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = {schema_sql} "
                "AND TABLE_NAME = %s",
                args,
            )
            row = cur.fetchone()
        finally:
            cur.close()
    except Exception:
        return None
    if not row or row[0] is None:
        return None
    rows = int(row[0])
    if config.get("limit") is not None:
        rows = min(rows, int(config["limit"]))
    return rows


def _date_columns(plans: list[ColumnPlan] | None) -> list[ColumnPlan]:
    """The DATE, DATETIME and TIMESTAMP columns: the ones that can hold zero or partial dates."""
    return [p for p in plans or [] if p.kind in DATE_KINDS]


def _cx_bad_date_error(
    exc: BaseException, plans: list[ColumnPlan], connection: dict[str, Any], step_id: str
) -> OsirisError | None:
    """The error for connectorx failing on a date value, naming the columns it can come from; else None."""
    found = client.cx_bad_date(exc)
    if found is None:
        return None
    target, value = found
    dates = _date_columns(plans)
    # chrono's NaiveDate is for DATE columns; NaiveDateTime for DATETIME and TIMESTAMP.
    candidates = [p for p in dates if (p.kind == "date") == (target == "date")] or dates
    return client.bad_date_error(
        value, [(p.name, p.mysql_type) for p in candidates], connection=connection, step=step_id
    )


def _listing(plans: list[ColumnPlan]) -> str:
    return ", ".join(f"`{p.name}` {p.mysql_type}" for p in plans)


def _rewrite(plan: ColumnPlan, prefix: str) -> str:
    """The select item reading `plan`'s column through its `cx_select` expression, under its own name."""
    expr = plan.cx_select(prefix + _quote_column(plan.name))
    if expr is None:
        raise AssertionError(f"no rewrite for column `{plan.name}`")
    return f"{expr} AS {_quote_column(plan.name)}"


def _rewrite_mismatch(meta: Any, sql: str, fields: list[Any], dates: list[ColumnPlan]) -> str | None:
    """None when the server describes `sql` like the original: same columns, dates with the same type and digits.

    Otherwise why not, for the `extract.plan` reason.
    """
    try:
        again = client.describe(meta, sql)
    except Exception:
        return "is refused by the server"
    if again is None or len(again[0]) != len(fields):
        return "has different columns"
    date_names = {p.name for p in dates}
    for before, after in zip(fields, again[0], strict=True):
        if before.name in date_names and (
            after.name != before.name or after.type_code != before.type_code or after.scale != before.scale
        ):
            return f"describes `{before.name}` differently"
    return None


def _cx_url(c: dict[str, Any]) -> str:
    from urllib.parse import quote

    user = quote(str(c.get("user") or ""), safe="")
    password = quote(str(c.get("password") or ""), safe="")
    db = quote(str(c.get("database") or ""), safe="")
    return f"mysql://{user}:{password}@{c['host']}:{int(c.get('port') or 3306)}/{db}"


_ORDER_BY = re.compile(r"\border\s+by\b", re.I)
_SELECT = re.compile(r"^\s*(\(\s*)*(select|with)\b", re.I)


def _wrappable(sql: str) -> bool:
    """Whether `sql` can become a derived table without changing its result: a SELECT without ORDER BY."""
    return bool(_SELECT.match(sql)) and not _ORDER_BY.search(sql)


def _native_available() -> bool:
    return mysql_native.available()


def _connectorx_available() -> bool:
    try:
        import connectorx  # noqa: F401
    except ImportError:
        return False
    return True


def _check_read_path(read_path: str, step_id: str) -> None:
    """A `read_path` that names a path this installation lacks is an error, not a silent fallback."""
    if read_path == PATH_NATIVE and not _native_available():
        raise UserInputError(
            f"Step `{step_id}` asks for `read_path: native`, but this osiris-drivers-sql was built without its "
            "native row parser",
            step=step_id,
            hint="install a wheel built with it (Linux x86-64), or use `read_path: auto`",
        )
    if read_path == PATH_CONNECTORX and not _connectorx_available():
        raise UserInputError(
            f"Step `{step_id}` asks for `read_path: connectorx`, which is not installed",
            step=step_id,
            hint="pip install connectorx, or use `read_path: auto`",
        )


def _cancel_on_stop(conn: Any) -> Callable[[], None]:
    """A stop of the run (SIGINT, SIGTERM, a sandbox's host gone) shuts the connection's socket down, so a
    read blocked on the server (a slow query, a step in a thread) ends at once; returns the remover."""
    from osiris.runtime.interrupts import add_cancel

    def cancel() -> None:
        sock = getattr(conn, "_sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    return add_cancel(cancel)


def _another_result_set(cur: Any) -> list[str] | None:
    """After the first result set: the column names of a further one, or None when only status results follow."""
    while cur.nextset():
        fields = getattr(cur._result, "fields", None)
        if fields:
            return [f.name for f in fields]
    return None


def _check_drift(meta: Any, config: dict[str, Any], step_id: str, ctx: StepContext) -> dict[str, Any]:
    """Compare the live table (and its pattern) with the snapshot before reading; a `stop` fails the step.

    Without its own `columns`, the step then reads the snapshot's columns that are still there.
    """
    pymysql = client.pymysql_module()

    from osiris.core.snapshot import drift_scope, raise_on_drift
    from osiris.drivers.sql.mysql_schema import list_tables

    check = config["drift_check"]
    include, exclude = drift_scope(check)
    try:
        live = list_tables(meta, include, exclude)
    except pymysql.err.Error as exc:
        raise client.translate(
            exc, connection=config["resolved_connection"], step=step_id, action="reading the schema of"
        ) from None
    columns = raise_on_drift(check, live, step_id=step_id, emit=ctx.log_event)
    return config if config.get("columns") else {**config, "columns": columns}


class MySQLExtractor:
    """The `mysql.extractor` driver: a query or a table, streamed in record batches of `batch_size` rows."""

    def run(
        self,
        *,
        step_id: str,
        config: dict[str, Any],
        inputs: dict[str, InputHandle] | None = None,
        ctx: StepContext,
    ) -> dict[str, Any]:
        """Plan the extraction, check it with the server, and return `{"df": RecordBatchReader}`."""
        import pyarrow as pa

        from osiris.core.spec import apply_defaults

        config = apply_defaults(client.load_spec()["configSchema"], config)
        connection = config.get("resolved_connection")
        if not isinstance(connection, dict) or not connection.get("host"):
            raise UserInputError(
                f"Step `{step_id}` has no resolved MySQL connection: expected `resolved_connection` "
                'with at least `host` and `user` (set `connection: "@mysql.alias"`)',
                step=step_id,
            )
        connection = client.with_defaults(connection)
        batch_size = int(config.get("batch_size") or 50000)
        if batch_size < 1:
            raise UserInputError(f"`batch_size` of step `{step_id}` must be at least 1; got {batch_size}", step=step_id)
        zero_dates = config.get("zero_dates")
        if zero_dates not in ZERO_DATES_MODES:
            got = 'null (no value; write `"null"` in quotes for the mode)' if zero_dates is None else f"`{zero_dates}`"
            raise UserInputError(
                f"Invalid `zero_dates` for step `{step_id}`: expected one of error, null; got {got}", step=step_id
            )
        zero_null = zero_dates == "null"
        read_path = config.get("read_path") or "auto"
        if read_path not in READ_PATHS:
            raise UserInputError(
                f"Invalid `read_path` for step `{step_id}`: expected one of {', '.join(READ_PATHS)}; got `{read_path}`",
                step=step_id,
            )
        _check_read_path(read_path, step_id)

        pymysql = client.pymysql_module()

        meta = client.connect(connection, step=step_id)
        window: dict[str, Any] | None = None
        read = ctx.incremental
        try:
            if isinstance(config.get("drift_check"), dict) and config.get("table"):
                config = _check_drift(meta, config, step_id, ctx)
            try:
                if isinstance(config.get("incremental"), dict):
                    from osiris.drivers.sql.mysql_incremental import plan_window

                    original = config
                    config, window = plan_window(meta, config, read, step_id)
                    ctx.log_event("incremental.window", **window)
                    if window["deletes"] == "reconcile" and read is not None and read.key_columns:
                        from osiris.drivers.sql.mysql_incremental import key_sql

                        window["source_keys"] = self._read_keys(
                            key_sql(meta, original, read.key_columns, step_id), original, ctx, step_id
                        )
                sql = client.bind(meta, build_sql(config, step_id=step_id), config.get("params"))
                described = client.describe(meta, sql)
                shape = Shape(
                    zero_dates_as_null=zero_null,
                    char_bytes=CHARSET_MAX_BYTES.get(str(connection.get("charset") or "utf8mb4").lower()),
                    trust_not_null=not _ROLLUP.search(sql),
                    key=_source_key(meta, config, described[0]) if described else {},
                )
                path, reason, run_sql, plans = self._choose_path(
                    meta, config, step_id, sql, described, connection, zero_null=zero_null, shape=shape
                )
                estimate = estimated_rows(meta, config)
            except pymysql.err.Error as exc:
                raise client.translate(
                    exc, connection=connection, step=step_id, action="preparing the query on"
                ) from None
            except (TypeError, ValueError, KeyError) as exc:
                raise UserInputError(
                    f"Cannot bind `params` into the query of step `{step_id}`: {exc}; use `%s` placeholders with "
                    "a list, or `%(name)s` with a mapping (write a literal `%` as `%%`)",
                    step=step_id,
                ) from None
        finally:
            meta.close()

        schema = arrow_schema(plans, shape.key) if plans is not None else None
        ctx.log_event(
            "extract.plan",
            path=path,
            reason=reason,
            columns=[
                {
                    "name": p.name,
                    "mysql_type": p.mysql_type,
                    "arrow_type": str(p.arrow_type),
                    "not_null": p.not_null,
                    **({"sql_type": p.sql_type} if p.sql_type else {}),
                }
                for p in plans
            ]
            if plans
            else None,
            primary_key=sorted(shape.key, key=shape.key.__getitem__) or None,
            batch_size=batch_size,
            host=connection.get("host"),
            database=connection.get("database"),
            estimated_rows=estimate,
        )
        if estimate is not None:
            ctx.progress_total(rows=estimate)
        if path == PATH_PYMYSQL and plans and any(p.mysql_type == "FLOAT" for p in plans):
            ctx.log_event(
                "extract.warning",
                message="FLOAT columns read over the text protocol carry the server's 6 significant digits",
                columns=[p.name for p in plans if p.mysql_type == "FLOAT"],
            )
        # Zero dates read as NULL per column, when the path can count them (the text path).
        zero_counts: dict[str, int] | None = None
        if path == PATH_CONNECTORX:
            batches = self._stream_cx(run_sql, plans, schema, connection, batch_size, step_id)
        elif path == PATH_NATIVE:
            zero_counts = {} if zero_null else None
            batches, schema, plans = self._stream_native(
                run_sql, connection, batch_size, step_id, shape=shape, zero_counts=zero_counts
            )
        else:
            zero_counts = {} if zero_null else None
            batches, schema, plans = self._stream_pymysql(
                run_sql, connection, batch_size, step_id, shape=shape, zero_counts=zero_counts
            )
        if zero_null and _date_columns(plans):
            ctx.log_event(
                "extract.warning",
                message='zero and partial dates are read as NULL (`zero_dates: "null"`)',
                columns=[p.name for p in _date_columns(plans)],
            )
        measured = self._measure(batches, ctx, path, step_id, zero_counts=zero_counts, schema=schema)
        out: dict[str, Any] = {"df": pa.RecordBatchReader.from_batches(schema, measured)}
        if window is not None:
            out["incremental"] = window
        return out

    def _read_keys(self, sql: str, config: dict[str, Any], ctx: StepContext, step_id: str) -> str:
        """Every source key (for `deletes: reconcile`) into `source_keys.parquet`; returns its name."""
        import pyarrow.parquet as pq

        from osiris.runtime.contract import StepContext as Ctx

        keys_cfg = {
            k: config[k] for k in ("connection", "resolved_connection", "batch_size", "read_path") if k in config
        }
        out = self.run(step_id=step_id, config={**keys_cfg, "query": sql}, ctx=Ctx(step_id=step_id, output_dir="."))
        reader = out["df"]
        name = "source_keys.parquet"
        tmp = ctx.output_dir / (name + ".tmp")
        rows = 0
        with pq.ParquetWriter(tmp, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
        tmp.replace(ctx.output_dir / name)
        ctx.log_event("incremental.source_keys", rows=rows, file=name)
        return name

    # -- planning ------------------------------------------------------------------------------

    def _choose_path(
        self,
        meta: Any,
        config: dict[str, Any],
        step_id: str,
        sql: str,
        described: tuple[list[Any], int] | None,
        connection: dict[str, Any],
        *,
        zero_null: bool = False,
        shape: Shape | None = None,
    ) -> tuple[str, str, str, list[ColumnPlan] | None]:
        """(path, reason, SQL to run, column plans) — plans None when only running the SQL tells them."""
        if described is None:
            return PATH_PYMYSQL, "the server gives no result columns before running this statement", sql, None
        fields, nparams = described
        plans = _plans(fields, shape=shape or Shape(zero_dates_as_null=zero_null))
        if connection.get("ssl"):
            return PATH_PYMYSQL, "`ssl` connections are read with pymysql", sql, plans
        if nparams:
            return PATH_PYMYSQL, "the SQL contains `?` placeholders", sql, plans
        read_path = config.get("read_path") or "auto"
        if read_path == PATH_PYMYSQL:
            return PATH_PYMYSQL, "`read_path: pymysql`", sql, plans
        if read_path in ("auto", PATH_NATIVE) and _native_available():
            return PATH_NATIVE, "every column is exact in the binary protocol (native row parser)", sql, plans
        if not _connectorx_available():
            return PATH_PYMYSQL, "neither the native row parser nor connectorx is installed", sql, plans
        if shape is not None and not shape.trust_not_null:
            # connectorx fails on a NULL in a column the server calls NOT NULL, as WITH ROLLUP sends.
            return PATH_PYMYSQL, "the statement has WITH ROLLUP, whose NULLs connectorx cannot read", sql, plans
        inexact = [p for p in plans if not p.cx_exact]
        dates = _date_columns(plans) if zero_null else []
        # Columns read through a server-side expression (`ColumnPlan.cx_select`): required for
        # text-read columns and NULL-for-zero dates; only faster for DECIMALs read as scaled integers.
        rewritten = {p.name for p in plans if p.cx_select("c") is not None}
        required = {p.name for p in (*inexact, *dates)}
        scaled = [p for p in plans if p.name in rewritten and p.name not in required]
        plain = "every column is exact through connectorx"

        def text_path(why: str | None) -> tuple[str, str, str, list[ColumnPlan]]:
            reasons = ["columns connectorx cannot read exactly: " + _listing(inexact)] if inexact else []
            if dates:
                reasons.append("zero dates read as NULL while parsing text: " + _listing(dates))
            return PATH_PYMYSQL, "; ".join(reasons) + (f" ({why})" if why else ""), sql, plans

        if any(not p.cast_as_char for p in inexact):
            return text_path(None)  # no expression makes these exact through connectorx
        if not rewritten:
            return PATH_CONNECTORX, plain, sql, plans

        def without_rewrite(why: str) -> tuple[str, str, str, list[ColumnPlan]]:
            if required:
                return text_path(why)
            return PATH_CONNECTORX, plain, sql, plans

        if config.get("table"):
            expressions = {p.name: _rewrite(p, "") for p in plans if p.name in rewritten}
            cfg = {**config, "columns": [p.name for p in plans]}
            run_sql = client.bind(meta, build_sql(cfg, step_id=step_id, expressions=expressions), config.get("params"))
        elif _wrappable(sql):
            # Without ORDER BY the row order is unspecified anyway, so a derived table changes nothing.
            select = ", ".join(
                _rewrite(p, "q.") if p.name in rewritten else f"q.{_quote_column(p.name)}" for p in plans
            )
            run_sql = f"SELECT {select} FROM ({sql}) AS q"
        else:
            return without_rewrite(
                "the query has ORDER BY or is not a plain SELECT, so it is not wrapped to rewrite them"
            )
        mismatch = _rewrite_mismatch(meta, run_sql, fields, dates)
        if mismatch:
            return without_rewrite(f"the rewritten statement {mismatch}")
        reasons = ["columns read as text and parsed exactly: " + _listing(inexact)] if inexact else []
        if dates:
            reasons.append("zero dates read as NULL by the server: " + _listing(dates))
        if scaled:
            reasons.append("DECIMALs read as scaled integers: " + _listing(scaled))
        return PATH_CONNECTORX, "; ".join(reasons if inexact or dates else [plain, *reasons]), run_sql, plans

    # -- streaming -----------------------------------------------------------------------------

    def _stream_cx(
        self,
        sql: str,
        plans: list[ColumnPlan],
        schema: pa.Schema,
        connection: dict[str, Any],
        batch_size: int,
        step_id: str,
    ) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        def gen() -> Iterator[pa.RecordBatch]:
            import connectorx as cx

            try:
                reader = cx.read_sql(
                    _cx_url(connection),
                    sql,
                    return_type="arrow_stream",
                    protocol="binary",  # exact FLOAT/DOUBLE; the text protocol rounds FLOAT to 6 digits
                    batch_size=batch_size,
                    pre_execution_query=["SET time_zone = '+00:00'"],
                )
                for raw in reader:
                    if raw.num_columns != len(plans):
                        raise client.make_error(
                            None,
                            f"connectorx returned {raw.num_columns} columns, the server described {len(plans)}",
                            connection=connection,
                            step=step_id,
                            action="reading from",
                        )
                    if raw.num_rows == 0:
                        continue
                    cols = [plan.finish_cx(raw.column(i)) for i, plan in enumerate(plans)]
                    yield pa.RecordBatch.from_arrays(cols, schema=schema)
            except OsirisError:
                raise
            except (KeyboardInterrupt, SystemExit, GeneratorExit):
                raise
            except BaseException as exc:  # connectorx raises RuntimeError, and pyo3 PanicException (a BaseException)
                bad_date = _cx_bad_date_error(exc, plans, connection, step_id)
                if bad_date is not None:
                    raise bad_date from None
                raise client.translate_cx(exc, connection=connection, step=step_id, action="reading from") from None

        return gen()

    def _stream_native(
        self,
        sql: str,
        connection: dict[str, Any],
        batch_size: int,
        step_id: str,
        *,
        shape: Shape,
        zero_counts: dict[str, int] | None = None,
    ) -> tuple[Iterator[pa.RecordBatch], pa.Schema, list[ColumnPlan]]:
        """Stream the prepared statement's binary rows through the native parser (`mysql_native`).

        Like `_stream_pymysql`, also the schema and plans of the result as the server ran it;
        `zero_counts` (when given) gets the zero dates read as NULL per date column at the end.
        """
        pymysql = client.pymysql_module()

        conn = client.connect(connection, step=step_id, raw=True)
        try:
            fields = mysql_native.prepare_and_execute(conn, sql)
        except pymysql.err.Error as exc:
            conn._force_close()
            raise client.translate(exc, connection=connection, step=step_id, action="running the query on") from None
        plans = _plans(fields, shape=shape)
        schema = arrow_schema(plans, shape.key)
        rows_module = mysql_native.module()
        columns = [mysql_native.Column(f, p, rows_module) for f, p in zip(fields, plans, strict=True)]
        read_timeout = connection.get("read_timeout")
        rows, zero_dates = mysql_native.stream_rows(conn, columns, schema, batch_size, read_timeout)
        forget = _cancel_on_stop(conn)

        def gen() -> Iterator[pa.RecordBatch]:
            finished = False
            try:
                yield from rows
                finished = True
                if zero_counts is not None:
                    zero_counts.update(
                        {p.name: n for p, n in zip(plans, zero_dates(), strict=True) if p.zero_dates_as_null}
                    )
            except mysql_native.Failure as exc:
                raise self._native_failure(exc, plans, connection, step_id) from None
            finally:
                forget()
                if finished:
                    try:
                        conn.close()
                    except Exception:
                        conn._force_close()
                else:
                    conn._force_close()  # abandon the rest of the result: close the socket

        return gen(), schema, plans

    @staticmethod
    def _native_failure(
        exc: mysql_native.Failure, plans: list[ColumnPlan], connection: dict[str, Any], step_id: str
    ) -> OsirisError:
        """The Osiris error for a native read that failed mid-stream."""
        pymysql = client.pymysql_module()

        where = {"connection": connection, "step": step_id, "action": "reading from"}
        if exc.kind == "server":
            try:
                pymysql.err.raise_mysql_exception(exc.detail)
            except pymysql.err.Error as server_error:
                return client.translate(server_error, **where)
        if exc.kind == "bad_date":
            index, value = exc.detail
            plan = plans[index]
            return client.bad_date_error(value, [(plan.name, plan.mysql_type)], connection=connection, step=step_id)
        if exc.kind == "lost":
            return client.make_error(2013, f"Lost connection to server during query ({exc.detail})", **where)
        return client.make_error(None, str(exc.detail), **where)

    def _stream_pymysql(
        self,
        sql: str,
        connection: dict[str, Any],
        batch_size: int,
        step_id: str,
        *,
        shape: Shape,
        zero_counts: dict[str, int] | None = None,
    ) -> tuple[Iterator[pa.RecordBatch], pa.Schema, list[ColumnPlan]]:
        """Stream text rows; also the schema and plans of the result as the server ran it.

        With `zero_null`, zero and partial dates become NULL, and `zero_counts` (when given)
        gets how many per date column.
        """
        import pyarrow as pa

        pymysql = client.pymysql_module()  # its `cursors` and `err` are imported with it

        conn = client.connect(connection, step=step_id, raw=True)
        try:
            cur = conn.cursor(pymysql.cursors.SSCursor)
            cur.execute(sql)
        except pymysql.err.Error as exc:
            conn.close()
            raise client.translate(exc, connection=connection, step=step_id, action="running the query on") from None
        fields = getattr(cur._result, "fields", None) or []
        if not fields:
            cur.close()
            conn.close()
            raise UserInputError(
                f"The statement of step `{step_id}` returned no result set (e.g. a `CALL` of a procedure that "
                "selects nothing, or a statement that is not a query); mysql.extractor reads exactly one result set",
                step=step_id,
            )
        plans = _plans(fields, shape=shape)
        schema = arrow_schema(plans, shape.key)
        counts = zero_counts if zero_counts is not None else {}
        counted = [i for i, p in enumerate(plans) if p.zero_dates_as_null] if zero_counts is not None else []
        for i in counted:
            counts[plans[i].name] = 0
        forget = _cancel_on_stop(conn)

        def gen() -> Iterator[pa.RecordBatch]:
            finished = False
            try:
                while True:
                    rows = cur.fetchmany(batch_size)
                    if not rows:
                        another = _another_result_set(cur)
                        if another is not None:
                            raise UserInputError(
                                f"The statement of step `{step_id}` returned more than one result set (the first "
                                f"has columns {', '.join(f'`{p.name}`' for p in plans)}; another has "
                                f"{', '.join(f'`{n}`' for n in another) or 'none'}); mysql.extractor reads exactly "
                                "one result set, and loading only the first would drop the others: make the "
                                "procedure return one result set, or read each in a step of its own",
                                step=step_id,
                            )
                        finished = True
                        return
                    columns = list(zip(*rows, strict=True))
                    arrays = [plan.from_text(list(col)) for plan, col in zip(plans, columns, strict=True)]
                    for i in counted:
                        # The NULLs the column gained are its zero dates.
                        counts[plans[i].name] += arrays[i].null_count - columns[i].count(None)
                    yield pa.RecordBatch.from_arrays(arrays, schema=schema)
            except pymysql.err.Error as exc:
                raise client.translate(exc, connection=connection, step=step_id, action="reading from") from None
            except BadDateValue as exc:
                raise client.bad_date_error(
                    exc.value, [(exc.column, exc.mysql_type)], connection=connection, step=step_id
                ) from None
            finally:
                forget()
                if finished:
                    cur.close()
                else:
                    # Abandon an unfinished result: close the socket instead of reading the rest.
                    if conn._result is not None:
                        conn._result.unbuffered_active = False
                    cur._result = None
                try:
                    conn.close()
                except Exception:
                    conn._force_close()

        return gen(), schema, plans

    def _measure(
        self,
        batches: Iterator[pa.RecordBatch],
        ctx: StepContext,
        path: str,
        step_id: str,
        *,
        zero_counts: dict[str, int] | None = None,
        schema: pa.Schema | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Pass batches through, reporting progress per batch and the totals at the end.

        A column the server described as NOT NULL (a non-nullable field) that holds a NULL fails
        the step naming it, rather than writing a file whose schema says otherwise.

        `zero_counts`, filled while the batches stream, goes into `extract.complete` as
        `zero_dates_as_null`.
        """
        started = time.perf_counter()
        rows = nbytes = count = 0
        required = [i for i, f in enumerate(schema) if not f.nullable] if schema is not None else []
        for batch in batches:
            for i in required:
                if batch.column(i).null_count:
                    raise TerminalError(
                        f"Step `{step_id}`: the server described column `{schema.field(i).name}` as NOT NULL but "
                        f"sent a NULL in it (row {rows + batch.column(i).to_pylist().index(None) + 1}); wrap the "
                        "column in `IFNULL(...)` or an expression in `query`, so the result says it may be NULL",
                        step=step_id,
                    )
            rows += batch.num_rows
            nbytes += batch.nbytes
            count += 1
            ctx.progress(batch.num_rows, bytes=batch.nbytes)
            yield batch
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        ctx.log_metric("rows_read", rows)
        ctx.log_metric("bytes_read", nbytes, unit="bytes")
        ctx.log_metric("batches_read", count)
        ctx.log_metric("duration_ms", duration_ms, phase="extract")
        extra = {"zero_dates_as_null": dict(zero_counts)} if zero_counts else {}
        ctx.log_event(
            "extract.complete", rows=rows, bytes=nbytes, batches=count, duration_ms=duration_ms, path=path, **extra
        )
