"""The `psycopg2` channel: bulk load into an unlogged staging table, then one merge transaction.

The input's Arrow batches are streamed with ADBC's bulk ingest (binary `COPY`) into an
`UNLOGGED` staging table; then, on the psycopg2 connection and in one transaction, any DDL
runs and the staging rows are appended, upserted or swapped into the target. Nothing
touches the target before that transaction, so a failure anywhere leaves it as it was.
Two loads skip staging, because they need no merge: an `append` whose input types match the
table exactly, and a keyed `replace` of a table that nothing references (the "direct swap":
DDL, TRUNCATE and the binary COPY straight into the target, in one ADBC transaction). If the
input turns out to repeat a key, the direct swap is rolled back and the load goes through
staging, where duplicates are reduced to the last row.

Longer than most modules, on purpose: one load is one transaction over two connections
(psycopg2 for DDL and the merge, ADBC for the binary COPY), and its strategies (stage and
merge, direct append, direct swap, restage) share that state; the types, the DDL text and
the COPY-ready batches live apart (`sqltypes`, `ddl`, `staging`).
"""

from __future__ import annotations

import contextlib
import secrets as _secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osiris.core.errors import OsirisError, TerminalError, TransientError
from osiris.drivers.supabase import ddl, identifiers, state, text_copy, typefit
from osiris.drivers.supabase.adbc_session import AdbcCursor, AdbcSession
from osiris.drivers.supabase.errors import from_postgres
from osiris.drivers.supabase.loadchecks import Unstorable, duplicate_keys, duplicate_keys_error, misfit_values
from osiris.drivers.supabase.parallel_copy import copy_in_parallel
from osiris.drivers.supabase.postgres_connect import connect
from osiris.drivers.supabase.sqltypes import mapping, qualified, quote_ident
from osiris.drivers.supabase.staging import load_schema, prepared_batches, staging_type

# a stop (SIGINT, SIGTERM, a sandbox's host gone) cancels the load's statement and refuses its COMMIT
from osiris.runtime.interrupts import cancel_on_interrupt, check_before_commit

if TYPE_CHECKING:
    import pyarrow as pa

    from osiris.drivers.supabase.connection import SupabaseConnection
    from osiris.drivers.supabase.options import WriteOptions


class _InputErrors:
    """Wraps the batches fed to ADBC and keeps the exception reading them raised, if any."""

    def __init__(self, batches: Iterable[Any]) -> None:
        self.batches = batches
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self.batches
        except Exception as exc:
            self.error = exc
            raise

    def as_osiris_error(self, step: str | None, table: str) -> OsirisError:
        """The reading error as itself (an Osiris error) or as a terminal error naming the table."""
        if isinstance(self.error, OsirisError):
            return self.error
        return TerminalError(
            f"Reading the input to load into `{table}` failed: {type(self.error).__name__}: {self.error}", step=step
        )


class _SharedProgress:
    """The rows one load has sent, across its COPY sessions; reports as progress only rows not reported
    before (a restaged load streams the input again)."""

    def __init__(self, loader: PostgresLoader) -> None:
        self.loader = loader
        self.counted = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.counted += n
            loader = self.loader
            if self.counted > loader._reported:
                loader.progress(self.counted - loader._reported)
                loader._reported = self.counted


STAGE_APPLICATION_NAME = "osiris-supabase-stage"
# A staging load of fewer rows uses one COPY session: another connection costs more than it saves.
PARALLEL_MIN_ROWS = 100_000
STAGE_PREFIX = identifiers.STAGE_PREFIX
# A load holds a session-level advisory lock on its staging table's name, in this namespace,
# from before it creates the table until it drops it; a backend that dies releases it. So a
# staging table whose lock can be taken belongs to no live load: a run that was killed left it.
_STAGE_LOCK = "pg_try_advisory_lock(hashtext('osiris-stage'), hashtext(%s))"
_STAGE_UNLOCK = "pg_advisory_unlock(hashtext('osiris-stage'), hashtext(%s))"
# DDL on a table (or schema) runs under a transaction-level advisory lock on its name, so two
# loads creating the same missing table run one after the other: the second waits until the
# first commits, then its `CREATE … IF NOT EXISTS` finds the table (no `pg_type` unique violation).
_DDL_LOCK = "SELECT pg_advisory_xact_lock(hashtext('osiris-ddl'), hashtext({key}))"
EventFn = Callable[..., None]


@dataclass
class LoadResult:
    """What a load did."""

    rows_written: int
    rows_deleted: int = 0
    rows_input: int = 0
    strategy: str = "merge"
    duplicates_dropped: int = 0


def run_sql(cur: Any) -> ddl.SqlRunner:
    """A `ddl.SqlRunner` on a psycopg2 cursor (rows as dicts)."""

    def run(sql: str) -> list[dict[str, Any]]:
        cur.execute(sql)
        if cur.description is None:
            return []
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    return run


