"""The COPY limit: stream a ready CSV file into PostgreSQL with `COPY ... FROM STDIN`.

`python copy_csv.py --dsn ... --table schema.table --csv rows.csv --columns-sql "id bigint, ..."`
creates the table fresh, then copies the file in one statement.
"""

from __future__ import annotations

import argparse
import sys

import psycopg2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--csv", required=True)
    parser.add_argument("--columns-sql", required=True)
    args = parser.parse_args()
    with psycopg2.connect(args.dsn) as conn, conn.cursor() as cur:
        schema = args.table.split(".")[0]
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        cur.execute(f"DROP TABLE IF EXISTS {args.table}")
        cur.execute(f"CREATE TABLE {args.table} ({args.columns_sql})")
        with open(args.csv, encoding="utf-8") as f:
            cur.copy_expert(f"COPY {args.table} FROM STDIN WITH (FORMAT csv, HEADER true)", f, size=1 << 20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
