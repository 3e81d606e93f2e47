"""Small staged loads over the load's own psycopg2 session: a CSV COPY instead of ADBC's binary COPY.

Opening an ADBC PostgreSQL database costs about 50 ms of CPU before the first row is sent: it reads the
server's whole type catalogue and copies it entry by entry (more on a database with extensions). For a
small load, an hourly incremental run's few thousand rows, that was the largest single cost of the step.

Up to `TEXT_COPY_MAX_ROWS` rows, when every column's sent value has one exact text form, the batches
(already converted to their `send` types by `staging.prepared_batches`, as for the binary COPY) are
written as CSV by Arrow and copied on the psycopg2 session that then merges them, into a temporary staging
table of that session's transaction. The text forms are exact: integers and decimals as digits, floats as the shortest text that reads
back as the same float (`nan`, `inf`, `-0` included), booleans as `true`/`false`, text always quoted (so
an empty string is `""` and NULL is an empty field), dates and timestamps in ISO form, a time zone's
instants in UTC. Anything else keeps the binary COPY: `bytea` columns, dates and timestamps outside the
years 1 to 9999 (Arrow's and PostgreSQL's forms of them differ), more rows or bytes than the limits (the
batches and their CSV are held in memory), or a row count not known in advance (an upstream still
streaming). `OSIRIS_TEXT_COPY_MAX_ROWS` and `OSIRIS_TEXT_COPY_MAX_BYTES` set the limits (0: always the
binary COPY).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from osiris.drivers.supabase.sqltypes import quote_ident

if TYPE_CHECKING:
    import pyarrow as pa

TEXT_COPY_MAX_ROWS = 50_000
# The batches and their CSV are held in memory for the COPY: a load of few but wide rows past this many bytes
# of Arrow data keeps the binary COPY, which streams.
TEXT_COPY_MAX_BYTES = 32 * 1024 * 1024
# Where Arrow's and PostgreSQL's text forms of a date agree: years 1 to 9999.
_FIRST_DAY = -719162  # 0001-01-01 in days since 1970-01-01
_LAST_DAY = 2932896  # 9999-12-31
_US_PER_DAY = 86_400_000_000


def _limit(variable: str, default: int) -> int:
    value = os.environ.get(variable, "").strip()
    return int(value) if value.lstrip("-").isdigit() else default


def max_rows() -> int:
    """The most rows a load sent as CSV has (`OSIRIS_TEXT_COPY_MAX_ROWS`, default `TEXT_COPY_MAX_ROWS`)."""
    return _limit("OSIRIS_TEXT_COPY_MAX_ROWS", TEXT_COPY_MAX_ROWS)


def max_bytes() -> int:
    """The most Arrow bytes a load sent as CSV has (`OSIRIS_TEXT_COPY_MAX_BYTES`, default `TEXT_COPY_MAX_BYTES`)."""
    return _limit("OSIRIS_TEXT_COPY_MAX_BYTES", TEXT_COPY_MAX_BYTES)


def wanted(num_rows: int | None, send_schema: pa.Schema) -> bool:
    """Whether a load of `num_rows` rows of `send_schema` may go as CSV (before its values are seen)."""
    import pyarrow.types as t

    if not num_rows or num_rows > max_rows():
        return False
    return not any(t.is_binary(f.type) or t.is_large_binary(f.type) for f in send_schema)


def _in_range(column: pa.Array) -> bool:
    """Every date or timestamp of `column` lies in the years 1 to 9999 (other types: always true)."""
    import pyarrow as pa
    import pyarrow._compute as pc
    import pyarrow.types as t

    if t.is_date32(column.type):
        low, high = _FIRST_DAY, _LAST_DAY + 1
        ints = column.view(pa.int32())
    elif t.is_timestamp(column.type) and column.type.unit == "us":
        low, high = _FIRST_DAY * _US_PER_DAY, (_LAST_DAY + 1) * _US_PER_DAY
        ints = column.view(pa.int64())
    else:
        return True
    if column.null_count == len(column):
        return True
    bounds = pc.call_function("min_max", [ints])
    return low <= bounds["min"].as_py() and bounds["max"].as_py() < high


def text_batches(batches: Iterable[pa.RecordBatch]) -> list[pa.RecordBatch] | None:
    """The prepared batches, ready for `copy_csv` (time zones' instants in UTC), or None when one of
    their values has no exact CSV form here (a date or timestamp outside the years 1 to 9999) or they
    hold more than `max_bytes()`."""
    import pyarrow as pa
    import pyarrow.types as t

    out = []
    held, limit = 0, max_bytes()
    for batch in batches:
        held += batch.nbytes
        if held > limit:
            return None
        columns = []
        for column in batch.columns:
            if not _in_range(column):
                return None
            if t.is_timestamp(column.type) and column.type.tz is not None and column.type.tz != "UTC":
                column = column.cast(pa.timestamp(column.type.unit, tz="UTC"))  # the same instants
            columns.append(column)
        out.append(pa.RecordBatch.from_arrays(columns, names=batch.schema.names))
    return out


def copy_csv(cur: Any, table: str, batches: list[pa.RecordBatch]) -> int:
    """COPY `batches` into `table` (a qualified name) as CSV on the psycopg2 cursor `cur`; the row count."""
    import pyarrow.csv as pcsv

    if not batches:
        return 0
    buffer = io.BytesIO()
    with pcsv.CSVWriter(buffer, batches[0].schema, write_options=pcsv.WriteOptions(include_header=False)) as writer:
        for batch in batches:
            writer.write_batch(batch)
    buffer.seek(0)
    columns = ", ".join(quote_ident(n) for n in batches[0].schema.names)
    if cur.connection.encoding not in ("UTF8", "UNICODE"):
        cur.execute("SET LOCAL client_encoding = 'UTF8'")  # Arrow's text is UTF-8, whatever the database's
    cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)
    return sum(b.num_rows for b in batches)
