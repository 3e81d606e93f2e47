"""One dlt load for the benchmark: a MySQL table into PostgreSQL.

Runs inside the benchmark's own virtual environment (pinned dlt), never in the
project's: `python dlt_load.py --table rows_100000 --backend pyarrow --format parquet ...`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mysql-url", required=True, help="SQLAlchemy URL of the source database")
    parser.add_argument("--pg-url", required=True, help="PostgreSQL URL of the destination database")
    parser.add_argument("--table", required=True)
    parser.add_argument("--dataset", required=True, help="Destination schema")
    parser.add_argument("--backend", default="sqlalchemy", choices=["sqlalchemy", "pyarrow", "connectorx"])
    parser.add_argument("--format", default=None, help="Loader file format (default: dlt's own choice)")
    parser.add_argument("--chunk-size", type=int, default=50000)
    args = parser.parse_args()

    # Keep dlt's working files out of the home directory and out of the way of other runs.
    os.environ.setdefault("DLT_DATA_DIR", tempfile.mkdtemp(prefix="osiris-bench-dlt-"))
    os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"

    import dlt
    from dlt.sources.sql_database import sql_table

    started = time.perf_counter()
    source = sql_table(
        credentials=args.mysql_url,
        table=args.table,
        backend=args.backend,
        chunk_size=args.chunk_size,
    )
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{args.dataset}",
        destination=dlt.destinations.postgres(args.pg_url),
        dataset_name=args.dataset,
        pipelines_dir=os.environ["DLT_DATA_DIR"],
    )
    run_args = {"write_disposition": "replace"}
    if args.format:
        run_args["loader_file_format"] = args.format
    info = pipeline.run(source, **run_args)
    info.raise_on_failed_jobs()
    print(f"dlt loaded {args.table} in {time.perf_counter() - started:.2f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
