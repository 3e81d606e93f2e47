"""`filesystem.csv_extractor` parses on several threads and gives what pyarrow's streaming reader gave.

Every case is read twice: by the driver, and by the reader the driver used before it parsed in
parallel (pyarrow's `open_csv` over the whole file, types inferred from the first block), with small
blocks so that a few KiB of CSV make many blocks and segments. Schema, values, row order, batches and
`data_sha256` must be the same; or the same error, with the same message.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from osiris.core.errors import TerminalError
from osiris.runtime import io
from osiris.runtime.drivers import csv_extractor
from osiris.runtime.drivers._types import parse_arrow_type
from osiris.runtime.drivers.csv_extractor import CsvExtractor
from osiris.runtime.testing import RecordingContext

BLOCK = 4096


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Blocks of 4 KiB and segments of 3 blocks, on 3 threads (also on a machine with fewer cores)."""
    monkeypatch.setattr(csv_extractor, "BLOCK_SIZE", BLOCK)
    monkeypatch.setattr(csv_extractor, "SEGMENT_BLOCKS", 3)
    monkeypatch.setenv("OSIRIS_CSV_PARSE_THREADS", "3")


@pytest.fixture
def take_overs(monkeypatch):
    """How many times the streaming reader took over from the parallel parse."""
    calls: list[int] = []
    original = csv_extractor._Parallel._take_over

    def counted(self):
        calls.append(1)
        yield from original(self)

    monkeypatch.setattr(csv_extractor._Parallel, "_take_over", counted)
    return calls


