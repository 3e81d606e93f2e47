#!/usr/bin/env python3
"""Overhead of running in a sandbox: the quickstart on the host, `--sandbox local` and `--e2b` (stand-in envd).

Prints wall time per mode and the bootstrap broken down (wheels, environment,
install, registration, steps, download, teardown). Modes:

- host: `osiris run` on this machine;
- local (no layer): fresh folder + venv, every dependency installed by pip into it
  (`--e2b-install-deps`; pip's own download cache is warm);
- local (cold layer): the first run with an empty cache (``$OSIRIS_CACHE_DIR``): the
  dependency layer is built with pip, then the run goes on as a warm one;
- local (warm layer): fresh folder + venv that sees the cached layer; one pip call of the osiris wheels;
- e2b (template): the E2B plugin through the real SDK against the stand-in envd,
  whose "template" has the dependencies on its ``PYTHONPATH``.

With ``--pipeline flagship`` the pipeline is docs/examples/mysql_duckdb_supabase.yaml over a
throwaway MariaDB database (200 customers, ``--rows`` orders; default 30,000) into a throwaway
PostgreSQL database, and the cold mode empties only the Osiris cache (``$OSIRIS_CACHE_DIR``:
layers and built wheels) while pip and uv keep the host's own caches, as on a machine where the
host's environment was installed; there is no no-layer mode. ``bootstrap`` is the sandbox's set-up
before the first step (wheels, layer, environment, install, registration).

Usage: scripts/bench remote [--pipeline quickstart|flagship] [--rows N] [--skip-full] [--no-e2b]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))


def _make_input(work: Path, rows: int) -> None:
    data = work / "docs/examples/data"
    data.mkdir(parents=True)
    if rows <= 0:
        shutil.copy(ROOT / "docs/examples/data/orders.csv", data / "orders.csv")
        return
    src = (ROOT / "docs/examples/data/orders.csv").read_text().splitlines()
    header, body = src[0], src[1:]
    with (data / "orders.csv").open("w") as f:
        f.write(header + "\n")
        for i in range(rows):
            f.write(body[i % len(body)] + "\n")


BOOTSTRAP = ("wheels", "layer", "environment", "install", "registration")


def _host_cache(kind: str) -> str:
    """Where the host's own pip or uv cache is (the installers' defaults)."""
    import subprocess

    if kind == "uv":
        from uv import find_uv_bin

        cmd = [find_uv_bin(), "cache", "dir"]
    else:
        cmd = [sys.executable, "-m", "pip", "cache", "dir"]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


@contextlib.contextmanager
def _environ(**values: str | None):
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _flagship_databases(rows: int):
    """A MariaDB database with 200 customers and `rows` orders, and an empty PostgreSQL database."""
    from databases import mariadb_database, postgres_database

    with mariadb_database("osiris_bench_remote") as my, postgres_database("osiris_bench_remote") as pg:
        cur = my.cursor()
        cur.execute("CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50), country CHAR(2))")
        cur.execute(
            "CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT, total DECIMAL(12,2), created_at DATETIME)"
        )
        cur.execute(
            "INSERT INTO customers SELECT seq, CONCAT('customer ', seq), ELT(1 + seq % 4, 'DE', 'FR', 'GB', 'US') "
            "FROM seq_1_to_200"
        )
        cur.execute(
            "INSERT INTO orders SELECT seq, 1 + seq % 200, (seq % 997) / 4, "
            f"TIMESTAMP('2019-10-01') + INTERVAL (seq * 37) MINUTE FROM seq_1_to_{rows}"
        )
        yield my.name, pg.name


class _Done:
    def __init__(self, code: int) -> None:
        self.exit_code = code


def _cli(cmd: list[str]) -> _Done:
    import subprocess

    return _Done(subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipeline", choices=("quickstart", "flagship"), default="quickstart")
    parser.add_argument(
        "--rows", type=int, default=0, help="rows of generated input (0: the shipped 12-row CSV / 30,000 orders)"
    )
    parser.add_argument("--skip-full", action="store_true", help="skip the no-layer and cold-layer modes")
    parser.add_argument("--no-e2b", action="store_true", help="skip the e2b stand-in mode")
    parser.add_argument(
        "--repeat", type=int, default=1, help="then N more host / warm-layer pairs, side by side, for the medians"
    )
    args = parser.parse_args()
    if args.pipeline == "flagship":
        with _flagship_databases(args.rows or 30000) as (mysql_db, pg_db):
            return _run(args, mysql_db, pg_db)
    return _run(args, None, None)


def _run(args: argparse.Namespace, mysql_db: str | None, pg_db: str | None) -> int:
    from envd_standin import StandinEnvd
    from osiris_cli import compile_build

    from osiris.remote.layers import ensure_layer, template_requirements
    from osiris.remote.plugins import e2b_plugin, local_plugin
    from osiris.runtime.cli import run_on_host
    from osiris.runtime.sandbox_api import SandboxOptions

    work = Path(tempfile.mkdtemp(prefix="osiris-bench-"))
    os.chdir(work)
    flagship = mysql_db is not None
    if flagship:
        from flagship import ENV, EXAMPLE, write_connections

        os.environ.update(ENV)
        manifest = compile_build(EXAMPLE, work / "build", cwd=work)
        conns = write_connections(work / "osiris_connections.yaml", mysql_database=mysql_db, pg_database=pg_db)
        kw = {"connections_file": conns}
    else:
        _make_input(work, args.rows)
        manifest = compile_build(ROOT / "docs/examples/quickstart.yaml", work / "build", cwd=work)
        kw = {"connections_file": None}
    results = []

    def timed(name: str, fn) -> None:
        runs = work / "runs" / f"{len(results)}_{name.replace(' ', '_')}"
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            t0 = time.perf_counter()
            code = fn(runs).exit_code
            wall = time.perf_counter() - t0
        card = json.loads(next(runs.glob("*/*/run_card.json")).read_text())
        results.append((name, code, wall, card.get("sandbox", {}).get("timings", {}), card))

    timed("host", lambda r: run_on_host(manifest, runs_dir=r, **kw))
    local = SandboxOptions(name="local")
    if flagship and not args.skip_full:
        # A cold Osiris cache (no layer, no built wheels); pip and uv keep the host's own caches.
        caches = {"UV_CACHE_DIR": _host_cache("uv"), "PIP_CACHE_DIR": _host_cache("pip")}
        with _environ(OSIRIS_CACHE_DIR=str(work / "empty-cache"), **caches):
            timed("local (cold layer)", lambda r: local_plugin(manifest, local, runs_dir=r, **kw))
    elif not args.skip_full:
        no_layer = SandboxOptions(name="local", install_deps=True)
        timed("local (no layer)", lambda r: local_plugin(manifest, no_layer, runs_dir=r, **kw))
        saved = os.environ.get("OSIRIS_CACHE_DIR")
        os.environ["OSIRIS_CACHE_DIR"] = str(work / "empty-cache")
        timed("local (cold layer)", lambda r: local_plugin(manifest, local, runs_dir=r, **kw))
        if saved is None:
            os.environ.pop("OSIRIS_CACHE_DIR")
        else:
            os.environ["OSIRIS_CACHE_DIR"] = saved
    timed("local (warm layer)", lambda r: local_plugin(manifest, local, runs_dir=r, **kw))  # builds it if missing
    timed("local (warm layer)", lambda r: local_plugin(manifest, local, runs_dir=r, **kw))
    if not args.no_e2b:
        template = ensure_layer(template_requirements())
        with StandinEnvd(work / "e2b-root", template_env={"PYTHONPATH": str(template.site)}) as envd:
            os.environ.update(envd.sdk_env())
            timed("e2b (template)", lambda r: e2b_plugin(manifest, SandboxOptions(name="e2b"), runs_dir=r, **kw))

    for _ in range(args.repeat - 1 if args.repeat > 1 else 0):
        timed("host", lambda r: run_on_host(manifest, runs_dir=r, **kw))
        timed("local (warm layer)", lambda r: local_plugin(manifest, local, runs_dir=r, **kw))
    # What a user sees: `osiris run` in a new process each time (its start and imports included).
    cli = [str(Path(sys.executable).parent / "osiris"), "run", str(manifest)]
    if kw["connections_file"] is not None:
        cli += ["--connections", str(kw["connections_file"])]
    for _ in range(max(args.repeat, 1)):
        timed("host (cli)", lambda r: _cli([*cli, "--runs-dir", str(r)]))
        timed("local warm (cli)", lambda r: _cli([*cli, "--runs-dir", str(r), "--sandbox", "local"]))

    rows = sum(s["rows_out"] for s in results[0][4]["steps"] if s["id"] in ("orders", "customers"))
    print(f"{args.pipeline}, {rows:,} input rows; wall seconds (machine shared with other work)")
    cols = (*BOOTSTRAP, "download", "teardown")
    print(
        f"{'mode':<20}{'exit':>5}{'wall':>8}{'×host':>7}"
        + "".join(f"{c:>13}" for c in cols)
        + f"{'bootstrap':>10}{'steps':>8}"
    )
    host_wall = results[0][2]
    for name, code, wall, t, card in results:
        boot = sum(t.get(c, 0.0) for c in BOOTSTRAP)
        cells = "".join(f"{t[c]:>13.2f}" if c in t else f"{'-':>13}" for c in cols)
        steps = sum(s["duration_ms"] for s in card["steps"]) / 1000
        print(f"{name:<20}{code:>5}{wall:>8.2f}{wall / host_wall:>7.2f}{cells}{boot:>10.2f}{steps:>8.2f}")
    if args.repeat > 1:
        import statistics

        for host_mode, warm_mode in (("host", "local (warm layer)"), ("host (cli)", "local warm (cli)")):
            walls = {m: [r[2] for r in results if r[0] == m] for m in (host_mode, warm_mode)}
            boots = [sum(r[3].get(c, 0.0) for c in BOOTSTRAP) for r in results if r[0] == warm_mode]
            host, warm = (statistics.median(walls[m]) for m in (host_mode, warm_mode))
            print(
                f"medians: {host_mode} {host:.2f} s ({len(walls[host_mode])} runs), {warm_mode} {warm:.2f} s "
                f"({len(walls[warm_mode])} runs, bootstrap {statistics.median(boots):.2f} s): {warm / host:.2f}× host"
            )
    for name, code, _, _, card in results:
        if code != 0:
            print(f"{name} failed: {(card.get('error') or {}).get('message')}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
