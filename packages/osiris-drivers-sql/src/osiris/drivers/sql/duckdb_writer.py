"""`duckdb.writer`: load the input into a table of a local DuckDB file (append, replace, upsert)."""

from __future__ import annotations

from typing import Any

from osiris.core.errors import TerminalError, UserInputError
from osiris.drivers.sql import duckdb_types
from osiris.drivers.sql._duckdb import quote_ident, quote_literal
from osiris.runtime import interrupts
from osiris.runtime.contract import InputHandle, StepContext, single_input

DUPLICATE_KEY_POLICIES = ("error", "keep_last", "keep_first")
EXAMPLES = 5


class DuckDBWriter:
    """Writes in one transaction: a failed load leaves the table as it was.

    - `append`: insert every row (by column name).
    - `replace`: delete every row, then insert (the table's other properties stay).
    - `upsert`: delete rows whose `primary_key` matches an incoming row, then insert.

    With a `primary_key`, a key repeated inside one load fails the step (nothing is written)
    unless `on_duplicate_keys` is `keep_last` or `keep_first`; the rows dropped are reported.
    Input types DuckDB cannot hold exactly (DECIMALs over 38 digits) fail naming the column.
    """

    def run(
        self, *, step_id: str, config: dict[str, Any], inputs: dict[str, InputHandle], ctx: StepContext
    ) -> dict[str, Any]:
        """Write `inputs["df"]` into `config["table"]` of the DuckDB file `config["path"]`."""
        import duckdb

        source = single_input(inputs, step_id)
        mode = config.get("write_mode", "append")
        incremental = ctx.incremental
        if incremental is not None and not hasattr(incremental, "commits"):
            incremental = None
        if incremental is not None and incremental.full_refresh:
            mode = "replace"  # `--full-refresh`: the table anew, once
        keys = config.get("primary_key")
        keys = [keys] if isinstance(keys, str) else list(keys or [])
        missing = [k for k in keys if k not in source.schema.names]
        if missing:
            raise UserInputError(
                f"Step `{step_id}`: `primary_key` column(s) {', '.join(f'`{k}`' for k in missing)} not in the input; "
                f"input columns: {', '.join(source.schema.names)}",
                step=step_id,
            )
        if mode == "upsert" and not keys:
            raise UserInputError(f"Step `{step_id}`: `upsert` needs `primary_key`", step=step_id)
        policy = config.get("on_duplicate_keys") or "error"
        if policy not in DUPLICATE_KEY_POLICIES:
            raise UserInputError(
                f"Invalid `on_duplicate_keys` for step `{step_id}`: expected one of "
                f"{', '.join(DUPLICATE_KEY_POLICIES)}; got `{policy}`",
                step=step_id,
            )
        if policy != "error" and not keys:
            raise UserInputError(f"Step `{step_id}`: `on_duplicate_keys: {policy}` needs a `primary_key`", step=step_id)
        shown = duckdb_types.input_view(source.schema, view="input", step=step_id)
        if shown.unreadable:
            column, why = next(iter(shown.unreadable.items()))
            raise TerminalError(
                f"Column `{column}` of the input of step `{step_id}` is {why}; a DuckDB table cannot hold it "
                "exactly: narrow it upstream, or leave it out",
                step=step_id,
            )
        schema = config.get("schema", "main")
        table = f"{quote_ident(schema)}.{quote_ident(config['table'])}"
        db_path = ctx.resolve_path(config["path"])
        db_path.parent.mkdir(parents=True, exist_ok=True)
        src = (
            f"(SELECT {shown.select}, file_row_number "
            f"FROM read_parquet({quote_literal(source.path)}, file_row_number = true))"
        )
        if keys:
            part = ", ".join(quote_ident(k) for k in keys)
            order = "ASC" if policy == "keep_first" else "DESC"
            src_sql = (
                f"SELECT * EXCLUDE (file_row_number) FROM {src} "
                f"QUALIFY row_number() OVER (PARTITION BY {part} ORDER BY file_row_number {order}) = 1 "
                f"ORDER BY file_row_number"
            )
        else:
            src_sql = f"SELECT * EXCLUDE (file_row_number) FROM {src} ORDER BY file_row_number"
        soft = incremental.soft_column if incremental is not None and incremental.deletes == "soft" else None
        if soft is not None:
            if soft not in source.schema.names:
                raise UserInputError(
                    f"Step `{step_id}`: the soft-delete column `{soft}` is not in the input", step=step_id
                )
            flag = quote_ident(soft)
            flagged = f"({flag} IS NOT NULL AND CAST({flag} AS VARCHAR) NOT IN ('false', '0'))"
        try:
            con = duckdb.connect(str(db_path))
        except duckdb.Error as exc:
            raise TerminalError(
                f"Step `{step_id}` cannot open `{config['path']}`: {exc} (another run may be writing it)", step=step_id
            ) from None
        deleted = 0
        forget = interrupts.add_cancel(con.interrupt)  # a stop of the run interrupts the running statement
        try:
            dropped = self._repeated_keys(con, src, keys, policy, step_id) if keys else 0
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f"CREATE TEMP VIEW _osiris_src AS {src_sql}")
                exists = bool(
                    con.execute(
                        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                        [schema, config["table"]],
                    ).fetchone()[0]
                )
                created = False
                if not exists:
                    if not config.get("create_if_missing", True):
                        raise TerminalError(
                            f"Table `{schema}.{config['table']}` does not exist in `{config['path']}` "
                            f"(step `{step_id}`); create it or set `create_if_missing: true`",
                            step=step_id,
                        )
                    con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
                    con.execute(f"CREATE TABLE {table} AS SELECT * FROM _osiris_src LIMIT 0")
                    created = True
                    ctx.log_event("ddl_succeeded", table=f"{schema}.{config['table']}", channel="duckdb")
                state_schema = str(config.get("state_schema") or schema)
                if incremental is not None:
                    for commit in incremental.commits:
                        self._check_state(con, state_schema, commit, step_id)
                cond = " AND ".join(f"t.{quote_ident(k)} IS NOT DISTINCT FROM s.{quote_ident(k)}" for k in keys)
                live = "_osiris_src"
                if soft is not None:
                    con.execute(f"CREATE TEMP VIEW _osiris_live AS SELECT * FROM _osiris_src WHERE NOT {flagged}")
                    deleted += con.execute(
                        f"DELETE FROM {table} AS t USING (SELECT * FROM _osiris_src WHERE {flagged}) AS s WHERE {cond}"
                    ).fetchone()[0]
                    live = "_osiris_live"
                if mode == "replace":
                    con.execute(f"DELETE FROM {table}")
                elif mode == "upsert":
                    con.execute(f"DELETE FROM {table} AS t USING {live} AS s WHERE {cond}")
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {live}")
                rows = con.execute(f"SELECT count(*) FROM {live}").fetchone()[0]
                if incremental is not None and incremental.deletes == "reconcile" and incremental.source_keys:
                    keyset = f"read_parquet({quote_literal(incremental.source_keys)})"
                    deleted += con.execute(
                        f"DELETE FROM {table} AS t WHERE NOT EXISTS (SELECT 1 FROM {keyset} AS s WHERE {cond})"
                    ).fetchone()[0]
                if incremental is not None:
                    for commit in incremental.commits:
                        _write_state(
                            con, state_schema, commit.key, commit.watermark_after, commit.run_id, commit.window
                        )
                if soft is not None:
                    con.execute("DROP VIEW _osiris_live")
                con.execute("DROP VIEW _osiris_src")
                interrupts.check_before_commit(step_id)  # a stopped run (or a sandbox whose host is gone) rolls back
                con.execute("COMMIT")
            except duckdb.Error as exc:
                con.execute("ROLLBACK")
                raise TerminalError(
                    f"Writing table `{schema}.{config['table']}` in step `{step_id}` failed: {exc}", step=step_id
                ) from None
            except BaseException:
                con.execute("ROLLBACK")
                raise
        finally:
            forget()
            con.close()
        ctx.progress(int(rows))
        if dropped:
            ctx.log_event(
                "load.duplicates_dropped",
                level="warning",
                table=f"{schema}.{config['table']}",
                policy=policy,
                key=keys,
                rows_dropped=dropped,
            )
        ctx.log_event(
            "write.complete",
            channel_used="duckdb",
            table=f"{schema}.{config['table']}",
            write_mode=mode,
            rows_written=int(rows),
            table_created=created,
            duplicate_rows_dropped=dropped,
        )
        facts: dict[str, Any] = {
            "rows_written": int(rows),
            "rows_deleted": int(deleted),
            "table": f"{schema}.{config['table']}",
            "write_mode": mode,
            "duplicate_rows_dropped": dropped,
        }
        if incremental is not None:
            facts["incremental"] = [
                {
                    **c.key.to_data(),
                    "watermark_before": c.watermark_before,
                    "watermark_after": c.watermark_after,
                    "window": c.window,
                    "full_refresh": incremental.full_refresh,
                    "rows_upserted": int(rows),
                    "rows_deleted": int(deleted),
                }
                for c in incremental.commits
            ]
            for record in facts["incremental"]:
                ctx.log_event("state.committed", **record)
        return facts

    # -- incremental state (in the DuckDB file, in the load's transaction) ---------------------

    @staticmethod
    def _check_state(con: Any, schema: str, commit: Any, step_id: str) -> None:
        _ensure_state(con, schema)
        now = _read_state(con, schema, commit.key)
        version = None if now is None else now["version"]
        if version != commit.expected_version:
            raise TerminalError(
                f"Another run of pipeline `{commit.key.pipeline}` committed the watermark of step "
                f"`{commit.key.step}` for `{commit.key.destination}` while this run was loading (version "
                f"{commit.expected_version} when this run started, {version} now); nothing was written. "
                "Two runs of one pipeline never both commit: run it again",
                step=step_id,
            )

    def read_state(self, *, config: dict[str, Any], key: Any) -> dict[str, Any] | None:
        """The stored state of `key` in the DuckDB file (None when there is none)."""
        import duckdb

        from osiris.runtime.contract import StepContext

        path = StepContext(step_id="state", output_dir=".").resolve_path(config["path"])
        if not path.is_file():
            return None
        con = duckdb.connect(str(path), read_only=True)
        try:
            return _read_state(con, str(config.get("state_schema") or config.get("schema") or "main"), key)
        finally:
            con.close()

    def set_state(self, *, config: dict[str, Any], key: Any, watermark: dict[str, str] | None) -> None:
        """Store `watermark` for `key`, or remove the state when None."""
        import duckdb

        from osiris.runtime.contract import StepContext

        path = StepContext(step_id="state", output_dir=".").resolve_path(config["path"])
        schema = str(config.get("state_schema") or config.get("schema") or "main")
        con = duckdb.connect(str(path))
        try:
            _ensure_state(con, schema)
            if watermark is None:
                con.execute(
                    f"DELETE FROM {_state_table(schema)} WHERE pipeline = ? AND step = ? AND destination = ?",
                    [key.pipeline, key.step, key.destination],
                )
            else:
                _write_state(con, schema, key, watermark, "osiris state set", None)
        finally:
            con.close()

    @staticmethod
    def _repeated_keys(con: Any, src: str, keys: list[str], policy: str, step_id: str) -> int:
        """Rows beyond the first of each key in the input; raises for `on_duplicate_keys: error`."""
        part = ", ".join(quote_ident(k) for k in keys)
        extra, repeated = con.execute(
            f"SELECT coalesce(sum(n - 1), 0), count(*) FROM (SELECT count(*) AS n FROM {src} GROUP BY {part} "
            "HAVING count(*) > 1)"
        ).fetchall()[0]
        if not extra or policy != "error":
            return int(extra)
        texts = ", ".join(f"CAST({quote_ident(k)} AS VARCHAR)" for k in keys)
        examples = con.execute(
            f"SELECT {texts}, count(*) AS n FROM {src} GROUP BY {part} HAVING count(*) > 1 "
            f"ORDER BY n DESC, {part} LIMIT {EXAMPLES}"
        ).fetchall()
        shown = []
        for row in examples:
            pairs = ", ".join(f"{k}={'NULL' if v is None else v}" for k, v in zip(keys, row[:-1], strict=True))
            shown.append(f"{pairs if len(keys) == 1 else '(' + pairs + ')'} ({row[-1]} rows)")
        rows = con.execute(f"SELECT count(*) FROM {src}").fetchall()[0][0]
        names = ", ".join(f"`{k}`" for k in keys)
        raise TerminalError(
            f"Step `{step_id}`: the input repeats {repeated:,} value(s) of the key {names}: {extra:,} of its {rows:,} "
            f"rows repeat a key already in the load (e.g. {', '.join(shown)}); nothing was written. To load it, set "
            "`on_duplicate_keys: keep_last` or `keep_first` to keep one row per key and drop the others, or make "
            "the key unique upstream",
            step=step_id,
        )


