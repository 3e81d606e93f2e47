"""The IO contract: every step output becomes `artifacts/<step>/output.parquet`.

Outputs are written batch by batch (memory bounded by the batch size, not the
table size) to a temporary file that is renamed into place, and hashed with
`data_sha256`, a hash of the canonical Arrow data that does not depend on the
Parquet encoding, compression, row groups or batch boundaries.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osiris.core.errors import TerminalError

if TYPE_CHECKING:
    import pyarrow as pa

OUTPUT_FILE = "output.parquet"
HASH_CHUNK_ROWS = 65536
HASH_VERSION = "osiris-arrow-v1"


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


def use_lean_memory_pool() -> str:
    """Make jemalloc pyarrow's default memory pool for this process; return the pool's name.

    Streaming steps allocate and free one batch after another. pyarrow's usual default,
    mimalloc, keeps more of that freed memory mapped: extracting 2M rows into Parquet
    peaked 30-50 MiB higher with it than with jemalloc, at the same speed
    (`scripts/bench mysql-extract`). An explicit `ARROW_DEFAULT_MEMORY_POOL` is kept,
    and so is the default where pyarrow was built without jemalloc.

    Arrow's decay of freed pages (1 s) is kept: 5 s cut the system time of a 1M-row CSV's `read`
    step by a third but raised the peak of a 10M-row run by about 160 MiB (`scripts/bench artifact`).
    """
    import pyarrow as pa

    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        with contextlib.suppress(NotImplementedError):
            pa.set_memory_pool(pa.jemalloc_memory_pool())
    return pa.default_memory_pool().backend_name


# Artifacts are intermediate files read once or twice: favour write speed. Dictionary
# encoding cost most of the write time on wide text tables and did not make them smaller.
# LZ4 (Parquet's LZ4_RAW) encodes a 1M-row, 15-column CSV extract in about 80% of the CPU time
# of zstd level 1 and DuckDB decodes it faster, for files about twice as large
# (`scripts/bench artifact`). Min/max statistics are kept for the columns a reader can prune
# row groups by (numbers, dates, times); those of text and binary columns cost a comparison
# per value and are of no use to a query over an intermediate file.
ARTIFACT_COMPRESSION = "lz4"
ARTIFACT_COMPRESSION_LEVEL: int | None = None
# Batches queued for the Parquet encoder and for the hasher: each runs on its own thread while
# the producer makes the next batch; a bound of two keeps memory at a few batches.
_QUEUE_DEPTH = 2


def _fixed_width(t: pa.DataType) -> bool:
    """Numbers, dates, times and booleans: the types a reader prunes by, and whose null slots hold bytes."""
    import pyarrow as pa

    return (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
        or pa.types.is_temporal(t)
        or pa.types.is_boolean(t)
    )


def statistics_columns(schema: pa.Schema) -> list[str]:
    """The top-level columns of `schema` whose Parquet min/max statistics an artifact keeps."""
    return [f.name for f in schema if _fixed_width(f.type)]


def write_parquet_atomic(
    path: str | Path,
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch],
    *,
    step_id: str,
    compression: str = ARTIFACT_COMPRESSION,
    compression_level: int | None = ARTIFACT_COMPRESSION_LEVEL,
    use_dictionary: bool = False,
    row_group_size: int | None = None,
    on_batch: Callable[[int], None] | None = None,
    hasher: DataHasher | None = None,
    write_statistics: bool | list[str] | None = None,
) -> int:
    """Write `batches` to a Parquet file at `path` through a temporary file; return the row count.

    Batches are encoded on a second thread, and with a `hasher` fed to it on a third, so
    the producer of the batches (a CSV parser, a database cursor) runs while the previous
    batch is encoded and hashed. Nothing is left at `path` (nor half-written) when writing fails.
    `write_statistics` as pyarrow takes it; by default those of `statistics_columns(schema)`.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    rows = 0
    level = compression_level if compression in ("zstd", "gzip", "brotli") else None
    try:
        with pq.ParquetWriter(
            tmp,
            schema,
            compression=compression,
            compression_level=level,
            use_dictionary=use_dictionary,
            write_statistics=statistics_columns(schema) if write_statistics is None else write_statistics,
        ) as writer:

            def encode(batch: pa.RecordBatch) -> None:
                writer.write_batch(batch, row_group_size=row_group_size)

            workers = [_Worker(encode, "osiris-parquet")]
            if hasher is not None:
                workers.append(_Worker(hasher.update, "osiris-hash"))
            try:
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
                    for worker in workers:
                        worker.submit(batch)
                    rows += batch.num_rows
                    if on_batch is not None:
                        on_batch(batch.num_rows)
                # Every batch encoded (or its error raised) before the writer writes the footer.
                for worker in workers:
                    worker.close()
            except BaseException:
                # Before the writer is closed: nothing may still be writing to it.
                for worker in workers:
                    worker.abandon()
                raise
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return rows


