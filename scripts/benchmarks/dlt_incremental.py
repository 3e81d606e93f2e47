"""One dlt incremental load for the benchmark: `sql_table(..., incremental=dlt.sources.incremental(...))`.

Runs inside the benchmark's own virtual environment (pinned dlt). Its pipeline state lives in
`--pipelines-dir`, so the first run loads everything and the next ones only what changed; rows are
merged on `--primary-key`, as an incremental load with updates must be.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mysql-url", required=True, help="SQLAlchemy URL of the source database")
    parser.add_argument("--pg-url", required=True, help="PostgreSQL URL of the destination database")
    parser.add_argument("--table", required=True)
    parser.add_argument("--dataset", required=True, help="Destination schema")
    parser.add_argument("--cursor", default="updated_at")
    parser.add_argument("--primary-key", default="id")
    parser.add_argument("--pipelines-dir", required=True)
    parser.add_argument("--backend", default="pyarrow", choices=["sqlalchemy", "pyarrow", "connectorx"])
    parser.add_argument("--chunk-size", type=int, default=50000)
    args = parser.parse_args()
    os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"
    os.environ.setdefault("DLT_DATA_DIR", args.pipelines_dir)

    import dlt
    from dlt.sources.sql_database import sql_table

    started = time.perf_counter()
    source = sql_table(
        credentials=args.mysql_url,
        table=args.table,
        backend=args.backend,
        chunk_size=args.chunk_size,
        incremental=dlt.sources.incremental(args.cursor),
    )
    source.apply_hints(primary_key=args.primary_key, write_disposition="merge")
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{args.dataset}",
        destination=dlt.destinations.postgres(args.pg_url),
        dataset_name=args.dataset,
        pipelines_dir=args.pipelines_dir,
    )
    info = pipeline.run(source, loader_file_format="parquet" if args.backend != "sqlalchemy" else None)
    info.raise_on_failed_jobs()
    print(f"dlt incremental {args.table} in {time.perf_counter() - started:.2f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
