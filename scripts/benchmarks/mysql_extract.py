#!/usr/bin/env python3
"""Benchmark `mysql.extractor` into Parquet against the `mariadb` command-line client.

Creates its own database with a 15-column table in two shapes, fills it with 200k and 2M
rows (INSERT ... SELECT from MariaDB's sequence engine), and for each shape and size runs,
alternately and `--repeat` times, under `/usr/bin/time -v`:

- the extractor (each of `--paths`: auto, the path it takes by itself, which is the native row
  parser where it is built; connectorx; pymysql) streaming into a Parquet file, exactly as
  the runner writes a step output (its memory pool, encoding and data hash), and
- `mariadb --quick --batch -e "SELECT * ..." > /dev/null` on the same table,

then prints the median wall time, rows/s and the highest peak RSS of each, the extractor's
speed as a multiple of the client's, and drops the database. The wall figures are whole
processes, so the extractor's include starting Python, importing pyarrow and connecting;
the step figures time the extractor from the driver call to the hashed Parquet file, as a
step inside `osiris run` spends it.

Shapes: `narrow` (short strings, two DOUBLE/FLOAT columns: the client's best case) and
`wide` (the table of `scripts/bench`: long TEXT, JSON, three DECIMAL columns).

    scripts/bench mysql-extract [--rows 200000,2000000] [--shapes narrow,wide]
        [--repeat 3] [--batch-size 50000] [--paths auto,connectorx,pymysql]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST, PORT, USER = os.environ.get("MYSQL_HOST", "127.0.0.1"), int(os.environ.get("MYSQL_PORT", "3306")), "root"

NARROW_DDL = """
CREATE TABLE orders (
  id BIGINT NOT NULL PRIMARY KEY,
  customer_id INT NOT NULL,
  qty SMALLINT UNSIGNED,
  price DECIMAL(10,2),
  amount DECIMAL(12,2),
  discount DOUBLE,
  rate FLOAT,
  status ENUM('new','paid','shipped','cancelled'),
  country CHAR(2),
  name VARCHAR(40),
  email VARCHAR(60),
  note VARCHAR(100),
  created DATE,
  updated DATETIME(6),
  active TINYINT(1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
"""

NARROW_FILL = """
INSERT INTO orders
SELECT seq, seq % 10007, seq % 500, (seq % 100000) / 100, (seq % 1000000) / 100 * 3, (seq % 97) / 97,
       (seq % 89) / 8, ELT(1 + seq % 4, 'new','paid','shipped','cancelled'),
       ELT(1 + seq % 5, 'DE','FR','US','PL','JP'), CONCAT('customer ', seq % 10007),
       CONCAT('user', seq, '@example.com'),
       IF(seq % 7 = 0, NULL, CONCAT('note for order ', seq, ' with some text ✓')),
       DATE('2020-01-01') + INTERVAL (seq % 2000) DAY,
       TIMESTAMP('2020-01-01 00:00:00') + INTERVAL seq SECOND + INTERVAL (seq % 1000000) MICROSECOND,
       seq % 2
FROM seq_1_to_{n}
"""


# `wide` is the table of `scripts/bench` (S1): longer rows, TEXT, JSON and NULLs in several columns.
from tables import ROWS_DDL, ROWS_FILL  # noqa: E402  (this folder is on the path of a script run from it)

WORKER = Path(__file__).resolve().parent / "mysql_extract_worker.py"

SHAPES = {
    "narrow": (NARROW_DDL, NARROW_FILL),
    "wide": (ROWS_DDL.format(table="orders"), ROWS_FILL.replace("{table}", "orders")),
}


def sql(db: str | None, statement: str) -> None:
    """Run SQL through the `mariadb` client."""
    cmd = ["mariadb", f"-h{HOST}", f"-P{PORT}", f"-u{USER}", "--default-character-set=utf8mb4"]
    if db:
        cmd.append(db)
    subprocess.run([*cmd, "-e", statement], check=True)


def settle(db: str) -> None:
    """Write the pages the fill dirtied to disk now (FLUSH TABLES ... FOR EXPORT), so the timed
    runs do not share the server with InnoDB flushing them in the background."""
    sql(db, "FLUSH TABLES orders FOR EXPORT; UNLOCK TABLES")


def timed(cmd: list[str], stdout: int | None = None) -> tuple[float, int, str]:
    """Run `cmd` under `/usr/bin/time -v`: (wall seconds, peak RSS in KiB, the command's stdout)."""
    t0 = time.perf_counter()
    p = subprocess.run(
        ["/usr/bin/time", "-v", *cmd], stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"benchmark command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    return wall, rss, p.stdout or ""


def main() -> None:
    """Create the database, run every size and path, print the table, drop the database."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="200000,2000000", help="comma-separated table sizes")
    ap.add_argument("--batch-size", type=int, default=50000)
    ap.add_argument("--paths", default="auto", help="comma-separated: auto (native where built), connectorx, pymysql")
    ap.add_argument("--shapes", default="narrow,wide", help="comma-separated: " + ", ".join(SHAPES))
    ap.add_argument("--repeat", type=int, default=3, help="runs of each reader per shape and size")
    args = ap.parse_args()

    db = f"osiris_bench_mysql_{secrets.token_hex(4)}"
    client = "mariadb --quick --batch > /dev/null"
    results: dict[tuple[str, int, str], list[tuple[float, int, int | None]]] = {}
    try:
        sql(None, f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
        for shape in args.shapes.split(","):
            ddl, fill = SHAPES[shape]
            for n in [int(x) for x in args.rows.split(",")]:
                sql(db, "DROP TABLE IF EXISTS orders")
                sql(db, ddl)
                t0 = time.perf_counter()
                sql(db, fill.format(n=n))
                print(f"{shape}: filled {n} rows in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
                settle(db)
                with tempfile.TemporaryDirectory(prefix="osiris-bench-") as tmp:
                    with open(os.devnull, "w") as devnull:  # warm-up, untimed
                        subprocess.run(
                            ["mariadb", f"-h{HOST}", f"-P{PORT}", f"-u{USER}", "--quick", "--batch", db,
                             "-e", "SELECT * FROM orders"],
                            stdout=devnull, check=True,
                        )  # fmt: skip
                    for _ in range(args.repeat):  # alternate, so drift on a noisy machine hits both alike
                        for path in args.paths.split(","):
                            out = str(Path(tmp) / f"orders-{path}.parquet")
                            wall, rss, stdout = timed(
                                [sys.executable, str(WORKER), HOST, str(PORT), USER, db, out, path,
                                 str(args.batch_size)]
                            )  # fmt: skip
                            rows = int(stdout.split()[0])
                            assert rows == n, f"extracted {rows} rows, expected {n}"
                            name = f"mysql.extractor ({path}) → Parquet"
                            step = float(stdout.split()[1])  # the driver call to the hashed file, in-process
                            results.setdefault((shape, n, name), []).append((wall, rss, os.path.getsize(out), step))
                        with open(os.devnull, "w") as devnull:
                            wall, rss, _ = timed(
                                ["mariadb", f"-h{HOST}", f"-P{PORT}", f"-u{USER}", "--quick", "--batch", db,
                                 "-e", "SELECT * FROM orders"],
                                stdout=devnull.fileno(),
                            )  # fmt: skip
                        results.setdefault((shape, n, client), []).append((wall, rss, None, wall))
    finally:
        sql(None, f"DROP DATABASE IF EXISTS `{db}`")

    print(
        f"\n{'shape':<7} {'rows':>9}  {'reader':<40} {'wall s':>7} {'rows/s':>10} {'vs client':>9} "
        f"{'step rows/s':>11} {'vs client':>9} {'peak RSS MiB':>12} {'parquet MiB':>11}"
    )
    for (shape, n, name), runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        step = statistics.median(r[3] for r in runs)
        client_wall = statistics.median(r[0] for r in results[(shape, n, client)])
        rss = max(r[1] for r in runs)
        size = runs[-1][2]
        pq = f"{size / 2**20:.1f}" if size else "-"
        print(
            f"{shape:<7} {n:>9}  {name:<40} {wall:>7.2f} {n / wall:>10,.0f} {client_wall / wall:>8.2f}x "
            f"{n / step:>11,.0f} {client_wall / step:>8.2f}x {rss / 1024:>12.1f} {pq:>11}"
        )
    print(
        f"\nwall: the whole process, median of {args.repeat} runs; step: from the driver call to the hashed "
        "Parquet file, in-process (for the client, its whole process); peak RSS: the highest of the runs",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
