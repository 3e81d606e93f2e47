"""`supabase.writer`: append, upsert or replace a step's input into a Supabase table."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osiris.core.errors import OsirisError, TerminalError, UserInputError
from osiris.drivers.supabase import ddl, identifiers, state
from osiris.drivers.supabase.connection import SupabaseConnection
from osiris.drivers.supabase.options import WriteOptions
from osiris.runtime.contract import InputHandle, StepContext, single_input

if TYPE_CHECKING:
    import pyarrow as pa


def stream_batches(handle: InputHandle, batch_size: int) -> Iterator[pa.RecordBatch]:
    """The input's record batches, read so that memory stays bounded by the batch size.

    Parquet's default pre-buffering keeps memory growing with the file's size (measured:
    ~290 MB peak for 2M rows × 15 columns, ~160 MB without), so the file is read unbuffered.
    """
    import pyarrow.parquet as pq

    path = getattr(handle, "path", None)
    if path is None or not Path(path).is_file():
        yield from handle.iter_batches(batch_size)
        return
    yield from pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20).iter_batches(batch_size=batch_size)


def check_input(opts: WriteOptions, schema: pa.Schema, step: str) -> None:
    """Before any SQL: every name within PostgreSQL's 63 bytes, every column's type mappable exactly."""
    from osiris.drivers.supabase.sqltypes import mapping

    identifiers.check(
        [("the `schema`", opts.schema), ("the `table`", opts.table)]
        + [(f"the input column #{i + 1}", name) for i, name in enumerate(schema.names)],
        step=step,
    )
    for field in schema:
        mapping(field, step=step)


def report_missing(opts: WriteOptions, info: ddl.TableInfo | None, schema: pa.Schema, ctx: StepContext) -> list[str]:
    """The table's columns the input lacks (kept, as `on_missing_columns: keep` says), reported as a warning."""
    if info is None:
        return []
    missing = ddl.missing_columns(info, schema)
    if missing:
        ctx.log_event(
            "load.missing_columns",
            level="warning",
            table=opts.display,
            columns=missing,
            message="the input lacks these columns of the table; rows this load writes get NULL there",
        )
    return missing


def choose_channel(requested: str, conn: SupabaseConnection, step: str) -> str:
    """The load channel: `psycopg2` when a DSN/host is given, else `http` with url + key."""
    if requested == "psycopg2" or (requested == "auto" and conn.has_postgres):
        if not conn.has_postgres:
            raise UserInputError(
                f"Step `{step}`: `channel: psycopg2` needs `dsn` or `host` in the `supabase` connection", step=step
            )
        return "psycopg2"
    if conn.has_rest:
        return "http"
    raise UserInputError(
        f"Step `{step}`: the `supabase` connection has neither a Postgres `dsn`/`host` nor `url` + "
        "`service_role_key` (or `key`)",
        step=step,
    )


