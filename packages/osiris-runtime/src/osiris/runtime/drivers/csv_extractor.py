"""`filesystem.csv_extractor`: stream a CSV file as Arrow record batches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from osiris.core.errors import TerminalError
from osiris.runtime.contract import InputHandle, StepContext
from osiris.runtime.drivers._types import parse_arrow_type

# pyarrow reads CSV in blocks of bytes (peak memory grows with the block size: 4 MiB blocks doubled it
# on 5M rows); rows per block vary, so batches are re-cut to `batch_size`.
BLOCK_SIZE = 1024 * 1024
# What pyarrow's own `compression="detect"` reads from a file name; the file is opened here so that
# the bytes read so far (against the file's size) can be reported as the step's progress.
COMPRESSION_BY_SUFFIX = {".gz": "gzip", ".bz2": "bz2", ".lz4": "lz4", ".zst": "zstd", ".br": "brotli"}


class CsvExtractor:
    """Reads a CSV file in streaming blocks; types are inferred unless `column_types` names them."""

    def run(
        self, *, step_id: str, config: dict[str, Any], inputs: dict[str, InputHandle], ctx: StepContext
    ) -> dict[str, Any]:
        """Open the file and return `{"df": RecordBatchReader}`; nothing is read into memory whole."""
        import pyarrow as pa
        import pyarrow.csv as pcsv

        path = ctx.resolve_path(config["path"])
        if not path.is_file():
            raise TerminalError(
                f"Input file `{config['path']}` of step `{step_id}` not found (looked at `{path}`)", step=step_id
            )
        header = config.get("header", True)
        columns = config.get("columns")
        types = {
            col: parse_arrow_type(t, step_id=step_id, column=col)
            for col, t in (config.get("column_types") or {}).items()
        }
        read = pcsv.ReadOptions(
            block_size=BLOCK_SIZE,
            encoding=config.get("encoding", "utf-8"),
            column_names=None if header else columns,
            autogenerate_column_names=not header and not columns,
        )
        parse = pcsv.ParseOptions(delimiter=config.get("delimiter", ","))
        convert = pcsv.ConvertOptions(
            column_types=types or None,
            null_values=config.get("null_values", [""]),
            strings_can_be_null=True,
            include_columns=columns if (header and columns) else None,
        )
        raw = None
        try:
            raw = pa.OSFile(str(path))
            codec = COMPRESSION_BY_SUFFIX.get(path.suffix.lower())
            source = pa.CompressedInputStream(raw, codec) if codec else raw
            reader = pcsv.open_csv(source, read_options=read, parse_options=parse, convert_options=convert)
        except (pa.ArrowInvalid, pa.ArrowKeyError, OSError) as exc:
            if raw is not None:
                raw.close()
            raise TerminalError(
                f"Cannot read CSV `{config['path']}` in step `{step_id}`: {exc}", step=step_id
            ) from None
        batch_size = int(config.get("batch_size", 65536))
        size = path.stat().st_size
        ctx.log_event("csv_opened", path=str(config["path"]), columns=reader.schema.names, bytes=size)
        ctx.progress_total(bytes=size)
        reported = 0

        def report_bytes() -> None:
            # Bytes of the file read so far (pyarrow reads ahead of the batches handed out).
            nonlocal reported
            position = raw.tell()
            if position > reported:
                ctx.progress(0, bytes=position - reported)
                reported = position

        def batches() -> Iterator[pa.RecordBatch]:
            pending: list[pa.RecordBatch] = []
            pending_rows = 0
            try:
                for batch in reader:
                    report_bytes()
                    pending.append(batch)
                    pending_rows += batch.num_rows
                    while pending_rows >= batch_size:
                        table = pa.Table.from_batches(pending, schema=reader.schema)
                        yield from table.slice(0, batch_size).combine_chunks().to_batches()
                        rest = table.slice(batch_size)
                        pending, pending_rows = rest.to_batches(), rest.num_rows
                report_bytes()
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise TerminalError(
                    f"Cannot parse CSV `{config['path']}` in step `{step_id}`: {exc}; "
                    "name the column's type in `column_types` if inference guessed wrong",
                    step=step_id,
                ) from None
            finally:
                raw.close()
            if pending_rows:
                yield from pa.Table.from_batches(pending, schema=reader.schema).combine_chunks().to_batches()

        return {"df": pa.RecordBatchReader.from_batches(reader.schema, batches())}
