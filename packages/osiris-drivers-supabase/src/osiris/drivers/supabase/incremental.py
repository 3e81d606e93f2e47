"""The incremental window of `supabase.extractor` (Postgres channel), as `mysql.extractor` reads it.

`MAX(cursor)` first, the NULL-cursor policy, then the table's or query's rows with
`watermark - lag <= cursor <= high`; the bounds and the new watermark come from
`osiris.runtime.incremental.plan_bounds`. See docs/incremental.md.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from osiris.core.errors import UserInputError
from osiris.drivers.supabase.sqltypes import qualified, quote_ident

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def cursor_sql(cursor: str) -> str:
    """A column name quoted, an SQL expression in parentheses."""
    return quote_ident(cursor) if _IDENT.match(cursor) else f"({cursor})"


def source_sql(config: dict[str, Any], schema: str) -> tuple[str, str | None]:
    """(`FROM ...` of the step's rows, its filter or None)."""
    if config.get("query"):
        return f"FROM ({str(config['query']).strip().rstrip(';')}) AS q", None
    where = config.get("where")
    return f"FROM {qualified(schema, config['table'])}", f"({where})" if where else None


def plan_window(pg: Any, config: dict[str, Any], read: Any, schema: str, step_id: str) -> tuple[str, dict[str, Any]]:
    """(the SELECT of the window, the window's facts)."""
    from osiris.runtime import incremental as inc

    block = inc.IncrementalConfig.from_config(config["incremental"], step=step_id)
    expr = cursor_sql(block.cursor)
    source, where = source_sql(config, schema)
    cols = ", ".join(quote_ident(c) for c in config.get("columns") or []) or "*"
    with pg.cursor() as cur:
        cur.execute(f"SELECT MAX({expr}) {source}" + (f" WHERE {where}" if where else ""))
        high = cur.fetchone()[0]
        if block.on_null_cursor == "error":
            cond = f"{where} AND {expr} IS NULL" if where else f"{expr} IS NULL"
            cur.execute(f"SELECT 1 {source} WHERE {cond} LIMIT 1")
            if cur.fetchone():
                raise UserInputError(
                    f"Step `{step_id}`: " + inc.NULL_CURSOR_ERROR.format(cursor=block.cursor), step=step_id
                )
        low, before, after = inc.plan_bounds(block, read, high, step=step_id)
        aware = isinstance(high, datetime) and high.tzinfo is not None

        def literal(value: Any) -> Any:  # a `timestamptz` cursor's bounds say they are UTC
            return value.replace(tzinfo=UTC) if aware and isinstance(value, datetime) else value

        if high is None:
            window = "FALSE"
        else:
            parts = [cur.mogrify(f"{expr} <= %s", (high,)).decode()]
            if low is not None:
                parts.insert(0, cur.mogrify(f"{expr} >= %s", (literal(low),)).decode())
            window = " AND ".join(parts)
    pg.rollback()
    if block.on_null_cursor == "include":
        window = f"({window}) OR {expr} IS NULL"
    sql = f"SELECT {cols} {source} WHERE " + (f"{where} AND ({window})" if where else window)
    return sql, inc.window_facts(block, read, low, high, before, after)


def key_sql(config: dict[str, Any], columns: list[str], schema: str) -> str:
    """The SELECT of only the key columns of every source row in scope (`deletes: reconcile`)."""
    source, where = source_sql(config, schema)
    return f"SELECT {', '.join(quote_ident(c) for c in columns)} {source}" + (f" WHERE {where}" if where else "")
