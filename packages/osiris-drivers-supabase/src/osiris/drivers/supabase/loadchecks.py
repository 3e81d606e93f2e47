"""Checks a load makes on its staged rows before it touches the target: repeated keys, values that do not fit.

Both run inside the load's transaction on the staging table, and only where they can
find something (a key error from PostgreSQL, a column whose type the table does not hold
by type alone), so a clean load pays nothing for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from osiris.core.errors import TerminalError
from osiris.drivers.supabase.sqltypes import quote_ident
from osiris.drivers.supabase.typefit import misfit_condition

EXAMPLES = 5


@dataclass(frozen=True)
class DuplicateStats:
    """Repeated keys in a load: rows beyond the first of each key, how many keys repeat, a few examples."""

    rows_extra: int
    keys_repeated: int
    examples: list[tuple[tuple[Any, ...], int]]


class DuplicateKeysError(TerminalError):
    """The input repeats a `primary_key` value and `on_duplicate_keys` is `error`."""

    def __init__(self, message: str, stats: DuplicateStats, *, step: str | None) -> None:
        super().__init__(message, step=step)
        self.stats = stats


def duplicate_keys(cur: Any, source: str, key: list[str]) -> DuplicateStats:
    """Count the repeated keys of `source` (a table or subquery, SQL) on a psycopg2 cursor."""
    keys = ", ".join(quote_ident(k) for k in key)
    cur.execute(
        f"SELECT coalesce(sum(n - 1), 0), count(*) FROM "
        f"(SELECT count(*) AS n FROM {source} s GROUP BY {keys} HAVING count(*) > 1) d"
    )
    extra, repeated = cur.fetchone()
    examples: list[tuple[tuple[Any, ...], int]] = []
    if repeated:
        text_keys = ", ".join(f"{quote_ident(k)}::text" for k in key)
        cur.execute(
            f"SELECT {text_keys}, count(*) AS n FROM {source} s GROUP BY {keys} HAVING count(*) > 1 "
            f"ORDER BY n DESC, {keys} LIMIT {EXAMPLES}"
        )
        examples = [(tuple(row[:-1]), int(row[-1])) for row in cur.fetchall()]
    return DuplicateStats(int(extra), int(repeated), examples)


def describe_examples(key: list[str], examples: list[tuple[tuple[Any, ...], int]]) -> str:
    """`emp_no=10001 (17 rows), emp_no=10002 (6 rows)` for messages."""
    parts = []
    for values, n in examples:
        pairs = ", ".join(f"{k}={'NULL' if v is None else v}" for k, v in zip(key, values, strict=True))
        parts.append(f"{pairs if len(key) == 1 else '(' + pairs + ')'} ({n} rows)")
    return ", ".join(parts)


def duplicate_keys_error(
    stats: DuplicateStats, *, key: list[str], rows: int, table: str, mode: str, step: str | None
) -> DuplicateKeysError:
    """The error for a load whose input repeats keys (`on_duplicate_keys: error`)."""
    names = ", ".join(f"`{k}`" for k in key)
    todo = (
        "make the key unique upstream (an `append` keeps every row)"
        if mode == "append"
        else "set `on_duplicate_keys: keep_last` or `keep_first` to keep one row per key and drop the others, "
        "or make the key unique upstream"
    )
    message = (
        f"Step `{step}`: the input repeats {stats.keys_repeated:,} value(s) of the key {names} of `{table}`: "
        f"{stats.rows_extra:,} of its {rows:,} rows repeat a key already in the load "
        f"(e.g. {describe_examples(key, stats.examples)}); nothing was written. To load it, {todo}"
    )
    return DuplicateKeysError(message, stats, step=step)


class Unstorable(Exception):
    """PostgreSQL cannot convert some value at all (out of range, not parsable)."""

    def __init__(self, detail: str, code: str | None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


def misfit_values(cur: Any, source: str, column: str, staged: str, target: str) -> tuple[int, list[str]]:
    """(how many, a few examples) of `column`'s values in `source` that `target` would not store exactly.

    Runs under a savepoint; a value PostgreSQL cannot convert at all (out of range, not
    parsable) raises `Unstorable`.
    """
    import psycopg2

    cond = misfit_condition(f"s.{quote_ident(column)}", staged, target)
    if cond is None:
        return 0, []
    cur.execute("SAVEPOINT osiris_fit")
    try:
        cur.execute(f"SELECT count(*) FROM {source} s WHERE {cond}")
        n = int(cur.fetchone()[0])
        examples: list[str] = []
        if n:
            cur.execute(f"SELECT s.{quote_ident(column)}::text FROM {source} s WHERE {cond} LIMIT {EXAMPLES}")
            examples = [r[0] for r in cur.fetchall()]
        cur.execute("RELEASE SAVEPOINT osiris_fit")
        return n, examples
    except psycopg2.Error as exc:
        cur.execute("ROLLBACK TO SAVEPOINT osiris_fit")
        detail = (exc.pgerror or str(exc)).strip().splitlines()[0].removeprefix("ERROR:").strip()
        raise Unstorable(detail, exc.pgcode) from None


def scan_duplicates(batches: Any, key: list[str], policy: str) -> tuple[DuplicateStats, set[int]]:
    """Repeated keys in a stream of record batches, and the row numbers (0-based) that `policy` drops.

    For channels without a staging table (REST): one entry per distinct key is held in memory.
    `keep_first` drops every later row of a key, `keep_last` every earlier one; `error` drops none.
    """
    kept: dict[tuple[Any, ...], int] = {}
    counts: dict[tuple[Any, ...], int] = {}
    drop: set[int] = set()
    row = 0
    for batch in batches:
        columns = [batch.column(k).to_pylist() for k in key]
        for values in zip(*columns, strict=True):
            k = tuple(values)
            if k in kept:
                counts[k] += 1
                if policy == "keep_last":
                    drop.add(kept[k])
                    kept[k] = row
                elif policy == "keep_first":
                    drop.add(row)
            else:
                kept[k] = row
                counts[k] = 1
            row += 1
    repeated = {k: n for k, n in counts.items() if n > 1}
    examples = sorted(repeated.items(), key=lambda kv: (-kv[1], [str(v) for v in kv[0]]))[:EXAMPLES]
    stats = DuplicateStats(
        sum(n - 1 for n in repeated.values()),
        len(repeated),
        [(tuple(None if v is None else str(v) for v in k), n) for k, n in examples],
    )
    return stats, drop
