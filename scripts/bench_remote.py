#!/usr/bin/env python3
"""Overhead of running in a sandbox: the quickstart on the host, `--sandbox local` and `--e2b` (stand-in envd).

Prints wall time per mode and the bootstrap broken down (wheels, environment,
install, registration, steps, download, teardown). Modes:

- host: `osiris run` on this machine;
- local (full): fresh folder + venv, every dependency installed by pip (warm cache);
- local (layer): fresh folder + venv, third-party dependencies from a prebuilt layer
  (``OSIRIS_SANDBOX_SITE_PACKAGES``, like an E2B template with them baked in);
- e2b (layer): the E2B plugin through the real SDK against the stand-in envd.

Usage: .venv/bin/python scripts/bench_remote.py [--rows N]   (--rows makes a bigger CSV input)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))


def _layer() -> str:
    venv = Path.home() / ".cache" / "osiris" / "bench-layer"
    py = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "msgspec", "pyyaml", "click", "pyarrow", "duckdb", "pymysql"],
            check=True,
        )
        (venv / ".complete").write_text("ok")
    return subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True
    ).stdout.strip()


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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=0, help="rows of generated input (0: the shipped 12-row CSV)")
    parser.add_argument("--skip-full", action="store_true", help="skip the full pip install mode")
    args = parser.parse_args()

    from envd_standin import StandinEnvd

    from osiris.remote.plugins import e2b_plugin, local_plugin
    from osiris.runtime.cli import run_on_host
    from osiris.runtime.sandbox_api import SandboxOptions

    work = Path(tempfile.mkdtemp(prefix="osiris-bench-"))
    _make_input(work, args.rows)
    os.chdir(work)
    build = work / "build"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "osiris.core.cli",
            "compile",
            str(ROOT / "docs/examples/quickstart.yaml"),
            "-o",
            str(build),
        ],
        check=True,
        capture_output=True,
    )
    manifest = next(build.rglob("manifest.yaml"))
    kw = {"connections_file": None, "verbose": False, "json_output": True}
    results = []

    def timed(name: str, fn) -> None:
        runs = work / "runs" / name.replace(" ", "_")
        with contextlib.redirect_stdout(open(os.devnull, "w")):
            t0 = time.perf_counter()
            code = fn(runs)
            wall = time.perf_counter() - t0
        card = json.loads(next(runs.glob("*/*/run_card.json")).read_text())
        results.append((name, code, wall, card.get("sandbox", {}).get("timings", {}), card))

    timed(
        "host",
        lambda r: run_on_host(manifest, runs_dir=r, connections_file=None, as_json=True, verbose=False, progress=False),
    )
    os.environ.pop("OSIRIS_SANDBOX_SITE_PACKAGES", None)
    if not args.skip_full:
        timed("local (full)", lambda r: local_plugin(manifest, SandboxOptions(name="local"), runs_dir=r, **kw))
    os.environ["OSIRIS_SANDBOX_SITE_PACKAGES"] = _layer()
    timed("local (layer)", lambda r: local_plugin(manifest, SandboxOptions(name="local"), runs_dir=r, **kw))
    os.environ["E2B_DEBUG"] = "true"
    with StandinEnvd(work / "e2b-root"):
        timed("e2b (layer)", lambda r: e2b_plugin(manifest, SandboxOptions(name="e2b"), runs_dir=r, **kw))

    rows = results[0][4]["steps"][0]["rows_out"]
    print(f"quickstart, {rows:,} input rows; wall seconds")
    cols = ("wheels", "environment", "install", "registration", "download", "teardown")
    print(f"{'mode':<15}{'exit':>5}{'wall':>8}" + "".join(f"{c:>14}" for c in cols) + f"{'steps':>8}")
    for name, code, wall, t, card in results:
        steps = sum(s["duration_ms"] for s in card["steps"]) / 1000
        cells = "".join(f"{t[c]:>14.2f}" if c in t else f"{'-':>14}" for c in cols)
        print(f"{name:<15}{code:>5}{wall:>8.2f}{cells}{steps:>8.2f}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