def streaming_reader(path: Path, config: dict) -> pa.Table:
    """What the driver read before: pyarrow's streaming reader over the whole file, in the same blocks."""
    header = config.get("header", True)
    columns = config.get("columns")
    types = {c: parse_arrow_type(t) for c, t in (config.get("column_types") or {}).items()}
    read = pcsv.ReadOptions(
        block_size=BLOCK,
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
    source = pa.CompressedInputStream(pa.OSFile(str(path)), "gzip") if path.suffix == ".gz" else pa.OSFile(str(path))
    with source:
        reader = pcsv.open_csv(source, read_options=read, parse_options=parse, convert_options=convert)
        return reader.read_all()


def driver_read(path: Path, config: dict, ctx: RecordingContext | None = None) -> list[pa.RecordBatch]:
    ctx = ctx or RecordingContext("read", path.parent)
    reader = CsvExtractor().run(step_id="read", config={"path": str(path), **config}, inputs={}, ctx=ctx)["df"]
    return list(reader)


def digest(schema: pa.Schema, batches) -> str:
    hasher = io.DataHasher(schema)
    for batch in batches:
        hasher.update(batch)
    return hasher.hexdigest()


def assert_same(path: Path, config: dict | None = None) -> pa.Table | None:
    """The driver reads `path` as the streaming reader did: same table, or the same error."""
    config = dict(config or {})
    batch_size = config.pop("batch_size", 100)
    try:
        expected = streaming_reader(path, config)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        with pytest.raises(TerminalError) as got:
            driver_read(path, {**config, "batch_size": batch_size})
        message = str(got.value)
        assert message.endswith(f": {exc}; name the column's type in `column_types` if inference guessed wrong") or (
            message.endswith(f": {exc}") and "Cannot read CSV" in message
        ), (message, str(exc))
        return None
    batches = driver_read(path, {**config, "batch_size": batch_size})
    got = pa.Table.from_batches(batches, schema=expected.schema)
    assert got.schema == expected.schema
    assert got.equals(expected), "same values in the same order"
    sizes = [b.num_rows for b in batches]
    assert all(n == batch_size for n in sizes[:-1]) and (not sizes or 0 < sizes[-1] <= batch_size)
    assert digest(got.schema, batches) == digest(expected.schema, expected.to_batches())
    return got


def _value(kind: str, i: int, rnd: random.Random) -> str:
    if rnd.random() < 0.08:
        return ""  # null
    if kind == "int":
        return str(rnd.randint(-(10**12), 10**12))
    if kind == "float":
        return repr(rnd.uniform(-1e6, 1e6))
    if kind == "decimal":
        return f"{rnd.randint(-(10**9), 10**9) / 100:.2f}"
    if kind == "timestamp":
        return f"2024-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d} {rnd.randint(0, 23):02d}:00:{i % 60:02d}"
    if kind == "date":
        return f"20{rnd.randint(10, 30)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
    if kind == "bool":
        return rnd.choice(["true", "false"])
    if kind == "empty":
        return ""
    if kind == "quoted":  # delimiters and doubled quotes inside quotes
        text = "".join(rnd.choice('ab c,;"é') for _ in range(rnd.randint(0, 20)))
        return '"' + text.replace('"', '""') + '"'
    return "".join(rnd.choice("abcdefgh xyz") for _ in range(rnd.randint(1, 30)))


KINDS = ["int", "float", "decimal", "timestamp", "date", "bool", "text", "empty", "quoted"]


def make_csv(
    path: Path,
    rows: int,
    *,
    seed: int = 0,
    kinds: list[str] = KINDS,
    header: bool = True,
    newline: str = "\n",
    trailing_newline: bool = True,
    encoding: str = "utf-8",
    extra_lines: dict[int, str] | None = None,
) -> Path:
    rnd = random.Random(seed)
    lines = [",".join(f"c{i}_{k}" for i, k in enumerate(kinds))] if header else []
    for i in range(rows):
        lines.append((extra_lines or {}).get(i) or ",".join(_value(k, i, rnd) for k in kinds))
    text = newline.join(lines) + (newline if trailing_newline else "")
    data = text.encode(encoding)
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("seed", range(6))
def test_generated_files_read_the_same(tmp_path, seed, take_overs):
    path = make_csv(tmp_path / "a.csv", 3000, seed=seed)
    assert path.stat().st_size > 20 * BLOCK
    got = assert_same(path)
    assert got is not None and got.num_rows == 3000
    assert got.schema.field("c7_empty").type == pa.null() and got.schema.field("c5_bool").type == pa.bool_()
    assert take_overs == [], "balanced quotes: parsed in parallel to the end"


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_crlf_and_cr_line_ends(tmp_path, newline, take_overs):
    for seed in range(4):  # some blocks end between `\r` and `\n`
        path = make_csv(tmp_path / "a.csv", 2500, seed=seed, newline=newline)
        assert assert_same(path) is not None
    assert take_overs == []


def test_no_trailing_newline_and_a_file_smaller_than_a_block(tmp_path):
    assert assert_same(make_csv(tmp_path / "a.csv", 2500, trailing_newline=False)) is not None
    assert assert_same(make_csv(tmp_path / "b.csv", 2500, newline="\r\n", trailing_newline=False)) is not None
    small = make_csv(tmp_path / "c.csv", 20)
    assert small.stat().st_size < BLOCK
    assert assert_same(small).num_rows == 20
    exact = tmp_path / "d.csv"  # exactly one block, then the end
    exact.write_bytes(b"a,b\n" + b"1,x\n" * ((BLOCK - 4) // 4))
    assert exact.stat().st_size == BLOCK
    assert assert_same(exact).num_rows == (BLOCK - 4) // 4


def test_column_types_decimals_and_strings(tmp_path):
    path = make_csv(tmp_path / "a.csv", 2500, seed=3)
    types = {"c2_decimal": "decimal128(14,2)", "c0_int": "int64", "c6_text": "string", "c7_empty": "string"}
    got = assert_same(path, {"column_types": types})
    assert got.schema.field("c2_decimal").type == pa.decimal128(14, 2)


def test_a_value_that_does_not_fit_the_inferred_type_later_in_the_file(tmp_path, take_overs):
    # Integers in the first block, a word in a later segment: the same error as before.
    path = make_csv(tmp_path / "a.csv", 3000, kinds=["int", "text"], extra_lines={2500: "oops,text"})
    with pytest.raises(TerminalError, match=r"CSV conversion error to int64: invalid value 'oops'.*`column_types`"):
        driver_read(path, {})
    assert assert_same(path) is None
    # A column empty in the first block is of type null; a value later is an error too.
    path = make_csv(tmp_path / "b.csv", 3000, kinds=["empty", "int"], extra_lines={2800: "5,5"})
    with pytest.raises(TerminalError, match="CSV conversion error to null"):
        driver_read(path, {})
    assert assert_same(path) is None
    # A row with a column too many, near the end.
    path = make_csv(tmp_path / "c.csv", 3000, kinds=["int", "text"], extra_lines={2999: "1,2,3"})
    assert assert_same(path) is None
    assert take_overs, "the streaming reader took over to report the error"


def test_an_error_in_the_first_block_is_reported_when_opening(tmp_path):
    path = make_csv(tmp_path / "a.csv", 3000, kinds=["int", "text"], extra_lines={10: "1,2,3"})
    with pytest.raises(TerminalError, match=r"Cannot read CSV .*Expected 2 columns, got 3"):
        driver_read(path, {})
    assert assert_same(path) is None
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert assert_same(empty) is None


def test_headerless_with_columns_autogenerated_names_and_include_columns(tmp_path):
    kinds = ["int", "text", "date", "quoted"]
    path = make_csv(tmp_path / "a.csv", 2500, kinds=kinds, header=False)
    got = assert_same(path, {"header": False, "columns": ["id", "name", "day", "note"]})
    assert got.schema.names == ["id", "name", "day", "note"]
    assert assert_same(path, {"header": False}).schema.names == ["f0", "f1", "f2", "f3"]
    path = make_csv(tmp_path / "b.csv", 2500, kinds=kinds)
    got = assert_same(path, {"columns": ["c3_quoted", "c0_int"]})
    assert got.schema.names == ["c3_quoted", "c0_int"]
    assert assert_same(path, {"columns": ["c0_int", "c2_date"]}).num_rows == 2500


def test_delimiter_null_values_and_batch_sizes(tmp_path):
    path = tmp_path / "a.csv"
    rows = [f"{i};{'NA' if i % 7 == 0 else i * 2};x{i}" for i in range(3000)]
    path.write_text("a;b;c\n" + "\n".join(rows) + "\n")
    for batch_size in (1, 7, 1000, 10_000):
        assert assert_same(path, {"delimiter": ";", "null_values": ["NA"], "batch_size": batch_size}) is not None


def test_gzip_compressed(tmp_path):
    path = make_csv(tmp_path / "a.csv.gz", 3000, seed=4)
    ctx = RecordingContext("read", tmp_path)
    batches = driver_read(path, {}, ctx)
    assert sum(b.num_rows for b in batches) == 3000
    assert sum(ctx.progress_bytes) == path.stat().st_size, "progress counts the compressed file's bytes"
    assert assert_same(path) is not None


def test_latin1_encoding(tmp_path):
    path = make_csv(tmp_path / "a.csv", 3000, seed=5, encoding="latin-1")
    got = assert_same(path, {"encoding": "latin-1"})
    assert any("é" in (v or "") for v in got.column("c8_quoted").to_pylist())


def test_progress_reaches_the_file_size_and_reading_stays_a_few_segments_ahead(tmp_path):
    path = make_csv(tmp_path / "a.csv", 20_000, kinds=["int", "text", "float"])
    ctx = RecordingContext("read", tmp_path)
    reader = CsvExtractor().run(step_id="read", config={"path": str(path), "batch_size": 100}, inputs={}, ctx=ctx)
    batches = iter(reader["df"])
    next(batches)
    ahead = (3 + 2) * 3 * BLOCK  # a segment per thread, the one handed out and the next one, and a block
    assert 0 < sum(ctx.progress_bytes) <= ahead < path.stat().st_size
    rows = 100 + sum(b.num_rows for b in batches)
    assert rows == 20_000 and sum(ctx.progress_bytes) == path.stat().st_size
    assert ctx.progress_totals == [(None, path.stat().st_size)]


def test_one_thread_is_the_streaming_reader(tmp_path, monkeypatch):
    monkeypatch.setenv("OSIRIS_CSV_PARSE_THREADS", "1")
    path = make_csv(tmp_path / "a.csv", 2500, seed=1)
    assert csv_extractor.parse_threads() == 1
    assert assert_same(path) is not None
    monkeypatch.setenv("OSIRIS_CSV_PARSE_THREADS", "")
    assert csv_extractor.parse_threads() >= 1


def _quoted_newlines(path: Path, rows: int, share: float, seed: int, newlines: int = 1, last: bool = False) -> Path:
    rnd = random.Random(seed)
    lines = ["id,note,n"] if not last else ["id,n,note"]
    for i in range(rows):
        text = "".join(rnd.choice("abcdefgh ,") for _ in range(rnd.randint(0, 60)))
        if rnd.random() < share:
            text = text[:10] + "\n" * newlines + text[10:]
        lines.append(f'{i},"{text}",{i}' if not last else f'{i},{i},"{text}"')
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("share", [0.002, 0.02, 0.2])
@pytest.mark.parametrize("newlines", [1, 3])
@pytest.mark.parametrize("last", [False, True])
def test_quoted_newlines_read_or_fail_as_before(tmp_path, share, newlines, last):
    # `newlines_in_values` is off: the streaming reader reads a value spanning lines unless it meets a
    # block's end in a way it cannot follow. The driver must read the same rows or fail the same way.
    for seed in range(3):
        assert_same(_quoted_newlines(tmp_path / f"q{seed}.csv", 1500, share, seed, newlines, last))


def test_quotes_inside_unquoted_values(tmp_path, take_overs):
    # A quote inside an unquoted value is a character of it (12" screens): an odd count on a line
    # makes the cut doubtful, and the streaming reader reads the rest.
    path = tmp_path / "a.csv"
    path.write_text("id,size\n" + "".join(f'{i},{i % 30}"\n' if i % 3 == 0 else f"{i},{i}\n" for i in range(4000)))
    assert assert_same(path).num_rows == 4000
    assert take_overs == [1]


@pytest.mark.parametrize("columns", [None, ["note", "id"]])
@pytest.mark.parametrize("inner", [0, 1, 2])
def test_a_cut_inside_a_quoted_value_whose_lines_look_like_rows(tmp_path, inner, columns, take_overs):
    # A value `"x\n1,a\n2,b\n3,c"` whose line end number `inner` is the last one before the end of the
    # first segment (block 3). Cut there, both sides would parse without an error (`9,"x\n1,a` then
    # `2,b` and `3,c"`): only the doubtful cut tells, and the streaming reader takes over.
    value = '"x\n1,a\n2,b\n3,c"'
    segment_end = 4 * BLOCK
    lines, size = ["id,note"], len("id,note\n")
    while size < segment_end - 200:
        lines.append(f"{len(lines)},text{len(lines) % 10}")
        size += len(lines[-1]) + 1
    row = f"{len(lines)},{value}"
    newline_at = [i for i, c in enumerate(row) if c == "\n"][inner]
    pad = segment_end - size - newline_at - 1  # so that this line end is the block's last one
    lines[-1] += "z" * pad
    lines.append(row)
    lines += [f"{i},after{i}" for i in range(len(lines), len(lines) + 2000)]
    path = tmp_path / "a.csv"
    path.write_text("\n".join(lines) + "\n")
    data = path.read_bytes()
    assert data[:segment_end].rfind(b"\n") > data[:segment_end].rfind(b'"x'), "the cut is inside the value"
    got = assert_same(path, {"columns": columns} if columns else None)
    if inner == 2:  # the block after it starts with the value's last line: the streaming reader follows
        assert got.column("note").to_pylist().count("x\n1,a\n2,b\n3,c") == 1
    else:  # it cannot follow (nor could it before): the same error
        assert got is None
    assert take_overs == [1]


def test_blocks_ending_between_cr_and_lf_and_a_byte_order_mark(tmp_path, take_overs):
    # A 17-byte header and rows of 16 bytes with CRLF: the first block and the first segment end
    # between a `\r` and its `\n`.
    text = "identifier,name\r\n" + "".join(f"{i:06d},abcdefg\r\n" for i in range(3000))
    data = text.encode()
    assert data[BLOCK - 1 : BLOCK + 1] == b"\r\n" and data[4 * BLOCK - 1 : 4 * BLOCK + 1] == b"\r\n"
    path = tmp_path / "a.csv"
    for prefix in (b"", b"\xef\xbb\xbf"):
        path.write_bytes(prefix + data)
        got = assert_same(path)
        assert got.num_rows == 3000 and got.schema.names == ["identifier", "name"]
    assert take_overs == []


@pytest.mark.parametrize("odd", ["error", "quote"])
def test_blocks_ending_at_a_line_end_and_the_streaming_reader_taking_over(tmp_path, odd, take_overs):
    # Lines of 16 bytes: every block ends with a line end, so segments start on a block's start. A word
    # where the ints are (an error), or a quote on the last line of the first segment (a doubtful cut).
    lines = [f"{i:06d},abcdefgh" for i in range(4000)]
    if odd == "error":
        lines[3000] = "oops00,abcdefgh"
    else:
        lines[1022] = "001022,abcdefg" + '"'
    data = ("identifier,name\n" + "".join(line + "\n" for line in lines)).encode()
    assert data[4 * BLOCK - 1 : 4 * BLOCK] == b"\n" and data[4 * BLOCK - 16 : 4 * BLOCK].count(b'"') == (odd == "quote")
    path = tmp_path / "a.csv"
    path.write_bytes(data)
    got = assert_same(path)
    assert (got is None) == (odd == "error")
    assert take_overs == [1]
