"""MySQL/MariaDB result-column metadata to exact Arrow types.

A `ColumnPlan` is decided from a result column's metadata alone (type code, flags,
length, decimals, character set), so a result with zero rows still has the right
schema. It also knows how to turn the column's text-protocol values into an Arrow
array of that type, and how to finish what connectorx delivers for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

# Field type codes of the MySQL client/server protocol (include/mysql_com.h).
DECIMAL, TINY, SHORT, LONG, FLOAT, DOUBLE, NULL, TIMESTAMP, LONGLONG, INT24 = range(10)
DATE, TIME, DATETIME, YEAR, NEWDATE, VARCHAR, BIT = range(10, 17)
TIMESTAMP2, DATETIME2, TIME2 = 17, 18, 19
JSON, NEWDECIMAL, ENUM, SET = 245, 246, 247, 248
TINY_BLOB, MEDIUM_BLOB, LONG_BLOB, BLOB, VAR_STRING, STRING, GEOMETRY = range(249, 256)

NOT_NULL_FLAG = 1
PRI_KEY_FLAG = 2
UNSIGNED_FLAG = 32
ENUM_FLAG = 256
SET_FLAG = 2048
BINARY_CHARSET = 63

# Arrow field metadata the extractor sets for what Arrow's types cannot say (read by supabase.writer):
# the type the column was declared with where it matters (`varchar(40)`, `char(2)`, `bit(5)`, `json`),
# and the column's position in the source table's primary key.
SQL_TYPE_KEY = "osiris.sql_type"
PRIMARY_KEY_KEY = "osiris.primary_key"
# Bytes per character of the result's character set (the connection's `charset`): text columns'
# metadata lengths count bytes of it, so VARCHAR(40) in utf8mb4 reports 160.
CHARSET_MAX_BYTES = {
    "utf8mb4": 4,
    "utf8mb3": 3,
    "utf8": 3,
    "latin1": 1,
    "ascii": 1,
    "ucs2": 2,
    "utf16": 4,
    "utf16le": 4,
    "utf32": 4,
    "cp1250": 1,
    "cp1251": 1,
    "cp1252": 1,
    "latin2": 1,
    "greek": 1,
    "hebrew": 1,
}

_INTEGERS = {TINY: 8, SHORT: 16, INT24: 32, LONG: 32, LONGLONG: 64}
_STRINGS = {VARCHAR, VAR_STRING, STRING, TINY_BLOB, MEDIUM_BLOB, LONG_BLOB, BLOB, ENUM, SET}
# connectorx decodes decimals through a 96-bit decimal into decimal128(38, 10): exact only within these bounds.
CX_MAX_DECIMAL_PRECISION = 28
CX_MAX_DECIMAL_SCALE = 10
# A DECIMAL of up to 18 digits, times 10**scale, fits a signed BIGINT. Reading it that way
# (the server multiplies, connectorx reads an integer) costs less than connectorx's decimal
# parsing: 2M rows with two such columns took 0.6 s less CPU in the reading process and
# 0.1-0.2 s more in the server (the narrow table of scripts/bench mysql-extract).
SCALED_DECIMAL_MAX_PRECISION = 18

_TIME_TEXT = re.compile(r"^(-)?(\d+):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$")
_ARROW_BAD_TEXT = re.compile(r"Failed to parse string: '([^']*)'")

# The kinds of DATE, DATETIME and TIMESTAMP columns: the ones that can hold zero or partial dates.
DATE_KINDS = frozenset({"date", "timestamp", "timestamp_utc"})


class BadDateValue(ValueError):
    """A DATE/DATETIME/TIMESTAMP value with no calendar date: a zero or partial date, or an invalid one."""

    def __init__(self, column: str, mysql_type: str, value: str) -> None:
        super().__init__(f"Column `{column}` ({mysql_type}) holds `{value}`, which is not a calendar date")
        self.column = column
        self.mysql_type = mysql_type
        self.value = value

    @property
    def zero(self) -> bool:
        """Whether the value is a zero or partial date (month or day 0), which `zero_dates: "null"` reads as NULL."""
        return is_zero_date(self.value)


def is_zero_date(text: str) -> bool:
    """Whether a server's DATE/DATETIME/TIMESTAMP text (`YYYY-MM-DD[ hh:mm:ss[.ffffff]]`) has month or day 0.

    That covers `0000-00-00` and partial dates such as `2024-02-00`; year 0 with a real
    month and day (`0000-01-01`) is a date and is kept.
    """
    return len(text) >= 10 and text[4] == "-" and (text[5:7] == "00" or text[8:10] == "00")


@dataclass(frozen=True)
class ColumnPlan:
    """How one result column becomes an Arrow column.

    `kind` is a short family name (`int`, `bool`, `decimal`, `time`, ...), `mysql_type` a
    readable description for messages and docs, `cx_exact` whether connectorx's value for
    the column, passed through `finish_cx`, is exact, and `cast_as_char` whether a
    generated `SELECT` should ask the server for the column as text instead.
    `cx_select` gives the expression such a `SELECT` reads the column with.
    `zero_dates_as_null` (date kinds only): zero and partial dates in text values become
    NULL; without it they raise `BadDateValue`. `not_null`: the server says the column holds
    no NULL (the Arrow field is then not nullable); `sql_type`: the declared type where Arrow
    has no word for it (field metadata `osiris.sql_type`).
    """

    name: str
    mysql_type: str
    kind: str
    arrow_type: Any
    cx_exact: bool
    cast_as_char: bool = False
    zero_dates_as_null: bool = False
    not_null: bool = False
    sql_type: str | None = None

    def from_text(self, values: list[Any]) -> pa.Array:
        """Build the Arrow array from text-protocol values (str, bytes or None per row)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        t = self.arrow_type
        if self.kind == "null":
            return pa.nulls(len(values))
        if self.kind in ("string", "json"):
            return pa.array(values, pa.string())
        if self.kind == "binary":
            return pa.array(values, pa.binary())
        if self.kind == "bit":
            ints = [None if v is None else int.from_bytes(_as_bytes(v), "big") for v in values]
            arr = pa.array(ints, pa.uint64())
            return nonzero(arr) if pa.types.is_boolean(t) else arr
        if self.kind == "time":
            return pa.array([None if v is None else _time_text_to_us(_as_str(v)) for v in values], pa.int64()).cast(t)
        if self.kind in DATE_KINDS:
            return self._dates_from_text([None if v is None else _as_str(v) for v in values])
        text = pa.array([None if v is None else _as_str(v) for v in values], pa.string())
        if self.kind == "bool":
            return nonzero(pc.cast(text, pa.int64()))
        # int, uint, decimal, float, year: Arrow's own exact text parsers.
        return pc.cast(text, t)

    def cx_select(self, column: str) -> str | None:
        """The expression a generated SELECT reads `column` (quoted) with for connectorx; None: as it is."""
        if self.cast_as_char:
            return f"CAST({column} AS CHAR)"
        if self.zero_dates_as_null:
            # MONTH() and DAYOFMONTH() are 0 only for zero and partial dates; the value's type
            # and fractional digits stay as they were.
            return f"IF(MONTH({column}) > 0 AND DAYOFMONTH({column}) > 0, {column}, NULL)"
        if self.kind == "decimal" and self.arrow_type.precision <= SCALED_DECIMAL_MAX_PRECISION:
            # The unscaled value as an integer; `finish_cx` puts the scale back.
            scaled = f"{column} * 1{'0' * self.arrow_type.scale}" if self.arrow_type.scale else column
            return f"CAST({scaled} AS SIGNED)"
        return None

    def _dates_from_text(self, texts: list[str | None]) -> pa.Array:
        """DATE/DATETIME/TIMESTAMP text to Arrow; zero and partial dates become NULL or raise `BadDateValue`."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.zero_dates_as_null:
            texts = [None if s is None or is_zero_date(s) else s for s in texts]
        text = pa.array(texts, pa.string())
        try:
            if self.kind == "timestamp_utc":
                return pc.cast(pc.cast(text, pa.timestamp("us")), self.arrow_type)
            return pc.cast(text, self.arrow_type)
        except pa.ArrowInvalid as exc:
            # Only on failure: look for the value to name (the first zero date, else the one Arrow names).
            bad = next((s for s in texts if s is not None and is_zero_date(s)), None)
            if bad is None:
                m = _ARROW_BAD_TEXT.search(str(exc))
                if not m:
                    raise
                bad = m.group(1)
            raise BadDateValue(self.name, self.mysql_type, bad) from None

    def finish_cx(self, arr: pa.Array) -> pa.Array:
        """Turn connectorx's array for this column into the planned type, exactly.

        A column read through `cx_select` arrives as text or as a scaled integer; one
        read as it is arrives in connectorx's own type.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.cast_as_char:
            return self.from_text_array(arr)
        if arr.type == self.arrow_type:
            return arr
        if self.kind == "decimal" and pa.types.is_integer(arr.type):
            # Unscaled integers: as decimal(19, 0), then checked to fit the column's
            # precision, then the same 128-bit values read with the column's scale.
            t = self.arrow_type
            whole = pc.cast(arr, pa.decimal128(19, 0))
            return pc.cast(whole, pa.decimal128(t.precision, 0), safe=True).view(t)
        if self.kind == "bool":
            return nonzero(arr)
        if self.kind == "bit":
            return self.from_text(arr.to_pylist())
        if pa.types.is_timestamp(arr.type) and self.kind == "timestamp_utc":
            # The session runs with time_zone '+00:00', so the wall-clock values are UTC.
            return arr.cast(pa.timestamp("us")).cast(self.arrow_type)
        # Safe casts only: a value that does not fit raises instead of being changed.
        return pc.cast(arr, self.arrow_type, safe=True)

    def from_text_array(self, arr: pa.Array) -> pa.Array:
        """Like `from_text`, for values that are already an Arrow string array."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if self.kind == "time":
            return self.from_text(arr.to_pylist())
        return pc.cast(arr.cast(pa.string()), self.arrow_type)


def nonzero(arr: pa.Array) -> pa.Array:
    """`arr != 0` as booleans (nulls stay null)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    # A cast, not `pc.not_equal(arr, 0)`: building the scalar 0 makes pyarrow import pandas
    # (about 50 MiB and over a second). Integer -> boolean casts map nonzero to true.
    return pc.cast(arr, pa.bool_())


