"""`filesystem.csv_extractor`: stream a CSV file as Arrow record batches, parsed on every core.

pyarrow's streaming reader (`pyarrow.csv.open_csv`) parses on one thread. This driver keeps its
semantics exactly and spreads its work: the file is read in the same 1 MiB blocks, each cut after
its last line end as the streaming reader cuts it; the first block is parsed by the streaming reader
itself (header, column names and the types it infers from that block alone), the rest in segments of
`SEGMENT_BLOCKS` blocks on a pool of threads, each by a streaming reader with those names and types
fixed (which also costs less: columns whose types are given convert faster than inferred ones, about
0.7 against 1.0 CPU s for the 405 MiB of `scripts/bench` S3); rows come out in file order, re-cut to
`batch_size`.

Where a block parse is not certain to equal the streaming reader's (a parse error, or a cut that may
fall inside a quoted value spanning lines: `newlines_in_values` stays off, as before), the streaming
reader itself takes over from the first row not yet handed out, fed the very blocks it would have read,
so the rows and the error messages are those of the streaming reader alone. `OSIRIS_CSV_PARSE_THREADS=1` uses it throughout.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from osiris.core.errors import TerminalError
from osiris.runtime.contract import InputHandle, StepContext
from osiris.runtime.drivers._types import parse_arrow_type

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.csv as pcsv

# pyarrow reads CSV in blocks of bytes (peak memory grows with the block size: 4 MiB blocks doubled it
# on 5M rows); rows per block vary, so batches are re-cut to `batch_size`. The blocks are also what
# type inference sees (the first one) and where the parallel parse cuts the file.
BLOCK_SIZE = 1024 * 1024
# What pyarrow's own `compression="detect"` reads from a file name; the file is opened here so that
# the bytes read so far (against the file's size) can be reported as the step's progress.
COMPRESSION_BY_SUFFIX = {".gz": "gzip", ".bz2": "bz2", ".lz4": "lz4", ".zst": "zstd", ".br": "brotli"}
# Blocks parsed by one reader on one thread. Every segment being parsed, or parsed and waiting for its
# turn, is held in memory (its bytes and its batches: about 10 MiB; one a thread, and the one being handed
# out). On the 405 MiB of `scripts/bench` S3 with 2 threads: 4 blocks parsed as fast as 8 or 16, with a
# peak 10 MiB above the streaming reader's (8: 50 MiB, 16: 130 MiB); 2 blocks cost CPU time.
SEGMENT_BLOCKS = 4
LINE_ENDS = (b"\n", b"\r")
QUOTE = b'"'
WINDOW = 4096  # bytes looked at a time for a line around a cut


def parse_threads(environ: dict[str, str] | None = None) -> int:
    """Threads that parse a CSV: `OSIRIS_CSV_PARSE_THREADS`, else one per core this process may use."""
    from osiris.runtime.scheduler import default_max_parallel

    value = (os.environ if environ is None else environ).get("OSIRIS_CSV_PARSE_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return default_max_parallel()


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
        # The stream is transcoded to UTF-8 below (as pyarrow does for `ReadOptions.encoding`), so every
        # parse reads UTF-8.
        read = pcsv.ReadOptions(
            block_size=BLOCK_SIZE,
            encoding="utf8",
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
            # pyarrow's own transcoding of `ReadOptions.encoding` (nothing for UTF-8 itself).
            stream = pa.transcoding_input_stream(source, config.get("encoding", "utf-8"), "utf8")
            plan = _open(stream, read, parse, convert, threads=parse_threads())
        except (pa.ArrowInvalid, pa.ArrowKeyError, OSError) as exc:
            if raw is not None:
                raw.close()
            raise TerminalError(
                f"Cannot read CSV `{config['path']}` in step `{step_id}`: {exc}", step=step_id
            ) from None
        batch_size = int(config.get("batch_size", 65536))
        size = path.stat().st_size
        schema = plan.schema
        ctx.log_event("csv_opened", path=str(config["path"]), columns=schema.names, bytes=size)
        ctx.progress_total(bytes=size)
        reported = 0

        def report_bytes() -> None:
            # Bytes of the file read so far (blocks are read ahead of the batches handed out).
            nonlocal reported
            position = raw.tell()
            if position > reported:
                ctx.progress(0, bytes=position - reported)
                reported = position

        def batches() -> Iterator[pa.RecordBatch]:
            pending: list[pa.RecordBatch] = []
            pending_rows = 0
            try:
                for batch in plan.batches():
                    report_bytes()
                    pending.append(batch)
                    pending_rows += batch.num_rows
                    while pending_rows >= batch_size:
                        table = pa.Table.from_batches(pending, schema=schema)
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
                plan.close()
                raw.close()
            if pending_rows:
                yield from pa.Table.from_batches(pending, schema=schema).combine_chunks().to_batches()

        return {"df": pa.RecordBatchReader.from_batches(schema, batches())}


class _Plan:
    """How a file is parsed: its schema and its record batches in file order (not re-cut)."""

    def __init__(
        self, schema: pa.Schema, batches: Callable[[], Iterator[pa.RecordBatch]], close: Callable[[], None]
    ) -> None:
        self.schema = schema
        self.batches = batches
        self.close = close


def _streaming(reader: pcsv.CSVStreamingReader) -> _Plan:
    """The plan of one streaming reader: its batches as it reads them."""
    return _Plan(reader.schema, lambda: iter(reader), lambda: None)


def _open(
    stream: pa.NativeFile,
    read: pcsv.ReadOptions,
    parse: pcsv.ParseOptions,
    convert: pcsv.ConvertOptions,
    *,
    threads: int,
) -> _Plan:
    """Read the first block; parse it as the streaming reader does, and plan the rest of the file."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    if threads <= 1:
        return _streaming(pcsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert))
    first = stream.read_buffer(BLOCK_SIZE)
    if first.size < BLOCK_SIZE:  # the whole file is one block: the streaming reader reads it as it is
        return _streaming(
            pcsv.open_csv(pa.BufferReader(first), read_options=read, parse_options=parse, convert_options=convert)
        )

    def from_start() -> _Plan:
        # The streaming reader over the whole file, as before this driver parsed in parallel.
        replay = pa.PythonFile(_Replay([first], stream), mode="r")
        return _streaming(pcsv.open_csv(replay, read_options=read, parse_options=parse, convert_options=convert))

    cut = _last_line_end(first)
    if cut < 0:
        return from_start()
    head = first.slice(0, cut + 1)
    try:
        reader = pcsv.open_csv(pa.BufferReader(head), read_options=read, parse_options=parse, convert_options=convert)
        table = reader.read_all()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return from_start()  # whose error is the one to report
    names = reader.schema.names
    if convert.include_columns:  # the other columns of the file are named in its header
        names = pcsv.open_csv(pa.BufferReader(head), read_options=read, parse_options=parse).schema.names
    if table.num_rows == 0 or len(set(names)) != len(names):
        return from_start()
    return _Parallel(stream, first, cut, table, names, read, parse, convert, threads).plan()