class PostgresLoader:
    """One load of one step's input through the psycopg2 channel."""

    def __init__(
        self,
        conn: SupabaseConnection,
        opts: WriteOptions,
        *,
        step: str,
        log_event: EventFn,
        progress: Callable[[int], None],
        output_dir: Path | None = None,
    ) -> None:
        self.conn = conn
        self.opts = opts
        self.step = step
        self.log_event = log_event
        self.progress = progress
        self.output_dir = output_dir
        self._reported = 0  # rows already reported as progress, across attempts
        self.only_changed = False  # an incremental upsert leaves unchanged rows alone
        self._created_stages: list[str] = []  # staging tables of the running load, dropped when it ends
        self._temp_stages: set[str] = set()  # its temporary staging tables (gone with its transaction)

    # -- helpers -------------------------------------------------------------------------

    def _fail(self, exc: BaseException, doing: str) -> OsirisError:
        if isinstance(exc, OsirisError):
            return exc
        return from_postgres(exc, step=self.step, table=self.opts.display, doing=doing)

    def _pg(self) -> tuple[Any, Any]:
        return connect(self.conn, timeout=self.opts.timeout, step=self.step)

    # -- the load ------------------------------------------------------------------------

    def load(
        self,
        arrow_schema: pa.Schema,
        batches: Callable[[], Iterable[pa.RecordBatch]],
        num_rows: int,
        ddl_statements: list[ddl.Statement],
        ddl_in_transaction: bool,
        incremental: Any = None,
        state_schema: str | None = None,
    ) -> LoadResult:
        """Load the input; `ddl_statements` run first in the load's transaction when `ddl_in_transaction`.

        With `incremental` (an `osiris.runtime.incremental.IncrementalWrite`) the load always goes
        through staging and the merge transaction also applies soft or reconciled deletes and
        commits each watermark in `state_schema`'s state table (`osiris.drivers.supabase.state`).
        """
        pg, target = self._pg()
        # A stop (SIGINT, SIGTERM, the sandbox's host gone) cancels the running statement at once.
        with cancel_on_interrupt(pg.cancel):
            return self._load_on(
                pg,
                target,
                arrow_schema,
                batches,
                num_rows,
                ddl_statements,
                ddl_in_transaction,
                incremental,
                state_schema,
            )

    def _load_on(
        self,
        pg: Any,
        target: Any,
        arrow_schema: pa.Schema,
        batches: Callable[[], Iterable[pa.RecordBatch]],
        num_rows: int,
        ddl_statements: list[ddl.Statement],
        ddl_in_transaction: bool,
        incremental: Any = None,
        state_schema: str | None = None,
    ) -> LoadResult:
        import psycopg2

        opts = self.opts
        stage: str | None = None
        keys_stage: str | None = None
        self.only_changed = incremental is not None
        try:
            with pg.cursor() as cur:
                cur.execute(f"SET statement_timeout = {int(opts.timeout * 1000)}")
                pg.commit()
                info = ddl.describe(run_sql(cur), opts.schema, opts.table)
                pg.commit()
            self._sweep_stale_stages(pg)
            if incremental is not None:
                # A first load (an empty or missing table) or `--full-refresh` goes straight into the table,
                # the watermark committed in the same transaction; everything else merges through staging.
                if self._direct_incremental_ok(info, ddl_statements, ddl_in_transaction, incremental):
                    direct = self._direct_swap(
                        target,
                        arrow_schema,
                        batches,
                        ddl_statements,
                        incremental=incremental,
                        state_schema=state_schema or opts.schema,
                    )
                    if direct is not None:
                        return direct
            elif self._direct_append_ok(info, arrow_schema, ddl_statements):
                appended = self._direct_append(target, arrow_schema, batches, num_rows)
                if appended is not None:
                    return appended
            if incremental is None and self._direct_swap_candidate(info, ddl_statements, ddl_in_transaction):
                swapped = self._direct_swap(target, arrow_schema, batches, ddl_statements)
                if swapped is not None:
                    return swapped
            if ddl_statements and ddl_in_transaction and any(s.kind == "create_schema" for s in ddl_statements):
                # The staging table lives in the target schema, so the schema comes first.
                self._run_ddl(pg, [s for s in ddl_statements if s.kind == "create_schema"], commit=True)
                ddl_statements = [s for s in ddl_statements if s.kind != "create_schema"]
            streams = self._stage_streams(num_rows)
            reconcile = incremental is not None and incremental.deletes == "reconcile" and incremental.source_keys
            # A temporary staging table lives only as long as the transaction: not for a reconcile, which
            # commits its key set's staging table before the merge.
            small = streams == 1 and not reconcile
            ready = self._text_ready(arrow_schema, batches, num_rows) if small else None
            stage = self._create_temp_stage(pg, arrow_schema) if ready is not None else None
            if stage is not None:
                staged_rows = self._copy_text(pg, stage, ready)
            else:
                stage = self._create_stage(pg, arrow_schema)
                staged_rows = self._ingest(target, stage, arrow_schema, batches, streams=streams)
            if reconcile:
                keys_stage, keys_reader = self._keys_stage(pg, incremental.source_keys)
                self._ingest(target, keys_stage, keys_reader.schema_arrow, lambda: keys_reader.iter_batches(65536))
            with pg.cursor() as cur:
                if incremental is not None:
                    state.lock_and_check_all(cur, state_schema or opts.schema, incremental, step=self.step)
                if ddl_statements and ddl_in_transaction:
                    self._run_ddl(pg, ddl_statements, commit=False)
                info = ddl.describe(run_sql(cur), opts.schema, opts.table)
                if info is None:
                    raise TerminalError(f"Table `{opts.display}` does not exist (step `{self.step}`)", step=self.step)
                soft_deleted = 0
                if incremental is not None and incremental.deletes == "soft" and incremental.soft_column:
                    soft_deleted, staged_rows = self._soft_deletes(cur, info, stage, incremental.soft_column)
                result = self._merge(cur, info, arrow_schema, stage, staged_rows)
                result.rows_deleted += soft_deleted
                if keys_stage is not None:
                    result.rows_deleted += self._reconcile(cur, info, stage, keys_stage)
                if incremental is not None:
                    state.write_all(cur, state_schema or opts.schema, incremental)
            check_before_commit(self.step)  # a stopped run (or a sandbox whose host is gone) rolls back
            pg.commit()
            result.rows_input = staged_rows
            return result
        except (psycopg2.Error, OsirisError) as exc:
            with contextlib.suppress(psycopg2.Error):
                pg.rollback()
            raise self._fail(exc, f"Loading into ({opts.write_mode})") from None
        except KeyboardInterrupt:  # a stop (`RunInterrupted`): nothing of this load is committed
            with contextlib.suppress(psycopg2.Error):
                pg.rollback()
            raise
        finally:
            # Every staging table this load created, also one whose name a stop kept from reaching `stage`.
            for name in self._created_stages:
                self._drop_stage_despite_a_stop(pg, name)
            self._created_stages.clear()
            pg.close()

    # -- incremental deletes ---------------------------------------------------------------

    def _keys_stage(self, pg: Any, path: str) -> tuple[str, Any]:
        """A staging table for the source's key set (`deletes: reconcile`) and the Parquet file to fill it."""
        import pyarrow.parquet as pq

        reader = pq.ParquetFile(path)
        missing = [k for k in self.opts.primary_key if k not in reader.schema_arrow.names]
        if missing:
            raise TerminalError(
                f"`deletes: reconcile` for `{self.opts.display}`: the source's key set lacks the key column(s) "
                f"{', '.join(f'`{k}`' for k in missing)}",
                step=self.step,
            )
        return self._create_stage(pg, reader.schema_arrow), reader

    def _reconcile(self, cur: Any, info: ddl.TableInfo, stage: str, keys_stage: str) -> int:
        """Delete target rows whose key is neither in the source's key set nor in this load."""
        tgt = qualified(self.opts.schema, self.opts.table)
        keys = qualified(self.opts.schema, keys_stage)
        stg = self._stg(stage)
        cur.execute(f"ANALYZE {keys}")

        def match(alias: str) -> str:
            return " AND ".join(
                f"{alias}.{quote_ident(k)}::{info.columns[k]} = t.{quote_ident(k)}" for k in self.opts.primary_key
            )

        cur.execute(
            f"DELETE FROM {tgt} t WHERE NOT EXISTS (SELECT 1 FROM {keys} k WHERE {match('k')}) "
            f"AND NOT EXISTS (SELECT 1 FROM {stg} s WHERE {match('s')})"
        )
        deleted = int(cur.rowcount)
        self.log_event("incremental.reconciled", table=self.opts.display, rows_deleted=deleted)
        return deleted

    def _soft_deletes(self, cur: Any, info: ddl.TableInfo, stage: str, column: str) -> tuple[int, int]:
        """Rows flagged in `column` (not NULL, false or 0) leave the target and the load; (deleted, rows left)."""
        tgt = qualified(self.opts.schema, self.opts.table)
        stg = self._stg(stage)
        col = quote_ident(column)
        flagged = f"s.{col} IS NOT NULL AND s.{col}::text NOT IN ('false', '0', 'f')"
        key_match = " AND ".join(
            f"t.{quote_ident(k)} = {self._cast(k, info.columns[k])}" for k in self.opts.primary_key
        )
        cur.execute(f"DELETE FROM {tgt} t USING {stg} s WHERE {key_match} AND {flagged}")
        deleted = int(cur.rowcount)
        cur.execute(f"DELETE FROM {stg} s WHERE {flagged}")
        cur.execute(f"SELECT count(*) FROM {stg}")
        left = int(cur.fetchone()[0])
        self.log_event("incremental.soft_deleted", table=self.opts.display, column=column, rows_deleted=deleted)
        return deleted, left

    def _run_ddl(self, pg: Any, statements: list[ddl.Statement], *, commit: bool) -> None:
        import psycopg2

        with pg.cursor() as cur:
            self._run_ddl_on(cur, statements, errors=(psycopg2.Error,))
        if commit:
            pg.commit()

    def _run_ddl_on(self, cur: Any, statements: list[ddl.Statement], *, errors: tuple[type, ...]) -> None:
        """Run DDL statements on a cursor (psycopg2 or ADBC), with `ddl_*` events, under the DDL locks."""
        if not statements:
            return
        keys = [self.opts.schema] if any(s.kind == "create_schema" for s in statements) else []
        if any(s.kind != "create_schema" for s in statements):
            keys.append(f"{self.opts.schema}.{self.opts.table}")
        for key in keys:
            lock = _DDL_LOCK.format(key=ddl.literal(key))
            try:
                if isinstance(cur, AdbcSession):
                    cur.query(lock)
                else:
                    cur.execute(lock)
            except errors as exc:
                raise self._fail(exc, "Locking for DDL on") from None
        for st in statements:
            self.log_event("ddl_attempt", channel="psycopg2", kind=st.kind, table=self.opts.display)
            try:
                cur.execute(st.sql)
            except errors as exc:
                err = self._fail(exc, f"DDL ({st.kind}) on")
                self.log_event("ddl_failed", channel="psycopg2", kind=st.kind, table=self.opts.display, error=str(err))
                raise err from None
            self.log_event("ddl_succeeded", channel="psycopg2", kind=st.kind, table=self.opts.display)

    # -- staging -------------------------------------------------------------------------

    def _create_stage(self, pg: Any, arrow_schema: pa.Schema) -> str:
        cols = ", ".join(f"{quote_ident(f.name)} {staging_type(f)}" for f in arrow_schema)
        with pg.cursor() as cur:
            while True:  # a new name in the (unlikely) case its lock is taken
                name = identifiers.stage_name(self.opts.table, _secrets.token_hex(4))
                cur.execute(f"SELECT {_STAGE_LOCK}", (f"{self.opts.schema}.{name}",))
                if cur.fetchone()[0]:
                    break
            self._created_stages.append(name)  # before CREATE: the load's cleanup drops it whatever happens next
            cur.execute(f"CREATE UNLOGGED TABLE {qualified(self.opts.schema, name)} ({cols})")
        pg.commit()
        return name

    def _sweep_stale_stages(self, pg: Any) -> None:
        """Drop the staging tables in the target schema that no live load holds (left by killed runs)."""
        import psycopg2

        schema = self.opts.schema
        swept: list[str] = []
        try:
            with pg.cursor() as cur:
                cur.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = %s AND starts_with(tablename, %s)",
                    (schema, STAGE_PREFIX),
                )
                names = sorted(r[0] for r in cur.fetchall())
                pg.commit()
                for name in names:
                    key = f"{schema}.{name}"
                    cur.execute(f"SELECT {_STAGE_LOCK}", (key,))
                    if not cur.fetchone()[0]:
                        pg.commit()
                        continue  # a live load is using it
                    try:
                        cur.execute(f"DROP TABLE IF EXISTS {qualified(schema, name)}")
                        pg.commit()
                        swept.append(name)
                    except psycopg2.Error as exc:  # not ours to drop (another owner), say: leave it
                        pg.rollback()
                        self.log_event("staging_sweep_skipped", table=key, error=str(exc).strip())
                    finally:
                        cur.execute(f"SELECT {_STAGE_UNLOCK}", (key,))
                        pg.commit()
        except psycopg2.Error as exc:  # the sweep is housekeeping: it never fails the load
            with contextlib.suppress(psycopg2.Error):
                pg.rollback()
            self.log_event("staging_sweep_skipped", table=schema, error=str(exc).strip())
        if swept:
            self.log_event("staging_swept", schema=schema, tables=swept)

    def _drop_stage_despite_a_stop(self, pg: Any, stage: str) -> None:
        """`_drop_stage`, done even when a stop lands inside it (a step thread gets its stop once): then it is
        done again and the stop raised after."""
        try:
            self._drop_stage(pg, stage)
        except KeyboardInterrupt:
            self._drop_stage(pg, stage)
            raise

    def _drop_stage(self, pg: Any, stage: str) -> None:
        import psycopg2

        sql = f"DROP TABLE IF EXISTS {qualified(self.opts.schema, stage)}"
        try:
            pg.rollback()
            with pg.cursor() as cur:
                cur.execute(sql)
                pg.commit()
                cur.execute(f"SELECT {_STAGE_UNLOCK}", (f"{self.opts.schema}.{stage}",))
            pg.commit()
            return
        except psycopg2.Error:
            pass
        try:  # the first connection may be gone (e.g. a terminated backend)
            pg2, _ = self._pg()
            try:
                with pg2.cursor() as cur:
                    cur.execute(sql)
                pg2.commit()
            finally:
                pg2.close()
        except (psycopg2.Error, OsirisError):
            self.log_event("staging_cleanup_failed", table=f"{self.opts.schema}.{stage}")

    def _adbc(self, target: Any) -> AdbcSession:
        params = {k: v for k, v in target.params.items() if k != "connect_timeout"}
        params["application_name"] = STAGE_APPLICATION_NAME
        try:
            return AdbcSession(target.uri(**params))
        except Exception as exc:  # ADBC raises its own error types
            raise TransientError(
                f"Cannot open the bulk-load connection for `{self.opts.display}`: {exc}", step=self.step
            ) from None

    def _stage_streams(self, num_rows: int | None) -> int:
        """How many COPY sessions fill the staging table: `copy_streams` for a large load whose merge does
        not use the input's order (`on_duplicate_keys: keep_last | keep_first` picks rows by it), else 1."""
        if self.opts.on_duplicate_keys != "error":
            return 1
        if num_rows is not None and num_rows < PARALLEL_MIN_ROWS:
            return 1
        return self.opts.copy_streams

    def _ingest(
        self,
        target: Any,
        table: str,
        arrow_schema: pa.Schema,
        batches: Callable[[], Iterable[Any]],
        *,
        streams: int = 1,
    ) -> int:
        """Stream every batch into `table` with binary COPY, in a transaction of its own; returns the row count.

        With `streams` > 1, that many sessions COPY at once (`parallel_copy`), each committing when all are done.
        """
        sessions: list[AdbcSession] = []
        try:
            for i in range(streams):
                try:
                    sessions.append(self._adbc(target))
                except TransientError as exc:
                    if i == 0:
                        raise
                    # e.g. the server's (or the pooler's) connection limit: load with the sessions it gave
                    self.log_event("load.copy_streams_limited", table=self.opts.display, streams=i, error=str(exc))
                    break
            if len(sessions) == 1:
                rows = self._copy_in(sessions[0], table, arrow_schema, batches)
                sessions[0].commit()
            else:
                self.log_event("load.copy_streams", table=self.opts.display, streams=len(sessions))
                progress = _SharedProgress(self)
                rows = copy_in_parallel(
                    sessions,
                    lambda ac, reader: self._copy_in(ac, table, arrow_schema, reader, progress=progress),
                    batches(),
                )
        except OsirisError:
            raise
        except Exception as exc:
            raise from_postgres(exc, step=self.step, table=self.opts.display, doing="Bulk COPY for") from None
        finally:
            for ac in sessions:
                with contextlib.suppress(Exception):
                    ac.close()
        return rows

    # -- a small load: CSV COPY into a temporary staging table on the load's own session ---------------

    def _text_ready(
        self, arrow_schema: pa.Schema, batches: Callable[[], Iterable[Any]], num_rows: int | None
    ) -> list[Any] | None:
        """A small load's batches ready for its CSV COPY (`text_copy`), or None when it goes as binary COPY."""
        schema = load_schema(arrow_schema)
        if not text_copy.wanted(num_rows, schema):
            return None
        source = _InputErrors(prepared_batches(batches(), schema, source=arrow_schema, step=self.step))
        try:
            return text_copy.text_batches(source)
        except Exception:
            if source.error is not None:
                raise source.as_osiris_error(self.step, self.opts.display) from None
            raise

    def _create_temp_stage(self, pg: Any, arrow_schema: pa.Schema) -> str | None:
        """A temporary staging table in the load's open transaction (dropped at its end, committed or not):
        no catalog entry outlives the load and no file is synced (an `UNLOGGED` table's create and drop took
        about 20 ms). None when the role may not create temporary tables: then the load stages as usual."""
        import psycopg2

        name = identifiers.stage_name(self.opts.table, _secrets.token_hex(4))
        cols = ", ".join(f"{quote_ident(f.name)} {staging_type(f)}" for f in arrow_schema)
        with pg.cursor() as cur:
            cur.execute("SAVEPOINT osiris_temp_stage")
            try:
                cur.execute(f"CREATE TEMPORARY TABLE {quote_ident(name)} ({cols}) ON COMMIT DROP")
            except psycopg2.Error as exc:
                cur.execute("ROLLBACK TO SAVEPOINT osiris_temp_stage")
                self.log_event("load.temp_stage_refused", table=self.opts.display, error=str(exc).strip())
                return None
            cur.execute("RELEASE SAVEPOINT osiris_temp_stage")
        self._temp_stages.add(name)
        return name

    def _copy_text(self, pg: Any, stage: str, ready: list[Any]) -> int:
        with pg.cursor() as cur:
            rows = text_copy.copy_csv(cur, self._stg(stage), ready)
        self.log_event("load.text_copy", table=self.opts.display, rows=rows)
        _SharedProgress(self).add(rows)
        return rows

    def _stg(self, stage: str) -> str:
        """The staging table's qualified name: in the session's temporary schema, or in the target's."""
        return qualified("pg_temp", stage) if stage in self._temp_stages else qualified(self.opts.schema, stage)

    def _copy_in(
        self,
        ac: AdbcSession,
        table: str,
        arrow_schema: pa.Schema,
        batches: Callable[[], Iterable[Any]],
        *,
        progress: _SharedProgress | None = None,
    ) -> int:
        """Binary COPY of every batch into `table` in the ADBC session's transaction (no commit).

        `progress` counts the rows of all the sessions of one parallel load; by default, this session's."""
        import pyarrow as pa

        schema = load_schema(arrow_schema)
        counted = [0]
        shared = progress if progress is not None else _SharedProgress(self)

        def on_batch(n: int) -> None:
            counted[0] += n
            shared.add(n)

        source = _InputErrors(prepared_batches(batches(), schema, on_batch, source=arrow_schema, step=self.step))
        reader = pa.RecordBatchReader.from_batches(schema, iter(source))
        try:
            ac.ingest(table, reader, db_schema=self.opts.schema)
        except Exception:
            # ADBC reports an error of the batch iterator as its own, with the Python traceback
            # pasted into the message; say what went wrong reading the input instead.
            if source.error is not None:
                raise source.as_osiris_error(self.step, self.opts.display) from None
            raise
        return counted[0]

    # -- replace straight into the target ------------------------------------------------

    def _direct_swap_candidate(
        self, info: ddl.TableInfo | None, statements: list[ddl.Statement], ddl_in_transaction: bool
    ) -> bool:
        opts = self.opts
        if opts.write_mode != "replace" or not opts.primary_key:
            return False
        if statements and not ddl_in_transaction:
            return False
        # An existing table must already hold a unique key on `primary_key` (checked again, with
        # the types, inside the transaction); a missing one is created with it.
        return info is None or info.has_unique(opts.primary_key)

    def _direct_incremental_ok(
        self,
        info: ddl.TableInfo | None,
        statements: list[ddl.Statement],
        ddl_in_transaction: bool,
        incremental: Any,
    ) -> bool:
        """Whether an incremental load may try the direct path: a key, and no soft deletes to apply."""
        opts = self.opts
        if not opts.primary_key or incremental.deletes == "soft" or (statements and not ddl_in_transaction):
            return False
        if opts.write_mode == "replace":  # `--full-refresh`
            return self._direct_swap_candidate(info, statements, ddl_in_transaction)
        if opts.write_mode != "upsert":
            return False
        if info is None:
            return True
        # A first load: no watermark was ever committed (or it was reset). Whether the table is empty is
        # checked under its lock; every later run merges through staging without trying.
        first = all(c.expected_version is None for c in incremental.commits)
        return first and info.has_unique(opts.primary_key)

    def _direct_swap(
        self,
        target: Any,
        arrow_schema: pa.Schema,
        batches: Callable[[], Iterable[Any]],
        statements: list[ddl.Statement],
        *,
        incremental: Any = None,
        state_schema: str | None = None,
    ) -> LoadResult | None:
        """DDL, TRUNCATE and COPY into the target in one ADBC transaction; None to fall back to staging.

        With `incremental`, the watermarks commit in that transaction too, and an `upsert` only takes
        this path into an empty table (a first load): TRUNCATE is then a no-op and COPY an insert.
        """
        opts = self.opts
        tgt = qualified(opts.schema, opts.table)
        ac = self._adbc(target)
        try:
            ac.execute(f"SET LOCAL statement_timeout = {int(opts.timeout * 1000)}")
            if incremental is not None:  # first the state's lock: a concurrent run stops here, before any COPY
                cur = AdbcCursor(ac)
                state.lock_and_check_all(cur, state_schema or opts.schema, incremental, step=self.step)
            self._run_ddl_on(ac, statements, errors=(Exception,))
            info = ddl.describe(ac.query, opts.schema, opts.table)
            if not (info and info.has_unique(opts.primary_key) and self._types_match(info, arrow_schema)):
                ac.rollback()
                return None
            if not self._can_swap(ac.query, tgt):
                ac.rollback()
                return None
            ac.execute(f"LOCK TABLE {tgt} IN ACCESS EXCLUSIVE MODE")
            if incremental is not None and opts.write_mode != "replace":
                if ac.query(f"SELECT EXISTS (SELECT 1 FROM {tgt}) AS filled")[0]["filled"]:
                    ac.rollback()
                    return None  # rows are there already: merge through staging
                before = 0
            else:
                before = int(ac.query(f"SELECT count(*) AS n FROM {tgt}")[0]["n"])
                ac.execute(f"TRUNCATE {tgt}")
            rows = self._copy_in(ac, opts.table, arrow_schema, batches)
            if rows == 0 and (incremental is not None or not opts.allow_empty_replace):
                ac.rollback()
                return None  # the staged path raises the clear "empty input" error (or loads nothing)
            if incremental is not None:
                state.write_all(cur, state_schema or opts.schema, incremental)
            check_before_commit(self.step)
            ac.commit()
            strategy = "direct_swap" if opts.write_mode == "replace" else "direct"
            return LoadResult(rows_written=rows, rows_deleted=before, rows_input=rows, strategy=strategy)
        except KeyboardInterrupt:  # a stop (`RunInterrupted`): nothing of this load is committed
            with contextlib.suppress(Exception):
                ac.rollback()
            raise
        except OsirisError:
            with contextlib.suppress(Exception):
                ac.rollback()
            raise
        except Exception as exc:
            with contextlib.suppress(Exception):
                ac.rollback()
            if getattr(exc, "sqlstate", None) == "23505":
                # The input repeats a key: load it through staging, which keeps the last row.
                self.log_event("load.restaged", table=opts.display, reason="duplicate keys in the input")
                return None
            raise from_postgres(exc, step=self.step, table=opts.display, doing="Loading into (replace)") from None
        finally:
            with contextlib.suppress(Exception):
                ac.close()

    def _types_match(self, info: ddl.TableInfo, arrow_schema: pa.Schema) -> bool:
        """Whether the bulk COPY can write every input column straight into the table, exactly.

        The column must have the type the COPY sends (text may go into `varchar(n)` / `char(n)`,
        whose length PostgreSQL enforces with an error), and hold every value of the input's type
        unchanged: a `numeric(9,2)` column does not take `numeric(9,4)` values this way, since
        PostgreSQL would round them.
        """
        for f in arrow_schema:
            have = info.columns.get(f.name)
            if have is None:
                return False
            m = mapping(f, step=self.step)
            sent, target = typefit.parse(m.stage), typefit.parse(have)
            same = sent.base == target.base or (sent.base == "text" and target.base in ("varchar", "bpchar"))
            if not (same and typefit.fits(m.pg, have)):
                return False
        return True

    # -- append straight into the target -------------------------------------------------

    def _direct_append_ok(self, info: ddl.TableInfo | None, arrow_schema: pa.Schema, statements: list[Any]) -> bool:
        if self.opts.write_mode != "append" or info is None or statements:
            return False
        return self._types_match(info, arrow_schema)

    def _direct_append(
        self, target: Any, arrow_schema: pa.Schema, batches: Callable[[], Iterable[Any]], n: int
    ) -> LoadResult | None:
        """COPY straight into the table; None (after a unique violation, with a key) to load through staging,
        which tells the input's own repeated keys from conflicts with rows already there."""
        ac = self._adbc(target)
        try:
            rows = self._copy_in(ac, self.opts.table, arrow_schema, batches)
            check_before_commit(self.step)
            ac.commit()
        except KeyboardInterrupt:  # a stop (`RunInterrupted`): nothing of this load is committed
            with contextlib.suppress(Exception):
                ac.rollback()
            raise
        except OsirisError:
            raise
        except Exception as exc:
            with contextlib.suppress(Exception):
                ac.rollback()
            if getattr(exc, "sqlstate", None) == "23505" and self.opts.primary_key:
                self.log_event("load.restaged", table=self.opts.display, reason="a unique key was violated")
                return None
            raise from_postgres(exc, step=self.step, table=self.opts.display, doing="Bulk COPY for") from None
        finally:
            with contextlib.suppress(Exception):
                ac.close()
        return LoadResult(rows_written=rows, rows_input=rows, strategy="direct")

    # -- the merge -----------------------------------------------------------------------

    def _fit_columns(self, cur: Any, info: ddl.TableInfo, arrow_schema: pa.Schema, stg: str) -> ddl.TableInfo:
        """Check that every staged value fits its existing column exactly; widen the column if allowed.

        Only columns whose input type the table's column does not hold by type alone are
        checked (`ddl.misfits`). Returns the table as it is after any widening.
        """
        opts = self.opts
        widened = []
        for column, wanted, have in ddl.misfits(info, arrow_schema, step=self.step):
            staged = staging_type(arrow_schema.field(column))
            try:
                n, examples = misfit_values(cur, stg, column, staged, have)
                problem = (
                    f"{n:,} value(s) of the input (type `{wanted}`) would change there (e.g. {', '.join(examples)})"
                )
            except Unstorable as exc:
                n, problem = (
                    1,
                    f"input values (type `{wanted}`) cannot be stored there ({exc.detail}; SQLSTATE {exc.code})",
                )
            if not n:
                continue
            statement = ddl.widen_statement(opts, column, wanted, have)
            if opts.widen_columns and statement is not None:
                self._run_ddl_on(cur, [statement], errors=(Exception,))
                widened.append(statement)
                continue
            if statement is None:
                todo = "no type holds both exactly, so change the column or convert the input upstream"
            else:
                wider = statement.sql.split(" TYPE ", 1)[1].split(" USING ", 1)[0]
                todo = (
                    f"set `widen_columns: true` to widen it to `{wider}` in the load's transaction, "
                    "or change the column or the input"
                )
            raise TerminalError(
                f"Column `{column}` of `{opts.display}` is `{have}`; {problem}; nothing was written. "
                f"To load them, {todo}",
                step=self.step,
            )
        if not widened:
            return info
        if self.output_dir is not None:
            ddl.save_plan(widened, self.output_dir, channel="psycopg2", append=True)
        again = ddl.describe(run_sql(cur), opts.schema, opts.table)
        assert again is not None
        return again

    def _merge(
        self, cur: Any, info: ddl.TableInfo, arrow_schema: pa.Schema, stage: str, staged_rows: int
    ) -> LoadResult:
        import psycopg2

        opts = self.opts
        tgt = qualified(opts.schema, opts.table)
        stg = self._stg(stage)
        info = self._fit_columns(cur, info, arrow_schema, stg)
        cols = arrow_schema.names
        col_list = ", ".join(quote_ident(c) for c in cols)
        casts = ", ".join(self._cast(c, info.columns[c]) for c in cols)
        pk = opts.primary_key
        mode = opts.write_mode

        if staged_rows == 0 and mode == "replace":
            if not opts.allow_empty_replace:
                raise TerminalError(
                    f"Refusing to replace `{opts.display}` with an empty input (step `{self.step}`); "
                    "set `allow_empty_replace: true` to empty the table",
                    step=self.step,
                )
            cur.execute(f"LOCK TABLE {tgt} IN SHARE ROW EXCLUSIVE MODE")
            cur.execute(f"DELETE FROM {tgt}")
            return LoadResult(rows_written=0, rows_deleted=cur.rowcount)

        def refuse_duplicates(source: str = stg) -> None:
            stats = duplicate_keys(cur, source, pk)
            if stats.rows_extra:
                raise duplicate_keys_error(
                    stats, key=pk, rows=staged_rows, table=opts.display, mode=mode, step=self.step
                )

        if mode == "append":
            cur.execute("SAVEPOINT osiris_append")
            try:
                cur.execute(f"INSERT INTO {tgt} ({col_list}) SELECT {casts} FROM {stg} s")
            except psycopg2.Error as exc:
                if exc.pgcode != "23505" or not pk:
                    raise
                # A unique violation: the input's own repeats get the clear error; else PostgreSQL's.
                cur.execute("ROLLBACK TO SAVEPOINT osiris_append")
                refuse_duplicates()
                raise
            return LoadResult(rows_written=cur.rowcount)

        if mode == "replace" and not pk:
            cur.execute(f"LOCK TABLE {tgt} IN ACCESS EXCLUSIVE MODE")
            cur.execute(f"SELECT count(*) FROM {tgt}")
            before = int(cur.fetchone()[0])
            cur.execute("SAVEPOINT osiris_truncate")
            try:
                cur.execute(f"TRUNCATE {tgt}")
            except Exception:
                # e.g. referenced by a foreign key: delete instead
                cur.execute("ROLLBACK TO SAVEPOINT osiris_truncate")
                cur.execute(f"DELETE FROM {tgt}")
            cur.execute(f"INSERT INTO {tgt} ({col_list}) SELECT {casts} FROM {stg} s")
            return LoadResult(rows_written=cur.rowcount, rows_deleted=before)

        # upsert / replace on a key. A key repeated inside the load is an error unless
        # `on_duplicate_keys` keeps the last or the first row of it (input order: COPY fills a
        # fresh heap in order, so ctid order is input order).
        keys = ", ".join(quote_ident(k) for k in pk)
        order = "DESC" if opts.on_duplicate_keys == "keep_last" else "ASC"
        dedup = f"(SELECT DISTINCT ON ({keys}) * FROM {stg} ORDER BY {keys}, ctid {order})"
        rest = [c for c in cols if c not in pk]
        key_match = " AND ".join(f"t.{quote_ident(k)} = {self._cast(k, info.columns[k])}" for k in pk)
        dropped = [0]

        def deduplicated() -> str:
            """The rows to load when the input may repeat keys: as they are, or one per key."""
            if opts.on_duplicate_keys == "error":
                refuse_duplicates()
                return stg
            cur.execute(f"SELECT count(*) FROM (SELECT DISTINCT {keys} FROM {stg}) d")
            dropped[0] = staged_rows - int(cur.fetchone()[0])
            return dedup if dropped[0] else stg

        def optimistic(sql_for: Callable[[str], str], duplicate_codes: tuple[str, ...]) -> int:
            """Run the statement on the staging table as is; a duplicate-key error means the input repeats keys."""
            cur.execute("SAVEPOINT osiris_dedup")
            try:
                cur.execute(sql_for(stg))
                return int(cur.rowcount)
            except psycopg2.Error as exc:
                if exc.pgcode not in duplicate_codes:
                    raise
                cur.execute("ROLLBACK TO SAVEPOINT osiris_dedup")
                if opts.on_duplicate_keys == "error":
                    refuse_duplicates()
                    raise  # not the input's own repeats: PostgreSQL's error stands
                cur.execute(sql_for(dedup))
                written = int(cur.rowcount)
                dropped[0] = staged_rows - written
                return written

        def done(result: LoadResult) -> LoadResult:
            result.duplicates_dropped = dropped[0]
            return result

        if mode == "replace" and info.has_unique(pk) and self._can_swap(run_sql(cur), tgt):
            # Nothing references the table and no trigger watches it: swapping the content in
            # (TRUNCATE + INSERT, one transaction) ends in the same rows as upsert + delete, faster.
            cur.execute(f"LOCK TABLE {tgt} IN ACCESS EXCLUSIVE MODE")
            cur.execute(f"SELECT count(*) FROM {tgt}")
            before = int(cur.fetchone()[0])
            cur.execute(f"TRUNCATE {tgt}")
            written = optimistic(lambda src: f"INSERT INTO {tgt} ({col_list}) SELECT {casts} FROM {src} s", ("23505",))
            return done(LoadResult(rows_written=written, rows_deleted=before, strategy="swap"))
        if mode == "replace":
            cur.execute(f"LOCK TABLE {tgt} IN SHARE ROW EXCLUSIVE MODE")
        if info.has_unique(pk) and rest:
            sets = ", ".join(f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in rest)
            changed = ""
            if getattr(self, "only_changed", False) and mode == "upsert":
                # An incremental window re-reads rows (the lag, the boundary): rows that did not change
                # are left alone, so a rerun without changes writes nothing.
                mine = ", ".join(f"t.{quote_ident(c)}" for c in rest)
                theirs = ", ".join(f"EXCLUDED.{quote_ident(c)}" for c in rest)
                changed = f" WHERE ROW({mine}) IS DISTINCT FROM ROW({theirs})"
            # 21000: "ON CONFLICT DO UPDATE command cannot affect row a second time"
            written = optimistic(
                lambda src: f"INSERT INTO {tgt} AS t ({col_list}) SELECT {casts} FROM {src} s "
                f"ON CONFLICT ({keys}) DO UPDATE SET {sets}{changed}",
                ("21000", "23505"),
            )
        elif info.has_unique(pk):
            # Every column is the key: DO NOTHING would skip repeats silently, so look for them first.
            src = deduplicated()
            cur.execute(f"INSERT INTO {tgt} ({col_list}) SELECT {casts} FROM {src} s ON CONFLICT ({keys}) DO NOTHING")
            written = int(cur.rowcount)
        else:
            # No unique index on the key: update matches, then insert the rest.
            src = deduplicated()
            written = 0
            if rest:
                sets = ", ".join(f"{quote_ident(c)} = {self._cast(c, info.columns[c])}" for c in rest)
                cur.execute(f"UPDATE {tgt} t SET {sets} FROM {src} s WHERE {key_match}")
                written += cur.rowcount
            cur.execute(
                f"INSERT INTO {tgt} ({col_list}) SELECT {casts} FROM {src} s "
                f"WHERE NOT EXISTS (SELECT 1 FROM {tgt} t WHERE {key_match})"
            )
            written += cur.rowcount
        deleted = 0
        if mode == "replace":
            cur.execute(f"DELETE FROM {tgt} t WHERE NOT EXISTS (SELECT 1 FROM {stg} s WHERE {key_match})")
            deleted = cur.rowcount
        return done(LoadResult(rows_written=written, rows_deleted=deleted))

    @staticmethod
    def _cast(column: str, target: str) -> str:
        """The staged value as the target column's type, exactly: text into `varchar(n)`/`char(n)` is
        assigned, not cast, so a value that is too long fails instead of being cut."""
        if typefit.parse(target).base in ("varchar", "bpchar"):
            return f"s.{quote_ident(column)}"
        return f"s.{quote_ident(column)}::{target}"

    def _can_swap(self, run: ddl.SqlRunner, tgt: str) -> bool:
        """Whether no foreign key references the table and no user trigger is on it."""
        reg = ddl.literal(tgt)
        rows = run(
            f"SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE contype = 'f' AND confrelid = to_regclass({reg})) "
            f"OR EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass({reg}) AND NOT tgisinternal) AS busy"
        )
        return not rows[0]["busy"]