def _as_str(v: Any) -> str:
    return v.decode("ascii") if isinstance(v, bytes | bytearray) else v


def _as_bytes(v: Any) -> bytes:
    return v.encode("latin-1") if isinstance(v, str) else bytes(v)


def _time_text_to_us(text: str) -> int:
    """`-838:59:59.999999` → signed microseconds."""
    m = _TIME_TEXT.match(text)
    if not m:
        raise ValueError(f"Unexpected TIME value `{text}`")
    sign, h, mi, s, frac = m.groups()
    us = ((int(h) * 60 + int(mi)) * 60 + int(s)) * 1_000_000 + int((frac or "0").ljust(6, "0"))
    return -us if sign else us


def decimal_precision(length: int, scale: int, unsigned: bool) -> int:
    """A DECIMAL's precision from its metadata length, which counts the sign and the point."""
    p = length - (1 if scale > 0 else 0) - (0 if unsigned else 1)
    return max(p, scale, 1)


def plan_column(
    name: str,
    type_code: int,
    flags: int,
    length: int,
    scale: int,
    charsetnr: int,
    *,
    zero_dates_as_null: bool = False,
    char_bytes: int | None = 4,
    declared: bool = True,
    trust_not_null: bool = True,
) -> ColumnPlan:
    """Decide the Arrow type of a result column from its protocol metadata.

    `zero_dates_as_null` is kept on DATE, DATETIME and TIMESTAMP plans only (they are then
    nullable whatever the server says). `char_bytes` is the bytes per character of the
    result's character set (None: unknown, no lengths); `declared` says the column is a table
    column (the server names its `org_name`), whose VARCHAR(n) / CHAR(n) length is kept;
    `trust_not_null: False` ignores the server's NOT NULL flag (e.g. under `WITH ROLLUP`,
    which puts NULLs in columns the server still describes as NOT NULL).
    """
    plan = _plan_column(name, type_code, flags, length, scale, charsetnr)
    changes: dict[str, Any] = {}
    if zero_dates_as_null and plan.kind in DATE_KINDS:
        changes["zero_dates_as_null"] = True
    elif trust_not_null and flags & NOT_NULL_FLAG and plan.kind != "null":
        changes["not_null"] = True
    sql_type = _declared_type(plan, type_code, flags, length, charsetnr, char_bytes if declared else None)
    if sql_type:
        changes["sql_type"] = sql_type
    return replace(plan, **changes) if changes else plan


