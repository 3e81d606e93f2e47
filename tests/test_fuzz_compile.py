"""Fuzzing `osiris compile` and `osiris validate` with malformed pipelines, bounded and seeded for CI.

Every hand-written class of bad input runs in-process through the CLI's `main` and as a user runs
it, in a subprocess; then hypothesis mutates the example pipelines (seeded: the same cases every
run). Each outcome must be exit 0 or 2, no traceback, no `internal error`, no hang, and the canary
secret in no output or file. `scripts/fuzz_compile` runs the same for longer and prints figures.
"""

from __future__ import annotations

import pytest
from fuzz_inputs import (
    Case,
    describe,
    hand_written,
    mutated_pipelines,
    problems,
    run_in_process,
    run_subprocess,
)
from hypothesis import HealthCheck, given, settings

CASES = hand_written()
EXAMPLES_IN_CI = 100


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for key in [k for k in __import__("os").environ if k.startswith("OSIRIS_")]:
        monkeypatch.delenv(key)


@pytest.mark.parametrize("command", ["compile", "validate"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hand_written_bad_inputs_in_process(tmp_path, case: Case, command: str) -> None:
    outcome = run_in_process(case, tmp_path / "work", command)
    found = problems(case, outcome)
    assert not found, describe(case, outcome, found)
    if command in case.valid:
        assert outcome.code == 0, describe(case, outcome, ["a valid input must compile"])
    else:
        assert outcome.code == 2, describe(case, outcome, ["a bad input must exit 2"])


# One of each kind through a real `osiris` process (what the in-process run cannot see: argv and
# environment bytes, the interpreter's own stdout encoding); every case runs in-process above.
AS_A_USER = [
    c
    for c in CASES
    if c.name
    in {
        "billion laughs",
        "deep flow lists",
        "self alias",
        "nul byte",
        "invalid utf-8",
        "surrogate escape",
        "5000 digits",
        "huge int",
        "date in params list",
        "long param",
        "surrogate param",
        "bad env param",
        "laughs connections",
        "canary connection",
        "non-utf8 path",
        "example quickstart.yaml",
    }
]


def test_the_user_level_selection_is_complete() -> None:
    assert len(AS_A_USER) == 16


@pytest.mark.parametrize("case", AS_A_USER, ids=[c.name for c in AS_A_USER])
def test_hand_written_bad_inputs_as_a_user_runs_them(tmp_path, case: Case) -> None:
    outcome = run_subprocess(case, tmp_path / "work", "compile")
    found = problems(case, outcome, time_limit=60.0)
    assert not found, describe(case, outcome, found)


@settings(
    max_examples=EXAMPLES_IN_CI,
    derandomize=True,  # seeded: CI tries the same cases every run
    database=None,
    deadline=None,  # a hang is checked by `problems` with its own bound
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(case=mutated_pipelines())
def test_mutated_examples(tmp_path_factory, case: Case) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    for command in ("validate", "compile"):
        outcome = run_in_process(case, folder / command, command)
        found = problems(case, outcome)
        assert not found, describe(case, outcome, found)
