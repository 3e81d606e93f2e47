"""Arrow → PostgreSQL: the exact column type of every Arrow type, or a refusal; identifiers and DDL.

`mapping(field)` is the one table the writer uses, the docs print (`scripts/type_mapping.py`)
and the tests exercise: for each Arrow field it gives the PostgreSQL type a created table
gets, the Arrow type the values are sent as (binary COPY) and the conversion into it. Every
conversion is exact or raises: a value that cannot be stored as it is (a nanosecond fraction,
a float NaN inside JSON) fails naming the column, and a type with no exact counterpart
(unions, maps with non-text keys, unknown extension types) is refused naming the column.

Two things beyond the Arrow type shape the column, both set by upstream drivers:

- the field's nullability: a non-nullable field becomes `NOT NULL`;
- field metadata `osiris.sql_type`: the type the source declared where Arrow has no exact
  word for it (`varchar(40)`, `char(2)`, `bit(5)`, `json`, `uuid`, `interval`, `timetz`,
  `varbit`, `numeric`), and `osiris.primary_key`: the column's position in the source's key.

Longer than most modules, on purpose: it is that one table, every Arrow type with its column
type and its conversion side by side, so the mapping is read (and printed) from one place.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from osiris.core.errors import TerminalError

if TYPE_CHECKING:
    import pyarrow as pa

SQL_TYPE_KEY = b"osiris.sql_type"
PRIMARY_KEY_KEY = b"osiris.primary_key"
EXTENSION_KEY = b"ARROW:extension:name"
# PostgreSQL's limits: numeric precision, varchar/char length, bit length.
PG_MAX_NUMERIC_PRECISION = 1000
PG_MAX_CHAR_LENGTH = 10485760
PG_MAX_BIT_LENGTH = 83886080

_LENGTH_TYPE = re.compile(r"^(varchar|char|bit)\((\d+)\)$")


class TypeRefused(TerminalError):
    """A column whose Arrow type, or one of its values, has no exact PostgreSQL form."""

    def __init__(self, column: str, arrow_type: Any, reason: str, *, step: str | None = None) -> None:
        self.column = column
        self.arrow_type = str(arrow_type)
        self.reason = reason
        where = f" (step `{step}`)" if step else ""
        super().__init__(f"Column `{column}` of type `{arrow_type}`{where}: {reason}", step=step)


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier, always double-quoted (so case and odd characters survive)."""
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    """`"schema"."table"`."""
    return f"{quote_ident(schema)}.{quote_ident(table)}"


# -- the mapping ---------------------------------------------------------------------------

Encoder = Callable[[Any], Any]  # pa.Array -> pa.Array of the `send` type; raises `TypeRefused`


@dataclass(frozen=True)
class Mapping:
    """How one Arrow field becomes a PostgreSQL column.

    `pg` is the column type of a created table, `send` the Arrow type the values travel in
    (a type the bulk loader encodes as one PostgreSQL type, `stage`), `encode` the exact
    conversion into `send` (None: the values are sent as they are, or by an exact Arrow cast),
    `note` what the docs say about it.
    """

    pg: str
    send: Any
    encode: Encoder | None = None
    note: str = ""

    @property
    def stage(self) -> str:
        """The PostgreSQL type the values arrive as (the staging table's column type)."""
        return _send_pg(self.send)


def _meta(field: pa.Field, key: bytes) -> str | None:
    value = (field.metadata or {}).get(key)
    return value.decode() if value is not None else None


def declared_type(field: pa.Field) -> str | None:
    """The field's `osiris.sql_type` (lower case), if any."""
    value = _meta(field, SQL_TYPE_KEY)
    return value.strip().lower() if value else None


def source_primary_key(schema: pa.Schema) -> list[str]:
    """The source's primary key from `osiris.primary_key` field metadata (positions 1..n), else []."""
    positions: dict[int, str] = {}
    for f in schema:
        value = _meta(f, PRIMARY_KEY_KEY)
        if value is not None and value.isdigit():
            positions[int(value)] = f.name
    if sorted(positions) != list(range(1, len(positions) + 1)):
        return []
    return [positions[i] for i in sorted(positions)]


