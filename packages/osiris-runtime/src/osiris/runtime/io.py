"""The IO contract: every step output becomes `artifacts/<step>/output.parquet`.

Outputs are written batch by batch (memory bounded by the batch size, not the
table size) to a temporary file that is renamed into place, and hashed with
`data_sha256`, a hash of the canonical Arrow data that does not depend on the
Parquet encoding, compression, row groups or batch boundaries.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osiris.core.errors import TerminalError

if TYPE_CHECKING:
    import pyarrow as pa

OUTPUT_FILE = "output.parquet"
HASH_CHUNK_ROWS = 65536
HASH_VERSION = "osiris-arrow-v1"


@dataclass(frozen=True)
class OutputInfo:
    """What was written for one step output."""

    path: Path
    rows: int
    data_sha256: str
    columns: list[str]


def as_batches(value: Any, *, step_id: str) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Turn what a driver returned as `df` into a schema and a stream of record batches.

    Accepts a pyarrow Table, RecordBatchReader, RecordBatch, an iterable of
    RecordBatch, an `InputHandle`, or a pandas DataFrame.
    """
    import pyarrow as pa

    from osiris.runtime.contract import InputHandle

    if isinstance(value, pa.Table):
        return value.schema, iter(value.to_batches())
    if isinstance(value, pa.RecordBatchReader):
        return value.schema, iter(value)
    if isinstance(value, pa.RecordBatch):
        return value.schema, iter([value])
    if isinstance(value, InputHandle):
        return value.schema, value.iter_batches()
    if type(value).__module__.startswith("pandas") and type(value).__name__ == "DataFrame":
        table = pa.Table.from_pandas(value, preserve_index=False)
        return table.schema, iter(table.to_batches())
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict)):
        it = iter(value)
        try:
            first = next(it)
        except StopIteration:
            raise TerminalError(
                f"Step `{step_id}` returned an empty batch iterator, so its schema is unknown; "
                "return a pyarrow Table or RecordBatchReader instead",
                step=step_id,
            ) from None
        if not isinstance(first, pa.RecordBatch):
            raise TerminalError(
                f"Step `{step_id}` returned an iterator of `{type(first).__name__}`; expected pyarrow RecordBatch",
                step=step_id,
            )

        def chain() -> Iterator[pa.RecordBatch]:
            yield first
            yield from it

        return first.schema, chain()
    raise TerminalError(
        f"Step `{step_id}` returned `df` of type `{type(value).__name__}`; expected a pyarrow Table, "
        "RecordBatchReader, iterator of RecordBatch or a pandas DataFrame",
        step=step_id,
    )


def write_parquet_atomic(
    path: str | Path,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    *,
    step_id: str,
    compression: str = "zstd",
    row_group_size: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Write `batches` to a Parquet file at `path` through a temporary file; return the row count.

    Nothing is left at `path` (nor half-written) when writing fails.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    rows = 0
    try:
        with pq.ParquetWriter(tmp, schema, compression=compression) as writer:
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                if not batch.schema.equals(schema):
                    try:
                        batch = pa.RecordBatch.from_arrays(
                            [col.cast(field.type) for col, field in zip(batch.columns, schema, strict=True)],
                            schema=schema,
                        )
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
                        raise TerminalError(
                            f"Step `{step_id}` produced a batch whose schema differs from the first one: {exc}",
                            step=step_id,
                        ) from None
                writer.write_batch(batch, row_group_size=row_group_size)
                rows += batch.num_rows
                if on_batch is not None:
                    on_batch(batch.num_rows)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return rows


def _canonical_column(arr: pa.Array) -> pa.Array:
    """`arr` with the bytes under null slots of fixed-width columns zeroed (they are undefined in Arrow)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = arr.type
    if arr.null_count == 0 or not (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
        or pa.types.is_temporal(t)
        or pa.types.is_boolean(t)
    ):
        return arr
    validity = pc.is_valid(arr)
    if arr.null_count == len(arr):
        return pa.nulls(len(arr), type=t)
    # Fill null slots with the first valid value: a choice that depends only on the data.
    zero = arr.filter(validity)[0]
    filled = pc.fill_null(arr, zero)
    # Rebuild with the original validity, so nulls stay nulls but their slots are zero.
    return pa.Array.from_buffers(t, len(arr), [validity.buffers()[1], *filled.buffers()[1:]], arr.null_count)


def _hash_batch(h: Any, batches: list[pa.RecordBatch], schema: pa.Schema) -> None:
    import pyarrow as pa

    table = pa.Table.from_batches(batches, schema=schema).combine_chunks()
    for batch in table.to_batches():
        columns = [_canonical_column(c) for c in batch.columns]
        canonical = pa.RecordBatch.from_arrays(columns, schema=schema)
        h.update(canonical.serialize().to_pybytes())


def data_sha256(path: str | Path, *, chunk_rows: int = HASH_CHUNK_ROWS) -> str:
    """``sha256:<hex>`` of a Parquet file's canonical Arrow data, read in bounded memory.

    The schema (without metadata) and the data re-chunked into batches of
    exactly `chunk_rows` rows are hashed as Arrow IPC, so the hash depends only
    on the column names, types and values in order, not on how the file was
    encoded, compressed or split.
    """
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    schema = pf.schema_arrow.remove_metadata()
    h = hashlib.sha256()
    h.update(HASH_VERSION.encode())
    h.update(schema.serialize().to_pybytes())
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in pf.iter_batches(batch_size=chunk_rows):
        batch = batch.replace_schema_metadata(None)
        while batch.num_rows:
            take = min(chunk_rows - pending_rows, batch.num_rows)
            pending.append(batch.slice(0, take))
            pending_rows += take
            batch = batch.slice(take)
            if pending_rows == chunk_rows:
                _hash_batch(h, pending, schema)
                pending, pending_rows = [], 0
    if pending_rows:
        _hash_batch(h, pending, schema)
    h.update(str(pf.metadata.num_rows).encode())
    return "sha256:" + h.hexdigest()
