"""Incremental loading, side by side in one run: Osiris incremental, a full replace, dlt and Sling.

`scripts/bench incremental [--rows 2000000] [--full]` (`--full`: 10M rows). A MariaDB table of N
rows (the 15 columns of `tables.py` plus an indexed `updated_at`) is loaded into PostgreSQL once
by every contender (not timed); then 0.1% of the rows are updated and 0.1% inserted, and each
contender's incremental run over that same change set is timed, next to an Osiris full replace of
the same table. After the runs every target is compared with the source (row count and a checksum
of the changed rows), so a fast wrong answer shows. Prints the wall times and ratios; asserts nothing.

Contenders:
- `osiris incremental`: mysql.extractor `incremental: {cursor: updated_at, lag: "1 minute"}` into
  supabase.writer `upsert` (watermark committed with the rows);
- `osiris full replace`: the same table, `write_mode: replace`;
- `dlt incremental`: `sql_table(incremental=dlt.sources.incremental("updated_at"))`, pyarrow
  backend, `merge` on `id` (dlt_incremental.py);
- `sling incremental`: `sling run --mode incremental --primary-key id --update-key updated_at`
  (the `sling-linux-amd64` wheel pinned in requirements.txt).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import textwrap
import time
from pathlib import Path

from run import BENCH_BIN, DB, MYSQL_URL, PG_DSN, VENV_BIN, WORK, clear_runs, measure, mysql, pg, sh
from tables import ROWS_DDL

TABLE = "inc_rows_{n}"
COLUMNS = (
    "id, customer_id, qty, amount, price, score, counter, code, name, email, note, created_at, day, active, attrs, "
    "updated_at"
)
# The rows of tables.ROWS_FILL, with `updated_at` starting as `created_at` (distinct values).
SELECT = """
SELECT seq, seq % 10000, seq % 50, (seq % 100000) / 100, IF(seq % 7 = 0, NULL, (seq % 1000000) / 10000),
       IF(seq % 11 = 0, NULL, seq / 3.0), seq * 1000003, CONCAT('C', LPAD(seq % 100000, 8, '0')),
       CONCAT('customer ', seq % 10000, ' ', MD5(seq)), IF(seq % 5 = 0, NULL, CONCAT('user', seq, '@example.com')),
       IF(seq % 13 = 0, NULL, REPEAT(MD5(seq * 7), 7)),
       TIMESTAMP('2024-01-01') + INTERVAL seq SECOND + INTERVAL (seq % 1000) MICROSECOND,
       DATE('2024-01-01') + INTERVAL (seq % 700) DAY, seq % 3 = 0,
       IF(seq % 4 = 0, NULL, JSON_OBJECT('k', seq % 97, 'tag', CONCAT('t', seq % 13))),
       TIMESTAMP('2024-01-01') + INTERVAL seq SECOND + INTERVAL (seq % 1000) MICROSECOND
