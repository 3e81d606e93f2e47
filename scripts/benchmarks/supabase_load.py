#!/usr/bin/env python3
"""Benchmark: supabase.writer's psycopg2 channel vs a raw `COPY … FROM STDIN` of the same rows as CSV.

Generates N rows × 15 columns as Parquet, then, each in its own child process (for peak RSS):
  raw_csv_copy   psycopg2 `copy_expert` of a ready CSV file into an empty table with a primary key
  append         SupabaseWriter append into an empty table of the same DDL
  replace_fresh  SupabaseWriter replace (primary key) into an empty table
  replace_full   SupabaseWriter replace (primary key) over a table already holding all N rows
With `--streams 1,2,4`, also, for each count N:
  staged_xN      the replace as N parallel binary COPY streams (N ADBC sessions, each its share of the
                 Parquet row groups) into one UNLOGGED staging table, then the writer's own merge in
                 one transaction (TRUNCATE + INSERT … SELECT): the atomic way to load with several streams
  upsert_xN      SupabaseWriter upsert (primary key) into an empty table with `copy_streams: N`: its
                 staging table filled by N COPY sessions, then the merge (INSERT … ON CONFLICT)
Prints rows/s, the ratio to the raw COPY, and each child's peak RSS. Needs PostgreSQL on
127.0.0.1:5432 (creates and drops its own database).

    scripts/bench supabase-load [--rows 1000000] [--batch-size 10000] [--streams 1,2,4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
DDL = (
    "(id bigint PRIMARY KEY, a integer, b bigint, c double precision, d double precision, e text, f text, "
    "g timestamptz, h date, i boolean, j numeric(12,2), k bigint, l text, m double precision, n timestamp)"
)


def generate(path: Path, n: int) -> None:
    """N rows of 15 mixed-type columns, written as Parquet."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    ids = pa.array(range(n), pa.int64())
    rnd = pc.random(n)
    as_str = pc.cast(pc.remainder(ids, 1000), pa.string())
    micros = pc.cast(pc.floor(pc.multiply(rnd, 1e14)), pa.int64())
    base = 1577836800 * 1_000_000  # 2020-01-01
    ts = pc.cast(pc.add(micros, base), pa.timestamp("us"))
    table = pa.table(
        {
            "id": ids,
            "a": pc.cast(pc.remainder(ids, 1000), pa.int32()),
            "b": pc.multiply(ids, 7919),
            "c": rnd,
            "d": pc.multiply(rnd, 1000.0),
            "e": pc.binary_join_element_wise("name_", as_str, ""),
            "f": pc.binary_join_element_wise("some longer text value number ", pc.cast(ids, pa.string()), ""),
            "g": pc.cast(ts, pa.timestamp("us", tz="UTC")),
            "h": pc.cast(pc.floor_temporal(ts, unit="day"), pa.date32()),
            "i": pc.greater(rnd, 0.5),
            "j": pc.cast(pc.round(pc.multiply(rnd, 10000.0), 2), pa.decimal128(12, 2)),
            "k": pc.remainder(ids, 100),
            "l": pc.binary_join_element_wise("c", pc.cast(pc.remainder(ids, 37), pa.string()), ""),
            "m": pc.multiply(rnd, rnd),
            "n": ts,
        }
    )
    pq.write_table(table, path, row_group_size=100_000)


