"""Side-by-side benchmark: Osiris against dlt, Sling and the raw limits, on the same data in one run.

Started by `scripts/bench` (which prepares the virtual environments); run
`scripts/bench --help` for the options. Scenarios:

  S1  MySQL table -> PostgreSQL table, `replace` with a primary key
  S2  MySQL -> DuckDB (join with a second table + aggregate) -> PostgreSQL `upsert`
  S3  CSV -> DuckDB -> Parquet, all embedded

Each contender runs as its own process tree; wall time and the peak RSS of the
whole tree (the kernel's peak of the process, or the tree sampled every 50 ms,
whichever is larger) are recorded. Figures are printed and written
to docs/benchmarks.md with a PNG chart beside it.

One script on purpose (longer than most): the scenarios, the contenders, the measurement and
the report of one side-by-side run, each a few functions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from tables import ROWS_DDL, ROWS_FILL

REPO = Path(__file__).resolve().parents[2]
# The Osiris under test: scripts/bench installs it as a user does (OSIRIS_BENCH_VENV); else the dev .venv.
VENV_BIN = Path(os.environ.get("OSIRIS_BENCH_VENV") or REPO / ".venv") / "bin"
BENCH_BIN = Path(sys.executable).parent
WORK = REPO / ".bench" / "work"
# OSIRIS_BENCH_DB: another database name, so that two benchmarks can run at once without dropping each other's.
DB = os.environ.get("OSIRIS_BENCH_DB") or "osiris_bench"
MYSQL = ["mariadb", "-uroot", "-h127.0.0.1", "-P3306"]
PG_DSN = f"postgresql://postgres@127.0.0.1:5432/{DB}"
MYSQL_URL = f"mysql+pymysql://root:@127.0.0.1:3306/{DB}"

# The source table (tables.py), one per size.
TABLE = "rows_v2_{n}"
CUSTOMERS_DDL = """
CREATE TABLE customers (id INT NOT NULL PRIMARY KEY, region VARCHAR(16) NOT NULL, segment VARCHAR(16) NOT NULL)
"""
CUSTOMERS_FILL = """
INSERT INTO customers SELECT seq, ELT(1 + seq % 4, 'north', 'south', 'east', 'west'),
       ELT(1 + seq % 3, 'retail', 'smb', 'enterprise') FROM seq_0_to_9999
"""
PG_COLUMNS = (
    "id bigint primary key, customer_id integer, qty smallint, amount numeric(12,2), price numeric(10,4), "
    "score numeric(16,6), counter bigint, code text, name text, email text, note text, "
    "created_at timestamp, day date, active boolean, attrs jsonb"
)
S2_SQL = """
SELECT r.customer_id, c.region, c.segment, date_trunc('month', r.created_at) AS month,
       count(*) AS orders, sum(r.amount) AS revenue, avg(r.score) AS avg_score