class SupabaseWriter:
    """The `supabase.writer` driver."""

    def run(
        self, *, step_id: str, config: dict[str, Any], inputs: dict[str, InputHandle], ctx: StepContext
    ) -> dict[str, Any] | None:
        """Load `inputs["df"]` into the configured table; emits `write.complete`.

        A transient failure (lost connection, SQLSTATE 08xxx, 40001, HTTP 5xx...) is raised as a
        `TransientError`; the runner loads again up to `retries` times (`capabilities.safe_to_retry`:
        nothing is committed before the load's final transaction).
        """
        start = time.perf_counter()
        conn = SupabaseConnection.from_dict(config.get("resolved_connection"), step=step_id)
        opts = WriteOptions.from_config(config, step=step_id, default_schema=conn.schema)
        incremental = ctx.incremental
        if incremental is not None and not hasattr(incremental, "commits"):
            incremental = None
        if incremental is not None and incremental.full_refresh:
            opts = dataclasses.replace(opts, write_mode="replace")  # `--full-refresh`: the table anew, once
        handle = single_input(inputs, step_id)
        check_input(opts, handle.schema, step_id)
        channel = choose_channel(opts.channel, conn, step_id)
        ddl_channel, no_ddl_reason = ddl.choose_ddl_channel(opts.ddl_channel, conn)
        if incremental is not None and channel != "psycopg2":
            raise UserInputError(
                f"Step `{step_id}` commits an incremental watermark, which needs a transaction: give the "
                "`supabase` connection a Postgres `dsn` or `host` (the http channel cannot commit rows and state together)",
                step=step_id,
            )
        if channel == "psycopg2":
            result = self._load_postgres(
                conn,
                opts,
                handle,
                ctx,
                ddl_channel,
                no_ddl_reason,
                incremental,
                state.state_schema(config, opts.schema),
            )
        else:
            result = self._load_http(conn, opts, handle, ctx, ddl_channel, no_ddl_reason)
        duration_ms = int((time.perf_counter() - start) * 1000)
        facts = {
            "table": opts.display,
            "mode": opts.write_mode,
            "channel_used": channel,
            "rows_written": result["rows_written"],
            "rows_deleted": result.get("rows_deleted", 0),
            "rows_input": result.get("rows_input", handle.num_rows),
            "strategy": result.get("strategy", "batches"),
            "duplicate_rows_dropped": result.get("duplicates_dropped", 0),
            "duration_ms": duration_ms,
        }
        if result.get("missing_columns"):
            facts["missing_columns"] = result["missing_columns"]
        if incremental is not None:
            facts["incremental"] = [
                {
                    **c.key.to_data(),
                    "watermark_before": c.watermark_before,
                    "watermark_after": c.watermark_after,
                    "window": c.window,
                    "full_refresh": incremental.full_refresh,
                    "rows_upserted": result["rows_written"],
                    "rows_deleted": result.get("rows_deleted", 0),
                }
                for c in incremental.commits
            ]
            for record in facts["incremental"]:
                ctx.log_event("state.committed", **record)
        if facts["duplicate_rows_dropped"]:
            ctx.log_event(
                "load.duplicates_dropped",
                level="warning",
                table=opts.display,
                policy=opts.on_duplicate_keys,
                key=opts.primary_key,
                rows_dropped=facts["duplicate_rows_dropped"],
            )
        ctx.log_event("write.complete", **facts)
        ctx.log_metric("rows_written", result["rows_written"], table=opts.display)
        ctx.log_metric("duration_ms", duration_ms, table=opts.display)
        return facts

    # -- incremental state ---------------------------------------------------------------

    def read_state(self, *, config: dict[str, Any], key: Any) -> dict[str, Any] | None:
        """The stored state of `key` in the destination (None when there is none)."""
        return self._state_call(config, key, lambda cur, schema: state.read(cur, schema, key))

    def set_state(self, *, config: dict[str, Any], key: Any, watermark: dict[str, str] | None) -> None:
        """Store `watermark` for `key` (`osiris state set`), or remove the state when None (`reset`)."""

        def change(cur: Any, schema: str) -> None:
            if watermark is None:
                state.delete(cur, schema, key)
            else:
                state.ensure_table(cur, schema)
                state.write(cur, schema, key, watermark, run_id="osiris state set")

        self._state_call(config, key, change, commit=True)

    def _state_call(self, config: dict[str, Any], key: Any, fn: Any, *, commit: bool = False) -> Any:
        import psycopg2

        from osiris.drivers.supabase.errors import from_postgres
        from osiris.drivers.supabase.postgres_connect import connect

        step = key.destination.split(":", 1)[0]
        conn = SupabaseConnection.from_dict(config.get("resolved_connection"), step=step)
        if not conn.has_postgres:
            raise UserInputError(
                f"Step `{step}`: incremental state needs a Postgres `dsn` or `host` in the `supabase` connection",
                step=step,
            )
        opts = WriteOptions.from_config(config, step=step, default_schema=conn.schema)
        pg, _ = connect(conn, timeout=opts.timeout, step=step)
        try:
            with pg.cursor() as cur:
                out = fn(cur, state.state_schema(config, opts.schema))
            if commit:
                pg.commit()
            return out
        except psycopg2.Error as exc:
            raise from_postgres(exc, step=step, table=opts.display, doing="Reading the incremental state of") from None
        finally:
            pg.close()

    # -- DDL -------------------------------------------------------------------------------

    def _plan_ddl(
        self,
        opts: WriteOptions,
        info: ddl.TableInfo | None,
        schema_exists: bool,
        handle: InputHandle,
        ctx: StepContext,
        ddl_channel: str | None,
        no_ddl_reason: str | None,
    ) -> list[ddl.Statement]:
        statements = ddl.plan(opts, info, handle.schema, schema_exists=schema_exists, step=ctx.step_id)
        if not statements:
            return []
        path = ddl.save_plan(statements, ctx.output_dir, channel=ddl_channel, reason=no_ddl_reason)
        if ddl_channel is None:
            ctx.log_event(
                "table.ddl_planned",
                table=opts.display,
                kinds=[s.kind for s in statements],
                path=str(path),
                reason=no_ddl_reason,
            )
            raise TerminalError(
                f"Table `{opts.display}` needs DDL that step `{ctx.step_id}` cannot run ({no_ddl_reason}); "
                f"the plan is in `{path}`: run it, then run the pipeline again",
                step=ctx.step_id,
            )
        return statements

    def _run_http_sql_ddl(
        self, conn: SupabaseConnection, opts: WriteOptions, statements: list[ddl.Statement], ctx: StepContext
    ) -> None:
        from osiris.drivers.supabase.channels.http_sql import HttpSqlClient

        client = HttpSqlClient(conn, timeout=opts.timeout, step=ctx.step_id)
        for st in statements:
            ctx.log_event("ddl_attempt", channel="http_sql", kind=st.kind, table=opts.display)
            try:
                client.query(st.sql)
            except OsirisError as exc:
                ctx.log_event("ddl_failed", channel="http_sql", kind=st.kind, table=opts.display, error=str(exc))
                raise
            ctx.log_event("ddl_succeeded", channel="http_sql", kind=st.kind, table=opts.display)
        # PostgREST caches the schema; ask it to reload so the new table or columns are visible.
        client.query("NOTIFY pgrst, 'reload schema'")

    # -- channels -----------------------------------------------------------------------

    def _load_postgres(
        self,
        conn: SupabaseConnection,
        opts: WriteOptions,
        handle: InputHandle,
        ctx: StepContext,
        ddl_channel: str | None,
        no_ddl_reason: str | None,
        incremental: Any = None,
        state_schema: str | None = None,
    ) -> dict[str, Any]:
        import psycopg2

        from osiris.drivers.supabase.channels.postgres import PostgresLoader, run_sql
        from osiris.drivers.supabase.errors import from_postgres
        from osiris.drivers.supabase.postgres_connect import connect

        pg, _ = connect(conn, timeout=opts.timeout, step=ctx.step_id)
        try:
            with pg.cursor() as cur:
                run = run_sql(cur)
                info = ddl.describe(run, opts.schema, opts.table)
                schema_exists = bool(run(ddl.schema_exists_sql(opts.schema)))
        except psycopg2.Error as exc:
            raise from_postgres(exc, step=ctx.step_id, table=opts.display, doing="Inspecting") from None
        finally:
            pg.close()
        statements = self._plan_ddl(opts, info, schema_exists, handle, ctx, ddl_channel, no_ddl_reason)
        missing = report_missing(opts, info, handle.schema, ctx)
        in_txn = ddl_channel == "psycopg2"
        if statements and ddl_channel == "http_sql":
            self._run_http_sql_ddl(conn, opts, statements, ctx)
            statements = []
        loader = PostgresLoader(
            conn, opts, step=ctx.step_id, log_event=ctx.log_event, progress=ctx.progress, output_dir=ctx.output_dir
        )
        result = loader.load(
            handle.schema,
            lambda: stream_batches(handle, opts.batch_size),
            # Unknown (0) while the upstream still streams its batches in (`streaming_input`).
            (handle.known_num_rows if hasattr(handle, "known_num_rows") else handle.num_rows) or 0,
            statements,
            in_txn,
            incremental=incremental,
            state_schema=state_schema,
        )
        return {
            "rows_written": result.rows_written,
            "rows_deleted": result.rows_deleted,
            "rows_input": result.rows_input,
            "strategy": result.strategy,
            "duplicates_dropped": result.duplicates_dropped,
            "missing_columns": missing,
        }

    def _load_http(
        self,
        conn: SupabaseConnection,
        opts: WriteOptions,
        handle: InputHandle,
        ctx: StepContext,
        ddl_channel: str | None,
        no_ddl_reason: str | None,
    ) -> dict[str, Any]:
        from osiris.drivers.supabase.channels.http import RestLoader, non_atomic_warning

        # REST loads are not atomic: never start one on an upstream still writing (it could fail yet).
        _ = handle.num_rows
        ctx.log_event("write.non_atomic", level="warning", channel="http", message=non_atomic_warning(opts.write_mode))
        drop = self._http_duplicates(opts, handle, ctx)
        loader = RestLoader(conn, opts, step=ctx.step_id, log_event=ctx.log_event, progress=ctx.progress)
        missing: list[str] = []
        if ddl_channel == "http_sql" or (ddl_channel == "psycopg2" and conn.has_http_sql):
            from osiris.drivers.supabase.channels.http_sql import HttpSqlClient

            run = HttpSqlClient(conn, timeout=opts.timeout, step=ctx.step_id).query
            info = ddl.describe(run, opts.schema, opts.table)
            schema_exists = bool(run(ddl.schema_exists_sql(opts.schema)))
            statements = self._plan_ddl(opts, info, schema_exists, handle, ctx, "http_sql", None)
            missing = report_missing(opts, info, handle.schema, ctx)
            if info is not None:
                statements += self._http_widenings(opts, info, handle, ctx)
            if statements:
                self._run_http_sql_ddl(conn, opts, statements, ctx)
        elif not loader.exists():
            self._plan_ddl(opts, None, True, handle, ctx, None, no_ddl_reason)
        else:
            ctx.log_event(
                "write.unchecked",
                level="warning",
                table=opts.display,
                message="without a SQL channel the writer cannot compare the input's types with the table's columns "
                "or see columns the input lacks; PostgreSQL converts each value as it is inserted",
            )
        result = loader.load(stream_batches(handle, opts.batch_size), drop=drop)
        return {**result, "duplicates_dropped": len(drop), "missing_columns": missing}

    def _http_duplicates(self, opts: WriteOptions, handle: InputHandle, ctx: StepContext) -> set[int]:
        """Before any request: repeated keys fail the step, or name the rows `on_duplicate_keys` drops."""
        from osiris.drivers.supabase.loadchecks import duplicate_keys_error, scan_duplicates

        if not opts.primary_key or opts.write_mode not in ("upsert", "replace"):
            return set()
        stats, drop = scan_duplicates(
            handle.iter_batches(opts.batch_size, columns=opts.primary_key), opts.primary_key, opts.on_duplicate_keys
        )
        if stats.rows_extra and opts.on_duplicate_keys == "error":
            raise duplicate_keys_error(
                stats,
                key=opts.primary_key,
                rows=handle.num_rows,
                table=opts.display,
                mode=opts.write_mode,
                step=ctx.step_id,
            )
        return drop

    def _http_widenings(
        self, opts: WriteOptions, info: ddl.TableInfo, handle: InputHandle, ctx: StepContext
    ) -> list[ddl.Statement]:
        """Over REST values cannot be checked in the table: a column that does not hold the input's type
        by type alone is widened (`widen_columns`) or refused."""
        out = []
        for column, wanted, have in ddl.misfits(info, handle.schema, step=ctx.step_id):
            statement = ddl.widen_statement(opts, column, wanted, have) if opts.widen_columns else None
            if statement is None:
                raise TerminalError(
                    f"Column `{column}` of `{opts.display}` is `{have}`, which does not hold every `{wanted}` value "
                    f"of the input exactly, and the http channel cannot check the values in the table; set "
                    "`widen_columns: true` (when a safe wider type exists), change the column, or use a Postgres "
                    "DSN, whose loads check each value",
                    step=ctx.step_id,
                )
            out.append(statement)
        return out