def child(mode: str, db: str, parquet: Path, csv: Path, batch_size: int) -> dict[str, float]:
    """Run one contender in this process; returns rows and seconds."""
    import psycopg2

    extra: dict[str, float] = {}
    conn = psycopg2.connect(**PG, dbname=db)
    conn.autocommit = True
    cur = conn.cursor()
    table = f"bench_{mode}"
    if mode != "replace_full":
        cur.execute(f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} {DDL}")
    else:
        cur.execute(f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (LIKE bench_append INCLUDING ALL)")
        cur.execute(f"INSERT INTO {table} SELECT * FROM bench_append")
        cur.execute(f"VACUUM ANALYZE {table}")
    if mode.startswith("staged_x"):
        start = time.perf_counter()
        copy_s = staged_parallel(db, table, parquet, int(mode.removeprefix("staged_x")), batch_size)
        seconds = time.perf_counter() - start
        extra = {"copy_s": copy_s}
    elif mode == "raw_csv_copy":
        start = time.perf_counter()
        with open(csv, "rb") as f:
            cur.copy_expert(f"COPY {table} FROM STDIN (FORMAT csv)", f)
        seconds = time.perf_counter() - start
    else:
        from osiris.drivers.supabase.writer import SupabaseWriter
        from osiris.runtime.contract import InputHandle, StepContext

        streams = int(mode.removeprefix("upsert_x")) if mode.startswith("upsert_x") else 1
        config = {
            "table": table,
            "write_mode": "append" if mode == "append" else "upsert" if mode.startswith("upsert_x") else "replace",
            "primary_key": "id",
            "batch_size": batch_size,
            "copy_streams": streams,
            "retries": 0,
            "resolved_connection": {**PG, "dbname": db, "sslmode": "disable"},
        }
        ctx = StepContext(step_id="load", output_dir=tempfile.mkdtemp())
        start = time.perf_counter()
        SupabaseWriter().run(step_id="load", config=config, inputs={"df": InputHandle("gen", parquet)}, ctx=ctx)
        seconds = time.perf_counter() - start
    cur.execute(f"SELECT count(*) FROM {table}")
    rows = cur.fetchone()[0]
    conn.close()
    return {"rows": rows, "seconds": seconds, **extra}


def staged_parallel(db: str, table: str, parquet: Path, streams: int, batch_size: int) -> float:
    """Replace `table` with the Parquet rows: `streams` COPY sessions into one staging table, one merge.

    Returns the seconds the parallel COPY took (the rest of the time is the merge)."""
    import threading

    import pyarrow.parquet as pq

    from osiris.drivers.supabase import ddl
    from osiris.drivers.supabase.channels.postgres import PostgresLoader, run_sql
    from osiris.drivers.supabase.connection import SupabaseConnection
    from osiris.drivers.supabase.options import WriteOptions

    config = {"table": table, "write_mode": "replace", "primary_key": "id", "batch_size": batch_size}
    conn = SupabaseConnection.from_dict({**PG, "dbname": db, "sslmode": "disable"}, step="load")
    opts = WriteOptions.from_config(config, step="load", default_schema="public")
    loader = PostgresLoader(conn, opts, step="load", log_event=lambda *a, **k: None, progress=lambda n: None)
    schema = pq.ParquetFile(parquet).schema_arrow
    groups = pq.ParquetFile(parquet).num_row_groups
    pg, target = loader._pg()
    stage = loader._create_stage(pg, schema)
    counts = [0] * streams
    errors: list[BaseException] = []

    def stream(i: int) -> None:
        def batches():
            pf = pq.ParquetFile(parquet, pre_buffer=False, buffer_size=1 << 20)
            yield from pf.iter_batches(batch_size=batch_size, row_groups=list(range(i, groups, streams)))

        try:
            ac = loader._adbc(target)
            try:
                counts[i] = loader._copy_in(ac, stage, schema, batches)
                ac.commit()
            finally:
                ac.close()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    started = time.perf_counter()
    threads = [threading.Thread(target=stream, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    copy_s = time.perf_counter() - started
    try:
        if errors:
            raise errors[0]
        with pg.cursor() as cur:
            info = ddl.describe(run_sql(cur), opts.schema, opts.table)
            loader._merge(cur, info, schema, stage, sum(counts))
        pg.commit()
    finally:
        loader._drop_stage(pg, stage)
        pg.close()
    return copy_s


def main() -> None:
    """Parse arguments, run every contender in a child process, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=1, help="Interleaved runs per contender; the median is printed")
    ap.add_argument("--streams", default="", help="Also replace through N parallel COPY streams, e.g. 1,2,4")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "generate":
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        d = Path(args.dir)
        generate(d / "data.parquet", args.rows)
        pcsv.write_csv(pq.read_table(d / "data.parquet"), d / "data.csv", pcsv.WriteOptions(include_header=False))
        return
    if args.child:
        d = Path(args.dir)
        print(json.dumps(child(args.child, args.db, d / "data.parquet", d / "data.csv", args.batch_size)))
        return

    import psycopg2

    # Children are measured with wait4(); Linux keeps a process's peak RSS across exec, so the
    # parent stays small and even the data generation runs in a child.
    work = Path(tempfile.mkdtemp(prefix="osiris_bench_"))
    t = time.perf_counter()
    cmd = [sys.executable, __file__, "--child", "generate", "--dir", str(work), "--rows", str(args.rows)]
    subprocess.run(cmd, check=True)
    print(f"generated {args.rows:,} rows x 15 columns in {time.perf_counter() - t:.1f}s ({work})")
    db = f"osiris_bench_supabase_{secrets.token_hex(4)}"
    admin = psycopg2.connect(**PG, dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{db}"')
    streams = [f"staged_x{int(n)}" for n in args.streams.split(",") if n.strip()]
    upserts = [f"upsert_x{int(n)}" for n in args.streams.split(",") if n.strip()]
    modes = ["raw_csv_copy", "append", "replace_fresh", "replace_full", *streams, *upserts]
    results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    try:
        for round_no in range(args.repeat):
            # Rounds start one contender later each time, so no contender always runs first or
            # last on this shared machine; `replace_full` needs the table `append` fills in round 1.
            order = modes[round_no % len(modes) :] + modes[: round_no % len(modes)]
            for mode in order:
                # Each contender starts without the WAL of the one before waiting to be checkpointed.
                admin.cursor().execute("CHECKPOINT")
                results[mode].append(run_child(mode, db, work, args.batch_size))
    finally:
        for f in work.iterdir():
            f.unlink()
        work.rmdir()
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.close()
    report(results)


def run_child(mode: str, db: str, work: Path, batch_size: int) -> dict[str, float]:
    """One contender in a child process: its figures and its peak RSS."""
    cmd = [sys.executable, __file__, "--child", mode, "--db", db, "--dir", str(work), "--batch-size", str(batch_size)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{mode} failed")
    res = json.loads(out.decode().strip().splitlines()[-1])
    res["peak_rss_mb"] = usage.ru_maxrss / 1024
    return res


def report(results: dict[str, list[dict[str, float]]]) -> None:
    """Median seconds (and the fastest) per contender, rows/s and the ratio to the raw COPY."""
    import statistics

    def median(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in results[mode])

    raw = results["raw_csv_copy"][0]["rows"] / median("raw_csv_copy", "seconds")
    runs = len(results["raw_csv_copy"])
    print(f"median of {runs} interleaved run(s) per contender")
    header = f"{'contender':<16}{'rows':>10}{'seconds':>9}{'fastest':>9}{'rows/s':>10}{'vs raw':>8}{'peak RSS':>11}"
    print(header + "  (of which COPY)")
    for mode, rs in results.items():
        seconds = median(mode, "seconds")
        rate = rs[0]["rows"] / seconds
        split = f"  {median(mode, 'copy_s'):.2f}s" if "copy_s" in rs[0] else ""
        print(
            f"{mode:<16}{rs[0]['rows']:>10,}{seconds:>9.2f}{min(r['seconds'] for r in rs):>9.2f}{rate:>10,.0f}"
            f"{rate / raw:>8.2f}{max(r['peak_rss_mb'] for r in rs):>8.0f} MB{split}"
        )


if __name__ == "__main__":
    main()