def pg_type(field: pa.Field) -> str:
    """The exact PostgreSQL column type for an Arrow field; raises `TypeRefused`."""
    return mapping(field).pg


def mapping(field: pa.Field, *, step: str | None = None) -> Mapping:
    """The exact PostgreSQL column type of `field` and how its values are sent; raises `TypeRefused`."""
    import pyarrow as pa
    import pyarrow.types as t

    typ = field.type
    name = field.name

    def refuse(reason: str) -> TypeRefused:
        return TypeRefused(name, typ, reason, step=step)

    ext = _extension_name(field)
    if ext is not None:
        return _extension_mapping(field, ext, refuse)
    if t.is_dictionary(typ):
        inner = mapping(pa.field(name, typ.value_type, field.nullable, field.metadata), step=step)
        return Mapping(inner.pg, inner.send, _decode_then(inner.encode), "dictionary: its values' type")
    declared = declared_type(field)
    if t.is_null(typ):
        return Mapping("text", pa.string(), note="every value is NULL")
    if t.is_boolean(typ):
        return Mapping("boolean", pa.bool_())
    if t.is_integer(typ):
        return _integer_mapping(field, declared, refuse)
    if t.is_float16(typ):
        return Mapping("real", pa.float32(), note="float16 values are float32 values")
    if t.is_float32(typ):
        return Mapping("real", pa.float32())
    if t.is_float64(typ):
        return Mapping("double precision", pa.float64())
    if t.is_decimal(typ):
        if typ.precision > PG_MAX_NUMERIC_PRECISION:
            raise refuse(f"PostgreSQL's numeric holds at most {PG_MAX_NUMERIC_PRECISION} digits")
        send = typ if t.is_decimal128(typ) or t.is_decimal256(typ) else pa.decimal128(typ.precision, typ.scale)
        return Mapping(f"numeric({typ.precision},{typ.scale})", send)
    if _is_string(typ):
        return _string_mapping(field, declared, refuse)
    if _is_binary(typ):
        return Mapping("bytea", pa.binary())
    if t.is_timestamp(typ):
        pg = "timestamptz" if typ.tz is not None else "timestamp"
        send = pa.timestamp("us", tz=typ.tz)
        note = "nanoseconds must be whole microseconds" if typ.unit == "ns" else ""
        return Mapping(pg, send, None if typ.unit == "us" else _exact_cast(send, name, step), note)
    if t.is_date32(typ):
        return Mapping("date", pa.date32())
    if t.is_date64(typ):
        return Mapping("date", pa.date32(), _exact_cast(pa.date32(), name, step), "whole days")
    if t.is_time(typ):
        note = "nanoseconds must be whole microseconds" if typ.unit == "ns" else ""
        return Mapping("time", pa.string(), _times_as_text(name, step), note)
    if t.is_duration(typ):
        note = "nanoseconds must be whole microseconds" if typ.unit == "ns" else ""
        return Mapping("interval", pa.string(), _durations_as_text(name, step), note)
    if t.is_interval(typ):
        return Mapping(
            "interval", pa.string(), _intervals_as_text(name, step), "nanoseconds must be whole microseconds"
        )
    if _is_nested(typ):
        problem = _json_problem(typ)
        if problem:
            raise refuse(problem)
        return Mapping("jsonb", pa.string(), _nested_as_json(typ, name, step), "as JSON (see below)")
    if t.is_union(typ):
        raise refuse("a union has no PostgreSQL type; cast it to one type (or to JSON) upstream")
    if getattr(t, "is_run_end_encoded", lambda _: False)(typ):
        raise refuse("run-end encoded columns are not loaded; decode them upstream")
    raise refuse("no exact PostgreSQL type")


