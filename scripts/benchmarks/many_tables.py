#!/usr/bin/env python3
"""Many tables in one pipeline: 16 MariaDB tables of mixed sizes (about 2M rows) copied to PostgreSQL.

Three ways, each timed from start to end of one command (compiling is done before and not timed):

- `osiris run` of one `tables:` pattern with the default parallelism (the machine's cores);
- the same with `--max-parallel 1` (the manifest's order, one step at a time);
- Sling's wildcard replication of the same tables (`sling-linux-amd64`, pinned in
  scripts/benchmarks/requirements.txt), full refresh into a schema of its own.

Every copy is checked by row count per table. Prints a table of the figures; asserts nothing else.

Usage: scripts/bench many-tables [--scale 1.0] [--repeat 1] [--sling-bin PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))

# Rows per table: a few large, many small, as in a typical application database (1,966,000 in all).
SIZES = [500_000, 350_000, 250_000, 200_000, 150_000, 120_000, 100_000, 80_000, 60_000, 50_000, 40_000,
         30_000, 20_000, 10_000, 5_000, 1_000]  # fmt: skip
NARROW = "id INT PRIMARY KEY, code VARCHAR(20) NOT NULL, amount DECIMAL(12,2)"
WIDE = (
    "id INT PRIMARY KEY, name VARCHAR(60) NOT NULL, city VARCHAR(40), amount DECIMAL(12,2), qty INT, "
    "ratio DOUBLE, created DATETIME, day DATE"
)
FILL_NARROW = "SELECT seq, CONCAT('c', seq % 977), (seq % 100000) / 100 FROM seq_1_to_{n}"
FILL_WIDE = (
    "SELECT seq, CONCAT('name ', seq), ELT(1 + seq % 5, 'Lyon', 'Oslo', 'Lima', 'Pune', NULL), (seq % 99991) / 7, "
    "seq % 313, seq / 3.0, TIMESTAMP('2024-01-01') + INTERVAL seq SECOND, DATE('2020-01-01') + INTERVAL seq % 2000 DAY "
    "FROM seq_1_to_{n}"
)


def fill(db, scale: float) -> dict[str, int]:
    cur = db.cursor()
    counts = {}
    for i, n in enumerate(SIZES):
        n = max(1, int(n * scale))
        name = f"t{i:02d}_{'wide' if i % 2 else 'narrow'}"
        cur.execute(f"CREATE TABLE {name} ({WIDE if i % 2 else NARROW})")
        cur.execute(f"INSERT INTO {name} {(FILL_WIDE if i % 2 else FILL_NARROW).format(n=n)}")
        counts[name] = n
    cur.execute("ANALYZE TABLE " + ", ".join(counts))
    cur.fetchall()
    return counts


def counts_in(pg, schema: str, tables: list[str]) -> dict[str, int]:
    cur = pg.cursor()
    out = {}
    for t in tables:
        cur.execute(f'SELECT count(*) FROM "{schema}"."{t}"')
        out[t] = cur.fetchone()[0]
    return out


def timed(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    took = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"`{' '.join(cmd)}` failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return took


def sling_binary(given: str | None) -> str:
    if given:
        return given
    bench_python = ROOT / ".bench" / "venv" / "bin" / "python"
    code = "import sling_linux_amd64; print(sling_linux_amd64.SLING_BIN)"
    return subprocess.run([str(bench_python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every table's rows (0.1 for a quick look)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each way; the best time counts")
    ap.add_argument("--sling-bin", help="the sling executable (default: from .bench/venv)")
    args = ap.parse_args(argv)

    from databases import mariadb_database, postgres_database
    from many_tables import write_connections

    osiris = [sys.executable, "-m", "osiris.core.cli"]
    sling = sling_binary(args.sling_bin)
    cores = len(os.sched_getaffinity(0))
    with mariadb_database("osiris_bench_many") as src, postgres_database("osiris_bench_many") as dst:
        t0 = time.perf_counter()
        counts = fill(src, args.scale)
        print(
            f"source: {len(counts)} tables, {sum(counts.values()):,} rows (filled in {time.perf_counter() - t0:.1f} s)"
        )
        with tempfile.TemporaryDirectory(prefix="osiris-bench-many-") as tmp:
            work = Path(tmp)
            write_connections(work / "osiris_connections.yaml", mysql_database=src.name, pg_database=dst.name)
            (work / "all.yaml").write_text(
                'oml_version: "0.1.0"\nname: bench-many\ntables:\n  - id: copy\n    source: "@mysql.src"\n'
                f'    include: ["{src.name}.*"]\n    write: {{connection: "@supabase.target", schema: public, '
                "write_mode: replace, create_if_missing: true}\n"
            )
            timed([*osiris, "discover", "@mysql.src"], cwd=work)
            timed([*osiris, "compile", "all.yaml"], cwd=work)
            pg = dst.connect()
            pg.cursor().execute("CREATE SCHEMA sling")
            (work / "replication.yaml").write_text(
                "source: MYSQL_SRC\ntarget: PG_DST\ndefaults:\n  mode: full-refresh\n"
                "  object: 'sling.{stream_table}'\nstreams:\n" + f"  '{src.name}.*':\n"
            )
            sling_env = {
                "MYSQL_SRC": f"mysql://root:@127.0.0.1:3306/{src.name}",
                "PG_DST": f"postgresql://postgres@127.0.0.1:5432/{dst.name}?sslmode=disable",
                "SLING_HOME_DIR": str(work / ".sling"),
                "SLING_DISABLE_TELEMETRY": "true",
                "SLING_THREADS": str(cores),
            }
            ways = {
                f"osiris, default parallelism ({cores})": ([*osiris, "run", "--last-compile", "--json"], {}, "public"),
                "osiris, --max-parallel 1": ([*osiris, "run", "--last-compile", "--json", "--max-parallel", "1"], {}, "public"),
                "sling, wildcard replication": ([sling, "run", "-r", "replication.yaml"], sling_env, "sling"),
            }  # fmt: skip
            results = {}
            for label, (cmd, env, schema) in ways.items():
                best = min(timed(cmd, cwd=work, env=env) for _ in range(args.repeat))
                got = counts_in(pg, schema, list(counts))
                if got != counts:
                    sys.exit(f"{label}: row counts differ from the source: {json.dumps(got)}")
                results[label] = best
                print(f"  {label:<36} {best:7.2f} s  {sum(counts.values()) / best:>12,.0f} rows/s")
    base = results[next(iter(results))]
    print("\n| way | wall time | rows/s | vs default |\n| --- | ---: | ---: | ---: |")
    for label, took in results.items():
        print(f"| {label} | {took:.2f} s | {sum(counts.values()) / took:,.0f} | {took / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
