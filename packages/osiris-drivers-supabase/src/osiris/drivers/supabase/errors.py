"""Mapping database and HTTP failures onto Osiris's terminal / transient errors (the runner retries the latter)."""

from __future__ import annotations

import re

from osiris.core.errors import OsirisError, TerminalError, TransientError

# SQLSTATEs worth retrying: connection exceptions (08…), serialization failure, deadlock,
# admin shutdown / crash / cannot connect now, too many connections, lock timeout.
TRANSIENT_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03", "53300", "55P03"}


def is_transient_sqlstate(code: str | None) -> bool:
    """Whether a SQLSTATE names a failure that may go away when retried."""
    if not code:
        return False
    return code in TRANSIENT_SQLSTATES or code.startswith("08")


_MESSAGE_COLUMN = re.compile(r'\bcolumn "([^"]+)"')
_MESSAGE_CONSTRAINT = re.compile(r'\bconstraint "([^"]+)"')


def from_postgres(exc: BaseException, *, step: str | None, table: str, doing: str) -> OsirisError:
    """An Osiris error for a psycopg2 / ADBC exception, with the Postgres message, table and column."""
    code = getattr(exc, "pgcode", None) or getattr(exc, "sqlstate", None)
    diag = getattr(exc, "diag", None)
    message = (getattr(exc, "pgerror", None) or str(exc)).strip()
    # ADBC prefixes its messages; keep what Postgres said.
    for prefix in ("[libpq] ", "IO: ", "INTERNAL: "):
        message = message.replace(prefix, "")
    # ADBC pastes the traceback of a Python error raised while it read the input: keep its last line.
    head, sep, trace = message.partition("Detail: Python exception: Traceback (most recent call last):")
    if sep:
        last = [line.strip() for line in trace.strip().splitlines() if line.strip()]
        message = f"{head.strip()} ({last[-1]})" if last else head.strip()
    parts = [f"{doing} `{table}` failed: {message}"]
    column = getattr(diag, "column_name", None) if diag is not None else None
    constraint = getattr(diag, "constraint_name", None) if diag is not None else None
    if diag is None:
        # ADBC errors carry no diagnostic fields: read them from Postgres' own message.
        found = _MESSAGE_COLUMN.search(message)
        column = found.group(1) if found else None
        found = _MESSAGE_CONSTRAINT.search(message)
        constraint = found.group(1) if found else None
    if column:
        parts.append(f"column `{column}`")
    if constraint:
        parts.append(f"constraint `{constraint}`")
    if code:
        parts.append(f"SQLSTATE {code}")
    text = "; ".join(parts)
    lost = code is None and any(
        s in message.lower() for s in ("server closed the connection", "connection", "terminating", "broken pipe")
    )
    if is_transient_sqlstate(code) or lost:
        return TransientError(text, step=step)
    return TerminalError(text, step=step)


def http_error(status: int, body: str, *, step: str | None, doing: str) -> OsirisError:
    """An Osiris error for an HTTP failure: 5xx and 429 are transient, the rest terminal."""
    text = f"{doing} failed: HTTP {status}: {body.strip()[:500]}"
    if status >= 500 or status in (408, 429):
        return TransientError(text, step=step)
    return TerminalError(text, step=step)