def _integer_mapping(field: pa.Field, declared: str | None, refuse: Callable[[str], TypeRefused]) -> Mapping:
    import pyarrow as pa
    import pyarrow.types as t

    typ = field.type
    m = _LENGTH_TYPE.match(declared or "")
    if m and m.group(1) == "bit" and t.is_unsigned_integer(typ):
        n = int(m.group(2))
        if not 1 <= n <= typ.bit_width:
            raise refuse(f"`osiris.sql_type` says `{declared}`, which does not fit {typ}")
        return Mapping(f"bit({n})", pa.string(), _bits_as_text(n, field.name), "a bit string (MySQL BIT(n))")
    if t.is_int8(typ) or t.is_int16(typ):
        return Mapping("smallint", pa.int16())
    if t.is_uint8(typ):
        return Mapping("smallint", pa.int16())
    if t.is_int32(typ):
        return Mapping("integer", pa.int32())
    if t.is_uint16(typ):
        return Mapping("integer", pa.int32())
    if t.is_int64(typ):
        return Mapping("bigint", pa.int64())
    if t.is_uint32(typ):
        return Mapping("bigint", pa.int64())
    return Mapping("numeric(20,0)", pa.decimal128(20, 0), note="every uint64 value")


# Declared types a text column may carry (`osiris.sql_type`): the PostgreSQL type each becomes.
_TEXT_DECLARED = {
    "json": "jsonb",
    "uuid": "uuid",
    "interval": "interval",
    "timetz": "time with time zone",
    "varbit": "bit varying",
    "numeric": "numeric",
    "text": "text",
}


def _string_mapping(field: pa.Field, declared: str | None, refuse: Callable[[str], TypeRefused]) -> Mapping:
    import pyarrow as pa

    if declared:
        m = _LENGTH_TYPE.match(declared)
        if m and m.group(1) in ("varchar", "char"):
            n = int(m.group(2))
            if not 1 <= n <= PG_MAX_CHAR_LENGTH:
                raise refuse(f"`osiris.sql_type` `{declared}` is beyond PostgreSQL's {PG_MAX_CHAR_LENGTH} characters")
            return Mapping(declared, pa.string(), note="the source's length")
        if m and m.group(1) == "bit":
            return Mapping(declared, pa.string(), note="a bit string")
        if declared in _TEXT_DECLARED:
            return Mapping(_TEXT_DECLARED[declared], pa.string(), note=f"text declared `{declared}`")
    return Mapping("text", pa.string())


def _extension_name(field: pa.Field) -> str | None:
    import pyarrow as pa

    if isinstance(field.type, pa.BaseExtensionType):
        return str(field.type.extension_name)
    return _meta(field, EXTENSION_KEY)


def _storage(field: pa.Field) -> Any:
    import pyarrow as pa

    return field.type.storage_type if isinstance(field.type, pa.BaseExtensionType) else field.type


def _extension_mapping(field: pa.Field, ext: str, refuse: Callable[[str], TypeRefused]) -> Mapping:
    import pyarrow as pa
    import pyarrow.types as t

    storage = _storage(field)
    if ext in ("arrow.json", "json") and _is_string(storage):
        return Mapping("jsonb", pa.string(), _storage_then(None), "JSON text")
    if ext == "arrow.uuid" and t.is_fixed_size_binary(storage) and storage.byte_width == 16:
        return Mapping("uuid", pa.string(), _uuids_as_text, "")
    if ext in ("geoarrow.wkb", "ogc.wkb") and _is_binary(storage):
        return Mapping("bytea", pa.binary(), _storage_then(None), "the WKB bytes")
    raise refuse(f"the extension type `{ext}` has no exact PostgreSQL type; convert it upstream")


# -- what each Arrow send type arrives as --------------------------------------------------


