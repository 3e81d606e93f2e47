"""Arrow ↔ PostgreSQL types, identifier quoting and the DDL a missing table needs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier, always double-quoted (so case and odd characters survive)."""
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    """`"schema"."table"`."""
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def pg_type(field: pa.Field) -> str:
    """The exact PostgreSQL column type for an Arrow field (nested types become `jsonb`)."""
    import pyarrow as pa
    import pyarrow.types as t

    typ = field.type
    if t.is_dictionary(typ):
        typ = typ.value_type
    if t.is_boolean(typ):
        return "boolean"
    if t.is_int8(typ) or t.is_int16(typ) or t.is_uint8(typ):
        return "smallint"
    if t.is_int32(typ) or t.is_uint16(typ):
        return "integer"
    if t.is_int64(typ) or t.is_uint32(typ):
        return "bigint"
    if t.is_uint64(typ):
        return "numeric(20,0)"
    if t.is_float16(typ) or t.is_float32(typ):
        return "real"
    if t.is_float64(typ):
        return "double precision"
    if t.is_decimal(typ):
        return f"numeric({typ.precision},{typ.scale})"
    if t.is_string(typ) or t.is_large_string(typ) or getattr(t, "is_string_view", lambda _: False)(typ):
        return "text"
    if t.is_binary(typ) or t.is_large_binary(typ) or t.is_fixed_size_binary(typ):
        return "bytea"
    if t.is_timestamp(typ):
        return "timestamptz" if typ.tz is not None else "timestamp"
    if t.is_date(typ):
        return "date"
    if t.is_time(typ):
        return "time"
    if t.is_duration(typ):
        return "interval"
    if t.is_null(typ):
        return "text"
    if t.is_struct(typ) or t.is_list(typ) or t.is_large_list(typ) or t.is_map(typ) or t.is_fixed_size_list(typ):
        return "jsonb"
    if isinstance(typ, pa.ExtensionType) and typ.extension_name in ("arrow.json", "json"):
        return "jsonb"
    raise TypeError(f"no PostgreSQL type for Arrow type `{typ}` of column `{field.name}`")


def base_type(pg: str) -> str:
    """A PostgreSQL type name without its modifiers (`numeric(12,2)` → `numeric`)."""
    pg = pg.strip().lower()
    aliases = {
        "int8": "bigint",
        "int4": "integer",
        "int": "integer",
        "int2": "smallint",
        "float8": "double precision",
        "float4": "real",
        "bool": "boolean",
        "timestamp with time zone": "timestamptz",
        "timestamp without time zone": "timestamp",
        "character varying": "varchar",
        "time without time zone": "time",
    }
    head = pg.split("(", 1)[0].strip()
    return aliases.get(head, head)


def create_table_sql(schema: str, table: str, arrow_schema: pa.Schema, primary_key: list[str]) -> str:
    """`CREATE TABLE` for an Arrow schema; the key columns are `NOT NULL` and the primary key."""
    lines = []
    for field in arrow_schema:
        col = f"  {quote_ident(field.name)} {pg_type(field)}"
        if field.name in primary_key:
            col += " NOT NULL"
        lines.append(col)
    if primary_key:
        lines.append(f"  PRIMARY KEY ({', '.join(quote_ident(c) for c in primary_key)})")
    body = ",\n".join(lines)
    return f"CREATE TABLE IF NOT EXISTS {qualified(schema, table)} (\n{body}\n);"


def add_column_sql(schema: str, table: str, field: pa.Field) -> str:
    """`ALTER TABLE … ADD COLUMN` for one new input column."""
    return (
        f"ALTER TABLE {qualified(schema, table)} ADD COLUMN IF NOT EXISTS {quote_ident(field.name)} {pg_type(field)};"
    )


def json_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Nested columns (struct, list, map) as JSON text; dictionaries decoded. Others unchanged."""
    import json

    import pyarrow as pa
    import pyarrow.types as t

    arrays: list[Any] = []
    changed = False
    for field, col in zip(batch.schema, batch.columns, strict=True):
        if t.is_dictionary(field.type):
            col = col.dictionary_decode()
            changed = True
        if pg_type(field) == "jsonb" and not t.is_string(col.type):
            col = pa.array(
                [None if v is None else json.dumps(v, default=str) for v in col.to_pylist()], type=pa.string()
            )
            changed = True
        elif t.is_large_string(col.type):
            col = col.cast(pa.string())
            changed = True
        arrays.append(col)
    if not changed:
        return batch
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)
