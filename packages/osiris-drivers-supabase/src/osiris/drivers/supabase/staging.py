"""Arrow batches made ready for Postgres binary COPY: types that the bulk loader encodes exactly."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from osiris.drivers.supabase.sqltypes import json_ready, pg_type

if TYPE_CHECKING:
    import pyarrow as pa


def load_type(typ: pa.DataType) -> pa.DataType:
    """The Arrow type a column is sent as (a type the loader maps to one Postgres type)."""
    import pyarrow as pa
    import pyarrow.types as t

    if t.is_dictionary(typ):
        return load_type(typ.value_type)
    if t.is_int8(typ) or t.is_uint8(typ):
        return pa.int16()
    if t.is_uint16(typ):
        return pa.int32()
    if t.is_uint32(typ):
        return pa.int64()
    if t.is_uint64(typ):
        return pa.decimal128(20, 0)
    if t.is_float16(typ):
        return pa.float32()
    if t.is_large_string(typ) or t.is_null(typ) or t.is_time(typ) or t.is_duration(typ):
        return pa.string()
    if getattr(t, "is_string_view", lambda _: False)(typ):
        return pa.string()
    if t.is_large_binary(typ) or t.is_fixed_size_binary(typ):
        return pa.binary()
    if t.is_timestamp(typ):
        return pa.timestamp("us", tz=typ.tz)
    if t.is_date64(typ):
        return pa.date32()
    if t.is_struct(typ) or t.is_list(typ) or t.is_large_list(typ) or t.is_map(typ) or t.is_fixed_size_list(typ):
        return pa.string()
    return typ


def load_schema(schema: pa.Schema) -> pa.Schema:
    """The schema batches are sent with (see `load_type`)."""
    import pyarrow as pa

    return pa.schema([pa.field(f.name, load_type(f.type)) for f in schema])


def staging_type(field: pa.Field) -> str:
    """The Postgres column type of the staging table for an input field."""
    import pyarrow as pa

    return pg_type(pa.field(field.name, load_type(field.type)))


def prepare_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` converted to `schema` (from `load_schema`)."""
    import pyarrow as pa
    import pyarrow.types as t

    batch = json_ready(batch)
    if batch.schema.equals(schema):
        return batch
    arrays = []
    for col, field in zip(batch.columns, schema, strict=True):
        if not col.type.equals(field.type):
            if t.is_time(col.type) or t.is_duration(col.type):
                col = pa.array([None if v is None else str(v) for v in col.to_pylist()], type=pa.string())
            else:
                col = col.cast(field.type, safe=False)
        arrays.append(col)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def prepared_batches(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, on_batch: Callable[[int], None] | None = None
) -> Iterator[pa.RecordBatch]:
    """Stream `batches` converted to `schema`, calling `on_batch(rows)` after each."""
    for batch in batches:
        out = prepare_batch(batch, schema)
        yield out
        if on_batch is not None:
            on_batch(out.num_rows)