def _send_pg(send: Any) -> str:
    import pyarrow.types as t

    if t.is_boolean(send):
        return "boolean"
    if t.is_int16(send):
        return "smallint"
    if t.is_int32(send):
        return "integer"
    if t.is_int64(send):
        return "bigint"
    if t.is_float32(send):
        return "real"
    if t.is_float64(send):
        return "double precision"
    if t.is_decimal(send):
        return f"numeric({send.precision},{send.scale})"
    if t.is_string(send):
        return "text"
    if t.is_binary(send):
        return "bytea"
    if t.is_date32(send):
        return "date"
    if t.is_timestamp(send):
        return "timestamptz" if send.tz is not None else "timestamp"
    raise AssertionError(f"not a send type: {send}")


def _is_string(typ: Any) -> bool:
    import pyarrow.types as t

    return t.is_string(typ) or t.is_large_string(typ) or getattr(t, "is_string_view", lambda _: False)(typ)


def _is_binary(typ: Any) -> bool:
    import pyarrow.types as t

    return (
        t.is_binary(typ)
        or t.is_large_binary(typ)
        or t.is_fixed_size_binary(typ)
        or getattr(t, "is_binary_view", lambda _: False)(typ)
    )


def _is_list(typ: Any) -> bool:
    import pyarrow.types as t

    return (
        t.is_list(typ)
        or t.is_large_list(typ)
        or t.is_fixed_size_list(typ)
        or getattr(t, "is_list_view", lambda _: False)(typ)
        or getattr(t, "is_large_list_view", lambda _: False)(typ)
    )


def _is_nested(typ: Any) -> bool:
    import pyarrow.types as t

    return t.is_struct(typ) or t.is_map(typ) or _is_list(typ)


# -- encoders: exact conversions into the send type ----------------------------------------


def _decode_then(encode: Encoder | None) -> Encoder:
    import pyarrow.types as t

    def run(arr: Any) -> Any:
        if t.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        return encode(arr) if encode is not None else arr

    return run


def _storage_then(encode: Encoder | None) -> Encoder:
    import pyarrow as pa

    def run(arr: Any) -> Any:
        if isinstance(arr.type, pa.BaseExtensionType):
            arr = arr.storage
        return encode(arr) if encode is not None else arr

    return run


def _exact_cast(send: Any, column: str, step: str | None) -> Encoder:
    import pyarrow as pa

    def run(arr: Any) -> Any:
        try:
            return arr.cast(send, safe=True)
        except (pa.ArrowInvalid, OverflowError) as exc:
            raise TypeRefused(column, arr.type, f"a value has no exact `{send}` form: {exc}", step=step) from None

    return run


def _python_values(arr: Any, fn: Callable[[Any], str | None]) -> Any:
    import pyarrow as pa

    return pa.array([None if v is None else fn(v) for v in arr.to_pylist()], type=pa.string())


def _interval_text(us: int) -> str:
    """Signed microseconds as PostgreSQL interval text: `-12:00:00.5` style (hours may exceed 24)."""
    sign = "-" if us < 0 else ""
    seconds, frac = divmod(abs(us), 1_000_000)
    minutes, s = divmod(seconds, 60)
    h, m = divmod(minutes, 60)
    return f"{sign}{h}:{m:02d}:{s:02d}" + (f".{frac:06d}" if frac else "")


def _micro_ints(arr: Any, unit_type: Any, column: str, step: str | None) -> Any:
    """`arr` (time or duration of any unit) as int64 microseconds; a sub-microsecond value raises."""
    import pyarrow as pa

    try:
        return arr.cast(unit_type, safe=True).cast(pa.int64())
    except (pa.ArrowInvalid, OverflowError) as exc:
        raise TypeRefused(
            column, arr.type, f"PostgreSQL keeps microseconds; a value does not fit: {exc}", step=step
        ) from None


def _times_as_text(column: str, step: str | None) -> Encoder:
    import pyarrow as pa

    def fmt(us: int) -> str:
        seconds, frac = divmod(us, 1_000_000)
        minutes, s = divmod(seconds, 60)
        h, m = divmod(minutes, 60)
        return f"{h:02d}:{m:02d}:{s:02d}.{frac:06d}"

    def run(arr: Any) -> Any:
        return _python_values(_micro_ints(arr, pa.time64("us"), column, step), fmt)

    return run


