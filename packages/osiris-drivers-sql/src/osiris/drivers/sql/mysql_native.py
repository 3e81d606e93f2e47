"""The native read path: a prepared statement's binary rows decoded by `_mysql_rows` (C) into Arrow.

pymysql connects, prepares the statement (COM_STMT_PREPARE), executes it
(COM_STMT_EXECUTE) and reads the result's column definitions. From then on this module
reads the socket in large chunks and `_mysql_rows.RowParser` splits them into row
packets and decodes every value straight into Arrow buffers: integers, FLOAT and DOUBLE
as the server's own little-endian bytes, DECIMAL as 128-bit unscaled integers (wider
ones as text, parsed exactly here), dates and times as days or microseconds, and
strings, BLOBs and JSON as offsets plus bytes. Every type is exact this way, so no
column is rewritten on the server.

The binary protocol also costs the server less than the text protocol the `mariadb`
client reads (see `scripts/bench mysql-extract`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from osiris.drivers.sql import mysql_types as t

if TYPE_CHECKING:
    import pyarrow as pa

    from osiris.drivers.sql.mysql_types import ColumnPlan

# Bytes asked of the socket per read. Large reads keep the Python work per row near zero.
CHUNK = 1 << 20

_FIXED = {
    t.TINY: ("K_FIX1", "int8"),
    t.SHORT: ("K_FIX2", "int16"),
    t.YEAR: ("K_FIX2", "int16"),
    t.INT24: ("K_FIX4", "int32"),
    t.LONG: ("K_FIX4", "int32"),
    t.LONGLONG: ("K_FIX8", "int64"),
    t.FLOAT: ("K_FIX4", "float32"),
    t.DOUBLE: ("K_FIX8", "float64"),
}
_DATES = {t.DATE, t.NEWDATE}
_DATETIMES = {t.DATETIME, t.DATETIME2, t.TIMESTAMP, t.TIMESTAMP2}
_TIMES = {t.TIME, t.TIME2}


def module() -> Any:
    """The compiled `_mysql_rows` module, or None when this install was built without it."""
    try:
        from osiris.drivers.sql import _mysql_rows
    except ImportError:
        return None
    return _mysql_rows


def available() -> bool:
    """Whether the native row parser is installed."""
    return module() is not None


class Column:
    """How one result column is decoded (`kind` for the parser) and finished into its planned Arrow type."""

    def __init__(self, field: Any, plan: ColumnPlan, rows: Any) -> None:
        import pyarrow as pa

        self.plan = plan
        self.scale = self.precision = 0
        code = field.type_code
        unsigned = bool(field.flags & t.UNSIGNED_FLAG)
        self.finish: Callable[[pa.Array], pa.Array] | None = None
        if plan.kind == "null" or code == t.NULL:
            self.kind, self.physical = rows.K_NULL, pa.null()
        elif code == t.TINY and plan.kind == "bool":
            self.kind, self.physical = rows.K_BOOL, pa.bool_()  # TINYINT(1): bits written by the parser
        elif code in _FIXED:
            name, physical = _FIXED[code]
            if unsigned and physical.startswith("int") and code != t.YEAR:
                physical = "u" + physical
            self.kind, self.physical = getattr(rows, name), getattr(pa, physical)()
        elif code in (t.DECIMAL, t.NEWDECIMAL) and pa.types.is_decimal128(plan.arrow_type):
            self.kind, self.physical = rows.K_DEC128, plan.arrow_type
            self.scale, self.precision = plan.arrow_type.scale, plan.arrow_type.precision
        elif code in _DATES:
            self.kind, self.physical = rows.K_DATE, pa.date32()
        elif code in _DATETIMES:
            tz = "UTC" if code in (t.TIMESTAMP, t.TIMESTAMP2) else None  # the session's zone is +00:00
            self.kind, self.physical = rows.K_DATETIME, pa.timestamp("us", tz=tz)
        elif code in _TIMES:
            self.kind, self.physical = rows.K_TIME, pa.duration("us")
        elif code == t.BIT:
            bit1 = pa.types.is_boolean(plan.arrow_type)
            self.kind, self.physical = (rows.K_BITBOOL, pa.bool_()) if bit1 else (rows.K_BIT, pa.uint64())
        else:
            # Strings, BLOBs, JSON, ENUM, SET, GEOMETRY and DECIMALs wider than 38 digits.
            text = pa.types.is_string(plan.arrow_type) or plan.kind == "decimal"
            self.kind, self.physical = rows.K_BYTES, pa.string() if text else pa.binary()
            if plan.kind == "decimal":
                self.finish = plan.from_text_array
        self.is_null = self.kind == rows.K_NULL
        if self.finish is None and self.physical != plan.arrow_type:
            self.finish = plan.finish_cx  # a checked cast; the common types need none (and no pyarrow.compute)

    def spec(self) -> tuple[int, int, int, bool]:
        return (self.kind, self.scale, self.precision, self.plan.zero_dates_as_null)

    def array(self, n: int, validity: bytes | None, data: bytes | None, offsets: bytes | None) -> pa.Array:
        import pyarrow as pa

        if self.is_null:
            arr = pa.nulls(n)
        else:
            bufs = [None if validity is None else pa.py_buffer(validity)]
            if offsets is not None:
                bufs.append(pa.py_buffer(offsets))
            bufs.append(pa.py_buffer(data))
            arr = pa.Array.from_buffers(self.physical, n, bufs)
        return self.finish(arr) if self.finish is not None else arr


def prepare_and_execute(conn: Any, sql: str) -> list[Any]:
    """Prepare `sql` on `conn`, execute it without a cursor, and read its column definitions.

    What the server sends next on the connection is the result's binary rows.
    """
    from pymysql.constants import COMMAND
    from pymysql.protocol import FieldDescriptorPacket

    from osiris.drivers.sql.mysql_client import prepare

    stmt_id, prepared, _ = prepare(conn, sql)
    # stmt id, flags 0 (CURSOR_TYPE_NO_CURSOR: rows follow at once), iteration count 1
    conn._execute_command(COMMAND.COM_STMT_EXECUTE, struct.pack("<IBI", stmt_id, 0, 1))
    conn._read_packet()  # the column count
    fields = [conn._read_packet(FieldDescriptorPacket) for _ in prepared]
    conn._read_packet()  # EOF after the column definitions
    return fields


class Failure(Exception):
    """The result failed while streaming: `kind` is `server` (ERR packet), `bad_date`, `protocol` or `lost`."""

    def __init__(self, kind: str, detail: Any) -> None:
        super().__init__(kind, detail)
        self.kind = kind
        self.detail = detail


def stream_rows(
    conn: Any, columns: list[Column], schema: pa.Schema, batch_size: int, read_timeout: float | None
) -> tuple[Iterator[pa.RecordBatch], Callable[[], list[int]]]:
    """Decode the rows the server is sending on `conn` into record batches of `batch_size` rows.

    Also returns a function giving, per column, the zero dates read as NULL so far.
    Raises `Failure` for what goes wrong mid-stream; the caller closes `conn`.
    """
    import pyarrow as pa

    parser = module().RowParser([c.spec() for c in columns], batch_size)

    def build(batch: tuple[int, list[tuple[bytes | None, bytes | None, bytes | None]]]) -> pa.RecordBatch:
        n, bufs = batch
        return pa.RecordBatch.from_arrays([c.array(n, *b) for c, b in zip(columns, bufs, strict=True)], schema=schema)

    def gen() -> Iterator[pa.RecordBatch]:
        conn._sock.settimeout(read_timeout)
        rfile = conn._rfile
        while not parser.done:
            try:
                # read1, not readinto1: with bytes already buffered, readinto1 goes on to ask the
                # socket for the rest of the chunk and waits when the server has sent everything.
                got = rfile.read1(CHUNK)
            except OSError as exc:
                raise Failure("lost", str(exc) or type(exc).__name__) from None
            if not got:
                raise Failure("lost", "the server closed the connection")
            for batch in parser.feed(got):
                yield build(batch)
            if parser.error_packet is not None:
                raise Failure("server", parser.error_packet)
            if parser.bad_date is not None:
                raise Failure("bad_date", parser.bad_date)
            if parser.protocol_error is not None:
                raise Failure("protocol", parser.protocol_error)
        last = parser.finish()
        if last is not None:
            yield build(last)

    return gen(), lambda: parser.zero_dates
