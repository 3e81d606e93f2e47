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

Usage: scripts/bench remote [--rows N] [--skip-full]
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=0, help="rows of generated input (0: the shipped 12-row CSV)")
    parser.add_argument("--skip-full", action="store_true", help="skip the no-layer and cold-layer modes")
    args = parser.parse_args()

    from envd_standin import StandinEnvd
    from osiris_cli import compile_build

    from osiris.remote.layers import ensure_layer, template_requirements
    from osiris.remote.plugins import e2b_plugin, local_plugin
    from osiris.runtime.cli import run_on_host
    from osiris.runtime.sandbox_api import SandboxOptions

    work = Path(tempfile.mkdtemp(prefix="osiris-bench-"))
    _make_input(work, args.rows)
    os.chdir(work)
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

    timed(
        "host",
        lambda r: run_on_host(manifest, runs_dir=r),
    )
    local = SandboxOptions(name="local")
    if not args.skip_full:
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
    template = ensure_layer(template_requirements())
    with StandinEnvd(work / "e2b-root", template_env={"PYTHONPATH": str(template.site)}) as envd:
        os.environ.update(envd.sdk_env())
        timed("e2b (template)", lambda r: e2b_plugin(manifest, SandboxOptions(name="e2b"), runs_dir=r, **kw))

    rows = results[0][4]["steps"][0]["rows_out"]
    print(f"quickstart, {rows:,} input rows; wall seconds")
    cols = ("wheels", "layer", "environment", "install", "registration", "download", "teardown")
    print(f"{'mode':<20}{'exit':>5}{'wall':>8}" + "".join(f"{c:>13}" for c in cols) + f"{'steps':>8}")
    for name, code, wall, t, card in results:
        steps = sum(s["duration_ms"] for s in card["steps"]) / 1000
        cells = "".join(f"{t[c]:>13.2f}" if c in t else f"{'-':>13}" for c in cols)
        print(f"{name:<20}{code:>5}{wall:>8.2f}{cells}{steps:>8.2f}")
    for name, code, _, _, card in results:
        if code != 0:
            print(f"{name} failed: {(card.get('error') or {}).get('message')}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