def _durations_as_text(column: str, step: str | None) -> Encoder:
    import pyarrow as pa

    def run(arr: Any) -> Any:
        return _python_values(_micro_ints(arr, pa.duration("us"), column, step), _interval_text)

    return run


def _intervals_as_text(column: str, step: str | None) -> Encoder:
    def fmt(v: Any) -> str:
        months = getattr(v, "months", 0) or 0
        days = getattr(v, "days", 0) or 0
        nanos = getattr(v, "nanoseconds", None)
        if nanos is None:  # day_time_interval: (days, milliseconds)
            nanos = int(getattr(v, "milliseconds", 0) or 0) * 1_000_000
        if nanos % 1000:
            raise TypeRefused(
                column, "interval", f"PostgreSQL keeps microseconds; `{v}` has a nanosecond fraction", step=step
            )
        return f"{months} mons {days} days {_interval_text(nanos // 1000)}"

    def run(arr: Any) -> Any:
        return _python_values(arr, fmt)

    return run


def _bits_as_text(n: int, column: str) -> Encoder:
    def fmt(v: int) -> str:
        if v >> n:
            raise TypeRefused(column, f"bit({n})", f"the value {v} has more than {n} bits")
        return format(v, f"0{n}b")

    def run(arr: Any) -> Any:
        return _python_values(arr, fmt)

    return run


def _uuids_as_text(arr: Any) -> Any:
    import pyarrow as pa

    if isinstance(arr.type, pa.BaseExtensionType):
        arr = arr.storage
    return _python_values(arr, lambda b: str(uuid.UUID(bytes=bytes(b))))


# -- nested values as JSON -----------------------------------------------------------------


def _json_problem(typ: Any, where: str = "") -> str | None:
    """Why a nested type cannot become JSON exactly, or None."""
    import pyarrow.types as t

    here = f" (at `{where}`)" if where else ""
    if t.is_dictionary(typ):
        return _json_problem(typ.value_type, where)
    if t.is_struct(typ):
        names = [typ.field(i).name for i in range(typ.num_fields)]
        if len(set(names)) != len(names):
            return f"a struct with repeated field names has no JSON object form{here}"
        for i in range(typ.num_fields):
            problem = _json_problem(typ.field(i).type, f"{where}.{names[i]}" if where else names[i])
            if problem:
                return problem
        return None
    if t.is_map(typ):
        if not _is_string(typ.key_type):
            return f"a map with `{typ.key_type}` keys has no JSON object form (keys must be text){here}"
        return _json_problem(typ.item_type, f"{where}[value]")
    if _is_list(typ):
        return _json_problem(typ.value_type, f"{where}[]")
    if t.is_union(typ):
        return f"a union has no JSON form{here}"
    if t.is_timestamp(typ) or t.is_time(typ) or t.is_duration(typ):
        if typ.unit == "ns":
            return f"nanosecond `{typ}` values inside JSON are not supported{here}"
        return None
    if t.is_interval(typ):
        return f"intervals inside JSON are not supported{here}"
    if (
        t.is_null(typ)
        or t.is_boolean(typ)
        or t.is_integer(typ)
        or t.is_floating(typ)
        or t.is_decimal(typ)
        or _is_string(typ)
        or _is_binary(typ)
        or t.is_date(typ)
    ):
        return None
    return f"`{typ}` values inside JSON are not supported{here}"


