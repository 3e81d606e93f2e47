"""Run history and retention rules on run directories laid out as the runner writes them."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from osiris.core.errors import UserInputError
from osiris.runtime.history import (
    OpenFiles,
    is_data_file,
    load_run,
    resolve_run,
    scan_runs,
    steps_from_events,
)
from osiris.runtime.report import build_report
from osiris.runtime.retention import Policy, parse_duration, plan_prune, policy_from_env

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
NOBODY = OpenFiles(frozenset(), complete=True)


def make_run(runs: Path, pipeline: str, run_id: str, *, started: datetime, status: str = "succeeded") -> Path:
    d = runs / pipeline / run_id
    (d / "artifacts" / "read").mkdir(parents=True)
    (d / "artifacts" / "_system").mkdir()
    (d / "artifacts" / "read" / "output.parquet").write_bytes(b"PAR1" + b"x" * 100)
    (d / "artifacts" / "read" / "cleaned_config.json").write_text("{}")
    (d / "events.jsonl").write_text(json.dumps({"ts": started.isoformat(), "event": "run_start"}) + "\n")
    (d / "metrics.jsonl").write_text("")
    (d / "manifest.yaml").write_text(
        f"pipeline: {{name: {pipeline}}}\nsteps: [{{id: read, component: c, mode: read}}]\n"
    )
    card = {
        "run_id": run_id,
        "pipeline": pipeline,
        "status": status,
        "started_at": started.isoformat(timespec="milliseconds"),
        "steps": [
            {
                "id": "read",
                "status": status,
                "rows_in": 0,
                "rows_out": 3,
                "outputs": [{"path": "artifacts/read/output.parquet", "data_sha256": "sha256:ab"}],
            }
        ],
    }
    (d / "run_card.json").write_text(json.dumps(card))
    old = time.time() - 7200
    for p in [d, *d.rglob("*")]:
        os.utime(p, (old, old))
    return d


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("2w", 14 * 86400), ("45s", 45), ("1d12h", 129600), ("0s", 0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text, where="x").total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "1y", "-3d", "3 days", "1d x", "1.d"])
def test_parse_duration_refuses_with_the_place_named(text: str) -> None:
    with pytest.raises(UserInputError, match=r"Invalid duration .* for `--older-than`: expected a number and a unit"):
        parse_duration(text, where="`--older-than`")


def test_policy_from_env_names_the_bad_variable() -> None:
    assert policy_from_env({}).empty
    p = policy_from_env({"OSIRIS_RUNS_KEEP_DATA": "0", "OSIRIS_RUNS_KEEP": "5", "OSIRIS_RUNS_MAX_AGE": "30d"})
    assert (p.keep_data, p.keep, p.older_than) == (0, 5, timedelta(days=30))
    assert p.describe() == "keep the newest 5 runs; delete runs older than 30d; keep data of the newest 0 runs"
    for name, value in [("OSIRIS_RUNS_KEEP", "0"), ("OSIRIS_RUNS_KEEP_DATA", "-1"), ("OSIRIS_RUNS_KEEP", "two")]:
        with pytest.raises(UserInputError, match=f"`{name}`"):
            policy_from_env({name: value})
    with pytest.raises(UserInputError, match="`OSIRIS_RUNS_MAX_AGE`"):
        policy_from_env({"OSIRIS_RUNS_MAX_AGE": "forever"})


def test_data_files_are_step_parquet_outputs_and_their_temporaries() -> None:
    assert is_data_file("artifacts/read/output.parquet")
    assert is_data_file("artifacts/read/.output.parquet.1234.tmp")
    assert is_data_file("artifacts/read/sub/part-0.parquet")
    for diag in (
        "run_card.json",
        "events.jsonl",
        "manifest.yaml",
        "artifacts/read/cleaned_config.json",
        "artifacts/read/error.txt",
        "artifacts/_system/run_card.json",
        "artifacts/_system/x.parquet",
        "output.parquet",
    ):
        assert not is_data_file(diag), diag


def test_plan_rules_per_pipeline(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    ages = {"a1": 50, "a2": 40, "a3": 20, "a4": 1}
    for rid, days in ages.items():
        make_run(runs, "a", f"2026{rid}", started=NOW - timedelta(days=days))
    make_run(runs, "b", "2026b1", started=NOW - timedelta(days=100))
    records = scan_runs(runs)

    def names(plan_list: list) -> list[str]:
        return sorted(r.run_id if hasattr(r, "run_id") else r[0].run_id for r in plan_list)

    p = plan_prune(records, Policy(keep=2), now=NOW)
    assert names(p.delete) == ["2026a1", "2026a2"] and not p.strip
    p = plan_prune(records, Policy(older_than=timedelta(days=30)), now=NOW)
    assert names(p.delete) == ["2026a1", "2026a2", "2026b1"]
    p = plan_prune(records, Policy(keep=3, older_than=timedelta(days=30)), now=NOW)
    assert names(p.delete) == ["2026a1"]  # b1 is old but the only run of its pipeline
    p = plan_prune(records, Policy(keep_data=1), now=NOW)
    assert names(p.strip) == ["2026a1", "2026a2", "2026a3"] and not p.delete
    assert [f.path for f in p.strip[0][1]] == ["artifacts/read/output.parquet"]
    p = plan_prune(records, Policy(keep=3, keep_data=2), now=NOW)
    assert names(p.delete) == ["2026a1"] and names(p.strip) == ["2026a2"]


def test_running_and_recently_changed_runs_are_protected(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    live = make_run(runs, "a", "2026a1", started=NOW - timedelta(days=9))
    fresh = make_run(runs, "a", "2026a2", started=NOW - timedelta(days=8))
    (fresh / "run_card.json").unlink()
    os.utime(fresh / "events.jsonl")  # written to just now
    make_run(runs, "a", "2026a3", started=NOW - timedelta(days=7))
    opened = OpenFiles(frozenset({str((live / "events.jsonl").resolve())}), complete=True)
    records = [load_run(d, open_files=opened) for d in sorted((runs / "a").iterdir())]
    assert [r.status for r in records] == ["running", "damaged", "succeeded"]
    plan = plan_prune(records, Policy(keep=1, keep_data=0), now=NOW)
    assert sorted(r.run_id for r, _ in plan.skipped) == ["2026a1", "2026a2"]
    assert [r.run_id for r in plan.delete] == [] and [r.run_id for r, _ in plan.strip] == ["2026a3"]
    reasons = dict((r.run_id, why) for r, why in plan.skipped)
    assert "a process has its files open" in reasons["2026a1"] and "may still be running" in reasons["2026a2"]
    # where the open files of some processes cannot be seen, a fresh run without a card counts as running
    unsure = load_run(fresh, open_files=OpenFiles(frozenset(), complete=False))
    assert unsure.status == "running"


def test_steps_from_events_show_how_far_a_killed_run_got() -> None:
    manifest = [{"id": "a", "component": "x", "mode": "read"}, {"id": "b"}, {"id": "c"}]
    events = [
        {"event": "step_start", "step_id": "a", "component": "x", "mode": "read"},
        {"event": "inputs_resolved", "step_id": "a", "rows_in": 0},
        {"event": "step_complete", "step_id": "a", "rows_in": 0, "rows_out": 7, "duration_ms": 3.0, "outputs": []},
        {"event": "step_start", "step_id": "b"},
    ]
    steps = steps_from_events(events, manifest, stopped=True)
    assert [(s["id"], s["status"], s["rows_out"]) for s in steps] == [
        ("a", "succeeded", 7),
        ("b", "unfinished", 0),
        ("c", "not_run", 0),
    ]
    assert steps_from_events(events, manifest, stopped=False)[1]["status"] == "running"


def test_resolve_run_ids(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_run(runs, "a", "20261201T100000-aaaaaa", started=NOW - timedelta(hours=2))
    make_run(runs, "a", "20261201T110000-bbbbbb", started=NOW - timedelta(hours=1))
    make_run(runs, "b", "20261201T110000-bbbbbb", started=NOW)
    assert resolve_run(runs, "20261201T10").run_id == "20261201T100000-aaaaaa"
    assert resolve_run(runs, "b/20261201T110000-bbbbbb").pipeline == "b"
    assert resolve_run(runs, "latest").pipeline == "b"
    assert resolve_run(runs, "a/latest").run_id == "20261201T110000-bbbbbb"
    with pytest.raises(UserInputError, match=r"ambiguous.*a/20261201T110000-bbbbbb.*b/20261201T110000-bbbbbb"):
        resolve_run(runs, "20261201T110000-bbbbbb")
    with pytest.raises(
        UserInputError, match=r"No run `20261201T100000-aaaaab`[\s\S]*did you mean `20261201T100000-aaaaaa`"
    ):
        resolve_run(runs, "20261201T100000-aaaaab")
    with pytest.raises(UserInputError, match=r"No run `c/x` in"):
        resolve_run(runs, "c/x")


def test_report_masks_secret_looking_values_and_shows_unknown_statuses_plainly(tmp_path: Path) -> None:
    d = make_run(tmp_path / "runs", "a", "2026a1", started=NOW, status="quarantined")
    leak = {
        "ts": NOW.isoformat(),
        "event": "connect",
        "step_id": "read",
        "password": "hunter2-literal",
        "dsn": "postgresql://app:pw-in-dsn-123@db/x",
        "note": "<script>alert(1)</script>",
        "headers": "Authorization: Bearer tok-abcdef123",
    }
    with (d / "events.jsonl").open("a") as f:
        f.write(json.dumps(leak) + "\n")
    html = build_report(load_run(d, open_files=NOBODY))
    for secret in ("hunter2-literal", "pw-in-dsn-123", "tok-abcdef123"):
        assert secret not in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<span class="badge st-other">quarantined</span>' in html
    assert "does not know" in html
    assert html.count("<script>") == 1  # only the report's own filter code


def test_prune_leaves_folders_that_are_not_run_directories_alone(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    make_run(runs, "a", "2026a1", started=NOW - timedelta(days=2))
    make_run(runs, "a", "2026a2", started=NOW - timedelta(days=1))
    stranger = runs / "a" / "photos"
    stranger.mkdir()
    (stranger / "cat.jpg").write_bytes(b"jpeg")
    os.utime(stranger, (time.time() - 7200,) * 2)
    plan = plan_prune(scan_runs(runs), Policy(keep=1, older_than=timedelta(0)), now=NOW)
    assert [r.run_id for r in plan.delete] == ["2026a1"]
    assert [(r.run_id, "not a run directory" in why) for r, why in plan.skipped] == [("photos", True)]
