#!/usr/bin/env python3
"""Where the time of an artifact goes: CSV parse, Parquet encoding, `data_sha256`, and DuckDB reading it.

Usage: scripts/bench artifact [--rows 1000000] [--csv FILE] [--repeat 3]

Runs in one process, each variant `--repeat` times interleaved with the others, and prints the
median wall and CPU seconds (CPU: all threads of the process) of:

  - `filesystem.csv_extractor`'s batches alone (parse and re-cut to `batch_size`), on a thread a core
    and on one (`OSIRIS_CSV_PARSE_THREADS=1`: pyarrow's streaming reader alone, as before);
  - encoding those batches into Parquet with each candidate codec and statistics choice, the file
    size, and DuckDB's S3 aggregate over that file;
  - `DataHasher` over the batches;
  - the whole `read` step as the runner does it (`write_parquet_atomic` with its hasher), with
    jemalloc's decay of freed pages at Arrow's default (1 s, what runs use) and at 5 s, and with
    one parse thread.

The CSV is the one `scripts/bench --scenarios S3` exports from MariaDB when it is there, else one
generated with DuckDB in the same shape (15 columns, about 400 bytes a row). On a shared machine,
read the CPU column and the ratios between rows, not the walls. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
S3_SQL = (
    "SELECT customer_id, day, count(*) AS lines, sum(qty) AS items, sum(amount) AS amount, "
    "max(created_at) AS last_at FROM read_parquet('{path}') WHERE active GROUP BY ALL"
)
GENERATE = """
COPY (
  SELECT i AS id, i % 10000 AS customer_id, i % 50 AS qty, (i % 100000) / 100 AS amount,
         CASE WHEN i % 7 = 0 THEN NULL ELSE (i % 1000000) / 10000 END AS price,
         CASE WHEN i % 11 = 0 THEN NULL ELSE i / 3.0 END AS score, i * 1000003 AS counter,
         'C' || lpad((i % 100000)::VARCHAR, 8, '0') AS code, 'customer ' || (i % 10000) || ' ' || md5(i::VARCHAR) AS name,
         CASE WHEN i % 5 = 0 THEN NULL ELSE 'user' || i || '@example.com' END AS email,
         CASE WHEN i % 13 = 0 THEN NULL ELSE repeat(md5((i * 7)::VARCHAR), 7) END AS note,
         TIMESTAMP '2024-01-01' + to_seconds(i) AS created_at, DATE '2024-01-01' + (i % 365)::INT AS day,
         (i % 3 <> 0)::INT AS active,
         CASE WHEN i % 4 = 0 THEN NULL ELSE '{{"k": ' || (i % 100) || '}}' END AS attrs
  FROM range({rows}) t(i)
) TO '{path}' (HEADER)
"""


def csv_file(rows: int, given: str | None, work: Path) -> Path:
    if given:
        return Path(given)
    exported = ROOT / ".bench" / "work" / f"rows_v2_{rows}.csv"
    if exported.is_file():
        return exported
    import duckdb

    path = work / f"rows_{rows}.csv"
    duckdb.sql(GENERATE.format(rows=rows, path=path))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench artifact", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--csv", help="A CSV file to read instead")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from osiris.runtime import io
    from osiris.runtime.drivers.csv_extractor import CsvExtractor
    from osiris.runtime.testing import RecordingContext

    io.use_lean_memory_pool()
    work = Path(tempfile.mkdtemp(prefix="osiris-artifact-"))
    csv = csv_file(args.rows, args.csv, work)
    print(f"CSV {csv} ({csv.stat().st_size / 2**20:.0f} MiB); pyarrow {pa.__version__}, duckdb {duckdb.__version__}")

    def reader(threads: int | None = None) -> pa.RecordBatchReader:
        ctx = RecordingContext("read", work)
        os.environ.pop("OSIRIS_CSV_PARSE_THREADS", None)
        if threads:
            os.environ["OSIRIS_CSV_PARSE_THREADS"] = str(threads)
        try:
            return CsvExtractor().run(step_id="read", config={"path": str(csv)}, inputs={}, ctx=ctx)["df"]
        finally:
            os.environ.pop("OSIRIS_CSV_PARSE_THREADS", None)

    batches = list(reader())
    schema = batches[0].schema
    out = work / "output.parquet"
    print(f"{sum(b.num_rows for b in batches):,} rows, {sum(b.nbytes for b in batches) / 2**20:.0f} MiB of Arrow data")

    def encode(compression: str, level: int | None, stats: bool | list[str]) -> None:
        with pq.ParquetWriter(
            out, schema, compression=compression, compression_level=level, use_dictionary=False, write_statistics=stats
        ) as writer:
            for batch in batches:
                writer.write_batch(batch)

    def hash_only() -> None:
        hasher = io.DataHasher(schema)
        for batch in batches:
            hasher.update(batch)
        hasher.hexdigest()

    def read_step(decay_ms: int, threads: int | None = None) -> None:
        pa.jemalloc_set_decay_ms(decay_ms)
        r = reader(threads)
        hasher = io.DataHasher(r.schema)
        io.write_parquet_atomic(out, r.schema, r, step_id="read", hasher=hasher)
        hasher.hexdigest()
        pa.jemalloc_set_decay_ms(1000)

    prunable = io.statistics_columns(schema)
    encodings = {
        "zstd level 1, all statistics (0.4.0)": ("zstd", 1, True),
        "lz4, all statistics": ("lz4", None, True),
        "lz4, statistics where they prune (now)": ("lz4", None, prunable),
        "snappy, statistics where they prune": ("snappy", None, prunable),
        "none, statistics where they prune": ("none", None, prunable),
    }
    variants: dict[str, object] = {
        "parse + re-cut (csv_extractor)": lambda: sum(1 for _ in reader()),
        "parse + re-cut, one thread (streaming reader)": lambda: sum(1 for _ in reader(1)),
    }
    for name, how in encodings.items():
        variants[f"encode: {name}"] = lambda how=how: encode(*how)
    variants["hash (DataHasher)"] = hash_only
    variants["read step, jemalloc decay 1 s (runs)"] = lambda: read_step(1000)
    variants["read step, jemalloc decay 5 s"] = lambda: read_step(5000)
    variants["read step, one parse thread"] = lambda: read_step(1000, 1)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    sizes: dict[str, float] = {}
    queries: dict[str, list[float]] = {name: [] for name in encodings}
    for _ in range(args.repeat):
        for name, run in variants.items():
            wall, cpu = time.perf_counter(), time.process_time()
            run()  # type: ignore[operator]
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
            short = name.removeprefix("encode: ")
            if short in encodings:
                sizes[short] = out.stat().st_size / 2**20
                con = duckdb.connect()
                started = time.perf_counter()
                con.sql(S3_SQL.format(path=out)).to_arrow_table()
                queries[short].append(time.perf_counter() - started)
                con.close()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\nmedian of {args.repeat} runs; {os.cpu_count()} CPUs, load average {load} (a loaded machine: compare CPU s)"
    )
    print(f"{'':52s} {'wall s':>7s} {'CPU s':>7s} {'MiB':>7s} {'S3 query s':>10s}")
    for name, runs in times.items():
        short = name.removeprefix("encode: ")
        extra = f" {sizes[short]:7.1f} {statistics.median(queries[short]):10.3f}" if short in sizes else ""
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(f"{name:52s} {wall:7.3f} {cpu:7.3f}{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
