"""The incremental window of `mysql.extractor`: the upper bound first, then the rows inside the window.

`plan_window` runs on the extractor's metadata connection before anything is read:

1. `SELECT MAX(<cursor>)` over the table (with its `where`) or the query: the upper bound `high`,
   taken before the read, so rows written while the read runs wait for the next run;
2. with `on_null_cursor: error`, whether any row has a NULL cursor (the step stops naming it);
3. the low bound: `watermark - lag` (the oldest watermark of the step's destinations), else
   `initial_value`, else none; with a full refresh, none;
4. the step's config rewritten to read `low <= cursor <= high` (plus `OR cursor IS NULL` with
   `on_null_cursor: include`): a `where` added in table mode, the query wrapped in query mode.

The new watermark is `high` (never older than the one before). See docs/incremental.md.
"""

from __future__ import annotations

import re
from typing import Any

from osiris.core.errors import UserInputError
from osiris.drivers.sql import mysql_client as client

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def cursor_sql(cursor: str) -> str:
    """A column name quoted, an SQL expression in parentheses."""
    return "`" + cursor + "`" if _IDENT.match(cursor) else f"({cursor})"


def source_sql(meta: Any, config: dict[str, Any], step_id: str) -> tuple[str, str | None]:
    """(`FROM ...` of the step's rows, its filter or None): the table with `where`, or the query as `q`."""
    if config.get("query"):
        query = client.bind(meta, str(config["query"]).strip().rstrip(";").strip(), config.get("params"))
        return f"FROM ({query}) AS q", None
    table = client.quote_identifier(str(config["table"]), what="`table`", step=step_id)
    where = config.get("where")
    return f"FROM {table}", f"({where})" if where else None


def _scalar(meta: Any, sql: str) -> Any:
    cur = meta.cursor()
    try:
        cur.execute(sql)
        row = cur.fetchone()
        return row[0] if row else None
    finally:
        cur.close()


def plan_window(meta: Any, config: dict[str, Any], read: Any, step_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the config that reads the window, the window's facts for the run card and the writer)."""
    from osiris.runtime import incremental as inc

    block = inc.IncrementalConfig.from_config(config["incremental"], step=step_id)
    what = f"Step `{step_id}`"
    expr = cursor_sql(block.cursor)
    source, where = source_sql(meta, config, step_id)

    def filtered(cond: str) -> str:
        return f"{source} WHERE {where} AND ({cond})" if where else f"{source} WHERE {cond}"

    high = _scalar(meta, f"SELECT MAX({expr}) {source}" + (f" WHERE {where}" if where else ""))
    if block.on_null_cursor == "error" and _scalar(meta, f"SELECT 1 {filtered(f'{expr} IS NULL')} LIMIT 1"):
        raise UserInputError(f"{what}: " + inc.NULL_CURSOR_ERROR.format(cursor=block.cursor), step=step_id)
    low, before, after = inc.plan_bounds(block, read, high, step=step_id)
    if high is None:
        window = "FALSE"
    else:
        parts = [f"{expr} <= {meta.escape(high)}"]
        if low is not None:
            parts.insert(0, f"{expr} >= {meta.escape(low)}")
        window = " AND ".join(parts)
    if block.on_null_cursor == "include":
        window = f"({window}) OR {expr} IS NULL"
    new = dict(config)
    new.pop("incremental", None)
    if config.get("query"):
        new["query"] = f"SELECT * {source} WHERE {window}"
        new.pop("params", None)
    else:
        new["where"] = f"({config['where']}) AND ({window})" if config.get("where") else window
    facts = inc.window_facts(block, read, low, high, before, after)
    return new, facts


def key_sql(meta: Any, config: dict[str, Any], columns: list[str], step_id: str) -> str:
    """The SELECT of only the key columns of every source row in scope (for `deletes: reconcile`)."""
    source, where = source_sql(meta, config, step_id)
    cols = ", ".join("`" + c.replace("`", "``") + "`" for c in columns)
    return f"SELECT {cols} {source}" + (f" WHERE {where}" if where else "")
