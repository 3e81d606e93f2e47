"""Incremental state in the destination: the `_osiris_state` table, written in the load's transaction.

One row per (pipeline, extractor step, destination) holds the watermark as JSON text
(`{"type": "datetime", "value": "2026-01-01 10:00:00.000000"}`), a `version` counting the commits,
the run that made it and the window it read. The load takes a transaction-level advisory lock on
the key and locks the row (`FOR UPDATE`) before it merges, then checks that the version is still
the one the run read before it started: a second run of the same pipeline waits for the first to
commit, then stops with a clear error instead of committing over it (compare-and-set). The state
row is written after the merge, in the same transaction, so a killed or failed load leaves the old
watermark and the old rows, and a committed load always has its new watermark.
"""

from __future__ import annotations

import json
from typing import Any

from osiris.core.errors import TerminalError
from osiris.drivers.supabase.sqltypes import qualified

STATE_TABLE = "_osiris_state"
_KEY_LOCK = "SELECT pg_advisory_xact_lock(hashtext('osiris-state'), hashtext(%s))"
_DDL_LOCK = "SELECT pg_advisory_xact_lock(hashtext('osiris-ddl'), hashtext(%s))"


def state_schema(config: dict[str, Any], default: str) -> str:
    """Where the state table lives: `state_schema`, else the target's schema."""
    return str(config.get("state_schema") or config.get("schema") or default)


def create_sql(schema: str) -> list[str]:
    """The DDL of the state table (idempotent)."""
    from osiris.drivers.supabase.sqltypes import quote_ident

    return [
        f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}",
        f"CREATE TABLE IF NOT EXISTS {qualified(schema, STATE_TABLE)} ("
        "pipeline text NOT NULL, step text NOT NULL, destination text NOT NULL, "
        "watermark jsonb, version bigint NOT NULL, run_id text, "
        'updated_at timestamptz NOT NULL DEFAULT now(), "window" jsonb, '
        "PRIMARY KEY (pipeline, step, destination))",
    ]


def _key_text(key: Any) -> str:
    return f"{key.pipeline}\x1f{key.step}\x1f{key.destination}"


def ensure_table(cur: Any, schema: str) -> None:
    """Create the state table if it is missing, under the DDL lock (two first runs do not collide)."""
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified(schema, STATE_TABLE),))
    if cur.fetchone()[0]:
        return
    cur.execute(_DDL_LOCK, (f"{schema}.{STATE_TABLE}",))
    for sql in create_sql(schema):
        cur.execute(sql)


def read(cur: Any, schema: str, key: Any, *, lock: bool = False) -> dict[str, Any] | None:
    """The state row of `key` (None when there is none, or no state table)."""
    table = qualified(schema, STATE_TABLE)
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
    if not cur.fetchone()[0]:
        return None
    cur.execute(
        f'SELECT watermark, version, run_id, updated_at, "window" FROM {table} '
        "WHERE pipeline = %s AND step = %s AND destination = %s" + (" FOR UPDATE" if lock else ""),
        (key.pipeline, key.step, key.destination),
    )
    row = cur.fetchone()
    if row is None:
        return None
    watermark, version, run_id, updated_at, window = row
    return {
        "watermark": watermark,
        "version": int(version),
        "run_id": run_id,
        "updated_at": updated_at.isoformat() if updated_at is not None else None,
        "window": window,
    }


def lock_and_check(cur: Any, schema: str, commit: Any, *, step: str) -> None:
    """Take the key's lock (waiting for a concurrent load to finish) and check nobody committed since the run read it."""
    ensure_table(cur, schema)
    cur.execute(_KEY_LOCK, (_key_text(commit.key),))
    # Only what the check needs (over ADBC a timestamptz or jsonb column would cost pyarrow's pandas import).
    cur.execute(
        f"SELECT version, run_id FROM {qualified(schema, STATE_TABLE)} "
        "WHERE pipeline = %s AND step = %s AND destination = %s FOR UPDATE",
        (commit.key.pipeline, commit.key.step, commit.key.destination),
    )
    row = cur.fetchone()
    now = None if row is None else {"version": int(row[0]), "run_id": row[1]}
    version = None if now is None else now["version"]
    if version != commit.expected_version:
        raise TerminalError(
            f"Another run of pipeline `{commit.key.pipeline}` committed the watermark of step `{commit.key.step}` "
            f"for `{commit.key.destination}` while this run was loading (version "
            f"{commit.expected_version} when this run started, {version} now; last by run `{(now or {}).get('run_id')}`)"
            "; nothing was written. Two runs of one pipeline never both commit: run it again",
            step=step,
        )


def write(cur: Any, schema: str, key: Any, watermark: Any, *, run_id: str, window: Any = None) -> int:
    """Store the watermark of `key` (version + 1); returns the new version."""
    table = qualified(schema, STATE_TABLE)
    cur.execute(
        f'INSERT INTO {table} AS s (pipeline, step, destination, watermark, version, run_id, "window") '
        "VALUES (%s, %s, %s, %s::jsonb, 1, %s, %s::jsonb) "
        "ON CONFLICT (pipeline, step, destination) DO UPDATE SET watermark = EXCLUDED.watermark, "
        'version = s.version + 1, run_id = EXCLUDED.run_id, updated_at = now(), "window" = EXCLUDED."window" '
        "RETURNING version",
        (
            key.pipeline,
            key.step,
            key.destination,
            json.dumps(watermark) if watermark is not None else None,
            run_id,
            json.dumps(window, default=str) if window is not None else None,
        ),
    )
    return int(cur.fetchone()[0])


def lock_and_check_all(cur: Any, schema: str, incremental: Any, *, step: str) -> None:
    """`lock_and_check` every watermark a load commits (`incremental`: an `IncrementalWrite`)."""
    for commit in incremental.commits:
        lock_and_check(cur, schema, commit, step=step)


def write_all(cur: Any, schema: str, incremental: Any) -> None:
    """`write` every watermark a load commits, each with its run and window."""
    for commit in incremental.commits:
        write(cur, schema, commit.key, commit.watermark_after, run_id=commit.run_id, window=commit.window)


def delete(cur: Any, schema: str, key: Any) -> bool:
    """Remove the state of `key` (the next run reads from `initial_value`); whether there was one."""
    table = qualified(schema, STATE_TABLE)
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
    if not cur.fetchone()[0]:
        return False
    cur.execute(_KEY_LOCK, (_key_text(key),))
    cur.execute(
        f"DELETE FROM {table} WHERE pipeline = %s AND step = %s AND destination = %s",
        (key.pipeline, key.step, key.destination),
    )
    return bool(cur.rowcount)