FROM rows r JOIN customers c ON c.id = r.customer_id
GROUP BY ALL
"""
S3_SQL = """
SELECT customer_id, day, count(*) AS lines, sum(qty) AS items, sum(amount) AS amount, max(created_at) AS last_at
FROM input_df WHERE active GROUP BY ALL
"""


@dataclass
class Measurement:
    """One run of one contender."""

    wall_s: float
    peak_rss_mib: float
    ok: bool
    error: str = ""


@dataclass
class Result:
    """Every run of one contender in one scenario at one size."""

    scenario: str
    rows: int
    contender: str
    runs: list[Measurement] = field(default_factory=list)

    @property
    def ok_runs(self) -> list[Measurement]:
        return [r for r in self.runs if r.ok]

    @property
    def median_s(self) -> float:
        return statistics.median(r.wall_s for r in self.ok_runs) if self.ok_runs else float("nan")

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.median_s if self.ok_runs else float("nan")

    @property
    def peak_rss(self) -> float:
        return max((r.peak_rss_mib for r in self.ok_runs), default=float("nan"))


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Run a command, failing loudly with its stderr."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {shlex.join(cmd)}\n{proc.stderr[-2000:]}")
    return proc


def mysql(sql: str, db: str | None = DB) -> str:
    return sh([*MYSQL, *([db] if db else []), "-N", "-B", "-e", sql]).stdout


def measure(cmd: list[str], *, env: dict | None = None, cwd: Path | None = None, stdout=None) -> Measurement:
    """Run `cmd`; wall time from start to exit, and the peak RSS of its process tree.

    The exit is taken by a thread blocked in `wait`, so no sampling interval rounds the wall time up.
    The peak is the larger of the kernel's own peak for the command (`/usr/bin/time`'s maximum
    resident set, exact whatever the run's length; the command is `time`'s child, so the pages of
    this process that a forked child counts until its exec are not in it) and the whole tree's RSS
    sampled every 50 ms (a tree, such as a sandbox's host and worker, adds up).
    """
    with tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as kernel_peak:
        timed = ["/usr/bin/time", "-f", "%M", "-o", kernel_peak.name, *cmd] if Path("/usr/bin/time").exists() else cmd
        started = time.perf_counter()
        proc = psutil.Popen(timed, env=env, cwd=cwd, stdout=stdout or subprocess.DEVNULL, stderr=err)
        ended: list[float] = []
        waiter = threading.Thread(target=lambda: (proc.wait(), ended.append(time.perf_counter())), daemon=True)
        waiter.start()
        peak = 0
        while waiter.is_alive():
            peak = max(peak, tree_rss(proc))
            waiter.join(0.05)
        wall = ended[0] - started
        kernel = kernel_peak.read().strip().splitlines()
        if kernel and kernel[-1].isdigit():  # KiB; `time` writes "Command exited with …" first on failure
            peak = max(peak, int(kernel[-1]) * 1024)
        err.seek(0)
        tail = err.read().decode("utf-8", "replace")[-1500:]
    return Measurement(wall, peak / 2**20, proc.returncode == 0, "" if proc.returncode == 0 else tail)


def clear_runs() -> None:
    """Empty the Osiris runs directory of earlier benchmarks: each run keeps its artifacts (a 10M-row run, GBs)."""
    import shutil

    shutil.rmtree(WORK / "runs", ignore_errors=True)


def tree_rss(proc: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, in bytes (0 for those already gone)."""
    total = 0
    with contextlib.suppress(psutil.Error):
        for p in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
    return total


def prepare_data(sizes: list[int]) -> None:
    """Create the source tables in MariaDB (kept between runs) and the CSV files."""
    mysql(f"CREATE DATABASE IF NOT EXISTS {DB}", db=None)
    if mysql("SHOW TABLES LIKE 'customers'").strip() != "customers":
        mysql(CUSTOMERS_DDL + ";" + CUSTOMERS_FILL)
    for n in sizes:
        table = TABLE.format(n=n)
        have = mysql(
            f"SELECT COUNT(*) FROM information_schema.tables WHERE table_schema='{DB}' AND table_name='{table}'"
        )
        if have.strip() == "1" and mysql(f"SELECT COUNT(*) FROM {table}").strip() == str(n):
            continue
        t0 = time.perf_counter()
        mysql(
            f"DROP TABLE IF EXISTS {table};" + ROWS_DDL.format(table=table) + ";" + ROWS_FILL.format(table=table, n=n)
        )
        print(f"  generated {table} in MariaDB in {time.perf_counter() - t0:.1f}s", flush=True)
    sh(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", f"DROP DATABASE IF EXISTS {DB}"])
    sh(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc", f"CREATE DATABASE {DB}"])
    WORK.mkdir(parents=True, exist_ok=True)
    for n in sizes:
        csv = WORK / f"rows_v2_{n}.csv"
        if csv.exists():
            continue
        t0 = time.perf_counter()
        export_csv(TABLE.format(n=n), csv)
        print(
            f"  wrote {csv.name} ({csv.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f}s", flush=True
        )


def export_csv(table: str, path: Path) -> None:
    """Write a MySQL table as CSV (with header) for the COPY limit and scenario S3."""
    import connectorx as cx
    import pyarrow.csv as pacsv

    reader = cx.read_sql(f"mysql://root:@127.0.0.1:3306/{DB}", f"SELECT * FROM {table}", return_type="arrow_stream")
    tmp = path.with_suffix(".tmp")
    with pacsv.CSVWriter(str(tmp), reader.schema) as writer:
        for batch in reader:
            writer.write_batch(batch)
    tmp.replace(path)


def pg(sql: str) -> str:
    return sh(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", DB, "-Atqc", sql]).stdout.strip()


def reset_schema(schema: str) -> None:
    pg(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")


def write_osiris_files(n: int) -> dict[str, Path]:
    """The Osiris pipelines and connections file for size `n`."""
    d = WORK / f"osiris_{n}"
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
    s1 = f"""
oml_version: "0.1.0"
name: bench_s1_{n}
steps:
  - id: extract
    component: mysql.extractor
    config: {{connection: "@mysql.default", table: rows_v2_{n}}}
  - id: load
    component: supabase.writer
    needs: [extract]
    config: {{connection: "@supabase.default", schema: s1_osiris, table: rows, write_mode: replace,
              primary_key: id, create_if_missing: true}}
"""
    s2 = f"""
oml_version: "0.1.0"
name: bench_s2_{n}
steps:
  - id: rows
    component: mysql.extractor
    config: {{connection: "@mysql.default", table: rows_v2_{n}}}
  - id: customers
    component: mysql.extractor
    config: {{connection: "@mysql.default", table: customers}}
  - id: monthly
    component: duckdb.processor
    needs: [rows, customers]
    config:
      query: |{textwrap.indent(S2_SQL, "        ")}
  - id: load
    component: supabase.writer
    needs: [monthly]
    config: {{connection: "@supabase.default", schema: s2_osiris, table: monthly, write_mode: upsert,
              primary_key: [customer_id, month], create_if_missing: true}}
"""
    s3 = f"""
oml_version: "0.1.0"
name: bench_s3_{n}
steps:
  - id: read
    component: filesystem.csv_extractor
    config: {{path: "{WORK / f"rows_v2_{n}.csv"}"}}
  - id: daily
    component: duckdb.processor
    needs: [read]
    config:
      query: |{textwrap.indent(S3_SQL, "        ")}
  - id: write
    component: filesystem.parquet_writer
    needs: [daily]
    config: {{path: "{d / "s3_out.parquet"}"}}
"""
    files = {}
    for name, text in (("s1", s1), ("s2", s2), ("s3", s3)):
        files[name] = d / f"{name}.yaml"
        files[name].write_text(text)
    return files


def contenders(scenario: str, n: int, files: dict[str, Path], with_dlt_default: bool) -> list[tuple[str, dict]]:
    """(name, how to run) for every contender of a scenario."""
    d = files["s1"].parent
    osiris = [str(VENV_BIN / "osiris"), "run", "--connections", str(d / "osiris_connections.yaml")]
    osiris += ["--runs-dir", str(WORK / "runs")]
    out: list[tuple[str, dict]] = []
    pipeline = str(files[scenario.lower()])
    out.append(("osiris host", {"cmd": [*osiris, pipeline], "reset": f"{scenario.lower()}_osiris"}))
    out.append(
        (
            "osiris --sandbox local",
            {"cmd": [*osiris, pipeline, "--sandbox", "local"], "reset": f"{scenario.lower()}_osiris"},
        )
    )
    if scenario == "S1":
        dlt = [str(BENCH_BIN / "python"), str(Path(__file__).parent / "dlt_load.py"), "--mysql-url", MYSQL_URL]
        # dlt insists on a password; the local server trusts loopback connections, so any will do.
        dlt += [
            "--pg-url",
            PG_DSN.replace("postgres@", "postgres:trust@"),
            "--table",
            TABLE.format(n=n),
            "--dataset",
            "s1_dlt",
        ]
        if with_dlt_default:
            out.append(("dlt default", {"cmd": dlt, "reset": "s1_dlt"}))
        out.append(
            ("dlt pyarrow+parquet", {"cmd": [*dlt, "--backend", "pyarrow", "--format", "parquet"], "reset": "s1_dlt"})
        )
        out.append(
            (
                "dlt connectorx+parquet",
                {"cmd": [*dlt, "--backend", "connectorx", "--format", "parquet"], "reset": "s1_dlt"},
            )
        )
        sling = sling_binary()
        if sling is not None:
            out.append(("sling", sling_s1(sling, n)))
        out.append(
            ("limit: mariadb --quick", {"cmd": [*MYSQL, DB, "--quick", "--batch", "-e", f"SELECT * FROM rows_v2_{n}"]})
        )
        copy = [str(BENCH_BIN / "python"), str(Path(__file__).parent / "copy_csv.py"), "--dsn", PG_DSN]
        copy += ["--table", "s1_copy.rows", "--csv", str(WORK / f"rows_v2_{n}.csv"), "--columns-sql", PG_COLUMNS]
        out.append(("limit: COPY FROM STDIN (csv)", {"cmd": copy}))
    if scenario == "S3":
        sql = S3_SQL.replace("input_df", f"read_csv('{WORK / f'rows_v2_{n}.csv'}')")
        code = f"import duckdb; duckdb.sql({sql!r}).write_parquet({str(d / 's3_duckdb.parquet')!r})"
        out.append(("limit: duckdb alone", {"cmd": [str(VENV_BIN / "python"), "-c", code]}))
    return out


def sling_binary() -> str | None:
    """The Sling executable the pinned `sling-linux-amd64` wheel ships (None off Linux x86-64)."""
    code = "import sling_linux_amd64 as s; print(s.SLING_BIN)"
    proc = subprocess.run([str(BENCH_BIN / "python"), "-c", code], capture_output=True, text=True, check=False)
    path = proc.stdout.strip()
    return path if proc.returncode == 0 and path and Path(path).is_file() else None


def sling_s1(sling: str, n: int) -> dict:
    """Sling's S1: the table into `s1_sling.rows` with `full-refresh` (its `replace`) and a primary key.

    `--primary-key` alone only tells Sling the key (for incremental modes); the `table_keys` target
    option makes the created table have it, as Osiris's and dlt's tables do. Connections come as
    environment variables (Sling's own way); its home folder, where it keeps `env.yaml`, is in the
    work folder.
    """
    env = {
        **os.environ,
        "SLING_HOME_DIR": str(WORK / "sling"),
        "BENCH_MYSQL": f"mysql://root:@127.0.0.1:3306/{DB}",
        "BENCH_PG": PG_DSN + "?sslmode=disable",
    }
    cmd = [sling, "run", "--src-conn", "BENCH_MYSQL", "--src-stream", f"{DB}.{TABLE.format(n=n)}"]
    cmd += ["--tgt-conn", "BENCH_PG", "--tgt-object", "s1_sling.rows", "--mode", "full-refresh"]
    cmd += ["--primary-key", "id", "--tgt-options", json.dumps({"table_keys": {"primary": ["id"]}})]
    return {"cmd": cmd, "env": env, "reset": "s1_sling"}


def run_all(args: argparse.Namespace) -> list[Result]:
    sizes = args.rows
    print(f"==> preparing data: {', '.join(f'{n:,}' for n in sizes)} rows", flush=True)
    prepare_data(sizes)
    results: list[Result] = []
    for n in sizes:
        files = write_osiris_files(n)
        for scenario in args.scenarios:
            for name, how in contenders(scenario, n, files, with_dlt_default=n <= args.dlt_default_max):
                if args.only and not any(o in name for o in args.only):
                    continue
                res = Result(scenario, n, name)
                repeats = 1 if (name == "dlt default" and n > 100_000) else args.repeat
                for _ in range(repeats):
                    if how.get("reset"):
                        reset_schema(how["reset"])
                    m = measure(how["cmd"], env=how.get("env"), cwd=WORK)
                    res.runs.append(m)
                    status = "ok" if m.ok else "FAILED"
                    print(
                        f"  {scenario} {n:>9,} {name:<30} {m.wall_s:8.2f}s {n / m.wall_s:>10,.0f} rows/s "
                        f"{m.peak_rss_mib:7.0f} MiB {status}",
                        flush=True,
                    )
                    if not m.ok:
                        print(textwrap.indent(m.error.strip(), "      | "), flush=True)
                        break
                results.append(res)
    return results


def table(results: list[Result]) -> str:
    """A markdown table of the figures, with ratios against Osiris on the host."""
    lines = []
    for scenario in dict.fromkeys(r.scenario for r in results):
        for n in dict.fromkeys(r.rows for r in results if r.scenario == scenario):
            rows = [r for r in results if r.scenario == scenario and r.rows == n]
            host = next((r for r in rows if r.contender == "osiris host"), None)
            lines.append(f"\n### {scenario} at {n:,} rows\n")
            lines.append(
                "| contender | runs | median s | min s | max s | rows/s | peak RSS MiB | Osiris host is ×faster |"
            )
            lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
            for r in rows:
                if not r.ok_runs:
                    lines.append(f"| {r.contender} | 0 | failed | | | | | |")
                    continue
                walls = [m.wall_s for m in r.ok_runs]
                ratio = r.median_s / host.median_s if host and host.ok_runs else float("nan")
                lines.append(
                    f"| {r.contender} | {len(walls)} | {r.median_s:.2f} | {min(walls):.2f} | {max(walls):.2f} | "
                    f"{r.rows_per_s:,.0f} | {r.peak_rss:,.0f} | {ratio:.2f} |"
                )
    return "\n".join(lines) + "\n"


def targets(results: list[Result]) -> str:
    """Where S1 (and S3) at the largest size stand against the project's targets (computed, not typed)."""

    def get(name: str, rows: int) -> Result | None:
        return next((r for r in results if r.scenario == "S1" and r.rows == rows and r.contender == name), None)

    sizes = sorted({r.rows for r in results if r.scenario == "S1"})
    host = get("osiris host", sizes[-1]) if sizes else None
    if host is None or not host.ok_runs:
        return ""
    n = sizes[-1]
    checks = [("rows/s end to end (target >= 90,000)", f"{host.rows_per_s:,.0f}", host.rows_per_s >= 90_000)]
    copy = get("limit: COPY FROM STDIN (csv)", n)
    if copy and copy.ok_runs:
        x = host.median_s / copy.median_s
        checks.append(("wall time × the raw CSV COPY's (target <= 1.15)", f"{x:.2f}", x <= 1.15))
    fast = [r for r in results if r.scenario == "S1" and r.rows == n and "dlt" in r.contender and r.ok_runs]
    fastest = max((r for r in fast if r.contender != "dlt default"), key=lambda r: r.rows_per_s, default=None)
    default = get("dlt default", n)
    if fastest:
        x = host.rows_per_s / fastest.rows_per_s
        checks.append((f"× {fastest.contender} (target >= 2)", f"{x:.2f}", x >= 2))
    if default and default.ok_runs:
        x = host.rows_per_s / default.rows_per_s
        checks.append(("× dlt default (target >= 15)", f"{x:.1f}", x >= 15))
    sling = get("sling", n)
    if sling and sling.ok_runs:
        x = host.rows_per_s / sling.rows_per_s
        checks.append(("× sling (target >= 3)", f"{x:.2f}", x >= 3))
    checks.append(("peak RSS MiB (target < 400)", f"{host.peak_rss:,.0f}", host.peak_rss < 400))
    one_m = get("osiris host", 1_000_000)
    if one_m and one_m.ok_runs and n > 1_000_000:
        x = host.peak_rss / one_m.peak_rss
        checks.append(("peak RSS vs 1,000,000 rows (target <= 1.2)", f"{x:.2f}", x <= 1.2))
    local = get("osiris --sandbox local", n)
    if local and local.ok_runs:
        x = local.median_s / host.median_s
        checks.append(("`--sandbox local` wall time × host (target <= 1.1)", f"{x:.2f}", x <= 1.1))
    s3 = [r for r in results if r.scenario == "S3" and r.rows == n and r.ok_runs]
    s3_host = next((r for r in s3 if r.contender == "osiris host"), None)
    duck = next((r for r in s3 if r.contender == "limit: duckdb alone"), None)
    if s3_host and duck:
        x = s3_host.median_s / duck.median_s
        checks.append(("S3: wall time × DuckDB alone (target <= 1.5)", f"{x:.2f}", x <= 1.5))
    lines = [
        f"\n### Targets at {n:,} rows, Osiris on the host (S1 unless named)\n",
        "| measure | value | met |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {what} | {value} | {'yes' if ok else 'no'} |" for what, value, ok in checks]
    return "\n".join(lines) + "\n"


def chart(results: list[Result], path: Path) -> None:
    """A bar chart of rows/s per contender, one panel per scenario at the largest size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(dict.fromkeys(r.scenario for r in results))
    fig, axes = plt.subplots(1, len(scenarios), figsize=(6 * len(scenarios), 4.5), squeeze=False)
    for ax, scenario in zip(axes[0], scenarios, strict=True):
        n = max(r.rows for r in results if r.scenario == scenario)
        rows = [r for r in results if r.scenario == scenario and r.rows == n and r.ok_runs]
        names = [r.contender for r in rows]
        values = [r.rows_per_s / 1000 for r in rows]
        colors = ["#2a6f97" if name.startswith("osiris") else "#999999" for name in names]
        ax.barh(names[::-1], values[::-1], color=colors[::-1])
        ax.set_title(f"{scenario} at {n:,} rows")
        ax.set_xlabel("thousand rows/s (higher is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def machine() -> str:
    mem = psutil.virtual_memory().total / 2**30
    return f"{platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}"


def versions() -> dict[str, str]:
    out = {}
    for tool, cmd in {
        "osiris": [str(VENV_BIN / "osiris"), "--version"],
        "dlt": [str(BENCH_BIN / "python"), "-c", "import dlt; print(dlt.__version__)"],
        "sling": [str(BENCH_BIN / "python"), "-c", "import sling_linux_amd64 as s; print(s.SLING_VERSION)"],
        "mariadb": ["mariadb", "--version"],
        "postgresql": ["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc", "SHOW server_version"],
    }.items():
        out[tool] = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip().replace("\n", ", ")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", default="100000,1000000", help="Comma-separated sizes (default: 100000,1000000)")
    parser.add_argument("--full", action="store_true", help="Also run 10,000,000 rows")
    parser.add_argument("--repeat", type=int, default=3, help="Runs per contender (default 3)")
    parser.add_argument("--scenarios", default="S1,S2,S3")
    parser.add_argument("--only", action="append", help="Run only contenders whose name contains this")
    parser.add_argument("--dlt-default-max", type=int, default=1_000_000, help="Largest size to run dlt's defaults at")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    args.rows = [int(x) for x in args.rows.split(",")] + ([10_000_000] if args.full else [])
    clear_runs()
    args.scenarios = [s.strip().upper() for s in args.scenarios.split(",")]
    command = " ".join(["scripts/bench", *map(shlex.quote, sys.argv[1:])])
    started = time.perf_counter()
    results = run_all(args)
    elapsed = time.perf_counter() - started
    body = table(results) + targets(results)
    print(body)
    print(f"total benchmark time: {elapsed / 60:.1f} min")
    if not args.no_write:
        write_docs(results, body, command, elapsed)
    (WORK / "results.json").write_text(
        json.dumps([{**r.__dict__, "runs": [m.__dict__ for m in r.runs]} for r in results], indent=2)
    )
    return 0 if all(r.ok_runs for r in results) else 1


def write_docs(results: list[Result], body: str, command: str, elapsed: float) -> None:
    docs = REPO / "docs"
    chart(results, docs / "benchmarks.png")
    v = versions()
    text = BENCH_DOC.format(
        command=command,
        machine=machine(),
        versions="\n".join(f"  - {k}: {val}" for k, val in v.items()),
        minutes=elapsed / 60,
        body=body,
    )
    (docs / "benchmarks.md").write_text(text)


BENCH_DOC = """# Benchmarks

How fast is Osiris, how much memory does it use, and how does it compare with dlt,
Sling and the raw limits of the databases? Every figure below was printed by one
run of the command below, on the same data, on the same machine.

```bash
{command}
```

`scripts/bench` sets up the project's `.venv` (like the README's setup), makes its own
virtual environment `.bench/venv` with the pinned contenders (`scripts/benchmarks/requirements.txt`),
makes sure MariaDB and PostgreSQL are up, and runs `scripts/benchmarks/run.py`. Data and scratch
files live in `.bench/work/`; the source tables stay in MariaDB's `osiris_bench` database
between runs.

## Setup

- Machine: {machine} (a shared 2-core VM: compare ratios within one run, not across runs).
- Versions:
{versions}
- Data: a 15-column table generated in the local MariaDB (bigint, int, smallint, three decimals,
  varchar, text, datetime(6), date, boolean, JSON; several nullable columns; about 500 bytes a
  row), and a 10,000-row `customers` table for the join. There is no DOUBLE column: dlt's pyarrow
  backend reads MariaDB DOUBLE as decimals whose precision changes between batches, after which
  both of its fast loaders failed on the table at 1M rows.
- Each contender is one process tree; wall time covers the whole process (start-up included);
  peak RSS is the larger of the kernel's peak for the process and the sum over its tree, sampled
  every 50 ms. Osiris runs from `.bench/osiris`: the lock installed with the extras these pipelines
  need (mysql, duckdb, postgres, http), as a user installs it, without the development tools.
- Targets are dropped before each run, so every contender creates and fills its table.

## Scenarios and contenders

- **S1** MySQL table → PostgreSQL table, `replace` with a primary key. Contenders: Osiris on the
  host and with `--sandbox local`; dlt `sql_database` → `postgres` with its defaults (SQLAlchemy
  backend, `insert_values`), and with its fastest documented options: the pyarrow or the
  connectorx backend, with Parquet files loaded through ADBC's binary COPY; Sling (the Go tool,
  from the `sling-linux-amd64` wheel) with `--mode full-refresh --primary-key id` and the
  `table_keys` target option, so that its table has the key too; the limits
  `mariadb --quick --batch` reading the table to nowhere, and a raw `COPY … FROM STDIN` of the
  same rows from a ready CSV (Osiris loads with binary COPY, which is why it can pass this limit).
- **S2** MySQL → DuckDB (join with `customers` + monthly aggregate) → PostgreSQL `upsert` on a
  composite key. dlt has no transform step of its own, so only Osiris runs here.
- **S3** CSV → DuckDB → Parquet, embedded. The limit is DuckDB alone running the same SQL.

## Results

Total benchmark time: {minutes:.1f} minutes.

![rows per second](benchmarks.png)
{body}
"""


if __name__ == "__main__":
    sys.exit(main())