def json_text(value: Any, typ: Any) -> str:
    """One Arrow value (as `to_pylist` gives it) as exact JSON text; raises ValueError for NaN/Infinity.

    Numbers stay numbers (decimals with every digit; jsonb keeps them exactly), structs and
    text-keyed maps become objects, lists arrays; dates and times ISO 8601 strings, durations
    interval text, binary `\\x…` hex strings.
    """
    import pyarrow.types as t

    if value is None:
        return "null"
    if t.is_dictionary(typ):
        return json_text(value, typ.value_type)
    if t.is_struct(typ):
        parts = [
            f"{json.dumps(typ.field(i).name)}:{json_text(value.get(typ.field(i).name), typ.field(i).type)}"
            for i in range(typ.num_fields)
        ]
        return "{" + ",".join(parts) + "}"
    if t.is_map(typ):
        keys = [k for k, _ in value]
        if len(set(keys)) != len(keys):
            raise ValueError(f"a map value repeats a key ({sorted({k for k in keys if keys.count(k) > 1})[:3]})")
        return "{" + ",".join(f"{json.dumps(k)}:{json_text(v, typ.item_type)}" for k, v in value) + "}"
    if _is_list(typ):
        return "[" + ",".join(json_text(v, typ.value_type) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"JSON has no number for `{value}`")
        return repr(value)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ValueError(f"JSON has no number for `{value}`")
        return str(value)
    if isinstance(value, bytes | bytearray):
        return json.dumps("\\x" + bytes(value).hex())
    if isinstance(value, dt.timedelta):
        return json.dumps(_interval_text((value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return json.dumps(value.isoformat())
    return json.dumps(str(value))


def _nested_as_json(typ: Any, column: str, step: str | None) -> Encoder:
    def fmt(v: Any) -> str:
        try:
            return json_text(v, typ)
        except ValueError as exc:
            raise TypeRefused(column, typ, f"a value has no exact JSON form: {exc}", step=step) from None

    def run(arr: Any) -> Any:
        return _python_values(arr, fmt)

    return run


# -- batches as they are sent --------------------------------------------------------------


def send_schema(schema: pa.Schema, *, step: str | None = None) -> pa.Schema:
    """The schema batches are sent with (each field's `Mapping.send`)."""
    import pyarrow as pa

    return pa.schema([pa.field(f.name, mapping(f, step=step).send) for f in schema])


def send_batch(batch: pa.RecordBatch, mappings: list[Mapping], schema: pa.Schema) -> pa.RecordBatch:
    """`batch` converted, column by column and exactly, to `schema` (from `send_schema`)."""
    import pyarrow as pa

    arrays = []
    for col, m, target in zip(batch.columns, mappings, schema, strict=True):
        if m.encode is not None:
            col = m.encode(col)
        if not col.type.equals(target.type):
            col = col.cast(target.type, safe=True)  # exact widenings only: int8 → int16, null → text, ...
        arrays.append(col)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# -- DDL -----------------------------------------------------------------------------------


def column_sql(field: pa.Field, *, not_null: bool = False) -> str:
    """A column definition: quoted name, exact type, `NOT NULL` for non-nullable fields."""
    col = f"{quote_ident(field.name)} {pg_type(field)}"
    if not_null or not field.nullable:
        col += " NOT NULL"
    return col


def create_table_sql(schema: str, table: str, arrow_schema: pa.Schema, primary_key: list[str]) -> str:
    """`CREATE TABLE` for an Arrow schema: exact types, NOT NULL as the fields say, the primary key."""
    lines = [f"  {column_sql(field, not_null=field.name in primary_key)}" for field in arrow_schema]
    if primary_key:
        lines.append(f"  PRIMARY KEY ({', '.join(quote_ident(c) for c in primary_key)})")
    body = ",\n".join(lines)
    return f"CREATE TABLE IF NOT EXISTS {qualified(schema, table)} (\n{body}\n);"


def add_column_sql(schema: str, table: str, field: pa.Field) -> str:
    """`ALTER TABLE … ADD COLUMN` for one new input column (nullable: the table's rows have no value)."""
    return (
        f"ALTER TABLE {qualified(schema, table)} ADD COLUMN IF NOT EXISTS {quote_ident(field.name)} {pg_type(field)};"
    )


def alter_type_sql(schema: str, table: str, column: str, new_type: str) -> str:
    """`ALTER TABLE … ALTER COLUMN … TYPE` for a safe widening."""
    col = quote_ident(column)
    return f"ALTER TABLE {qualified(schema, table)} ALTER COLUMN {col} TYPE {new_type} USING {col}::{new_type};"