def _state_table(schema: str) -> str:
    return f"{quote_ident(schema)}._osiris_state"


def _ensure_state(con: Any, schema: str) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {_state_table(schema)} (pipeline VARCHAR NOT NULL, step VARCHAR NOT NULL, "
        "destination VARCHAR NOT NULL, watermark VARCHAR, version BIGINT NOT NULL, run_id VARCHAR, "
        'updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), "window" VARCHAR, PRIMARY KEY (pipeline, step, destination))'
    )


def _read_state(con: Any, schema: str, key: Any) -> dict[str, Any] | None:
    import json

    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = '_osiris_state'",
        [schema],
    ).fetchone()[0]
    if not exists:
        return None
    row = con.execute(
        f'SELECT watermark, version, run_id, CAST(updated_at AS VARCHAR), "window" FROM {_state_table(schema)} '
        "WHERE pipeline = ? AND step = ? AND destination = ?",
        [key.pipeline, key.step, key.destination],
    ).fetchone()
    if row is None:
        return None
    return {
        "watermark": json.loads(row[0]) if row[0] else None,
        "version": int(row[1]),
        "run_id": row[2],
        "updated_at": row[3],
        "window": json.loads(row[4]) if row[4] else None,
    }


def _write_state(con: Any, schema: str, key: Any, watermark: Any, run_id: str, window: Any) -> None:
    import json

    con.execute(
        f'INSERT INTO {_state_table(schema)} (pipeline, step, destination, watermark, version, run_id, "window") '
        "VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT (pipeline, step, destination) DO UPDATE SET "
        "watermark = EXCLUDED.watermark, version = version + 1, run_id = EXCLUDED.run_id, "
        'updated_at = now(), "window" = EXCLUDED."window"',
        [
            key.pipeline,
            key.step,
            key.destination,
            json.dumps(watermark) if watermark is not None else None,
            run_id,
            json.dumps(window, default=str) if window is not None else None,
        ],
    )