class _Worker:
    """Calls `fn` on every submitted item, in order, on one thread of its own, at most
    `_QUEUE_DEPTH` items behind the submitter; an error of `fn` is raised in the submitter."""

    def __init__(self, fn: Callable[[Any], None], name: str) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._fn = fn
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: list[Any] = []

    def submit(self, item: Any) -> None:
        # Bounded: wait for the oldest item before queueing another, so memory stays flat.
        while len(self._pending) >= _QUEUE_DEPTH:
            self._pending.pop(0).result()
        self._pending.append(self._pool.submit(self._fn, item))

    def close(self) -> None:
        while self._pending:
            self._pending.pop(0).result()
        self._pool.shutdown()

    def abandon(self) -> None:
        # Waits for the item in progress: the Parquet writer is closed only once nothing writes to it.
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()


def _canonical_column(arr: pa.Array) -> pa.Array:
    """`arr` with the bytes under null slots of fixed-width columns zeroed (they are undefined in Arrow)."""
    import pyarrow as pa

    t = arr.type
    if arr.null_count == 0 or not _fixed_width(t):
        return arr
    call = _compute_kernels()
    validity = call("is_valid", [arr])
    if arr.null_count == len(arr):
        return pa.nulls(len(arr), type=t)
    # Fill null slots with the first valid value: a choice that depends only on the data.
    zero = call("drop_null", [arr])[0]
    filled = call("coalesce", [arr, zero])  # what pyarrow.compute.fill_null(arr, zero) runs
    # Rebuild with the original validity, so nulls stay nulls but their slots are zero.
    return pa.Array.from_buffers(t, len(arr), [validity.buffers()[1], *filled.buffers()[1:]], arr.null_count)


def _compute_kernels() -> Callable[..., Any]:
    """Arrow's `call_function`, without importing `pyarrow.compute`.

    `pyarrow.compute` builds a Python wrapper with a signature and docs for each of its ~300 kernels
    when imported: about 20 ms of every run's CPU, for the three kernels the hash calls by name.
    """
    try:
        from pyarrow._compute import call_function
    except ImportError:  # a pyarrow that moved it: the public (slower to import) name
        from pyarrow.compute import call_function
    return call_function


class DataHasher:
    """Streaming `data_sha256`: feed record batches in order, then read `hexdigest()`.

    The schema (without metadata) and the data re-chunked into batches of exactly
    `chunk_rows` rows are hashed as Arrow IPC, so the hash depends only on the
    column names, types and values in order, not on how the data was batched,
    encoded, compressed or split. Memory is bounded by `chunk_rows`.
    """

    def __init__(self, schema: pa.Schema, *, chunk_rows: int = HASH_CHUNK_ROWS) -> None:
        self._schema = schema.remove_metadata()
        self._chunk_rows = chunk_rows
        self._h = hashlib.sha256()
        self._h.update(HASH_VERSION.encode())
        self._h.update(self._schema.serialize().to_pybytes())
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._rows = 0

    def update(self, batch: pa.RecordBatch) -> None:
        """Add the next batch of rows."""
        batch = batch.replace_schema_metadata(None)
        self._rows += batch.num_rows
        while batch.num_rows:
            take = min(self._chunk_rows - self._pending_rows, batch.num_rows)
            self._pending.append(batch.slice(0, take))
            self._pending_rows += take
            batch = batch.slice(take)
            if self._pending_rows == self._chunk_rows:
                self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        table = pa.Table.from_batches(self._pending, schema=self._schema).combine_chunks()
        for batch in table.to_batches():
            columns = [_canonical_column(c) for c in batch.columns]
            canonical = pa.RecordBatch.from_arrays(columns, schema=self._schema)
            self._h.update(canonical.serialize())  # a pyarrow Buffer: hashed in place, no copy
        self._pending, self._pending_rows = [], 0

    def hexdigest(self) -> str:
        """``sha256:<hex>`` of everything fed so far (call once, at the end)."""
        if self._pending_rows:
            self._flush()
        self._h.update(str(self._rows).encode())
        return "sha256:" + self._h.hexdigest()


def data_sha256(path: str | Path, *, chunk_rows: int = HASH_CHUNK_ROWS) -> str:
    """``sha256:<hex>`` of a Parquet file's canonical Arrow data, read in bounded memory."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    hasher = DataHasher(pf.schema_arrow, chunk_rows=chunk_rows)
    for batch in pf.iter_batches(batch_size=chunk_rows):
        hasher.update(batch)
    return hasher.hexdigest()
