"""PostgreSQL identifiers: the 63-byte limit, checked before any SQL runs, and staging table names.

PostgreSQL cuts every identifier to 63 bytes (NAMEDATALEN - 1) without an error, so two
different long names can name one table. The writer refuses such names instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from osiris.core.errors import UserInputError

PG_MAX_IDENTIFIER_BYTES = 63
STAGE_PREFIX = "_osiris_stage_"


def byte_length(name: str) -> int:
    """The name's length in UTF-8 bytes (what PostgreSQL's limit counts)."""
    return len(name.encode("utf-8"))


def check(names: Iterable[tuple[str, str]], *, step: str | None) -> None:
    """Raise for the first (what, name) whose name is empty or longer than PostgreSQL keeps."""
    for what, name in names:
        if not name:
            raise UserInputError(f"Step `{step}`: {what} is empty", step=step)
        if "\x00" in name:
            raise UserInputError(f"Step `{step}`: {what} `{name!r}` contains a NUL character", step=step)
        n = byte_length(name)
        if n > PG_MAX_IDENTIFIER_BYTES:
            raise UserInputError(
                f"Step `{step}`: {what} `{name}` is {n} bytes long (UTF-8); PostgreSQL keeps only the first "
                f"{PG_MAX_IDENTIFIER_BYTES} bytes of a name, so it would silently become "
                f"`{truncate_bytes(name, PG_MAX_IDENTIFIER_BYTES)}`: use a name of at most "
                f"{PG_MAX_IDENTIFIER_BYTES} bytes",
                step=step,
            )


def truncate_bytes(text: str, limit: int) -> str:
    """The longest prefix of `text` whose UTF-8 form has at most `limit` bytes (whole characters only)."""
    out = text.encode("utf-8")[:limit]
    return out.decode("utf-8", errors="ignore")


def stage_name(table: str, token: str) -> str:
    """A staging table name for `table`: `_osiris_stage_<token>_<table prefix>`, at most 63 bytes.

    The random `token` comes first, so it survives however long or non-ASCII the table's name is.
    """
    head = f"{STAGE_PREFIX}{token}_"
    return head + truncate_bytes(table, PG_MAX_IDENTIFIER_BYTES - byte_length(head))
