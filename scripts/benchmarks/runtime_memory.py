#!/usr/bin/env python3
"""Peak memory of `osiris run` on a CSV -> DuckDB -> Parquet pipeline over generated rows.

Usage: scripts/bench memory [--rows 500000 --rows 5000000] [--keep DIR]

For each row count it generates a CSV, runs the pipeline under `/usr/bin/time -v`
and prints the CSV size, the output size, the peak RSS and the wall time. The
figures go to stdout; nothing is asserted (timings are not tests).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OSIRIS = ROOT / ".venv" / "bin" / "osiris"

PIPELINE = """oml_version: "0.1.0"
name: bench_memory
steps:
  - id: orders
    component: filesystem.csv_extractor
    config:
      path: orders.csv
      column_types: {id: int64, customer_id: int64, country: string, amount: "decimal128(12,2)", note: string}
  - id: enriched
    component: duckdb.processor
    needs: [orders]
    config:
      memory_limit: 512MB
      query: |
        SELECT id, customer_id, country, amount, amount * 1.21 AS amount_gross,
               upper(note) AS note, id % 97 AS bucket
        FROM input_df
        WHERE amount > 0
  - id: out
    component: filesystem.parquet_writer
    needs: [enriched]
    config: {path: out/enriched.parquet}
"""


def generate_csv(path: Path, rows: int, chunk: int = 500_000) -> None:
    """Write `rows` synthetic order lines to `path`, chunk by chunk (bounded memory)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    countries = pa.array(["GB", "US", "NL", "DE", "FR", "FI", "SE", "ES"])
    schema = None
    writer = None
    try:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            ids = pa.array(range(start, start + n), pa.int64())
            table = pa.table(
                {
                    "id": ids,
                    "customer_id": pc.divide(ids, 7),
                    "country": countries.take(pc.bit_wise_and(ids, 7)),
                    "amount": pc.divide(pc.cast(pc.multiply(pc.bit_wise_and(ids, 1023), 37), pa.float64()), 100),
                    "note": pc.binary_join_element_wise("order line ", pc.cast(ids, pa.string()), ""),
                }
            )
            if writer is None:
                schema = table.schema
                writer = pcsv.CSVWriter(path, schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def measure(rows: int, workdir: Path) -> dict[str, float]:
    """Generate, run under /usr/bin/time -v, and return the figures."""
    workdir.mkdir(parents=True, exist_ok=True)
    csv = workdir / "orders.csv"
    if not csv.exists():
        generate_csv(csv, rows)
    (workdir / "pipeline.yaml").write_text(PIPELINE)
    done = subprocess.run(
        ["/usr/bin/time", "-v", str(OSIRIS), "run", "pipeline.yaml", "--no-progress"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"the run over {rows} rows failed")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", done.stderr).group(1)
    parts = [float(p) for p in wall.split(":")]
    seconds = sum(p * 60**i for i, p in enumerate(reversed(parts)))
    import pyarrow.parquet as pq

    out = workdir / "out" / "enriched.parquet"
    return {
        "rows": rows,
        "csv_mb": csv.stat().st_size / 1e6,
        "arrow_mb": pq.read_metadata(out).num_rows and _arrow_size_mb(out),
        "parquet_mb": out.stat().st_size / 1e6,
        "peak_rss_mb": rss_kb / 1024,
        "wall_s": seconds,
    }


def _arrow_size_mb(path: Path) -> float:
    """In-memory Arrow size of a Parquet file's data, summed row group by row group."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    return sum(pf.read_row_group(i).nbytes for i in range(pf.num_row_groups)) / 1e6


def main() -> None:
    """Run the benchmark for each requested row count and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="row counts (default: 500000 and 5000000)")
    parser.add_argument("--keep", type=Path, help="keep the generated data and runs in this folder")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="osiris-bench-"))
    results = []
    try:
        for rows in args.rows or [500_000, 5_000_000]:
            results.append(measure(rows, base / f"rows_{rows}"))
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    print(f"{'rows':>10}  {'csv MB':>8}  {'arrow MB':>9}  {'parquet MB':>10}  {'peak RSS MB':>11}  {'wall s':>7}")
    for r in results:
        print(
            f"{r['rows']:>10,}  {r['csv_mb']:>8.1f}  {r['arrow_mb']:>9.1f}  {r['parquet_mb']:>10.1f}"
            f"  {r['peak_rss_mb']:>11.1f}  {r['wall_s']:>7.1f}"
        )


if __name__ == "__main__":
    main()
