"""`supabase.extractor`: a table or query streamed out of Supabase as Arrow record batches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from osiris.core.errors import UserInputError
from osiris.drivers.supabase.connection import SupabaseConnection
from osiris.drivers.supabase.sqltypes import qualified, quote_ident
from osiris.runtime.contract import InputHandle, StepContext

if TYPE_CHECKING:
    import pyarrow as pa

# Postgres type OIDs → Arrow types (numeric is handled from its precision and scale).
_OID_TYPES = {
    16: "bool_",
    20: "int64",
    21: "int16",
    23: "int32",
    26: "int64",
    700: "float32",
    701: "float64",
    17: "binary",
    1082: "date32",
    1114: "timestamp",
    1184: "timestamptz",
}


def arrow_type(type_code: int, precision: int | None, scale: int | None) -> pa.DataType:
    """The Arrow type for a result column (text for anything without an exact counterpart)."""
    import pyarrow as pa

    if type_code == 1700:
        if precision and precision <= 38 and scale is not None and scale >= 0:
            return pa.decimal128(precision, scale)
        return pa.string()
    name = _OID_TYPES.get(type_code)
    if name == "timestamp":
        return pa.timestamp("us")
    if name == "timestamptz":
        return pa.timestamp("us", tz="UTC")
    if name == "date32":
        return pa.date32()
    if name is None:
        return pa.string()
    return getattr(pa, name)()


def select_sql(config: dict[str, Any], schema: str) -> str:
    """The SQL a config means: its `query`, or a SELECT over `table` with `columns`, `where`, `limit`."""
    if config.get("query"):
        return str(config["query"])
    cols = ", ".join(quote_ident(c) for c in config.get("columns") or []) or "*"
    sql = f"SELECT {cols} FROM {qualified(schema, config['table'])}"
    if config.get("where"):
        sql += f" WHERE {config['where']}"
    if config.get("limit") is not None:
        sql += f" LIMIT {int(config['limit'])}"
    return sql


class SupabaseExtractor:
    """The `supabase.extractor` driver."""

    def run(
        self, *, step_id: str, config: dict[str, Any], inputs: dict[str, InputHandle], ctx: StepContext
    ) -> dict[str, Any] | None:
        """Return `{"df": RecordBatchReader}` streaming the rows."""
        import pyarrow as pa

        conn = SupabaseConnection.from_dict(config.get("resolved_connection"), step=step_id)
        schema = config.get("schema") or conn.schema
        batch_size = int(config.get("batch_size") or 50000)
        channel = config.get("channel") or "auto"
        if not config.get("query") and not config.get("table"):
            raise UserInputError(f"Step `{step_id}` (supabase.extractor) needs `table` or `query`", step=step_id)
        if isinstance(config.get("drift_check"), dict) and config.get("table") and conn.has_postgres:
            config = self._check_drift(conn, config, step_id, ctx)
        incremental = isinstance(config.get("incremental"), dict)
        if channel == "psycopg2" or (channel == "auto" and conn.has_postgres):
            sql, window = select_sql(config, schema), None
            if incremental:
                sql, window = self._window(conn, config, schema, ctx)
            first, batches = self._postgres(conn, sql, batch_size, ctx)
            out: dict[str, Any] = {"df": pa.RecordBatchReader.from_batches(first, batches)}
            if window is not None:
                out["incremental"] = window
            return out
        elif incremental:
            raise UserInputError(
                f"Step `{step_id}`: an incremental read needs a Postgres connection (`dsn`/`host`)", step=step_id
            )
        elif conn.has_rest:
            if config.get("query"):
                raise UserInputError(
                    f"Step `{step_id}`: a `query` needs a Postgres connection (`dsn`/`host`); over REST use `table`",
                    step=step_id,
                )
            first, batches = self._rest(conn, config, schema, batch_size, ctx)
        else:
            raise UserInputError(
                f"Step `{step_id}`: the `supabase` connection has neither `dsn`/`host` nor `url` + key", step=step_id
            )
        return {"df": pa.RecordBatchReader.from_batches(first, batches)}

    def _window(
        self, conn: SupabaseConnection, config: dict[str, Any], schema: str, ctx: StepContext
    ) -> tuple[str, dict[str, Any]]:
        """The SELECT of the incremental window and its facts (and the source's key set for `reconcile`)."""
        import psycopg2

        from osiris.drivers.supabase.errors import from_postgres
        from osiris.drivers.supabase.incremental import key_sql, plan_window
        from osiris.drivers.supabase.postgres_connect import connect

        read = ctx.incremental
        pg, _ = connect(conn, step=ctx.step_id)
        try:
            sql, window = plan_window(pg, config, read, schema, ctx.step_id)
        except psycopg2.Error as exc:
            raise from_postgres(exc, step=ctx.step_id, table=schema, doing="Planning the incremental read of") from None
        finally:
            pg.close()
        ctx.log_event("incremental.window", **window)
        if window["deletes"] == "reconcile" and read is not None and read.key_columns:
            import pyarrow.parquet as pq

            from osiris.runtime.contract import StepContext as Ctx

            keys_ctx = Ctx(step_id=ctx.step_id, output_dir=ctx.output_dir)
            schema_, batches = self._postgres(conn, key_sql(config, read.key_columns, schema), 65536, keys_ctx)
            tmp = ctx.output_dir / "source_keys.parquet.tmp"
            with pq.ParquetWriter(tmp, schema_) as writer:
                for batch in batches:
                    writer.write_batch(batch)
            tmp.replace(ctx.output_dir / "source_keys.parquet")
            window["source_keys"] = "source_keys.parquet"
        return sql, window

    def _check_drift(
        self, conn: SupabaseConnection, config: dict[str, Any], step_id: str, ctx: StepContext
    ) -> dict[str, Any]:
        """Compare the live table (and its pattern) with the snapshot before reading; `stop` fails the step."""
        from osiris.core.snapshot import drift_scope, raise_on_drift
        from osiris.drivers.supabase.postgres_connect import connect
        from osiris.drivers.supabase.schema import list_tables

        check = config["drift_check"]
        include, exclude = drift_scope(check)
        pg, _ = connect(conn, step=step_id)
        try:
            live = list_tables(pg, include, exclude)
        finally:
            pg.close()
        columns = raise_on_drift(check, live, step_id=step_id, emit=ctx.log_event)
        return config if config.get("columns") else {**config, "columns": columns}

    def _postgres(
        self, conn: SupabaseConnection, sql: str, batch_size: int, ctx: StepContext
    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        import psycopg2
        import psycopg2.extras
        import pyarrow as pa

        from osiris.drivers.supabase.errors import from_postgres
        from osiris.drivers.supabase.postgres_connect import connect

        pg, _ = connect(conn, step=ctx.step_id)
        # JSON stays text (jsonb → Arrow string), not parsed into Python objects.
        psycopg2.extras.register_default_json(pg, loads=lambda s: s)
        psycopg2.extras.register_default_jsonb(pg, loads=lambda s: s)
        cur = pg.cursor(name=f"osiris_{ctx.step_id}"[:60])
        cur.itersize = batch_size
        try:
            cur.execute(sql)
            rows = cur.fetchmany(batch_size)
        except psycopg2.Error as exc:
            pg.close()
            raise from_postgres(exc, step=ctx.step_id, table=sql[:80], doing="Reading") from None
        schema = pa.schema(
            [pa.field(d.name, arrow_type(d.type_code, d.precision, d.scale)) for d in cur.description or []]
        )

        def to_batch(chunk: list[tuple[Any, ...]]) -> pa.RecordBatch:
            cols = list(zip(*chunk, strict=True)) if chunk else [[] for _ in schema]
            arrays = []
            for field, values in zip(schema, cols, strict=True):
                if pa.types.is_string(field.type):
                    values = [None if v is None else (v if isinstance(v, str) else str(v)) for v in values]
                elif pa.types.is_binary(field.type):
                    values = [None if v is None else bytes(v) for v in values]
                arrays.append(pa.array(values, type=field.type))
            return pa.RecordBatch.from_arrays(arrays, schema=schema)

        def batches() -> Iterator[pa.RecordBatch]:
            total = 0
            chunk = rows
            try:
                while chunk:
                    total += len(chunk)
                    ctx.progress(len(chunk))
                    yield to_batch(chunk)
                    chunk = cur.fetchmany(batch_size)
            except psycopg2.Error as exc:
                raise from_postgres(exc, step=ctx.step_id, table=sql[:80], doing="Reading") from None
            finally:
                cur.close()
                pg.close()
            ctx.log_metric("rows_read", total)

        return schema, batches()

    def _rest(
        self, conn: SupabaseConnection, config: dict[str, Any], schema: str, batch_size: int, ctx: StepContext
    ) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        import pyarrow as pa

        from supabase import ClientOptions, create_client

        client = create_client(conn.url or "", conn.key or "", options=ClientOptions(schema=schema))
        cols = ",".join(config.get("columns") or []) or "*"
        limit = config.get("limit")

        def page(start: int, size: int) -> list[dict[str, Any]]:
            q = client.schema(schema).table(config["table"]).select(cols)
            if config.get("columns"):
                q = q.order(config["columns"][0])
            return list(q.range(start, start + size - 1).execute().data or [])

        def size_at(start: int) -> int:
            return batch_size if limit is None else max(0, min(batch_size, int(limit) - start))

        first_rows = page(0, size_at(0)) if size_at(0) else []
        arrow_schema = pa.Table.from_pylist(first_rows).schema if first_rows else pa.schema([])

        def batches() -> Iterator[pa.RecordBatch]:
            total, rows, start = 0, first_rows, 0
            while rows:
                total += len(rows)
                ctx.progress(len(rows))
                yield from pa.Table.from_pylist(rows, schema=arrow_schema).to_batches()
                start += len(rows)
                if len(rows) < batch_size or not size_at(start):
                    break
                rows = page(start, size_at(start))
            ctx.log_metric("rows_read", total)

        return arrow_schema, batches()
