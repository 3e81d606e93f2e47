"""Small DuckDB helpers shared by the DuckDB processor and writer."""

from __future__ import annotations

from pathlib import Path


def quote_ident(name: str) -> str:
    """`name` as a DuckDB identifier in double quotes."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str | Path) -> str:
    """`text` as a SQL string literal in single quotes."""
    return "'" + str(text).replace("'", "''") + "'"
