"""Fuzz every `osiris` command at its boundary for longer than CI does, and print what was tried.

    .venv/bin/python scripts/fuzz_cli.py [--examples 3000] [--seed 1]

Builds the world of `tests/support/fuzz_cli.py` (a pipeline reading the local MariaDB, compiled and
run once), then runs `--examples` generated cases through the CLI in-process: damaged connections
files, manifests (some resealed), run directories and pipelines, and generated command lines for
every command. Every outcome must be a documented exit code, no traceback, no `internal error`, one
JSON object with `--json`, no hang and no canary secret in any output or file. Prints the number of
cases, the exit codes, the slowest command lines and every distinct failure; exits 1 on any failure.
`tests/test_fuzz_cli.py` runs the same checks, bounded and seeded, in CI.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from fuzz_cli import (  # noqa: E402
    CliCase,
    any_case,
    cli_problems,
    command_name,
    describe_case,
    make_world,
    run_case,
)
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=3000, help="generated cases to try (default 3000)")
    parser.add_argument("--seed", type=int, default=None, help="seed (default: random)")
    args = parser.parse_args()
    seed_used = args.seed if args.seed is not None else int(time.time())
    codes: Counter[int] = Counter()
    per_kind: dict[str, list[float]] = defaultdict(list)
    slowest: list[tuple[float, str]] = []
    failures: dict[tuple[str, str], str] = {}
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="osiris-fuzz-cli-") as tmp:
        work = Path(tmp)
        world = make_world(work / "world")
        counter = [0]

        @seed(seed_used)
        @settings(max_examples=args.examples, database=None, deadline=None, suppress_health_check=list(HealthCheck))
        @given(data=st.data())
        def check(data: st.DataObject) -> None:
            case = data.draw(any_case(world))
            counter[0] += 1
            outcome = run_case(world, case, work / f"case{counter[0]}")
            codes[outcome.code] += 1
            kind = f"{case.name.split(':')[0]}: osiris {command_name(case.argv)}"
            per_kind[kind].append(outcome.seconds)
            slowest.append((outcome.seconds, "osiris " + " ".join(case.argv)[:120]))
            found = cli_problems(case, outcome)
            if found:
                if "internal error" in outcome.err:  # once more with the traceback, for the report
                    again = run_case(world, CliCase(case.name, ("-v", *case.argv), case.files), work / "again")
                    outcome.err = again.err[-3000:]
                first = outcome.err.strip().splitlines()[-1:] or [""]
                failures.setdefault((command_name(case.argv), first[0][:80]), describe_case(case, outcome, found))
            _remove(work / f"case{counter[0]}")
            _remove(work / "again")

        check()

    elapsed = time.perf_counter() - started
    print(f"cases tried      {counter[0]} (seed {seed_used}) in {elapsed:.0f} s")
    print(f"exit codes       {dict(sorted(codes.items()))}")
    print("cases per kind   (count, total s, slowest s)")
    for kind, times in sorted(per_kind.items()):
        print(f"  {kind:45s} {len(times):5d} {sum(times):8.1f} {max(times):8.2f}")
    print("slowest commands")
    for seconds, argv in sorted(slowest, reverse=True)[:5]:
        print(f"  {seconds * 1000:8.0f} ms  {argv}")
    print(f"distinct failures {len(failures)}")
    for text in list(failures.values())[:30]:
        print(f"  - {text}")
    return 1 if failures else 0


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
