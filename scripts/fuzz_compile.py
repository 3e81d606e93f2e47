"""Fuzz `osiris compile` and `osiris validate` for longer than CI does, and print what was tried.

    .venv/bin/python scripts/fuzz_compile.py [--examples 5000] [--seed 1] [--all-subprocess]

Runs every hand-written bad input of `tests/support/fuzz_inputs.py` in-process (both commands) and
as a user runs it (a subprocess), then `--examples` hypothesis mutations of the example pipelines
(in-process, both commands; `--seed` makes a run repeatable). Every outcome must be exit 0 or 2, no
traceback, no `internal error`, no hang and no canary secret in any output or file. Prints the
number of cases and runs, the exit codes seen, the slowest compiles and every failure; exits 1 on
any failure. `tests/test_fuzz_compile.py` runs the same checks, bounded and seeded, in CI.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from fuzz_inputs import (  # noqa: E402
    Case,
    describe,
    hand_written,
    mutated_pipelines,
    problems,
    run_in_process,
    run_subprocess,
)
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=2000, help="hypothesis mutations to try (default 2000)")
    parser.add_argument("--seed", type=int, default=None, help="seed for the mutations (default: random)")
    parser.add_argument("--all-subprocess", action="store_true", help="also run every mutation in a subprocess (slow)")
    args = parser.parse_args()
    seed_used = args.seed if args.seed is not None else int(time.time())
    runs: list[tuple[float, str, str]] = []  # (seconds, command, case)
    codes: Counter[int] = Counter()
    failures: list[str] = []
    cases = 0
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="osiris-fuzz-") as tmp:
        work = Path(tmp)
        counter = [0]

        def check(case: Case, *, subprocess_too: bool) -> None:
            nonlocal cases
            cases += 1
            for command in ("validate", "compile"):
                counter[0] += 1
                outcome = run_in_process(case, work / str(counter[0]), command)
                record(case, command, outcome)
            if subprocess_too:
                counter[0] += 1
                outcome = run_subprocess(case, work / str(counter[0]), "compile")
                record(case, "compile (subprocess)", outcome, time_limit=60.0)

        def record(case: Case, command: str, outcome, time_limit: float = 10.0) -> None:
            codes[outcome.code] += 1
            runs.append((outcome.seconds, command, case.name))
            found = problems(case, outcome, time_limit=time_limit)
            if found:
                failures.append(f"{command}: {describe(case, outcome, found)}")

        for case in hand_written():
            check(case, subprocess_too=True)
        hand = cases

        @seed(seed_used)
        @settings(
            max_examples=args.examples,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=mutated_pipelines())
        def mutations(case: Case) -> None:
            check(case, subprocess_too=args.all_subprocess)

        mutations()

    elapsed = time.perf_counter() - started
    compiles = sorted((r for r in runs if r[1].startswith("compile")), reverse=True)
    print(f"cases tried      {cases} ({hand} hand-written, {cases - hand} mutations, seed {seed_used})")
    print(f"runs             {len(runs)} in {elapsed:.0f} s; exit codes {dict(sorted(codes.items()))}")
    in_process = [r for r in compiles if r[1] == "compile"]
    print("slowest compiles in-process")
    for seconds, _, name in in_process[:5]:
        print(f"  {seconds * 1000:8.0f} ms  {name}")
    print("slowest compiles in a subprocess (interpreter start included)")
    for seconds, _, name in [r for r in compiles if r[1] != "compile"][:3]:
        print(f"  {seconds * 1000:8.0f} ms  {name}")
    if in_process:
        median = sorted(r[0] for r in in_process)[len(in_process) // 2]
        print(f"median compile   {median * 1000:.0f} ms in-process")
    print(f"failures         {len(failures)}")
    for f in failures[:50]:
        print(f"  - {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