FROM {source}
"""
SCHEMAS = {
    "osiris incremental": "inc_osiris",
    "osiris full replace": "inc_replace",
    "dlt incremental": "inc_dlt",
    "sling incremental": "inc_sling",
}


def prepare(n: int) -> str:
    """A fresh source table of `n` rows (regenerated every run: the change set alters it)."""
    mysql(f"CREATE DATABASE IF NOT EXISTS {DB}", db=None)
    table = TABLE.format(n=n)
    ddl = ROWS_DDL.format(table=table).replace(
        "attrs JSON NULL\n)", "attrs JSON NULL,\n  updated_at DATETIME(6) NOT NULL,\n  KEY (updated_at)\n)"
    )
    t0 = time.perf_counter()
    mysql(
        f"DROP TABLE IF EXISTS {table}; {ddl}; INSERT INTO {table} ({COLUMNS}) {SELECT.format(source=f'seq_1_to_{n}')}"
    )
    print(f"  generated {table} ({n:,} rows) in {time.perf_counter() - t0:.1f}s", flush=True)
    have = sh(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-Atqc",
               f"SELECT 1 FROM pg_database WHERE datname = '{DB}'"]).stdout.strip()  # fmt: skip
    if have != "1":
        sh(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", f"CREATE DATABASE {DB}"])
    for schema in SCHEMAS.values():  # Osiris keeps its watermark there, Sling reads it from the target
        pg(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
    shutil.rmtree(WORK / "incremental" / "dlt", ignore_errors=True)  # dlt's own state starts anew too
    return table


def change(table: str, n: int) -> int:
    """Update 0.1% of the rows and insert 0.1% more, all with a new `updated_at`; the rows changed."""
    k = max(1, n // 1000)
    step = n // k
    mysql(  # the sequence drives the join: k primary-key lookups
        f"UPDATE seq_1_to_{k} AS s STRAIGHT_JOIN {table} AS t ON t.id = s.seq * {step} "
        "SET t.amount = t.amount + 1, t.name = CONCAT(t.name, ' v2'), t.updated_at = NOW(6)"
    )
    source = f"(SELECT seq + {n} AS seq FROM seq_1_to_{k}) AS s"
    mysql(f"INSERT INTO {table} ({COLUMNS}) {SELECT.format(source=source)}")
    mysql(f"UPDATE {table} SET updated_at = NOW(6) WHERE id > {n}")
    return 2 * k


def settle() -> None:
    """Let the writes of whatever ran before reach the disk, so that no timed run pays for them: a
    PostgreSQL checkpoint, the kernel's dirty pages written back (`sync`), and a moment for the servers'
    background work. Each timed run starts from this state."""
    pg("CHECKPOINT")
    os.sync()
    time.sleep(1.0)


def osiris_files(table: str) -> dict[str, Path]:
    """The two Osiris pipelines and their connections file."""
    d = WORK / "incremental"
    d.mkdir(parents=True, exist_ok=True)
    (d / "osiris_connections.yaml").write_text(
        textwrap.dedent(
            f"""
            connections:
              mysql:
                default: {{host: 127.0.0.1, port: 3306, user: root, password: "", database: {DB}}}
              supabase:
                default: {{dsn: "{PG_DSN}"}}
            """
        )
    )
    files = {}
    for name, schema, mode, inc in (
        ("incremental", "inc_osiris", "upsert", 'incremental: {cursor: updated_at, lag: "1 minute"}, '),
        ("replace", "inc_replace", "replace", ""),
    ):
        files[name] = d / f"{name}.yaml"
        files[name].write_text(
            f"""
oml_version: "0.1.0"
name: bench_incremental_{name}
steps:
  - id: extract
    component: mysql.extractor
    config: {{connection: "@mysql.default", table: {table}, {inc}}}
  - id: load
    component: supabase.writer
    needs: [extract]
    config: {{connection: "@supabase.default", schema: {schema}, table: rows, write_mode: {mode},
              primary_key: id, create_if_missing: true}}
