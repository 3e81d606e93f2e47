"""Retries in one place: which failures the runner retries, how often, how long it waits, what it records."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from builders import driver_module, make_manifest, make_spec

from osiris.core.errors import TerminalError, TransientError, UserInputError
from osiris.core.spec import ComponentSpec
from osiris.runtime.retry import DEFAULT_RETRIES, RetryPolicy, call_with_retries
from osiris.runtime.runner import Runner
from osiris.runtime.session import RunSession
from osiris.runtime.testing import RecordingContext, run_component

# A reader that fails its first `fail` attempts with the error named by `raise`, then returns 3 rows.
DRIVER = textwrap.dedent(
    """
    import pyarrow as pa
    from osiris.core.errors import TerminalError, TransientError

    ATTEMPTS = []

    class Flaky:
        def run(self, *, step_id, config, inputs, ctx):
            ATTEMPTS.append(step_id)
            ctx.progress(1)
            if len(ATTEMPTS) <= config["fail"]:
                error = {"transient": TransientError, "terminal": TerminalError, "bug": RuntimeError}[config["raise"]]
                raise error(f"attempt {len(ATTEMPTS)} failed")
            return {"df": pa.table({"n": [1, 2, 3]}), "attempts": len(ATTEMPTS)}
    """
)


@pytest.fixture
def flaky(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    return driver_module(tmp_path, monkeypatch, "flaky_driver", DRIVER)


def spec(driver: str, *, safe: bool, retries_default: int | None = None) -> ComponentSpec:
    props: dict[str, Any] = {"fail": {"type": "integer"}, "raise": {"type": "string"}}
    if retries_default is not None:
        props["retries"] = {"type": "integer", "default": retries_default}
    return make_spec(
        "test.flaky",
        f"{driver}:Flaky",
        ["read"],
        capabilities={"safe_to_retry": True} if safe else {},
        configSchema={"type": "object", "properties": props},
    )


def run_flaky(tmp_path: Path, component: ComponentSpec, **config: Any) -> Any:
    manifest = make_manifest("flaky", [("read", component, [])])
    session = RunSession(manifest, {"read": config}, tmp_path / "run", components={"test.flaky": component})
    return Runner(session).run()


def events(run: Any) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in (run.run_dir / "events.jsonl").read_text().splitlines()]


def test_a_transient_failure_of_a_safe_component_is_retried_and_each_retry_recorded(tmp_path, flaky):
    run = run_flaky(tmp_path, spec(flaky, safe=True), fail=2, **{"raise": "transient"})
    assert run.status == "succeeded" and run.steps[0].facts["attempts"] == 3
    retries = [e for e in events(run) if e["event"] == "step_retry"]
    assert [(e["step_id"], e["attempt"], e["of"]) for e in retries] == [("read", 1, 2), ("read", 2, 2)]
    assert [e["error"]["message"] for e in retries] == ["attempt 1 failed", "attempt 2 failed"]
    assert all(e["error"]["type"] == "TransientError" and e["delay_s"] > 0 for e in retries)
    assert run.steps[0].rows_out == 3 and run.run_card["steps"][0]["outputs"][0]["rows"] == 3
    names = [e["event"] for e in events(run)]
    assert names.count("step_start") == 1 and names.count("step_complete") == 1 and "step_failed" not in names


@pytest.mark.parametrize(
    ("safe", "raise_", "why"),
    [
        (False, "transient", "the component does not declare safe_to_retry"),
        (True, "terminal", "a terminal error happens again"),
        (True, "bug", "a driver bug is not an Osiris error"),
    ],
)
def test_what_is_not_retried(tmp_path, flaky, safe, raise_, why):
    run = run_flaky(tmp_path, spec(flaky, safe=safe), fail=1, **{"raise": raise_})
    assert run.status == "failed", why
    assert not [e for e in events(run) if e["event"] == "step_retry"], why
    assert run.steps[0].error["message"].endswith("attempt 1 failed")


def test_retries_stop_after_the_configured_number_and_the_step_fails(tmp_path, flaky):
    run = run_flaky(tmp_path, spec(flaky, safe=True), fail=10, retries=1, **{"raise": "transient"})
    assert run.status == "failed" and run.exit_code == 1
    assert len([e for e in events(run) if e["event"] == "step_retry"]) == 1
    assert run.steps[0].error["retryable"] is True and run.steps[0].error["message"] == "attempt 2 failed"
    assert not (run.run_dir / "artifacts/read/output.parquet").exists()


def test_the_policy_comes_from_the_spec_and_the_config(tmp_path):
    safe, plain = spec("m", safe=True), spec("m", safe=False)
    assert RetryPolicy.for_step(plain, {"retries": 5}).retries == 0
    assert RetryPolicy.for_step(safe, {}).retries == DEFAULT_RETRIES
    assert RetryPolicy.for_step(spec("m", safe=True, retries_default=3), {}).retries == 3
    assert RetryPolicy.for_step(safe, {"retries": 0}).retries == 0
    for bad in (-1, "2", True, 1.5):
        with pytest.raises(UserInputError, match=r"Invalid `retries` for step `s`"):
            RetryPolicy.for_step(safe, {"retries": bad}, step_id="s")
    policy = RetryPolicy(retries=6)
    assert [policy.delay_s(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]


def test_call_with_retries_waits_the_policys_delays():
    slept: list[float] = []
    seen: list[tuple[int, str, float]] = []
    attempts = iter([TransientError("a"), TransientError("b"), None])

    def attempt() -> str:
        error = next(attempts)
        if error is not None:
            raise error
        return "ok"

    result = call_with_retries(
        attempt, RetryPolicy(retries=3), on_retry=lambda n, e, d: seen.append((n, str(e), d)), sleep=slept.append
    )
    assert result == "ok" and slept == [0.5, 1.0] and seen == [(1, "a", 0.5), (2, "b", 1.0)]
    with pytest.raises(TerminalError):
        call_with_retries(lambda: (_ for _ in ()).throw(TerminalError("x")), RetryPolicy(retries=3), on_retry=print)


def test_run_component_runs_a_step_as_the_runner_does(tmp_path, flaky):
    done = run_component(spec(flaky, safe=True), {"fail": 1, "raise": "transient"}, work_dir=tmp_path)
    assert done.facts == {"attempts": 2} and done.rows_out == 3
    assert done.output.column("n").to_pylist() == [1, 2, 3]
    assert done.ctx.names() == ["step_retry"] and done.ctx.event("step_retry")["attempt"] == 1
    assert done.ctx.progress_reports == [1, 1]
    assert done.output_path == tmp_path / "artifacts" / "step" / "output.parquet"


def test_recording_context_finds_one_event_or_says_what_it_saw(tmp_path):
    ctx = RecordingContext("s", tmp_path)
    ctx.log_event("a", n=1)
    ctx.log_event("b", n=1)
    ctx.log_event("b", n=2)
    ctx.log_metric("rows", 3, table="t")
    assert ctx.event("a") == {"n": 1} and ctx.last_event("b") == {"n": 2} and ctx.events_named("b")[0] == {"n": 1}
    assert ctx.metric("rows") == 3 and ctx.metrics == [("rows", 3, {"table": "t"})]
    with pytest.raises(AssertionError, match="expected one `b` event, got 2"):
        ctx.event("b")
    with pytest.raises(AssertionError, match="no `c` event"):
        ctx.last_event("c")