def _declared_type(
    plan: ColumnPlan, type_code: int, flags: int, length: int, charsetnr: int, char_bytes: int | None
) -> str | None:
    """The `osiris.sql_type` of a column: `varchar(n)`, `char(n)`, `bit(n)`, `json`, or None."""
    if plan.kind == "bit" and plan.mysql_type != "BIT(1)":
        return f"bit({length})"
    if plan.kind == "json":
        return "json"
    if plan.kind != "string" or plan.mysql_type != "CHAR/VARCHAR/TEXT" or not char_bytes or charsetnr == BINARY_CHARSET:
        return None
    if type_code not in (VARCHAR, VAR_STRING, STRING) or length <= 0 or length % char_bytes:
        return None
    n = length // char_bytes
    # MariaDB's UUID, INET4 and INET6 columns arrive as STRING with the UNSIGNED flag: fixed-width
    # text that is not CHAR(n) (whose values PostgreSQL would pad), so varchar(n).
    if type_code == STRING and not flags & UNSIGNED_FLAG:
        return f"char({n})"
    return f"varchar({n})"


def _plan_column(name: str, type_code: int, flags: int, length: int, scale: int, charsetnr: int) -> ColumnPlan:
    import pyarrow as pa

    unsigned = bool(flags & UNSIGNED_FLAG)
    u = " UNSIGNED" if unsigned else ""
    if type_code == TINY and length == 1:
        return ColumnPlan(name, "TINYINT(1)/BOOLEAN", "bool", pa.bool_(), True)
    if type_code in _INTEGERS:
        bits = _INTEGERS[type_code]
        label = {TINY: "TINYINT", SHORT: "SMALLINT", INT24: "MEDIUMINT", LONG: "INT", LONGLONG: "BIGINT"}[type_code]
        arrow = getattr(pa, f"{'u' if unsigned else ''}int{bits}")()
        return ColumnPlan(name, label + u, "int", arrow, True)
    if type_code in (DECIMAL, NEWDECIMAL):
        p = decimal_precision(length, scale, unsigned)
        arrow = pa.decimal128(p, scale) if p <= 38 else pa.decimal256(p, scale)
        exact = p <= CX_MAX_DECIMAL_PRECISION and scale <= CX_MAX_DECIMAL_SCALE
        return ColumnPlan(name, f"DECIMAL({p},{scale}){u}", "decimal", arrow, exact, cast_as_char=not exact)
    if type_code == FLOAT:
        return ColumnPlan(name, "FLOAT", "float", pa.float32(), True)
    if type_code == DOUBLE:
        return ColumnPlan(name, "DOUBLE", "float", pa.float64(), True)
    if type_code in (DATE, NEWDATE):
        return ColumnPlan(name, "DATE", "date", pa.date32(), True)
    if type_code in (DATETIME, DATETIME2):
        return ColumnPlan(name, "DATETIME", "timestamp", pa.timestamp("us"), True)
    if type_code in (TIMESTAMP, TIMESTAMP2):
        return ColumnPlan(name, "TIMESTAMP", "timestamp_utc", pa.timestamp("us", tz="UTC"), True)
    if type_code in (TIME, TIME2):
        # TIME spans -838:59:59 to 838:59:59: an elapsed time, not a time of day.
        return ColumnPlan(name, "TIME", "time", pa.duration("us"), False, cast_as_char=True)
    if type_code == YEAR:
        return ColumnPlan(name, "YEAR", "int", pa.int16(), True)
    if type_code == BIT:
        if length == 1:
            return ColumnPlan(name, "BIT(1)", "bit", pa.bool_(), True)
        return ColumnPlan(name, f"BIT({length})", "bit", pa.uint64(), True)
    if type_code == JSON:
        return ColumnPlan(name, "JSON", "json", pa.string(), True)
    if type_code == NULL:
        return ColumnPlan(name, "NULL", "null", pa.null(), False)
    if type_code == GEOMETRY:
        return ColumnPlan(name, "GEOMETRY", "binary", pa.binary(), False)
    if type_code in _STRINGS:
        if flags & ENUM_FLAG or type_code == ENUM:
            return ColumnPlan(name, "ENUM", "string", pa.string(), True)
        if flags & SET_FLAG or type_code == SET:
            return ColumnPlan(name, "SET", "string", pa.string(), True)
        if charsetnr == BINARY_CHARSET:
            return ColumnPlan(name, "BINARY/VARBINARY/BLOB", "binary", pa.binary(), True)
        return ColumnPlan(name, "CHAR/VARCHAR/TEXT", "string", pa.string(), True)
    # An unknown type code: keep the server's bytes rather than guess.
    return ColumnPlan(name, f"type {type_code}", "binary", pa.binary(), False)


def arrow_schema(plans: list[ColumnPlan], key: dict[str, int] | None = None) -> pa.Schema:
    """The Arrow schema of a result: NOT NULL columns not nullable, declared types and key positions as metadata."""
    import pyarrow as pa

    fields = []
    for p in plans:
        meta = {}
        if p.sql_type:
            meta[SQL_TYPE_KEY] = p.sql_type
        if key and p.name in key:
            meta[PRIMARY_KEY_KEY] = str(key[p.name])
        fields.append(pa.field(p.name, p.arrow_type, nullable=not p.not_null, metadata=meta or None))
    return pa.schema(fields)
