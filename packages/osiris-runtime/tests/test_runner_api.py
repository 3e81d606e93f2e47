"""The step-by-step runner API the sandbox worker uses, with a listener as the sink."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from osiris.compiler.compiler import compile_to_build
from osiris.core.build import load_build
from osiris.runtime.resolve import resolve_configs
from osiris.runtime.runlog import RunListener
from osiris.runtime.runner import Runner
from osiris.runtime.session import RunSession, manifest_components

ROOT = Path(__file__).resolve().parents[3]


class Collect(RunListener):
    def __init__(self) -> None:
        self.events: list[dict] = []
        self.metrics: list[dict] = []
        self.progress: list[tuple[str, int]] = []

    def on_event(self, record: dict) -> None:
        self.events.append(record)

    def on_metric(self, record: dict) -> None:
        self.metrics.append(record)

    def on_progress(self, step_id: str, rows: int, elapsed_s: float) -> None:
        self.progress.append((step_id, rows))


def test_step_by_step_run_with_listener(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "docs" / "examples", tmp_path / "docs" / "examples")
    out = compile_to_build(tmp_path / "docs/examples/quickstart.yaml", tmp_path / "build")
    build = load_build(out.manifest_path)
    manifest, text, cfgs = build.manifest, build.manifest_text, build.cfgs
    components = manifest_components(manifest)
    configs = resolve_configs(manifest, cfgs, components, None)
    sink = Collect()
    runner = Runner(
        RunSession(
            manifest,
            configs,
            tmp_path / "run",
            components=components,
            listeners=[sink],
            base_dir=tmp_path,
            manifest_text=text,
        )
    )
    summary = runner.prepare()
    assert summary.fingerprint and not summary.failed
    for step in manifest.steps:
        result = runner.run_step(step.id)
        assert result.status == "succeeded", result.error
    run = runner.finish()
    assert run.exit_code == 0
    names = [e["event"] for e in sink.events]
    assert names[0] == "run_start" and names[-1] == "run_complete" and "drivers_registered" in names
    on_disk = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    assert on_disk == sink.events
    assert {("revenue", 6)} <= set(sink.progress)
    assert (tmp_path / "run" / "manifest.yaml").read_text() == text
    assert (tmp_path / "output" / "quickstart" / "revenue.csv").is_file()


class _Echo:
    """A transform that returns its one input and reports how many inputs it was given."""

    def run(self, *, step_id, config, inputs, ctx):
        ctx.log_event("echo.inputs", names=sorted(inputs))
        return {"df": (inputs.get("df") or inputs[min(inputs)]).reader(), "inputs": len(inputs)}


class _Bad:
    def run(self, *, step_id, config, inputs, ctx):
        return ["not", "a", "dict"]


def test_run_driver_applies_the_runners_input_rules(tmp_path):
    import pyarrow as pa

    from osiris.core.errors import TerminalError
    from osiris.runtime.testing import run_driver

    table = pa.table({"n": [1, 2, 3]})
    one = run_driver(_Echo, {}, inputs={"up": table}, work_dir=tmp_path / "one")
    assert one.ctx.event("echo.inputs")["names"] == ["df", "up"], "one upstream is `df` too"
    assert one.output.equals(table) and one.rows_out == 3 and one.facts == {"inputs": 2}
    assert one.output_path.name == "output.parquet"
    two = run_driver(
        _Echo(),
        {},
        inputs={"a": table, "b": tmp_path / "one" / "artifacts" / "step" / "output.parquet"},
        work_dir=tmp_path / "two",
    )
    assert two.ctx.event("echo.inputs")["names"] == ["a", "b"], "two upstreams: no `df`"
    with pytest.raises(TerminalError, match="returned `list`"):
        run_driver(_Bad, {}, work_dir=tmp_path / "bad")