def _last_line_end(block: pa.Buffer) -> int:
    """Where the last line end in `block` is, or -1: where the streaming reader's chunker cuts a block."""
    end = block.size
    while end > 0:
        start = max(0, end - 65536)
        window = block.slice(start, end - start).to_pybytes()
        found = max(window.rfind(b"\n"), window.rfind(b"\r"))
        if found >= 0:
            return start + found
        end = start
    return -1


class _Segment:
    """Whole lines of the file and their batches once parsed.

    `pieces` are the lines' bytes: `head` (the end of the block before, after its cut; None at the start
    of the file), the blocks read, the last one up to its cut. `blocks` are those blocks whole, as the
    streaming reader of the whole file reads them.
    """

    __slots__ = ("blocks", "head", "parsed", "pieces")

    def __init__(
        self,
        head: pa.Buffer | None,
        pieces: list[pa.Buffer],
        blocks: list[pa.Buffer],
        parsed: Future[list[pa.RecordBatch]],
    ) -> None:
        self.head = head
        self.pieces = pieces
        self.blocks = blocks
        self.parsed = parsed


class _Parallel:
    """The file after its first block, parsed a segment at a time on a pool of threads.

    A segment is `SEGMENT_BLOCKS` blocks of the file, from the cut in the block before them to the cut
    in their last one. Each is parsed by a streaming reader with the columns' types fixed, fed the
    blocks the streaming reader of the whole file reads (`_Replay`: first the end of the block the
    segment starts in), so that it cuts them where that one does; a segment's batches are handed out,
    in order, once the next segment parsed and the cut between them is certain to be a row's end.
    """

    def __init__(
        self,
        stream: pa.NativeFile,
        first: pa.Buffer,
        cut: int,
        table: pa.Table,
        names: list[str],
        read: pcsv.ReadOptions,
        parse: pcsv.ParseOptions,
        convert: pcsv.ConvertOptions,
        threads: int,
    ) -> None:
        import pyarrow.csv as pcsv

        self.stream = stream
        self.read_options = read
        self.parse_options = parse
        self.convert_options = convert
        self.schema = table.schema
        self.threads = threads
        # Later segments have no header: the file's column names, and the types the first block fixed.
        self.typed_read = pcsv.ReadOptions(block_size=BLOCK_SIZE, encoding="utf8", column_names=names)
        self.typed_convert = pcsv.ConvertOptions(
            column_types={field.name: field.type for field in self.schema},
            null_values=convert.null_values,
            strings_can_be_null=True,
            include_columns=convert.include_columns or None,
        )
        # A value of the file's last column that ends with a line end: a sign of a cut inside a quoted value.
        last = names[-1]
        self.last_column = (
            last if last in self.schema.names and self.schema.field(last).type in _string_types() else None
        )
        self.tail = first.slice(cut + 1)  # the end of the last block read, after its cut
        self.eof = False
        head: Future[list[pa.RecordBatch]] = Future()
        head.set_result(table.to_batches())
        self.segments: deque[_Segment] = deque([_Segment(None, [first.slice(0, cut + 1)], [first], head)])
        self.pool: ThreadPoolExecutor | None = None

    def plan(self) -> _Plan:
        return _Plan(self.schema, self.batches, self.close)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def _parse(self, pieces: list[pa.Buffer]) -> list[pa.RecordBatch]:
        import pyarrow as pa
        import pyarrow.csv as pcsv

        replay = pa.PythonFile(_Replay(pieces, None), mode="r")
        reader = pcsv.open_csv(
            replay, read_options=self.typed_read, parse_options=self.parse_options, convert_options=self.typed_convert
        )
        return [batch for batch in reader if batch.num_rows]

    def _next_segment(self) -> bool:
        """Read the next segment and start parsing it; False at the end of the file."""
        if self.eof:
            return False
        head = self.tail
        pieces = [head] if head.size else []
        blocks: list[pa.Buffer] = []
        while True:
            block = self.stream.read_buffer(BLOCK_SIZE)
            if not block.size:
                self.eof = True
                break
            blocks.append(block)
            cut = _last_line_end(block) if len(blocks) >= SEGMENT_BLOCKS else -1
            if cut < 0:  # the segment goes on (or its last line goes on past this block)
                pieces.append(block)
                continue
            pieces.append(block.slice(0, cut + 1))
            self.tail = block.slice(cut + 1)
            break
        if not pieces:
            return False
        assert self.pool is not None
        self.segments.append(_Segment(head, pieces, blocks, self.pool.submit(self._parse, pieces)))
        return True

    def batches(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="osiris-csv-parse")
        while self.segments:
            while len(self.segments) <= self.threads and self._next_segment():
                pass
            segment = self.segments[0]
            try:
                parsed = segment.parsed.result()
                following = self.segments[1] if len(self.segments) > 1 else None
                if following is not None:
                    following.parsed.result()
                    if self._doubtful_cut(segment, parsed, following):
                        break
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                break
            self.segments.popleft()
            yield from parsed
        else:
            return
        yield from self._take_over()

    def _doubtful_cut(self, before: _Segment, parsed: list[pa.RecordBatch], after: _Segment) -> bool:
        """Whether the cut between two segments may be inside a quoted value rather than at a row's end.

        A line with an odd number of quotes opens or closes a quoted value that goes on past a line end:
        the last line before the cut and the first one after it are counted; and an unclosed quote takes
        in everything up to the cut, the line end too, so the last value before it may end with one.
        """
        if _last_line(before.pieces).count(QUOTE) % 2 or _first_line(after.pieces).count(QUOTE) % 2:
            return True
        return self.last_column is not None and bool(parsed) and _ends_a_line(parsed[-1], self.last_column)

    def _take_over(self) -> Iterator[pa.RecordBatch]:
        """The streaming reader from the first row not handed out, fed the blocks it would have read."""
        import pyarrow as pa
        import pyarrow.csv as pcsv

        self.close()
        head = self.segments[0].head
        held = [*([head] if head is not None else []), *(b for segment in self.segments for b in segment.blocks)]
        self.segments.clear()
        if head is None:  # the first block's parse is in doubt: the reader of the whole file, inference too
            read, convert = self.read_options, self.convert_options
        else:
            read, convert = self.typed_read, self.typed_convert
        replay = pa.PythonFile(_Replay(held, None if self.eof else self.stream), mode="r")
        yield from pcsv.open_csv(replay, read_options=read, parse_options=self.parse_options, convert_options=convert)


