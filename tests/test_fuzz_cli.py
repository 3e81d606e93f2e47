"""Fuzzing every `osiris` command at the CLI boundary, bounded and seeded for CI.

Generated malformed connections files, manifests (some resealed so they get past their
fingerprint), run directories, pipelines and command lines, each run through the CLI's `main`
against a copy of one real world (a compiled pipeline and a real run on the local MariaDB). Every
outcome must be a documented exit code, no traceback, no `internal error`, one JSON object with
`--json`, no hang, and no canary secret in any output or file. `scripts/fuzz_cli.py` runs longer.
"""

from __future__ import annotations

import pytest
from fuzz_cli import all_commands, any_case, cli_problems, describe_case, make_world, run_case
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES_IN_CI = 120


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("fuzz-world") / "world")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for key in [k for k in __import__("os").environ if k.startswith("OSIRIS_")]:
        monkeypatch.delenv(key)


def test_every_command_is_reachable_by_the_argument_fuzzer() -> None:
    expected = {("run",), ("validate",), ("compile",), ("components", "list"), ("components", "show")}
    expected |= {("connections", c) for c in ("list", "doctor")}
    expected |= {("runs", c) for c in ("list", "show", "diff", "prune", "report")}
    assert expected <= all_commands()


@pytest.mark.mysql
def test_every_command_survives_malformed_inputs(world, tmp_path_factory) -> None:
    @settings(
        max_examples=EXAMPLES_IN_CI,
        derandomize=True,  # seeded: CI tries the same cases every run
        database=None,
        deadline=None,  # a hang is bounded by an alarm in `run_case`
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def check(data) -> None:
        case = data.draw(any_case(world))
        outcome = run_case(world, case, tmp_path_factory.mktemp("case") / "w")
        found = cli_problems(case, outcome)
        assert not found, describe_case(case, outcome, found)

    check()
