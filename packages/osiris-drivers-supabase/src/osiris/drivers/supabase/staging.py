"""Arrow batches made ready for Postgres binary COPY: each column converted exactly to its send type."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from osiris.drivers.supabase.sqltypes import mapping, send_batch, send_schema

if TYPE_CHECKING:
    import pyarrow as pa


def load_schema(schema: pa.Schema) -> pa.Schema:
    """The schema batches are sent with (see `sqltypes.Mapping.send`)."""
    return send_schema(schema)


def staging_type(field: pa.Field) -> str:
    """The Postgres column type of the staging table for an input field (what the values arrive as)."""
    return mapping(field).stage


def prepared_batches(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    on_batch: Callable[[int], None] | None = None,
    *,
    source: pa.Schema | None = None,
    step: str | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream `batches` converted to `schema` (from `load_schema` of `source`), calling `on_batch(rows)` after each."""
    mappings = None
    for batch in batches:
        if mappings is None:
            mappings = [mapping(f, step=step) for f in (source if source is not None else batch.schema)]
        out = send_batch(batch, mappings, schema)
        yield out
        if on_batch is not None:
            on_batch(out.num_rows)
