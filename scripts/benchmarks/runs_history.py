"""How long `osiris runs list`, `show`, `prune` and `report` take over a long run history.

Runs the quickstart once (in a temporary folder), copies its run directory N times with distinct run ids
and start times, then times each command in a fresh process and prints the figures:

    scripts/bench runs-history [--runs 2000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from osiris_cli import OSIRIS  # noqa: E402  (the test toolkit's `osiris` command line)


def timed(args: list[str], cwd: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([*OSIRIS, *args], cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"`osiris {' '.join(args)}` failed: {proc.stderr}")
    return elapsed, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="How many run directories to make.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="osiris-bench-runs-") as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "docs" / "examples", work / "docs" / "examples")
        proc = subprocess.run(
            [*OSIRIS, "run", "docs/examples/quickstart.yaml", "--json"], cwd=work, capture_output=True, text=True
        )
        source = work / "runs" / "quickstart" / json.loads(proc.stdout)["run_id"]
        card = json.loads((source / "run_card.json").read_text())
        start = datetime.now(UTC) - timedelta(days=args.runs)
        t0 = time.perf_counter()
        for i in range(args.runs):
            started = start + timedelta(days=i)
            run_id = started.strftime("%Y%m%dT%H%M%S") + f"-{i:06x}"
            target = source.parent / run_id
            shutil.copytree(source, target)
            card.update(run_id=run_id, started_at=started.isoformat(timespec="milliseconds"))
            (target / "run_card.json").write_text(json.dumps(card))
        made = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in (work / "runs").rglob("*") if p.is_file())
        print(f"{args.runs + 1} run directories ({size / 1e6:.1f} MB) made in {made:.1f} s")
        for label, cmd in [
            ("runs --help (start-up)", ["runs", "--help"]),
            ("runs list (newest 50)", ["runs", "list"]),
            ("runs list --limit 0 --json", ["runs", "list", "--limit", "0", "--json"]),
            ("runs show latest", ["runs", "show", "latest"]),
            ("runs report latest", ["runs", "report", "latest"]),
            ("runs prune --keep-data 10 --dry-run", ["runs", "prune", "--keep-data", "10", "--dry-run"]),
            ("runs prune --keep-data 10", ["runs", "prune", "--keep-data", "10"]),
            ("runs prune --keep 100", ["runs", "prune", "--keep", "100"]),
            ("runs list (after prune)", ["runs", "list"]),
        ]:
            elapsed, _ = timed(cmd, work)
            print(f"{label:<40} {elapsed:7.2f} s")


if __name__ == "__main__":
    main()