"""
        )
    return files


def commands(table: str) -> dict[str, list[str]]:
    """How each contender runs (the same command for the first load and the timed run)."""
    files = osiris_files(table)
    d = files["incremental"].parent
    osiris = [str(VENV_BIN / "osiris"), "run", "--connections", str(d / "osiris_connections.yaml")]
    osiris += ["--runs-dir", str(WORK / "runs")]
    dlt = [str(BENCH_BIN / "python"), str(Path(__file__).parent / "dlt_incremental.py"), "--mysql-url", MYSQL_URL]
    dlt += ["--pg-url", PG_DSN.replace("postgres@", "postgres:trust@"), "--table", table, "--dataset", "inc_dlt"]
    dlt += ["--pipelines-dir", str(d / "dlt")]
    import sling_linux_amd64  # the binary ships inside the pinned wheel

    sling = [sling_linux_amd64.SLING_BIN, "run", "--src-conn", "BENCH_MYSQL", "--src-stream", f"{DB}.{table}"]
    sling += ["--tgt-conn", "BENCH_PG", "--tgt-object", "inc_sling.rows", "--mode", "incremental"]
    sling += ["--primary-key", "id", "--update-key", "updated_at"]
    manifests = {}
    for name, path in files.items():  # compiled once, as a scheduled job runs its manifest
        out = d / "build" / name
        sh([str(VENV_BIN / "osiris"), "compile", str(path), "-o", str(out)])
        manifests[name] = str(max(out.rglob("manifest.yaml"), key=lambda p: p.stat().st_mtime))
    return {
        "osiris incremental": [*osiris, manifests["incremental"]],
        "osiris full replace": [*osiris, manifests["replace"]],
        "dlt incremental": dlt,
        "sling incremental": sling,
    }


def checksum_pg(schema: str, table: str, n: int) -> tuple[int, str]:
    """(rows, a checksum of the changed rows' id, amount and name) of a target (dlt names it after the source)."""
    name = table if schema == "inc_dlt" else "rows"
    got = pg(
        f"SELECT count(*), md5(string_agg(id::text || ':' || amount::text || ':' || name, ',' ORDER BY id) "
        f"FILTER (WHERE name LIKE '% v2' OR id > {n})) FROM {schema}.{name}"
    )
    rows, digest = got.split("|")
    return int(rows), digest


def checksum_mysql(table: str, n: int) -> tuple[int, str]:
    got = mysql(
        f"SELECT COUNT(*), MD5(GROUP_CONCAT(IF(name LIKE '% v2' OR id > {n}, CONCAT(id, ':', amount, ':', name), NULL) "
        f"ORDER BY id SEPARATOR ',')) FROM {table}"
    )
    rows, digest = got.split("\t")
    return int(rows), digest.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--full", action="store_true", help="10M rows")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of the full replace (the median)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the source table and the first loads of a run that stopped before its change set",
    )
    args = parser.parse_args()
    n = 10_000_000 if args.full else args.rows
    mysql("SET GLOBAL group_concat_max_len = 1073741824", db=None)
    print(f"==> incremental benchmark, {n:,} rows", flush=True)
    clear_runs()
    table = TABLE.format(n=n) if args.reuse else prepare(n)
    cmds = commands(table)
    env = {
        **os.environ,
        "BENCH_MYSQL": f"mysql://root:@127.0.0.1:3306/{DB}",
        "BENCH_PG": PG_DSN.replace("postgres@", "postgres:trust@") + "?sslmode=disable",
        "SLING_THREADS": "1",
    }
    for name, cmd in cmds.items():  # the first load of each contender: everything, not timed
        if args.reuse:
            break
        m = measure(cmd, env=env)
        print(f"  first load  {name:22} {m.wall_s:8.2f} s {'ok' if m.ok else 'FAILED: ' + m.error}", flush=True)
    changed = change(table, n)
    print(f"  changed {changed:,} rows ({changed / n:.2%}): 0.1% updated, 0.1% inserted", flush=True)
    results = {}
    for name, cmd in cmds.items():
        # Only the full replace repeats the same work, so only it is timed `--repeat` times (the median):
        # an incremental run's second pass finds the change set merged already and writes nothing, so each
        # incremental contender is timed once, on the change set.
        runs = []
        for _ in range(args.repeat if name == "osiris full replace" else 1):
            settle()
            runs.append(measure(cmd, env=env))
        m = sorted(runs, key=lambda r: r.wall_s)[len(runs) // 2]
        results[name] = m
        spread = f" (of {', '.join(f'{r.wall_s:.2f}' for r in runs)})" if len(runs) > 1 else ""
        print(f"  timed run   {name:22} {m.wall_s:8.2f} s  peak {m.peak_rss_mib:7.0f} MiB "
              f"{'ok' if all(r.ok for r in runs) else 'FAILED: ' + next(r.error for r in runs if not r.ok)}{spread}",
              flush=True)  # fmt: skip
    expected = checksum_mysql(table, n)
    print(f"\nsource: {expected[0]:,} rows", flush=True)
    for name, schema in SCHEMAS.items():
        got = checksum_pg(schema, table, n)
        print(f"  {name:22} target {got[0]:,} rows, changed rows {'equal' if got == expected else 'DIFFER'}")
    inc = results["osiris incremental"].wall_s
    print()
    print(f"osiris incremental / osiris full replace: {inc / results['osiris full replace'].wall_s:.1%} (target <= 5%)")
    for peer in ("dlt incremental", "sling incremental"):
        if results[peer].ok:
            print(f"{peer} / osiris incremental: {results[peer].wall_s / inc:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