def _last_line(pieces: list[pa.Buffer]) -> bytes:
    """The last line in `pieces` that is not blank, without its line end."""
    parts: list[bytes] = []
    for piece in reversed(pieces):
        for end in range(piece.size, 0, -WINDOW):
            window = piece.slice(max(0, end - WINDOW), min(end, WINDOW)).to_pybytes()
            if not parts:  # the line ends after the line
                window = window.rstrip(b"\r\n")
                if not window:
                    continue
            found = max(window.rfind(b"\n"), window.rfind(b"\r"))
            if found >= 0:
                parts.append(window[found + 1 :])
                return b"".join(reversed(parts))
            parts.append(window)
    return b"".join(reversed(parts))


def _first_line(pieces: list[pa.Buffer]) -> bytes:
    """The first line in `pieces` that is not blank, without its line end."""
    parts: list[bytes] = []
    for piece in pieces:
        for start in range(0, piece.size, WINDOW):
            window = piece.slice(start, min(WINDOW, piece.size - start)).to_pybytes()
            if not parts:  # the line ends before the line
                window = window.lstrip(b"\r\n")
                if not window:
                    continue
            ends = [i for i in (window.find(b"\n"), window.find(b"\r")) if i >= 0]
            if ends:
                parts.append(window[: min(ends)])
                return b"".join(parts)
            parts.append(window)
    return b"".join(parts)


class _Replay:
    """A stream of blocks already read, as the streaming reader reads them, then the rest of the file.

    The first piece may be the end of a block (after a cut); every later one is a whole block.
    """

    def __init__(self, pieces: list[pa.Buffer], stream: pa.NativeFile | None) -> None:
        self.pieces = deque(piece for piece in pieces if piece.size)  # an empty read is the end of a file
        self.stream = stream
        self.closed = False

    def read(self, nbytes: int = -1) -> pa.Buffer | bytes:
        if self.pieces:
            return self.pieces.popleft()
        if self.stream is None:
            return b""
        return self.stream.read_buffer(BLOCK_SIZE)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


def _string_types() -> tuple[pa.DataType, ...]:
    import pyarrow as pa

    return (pa.string(), pa.binary(), pa.large_string(), pa.large_binary())


def _ends_a_line(batch: pa.RecordBatch, column: str) -> bool:
    """Whether the last value of `column` in the batch ends with a line end."""
    if batch.num_rows == 0:
        return False
    value = batch.column(column)[-1].as_py()
    if isinstance(value, str):
        return value.endswith(("\n", "\r"))
    return isinstance(value, bytes) and value.endswith(LINE_ENDS)
