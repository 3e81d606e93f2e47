"""`osiris runs list|show|diff|prune` and the retention setting, on run directories made by `osiris run`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from osiris_cli import OSIRIS, run_osiris

RETENTION_VARS = ("OSIRIS_RUNS_KEEP_DATA", "OSIRIS_RUNS_KEEP", "OSIRIS_RUNS_MAX_AGE")

TINY = """
oml_version: "0.1.0"
name: tiny
steps:
  - id: read
    component: filesystem.csv_extractor
    mode: read
    config: {path: data.csv}
  - id: save
    component: filesystem.parquet_writer
    mode: write
    needs: [read]
    config: {path: out/tiny.parquet}
"""


def osiris(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_osiris(*args, cwd=cwd, env=env, unset=RETENTION_VARS)


def as_json(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "tiny.yaml").write_text(TINY)
    write_rows(tmp_path, 3)
    return tmp_path


def write_rows(workdir: Path, n: int) -> None:
    (workdir / "data.csv").write_text("id,name\n" + "".join(f"{i},name {i}\n" for i in range(n)))


def run_tiny(
    workdir: Path, *, rows: int | None = None, env: dict[str, str] | None = None, pipeline: str = "tiny"
) -> str:
    if rows is not None:
        write_rows(workdir, rows)
    proc = osiris("run", f"{pipeline}.yaml", "--json", cwd=workdir, env=env)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout)["run_id"]


def tree(run_dir: Path) -> dict[str, bytes]:
    return {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def age_run(run_dir: Path, days: float) -> None:
    """Make a finished run look as if it started `days` ago (as an old run in the history would)."""
    card_path = run_dir / "run_card.json"
    card = json.loads(card_path.read_text())
    started = datetime.now(UTC) - timedelta(days=days)
    card["started_at"] = started.isoformat(timespec="milliseconds")
    card["finished_at"] = (started + timedelta(seconds=1)).isoformat(timespec="milliseconds")
    card_path.write_text(json.dumps(card, indent=2))


def test_list_show_and_diff_real_runs(workdir: Path) -> None:
    a = run_tiny(workdir)
    b = run_tiny(workdir)
    c = run_tiny(workdir, rows=5)

    listed = as_json(osiris("runs", "list", "--json", cwd=workdir))
    assert listed["total"] == 3
    assert [r["run_id"] for r in listed["runs"]] == [c, b, a]  # newest first
    first = listed["runs"][0]
    assert first["status"] == "succeeded" and first["steps"] == 2 and first["steps_succeeded"] == 2
    assert first["rows_out"] == 5 and first["data"] == "kept" and first["data_bytes"] > 0

    text = osiris("runs", "list", "tiny", cwd=workdir)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0].split()[:3] == ["RUN", "ID", "PIPELINE"]
    assert [line.split()[0] for line in text.stdout.splitlines()[1:4]] == [c, b, a]

    shown = as_json(osiris("runs", "show", c, "--json", cwd=workdir))
    assert shown["run"]["run_id"] == c and shown["steps_source"] == "run_card"
    read = next(s for s in shown["steps"] if s["id"] == "read")
    assert read["rows_out"] == 5 and read["outputs"][0]["data_sha256"].startswith("sha256:")
    assert shown["versions"]["osiris-runtime"] and shown["versions"]["manifest_fingerprint"].startswith("sha256:")
    assert {"run_card.json", "events.jsonl", "metrics.jsonl", "manifest.yaml"} <= {f["path"] for f in shown["files"]}
    # The shortest prefix of `c` no other run shares (runs a second apart differ in the time; runs started in
    # the same second, which fast runs now are, only in the random suffix).
    unique = next(c[:n] for n in range(17, len(c) + 1) if not any(r.startswith(c[:n]) for r in (a, b)))
    human = osiris("runs", "show", unique, cwd=workdir)  # a unique prefix
    assert human.returncode == 0 and c in human.stdout and "data_sha256" not in human.stderr
    assert read["outputs"][0]["data_sha256"][:19] in human.stdout

    same = as_json(osiris("runs", "diff", a, b, "--json", cwd=workdir))
    assert same["same_data"] is True and all(s["same_data"] for s in same["steps"])
    assert all(v["same"] for v in same["versions"])
    assert osiris("runs", "diff", a, b, "--exit-code", cwd=workdir).returncode == 0

    changed = as_json(osiris("runs", "diff", a, c, "--json", cwd=workdir))
    assert changed["same_data"] is False
    by_step = {s["id"]: s for s in changed["steps"]}
    assert by_step["read"]["a"]["rows_out"] == 3 and by_step["read"]["b"]["rows_out"] == 5
    assert by_step["read"]["a"]["data_sha256"] != by_step["read"]["b"]["data_sha256"]
    assert isinstance(by_step["read"]["duration_change_pct"], float)
    human_diff = osiris("runs", "diff", a, c, "--exit-code", cwd=workdir)
    assert human_diff.returncode == 1
    assert "rows differ" in human_diff.stdout and "data: differs" in human_diff.stdout

    latest = as_json(osiris("runs", "show", "tiny/latest", "--json", cwd=workdir))
    assert latest["run"]["run_id"] == c
    by_path = as_json(osiris("runs", "show", str(workdir / "runs" / "tiny" / a), "--json", cwd=workdir))
    assert by_path["run"]["run_id"] == a


def test_unknown_and_ambiguous_ids_exit_2_with_help(workdir: Path) -> None:
    a = run_tiny(workdir)
    b = run_tiny(workdir)
    typo = a[:-2] + a[-1] + a[-2] if a[-1] != a[-2] else a[:-1] + ("0" if a[-1] != "0" else "1")
    unknown = osiris("runs", "show", typo, cwd=workdir)
    assert unknown.returncode == 2
    assert f"No run `{typo}`" in unknown.stderr and f"did you mean `{a}`" in unknown.stderr

    nothing_close = osiris("runs", "show", "zzzz", cwd=workdir)
    assert nothing_close.returncode == 2 and "osiris runs list" in nothing_close.stderr

    common = os.path.commonprefix([a, b])
    ambiguous = osiris("runs", "show", common, cwd=workdir)
    assert ambiguous.returncode == 2
    assert "ambiguous" in ambiguous.stderr and f"tiny/{a}" in ambiguous.stderr and f"tiny/{b}" in ambiguous.stderr

    pipeline_as_id = osiris("runs", "report", "tiny", cwd=workdir)
    assert pipeline_as_id.returncode == 2 and "`tiny` is a pipeline" in pipeline_as_id.stderr

    wrong_pipeline = osiris("runs", "list", "tinny", cwd=workdir)
    assert wrong_pipeline.returncode == 2 and "did you mean `tiny`" in wrong_pipeline.stderr

    no_dir = osiris("runs", "list", "--runs-dir", "nowhere", cwd=workdir)
    assert no_dir.returncode == 2 and "`nowhere` does not exist" in no_dir.stderr

    for args in (["diff", a, "nope"], ["prune", "--keep", "0"], ["prune"], ["prune", "--older-than", "soon"]):
        proc = osiris("runs", *args, cwd=workdir)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stderr.strip(), args
    bad_age = osiris("runs", "prune", "--older-than", "soon", cwd=workdir)
    assert "Invalid duration `soon` for `--older-than`" in bad_age.stderr


def damage(runs: Path, workdir: Path) -> dict[str, Path]:
    """Every kind of damaged run directory, made from copies of a real one."""
    import shutil

    good = next((runs / "tiny").iterdir())
    old = time.time() - 3600
    made = {}
    for name, how in [
        ("no_card", lambda d: (d / "run_card.json").unlink()),
        ("bad_json", lambda d: (d / "run_card.json").write_text('{"status": "succ')),
        ("not_object", lambda d: (d / "run_card.json").write_text("[1, 2]")),
        ("no_status", lambda d: (d / "run_card.json").write_text('{"run_id": "x", "steps": []}')),
        ("cut_events", lambda d: (d / "events.jsonl").open("a").write('{"ts": "2026-')),
        ("empty", lambda d: [shutil.rmtree(p) if p.is_dir() else p.unlink() for p in list(d.iterdir())]),
    ]:
        target = runs / "tiny" / f"20250101T000000-{name}"
        shutil.copytree(good, target)
        how(target)
        for p in [target, *target.rglob("*")]:
            os.utime(p, (old, old))
        made[name] = target
    return made


def test_damaged_runs_are_listed_as_damaged_and_can_be_shown(workdir: Path) -> None:
    run_tiny(workdir)
    made = damage(workdir / "runs", workdir)
    proc = osiris("runs", "list", "--json", cwd=workdir)
    listed = {r["run_id"].split("-", 1)[1]: r for r in as_json(proc)["runs"]}
    assert {k: listed[k]["status"] for k in made} == {
        "no_card": "damaged",
        "bad_json": "damaged",
        "not_object": "damaged",
        "no_status": "damaged",
        "cut_events": "succeeded",  # its run card is fine; the cut line is noted
        "empty": "damaged",
    }
    assert "did not finish" in listed["no_card"]["problems"][0]
    assert "not valid JSON" in listed["bad_json"]["problems"][0]
    assert "not a JSON object" in listed["not_object"]["problems"][0]
    assert "no `status`" in listed["no_status"]["problems"][0]
    assert "not a run directory" in listed["empty"]["problems"][0]

    text = osiris("runs", "list", cwd=workdir)
    assert text.returncode == 0, text.stderr
    assert "damaged: tiny/20250101T000000-no_card: no `run_card.json`" in text.stdout

    # A run without a run card still shows its steps, rebuilt from its events.
    shown = as_json(osiris("runs", "show", "20250101T000000-no_card", "--json", cwd=workdir))
    assert shown["steps_source"] == "events"
    assert [(s["id"], s["status"]) for s in shown["steps"]] == [("read", "succeeded"), ("save", "succeeded")]
    cut = as_json(osiris("runs", "show", "20250101T000000-cut_events", "--json", cwd=workdir))
    assert any("line" in p and "not valid JSON" in p for p in cut["problems"])
    for name in made:
        for cmd in (["show", f"20250101T000000-{name}"], ["report", f"20250101T000000-{name}"]):
            proc = osiris("runs", *cmd, cwd=workdir)
            assert proc.returncode == 0, (name, cmd, proc.stderr)
    diff = osiris("runs", "diff", "20250101T000000-no_card", "20250101T000000-bad_json", "--json", cwd=workdir)
    assert diff.returncode == 0, diff.stderr


def test_prune_keep_deletes_exactly_the_older_runs(workdir: Path) -> None:
    ids = [run_tiny(workdir) for _ in range(4)]
    (workdir / "other.yaml").write_text(TINY.replace("name: tiny", "name: other"))
    others = [run_tiny(workdir, pipeline="other") for _ in range(2)]
    runs = workdir / "runs"
    before = {p: tree(runs / p) for p in [f"tiny/{i}" for i in ids] + [f"other/{i}" for i in others]}

    dry = as_json(osiris("runs", "prune", "--keep", "2", "--dry-run", "--json", cwd=workdir))
    assert sorted(d["run_id"] for d in dry["deleted"]) == sorted(ids[:2]) and dry["dry_run"] is True
    assert {p: tree(runs / p) for p in before} == before  # a dry run removes nothing

    done = as_json(osiris("runs", "prune", "--keep", "2", "--json", cwd=workdir))
    assert sorted(d["run_id"] for d in done["deleted"]) == sorted(ids[:2])
    assert done["freed_bytes"] == dry["freed_bytes"] > 0 and not done["errors"]
    assert sorted(p.name for p in (runs / "tiny").iterdir()) == sorted(ids[2:])
    assert sorted(p.name for p in (runs / "other").iterdir()) == sorted(others)  # 2 runs: nothing to delete
    for p in [f"tiny/{i}" for i in ids[2:]] + [f"other/{i}" for i in others]:
        assert tree(runs / p) == before[p], p  # the kept runs are untouched, byte for byte

    one_pipeline = as_json(osiris("runs", "prune", "other", "--keep", "1", "--json", cwd=workdir))
    assert [d["run_id"] for d in one_pipeline["deleted"]] == [others[0]]
    assert sorted(p.name for p in (runs / "tiny").iterdir()) == sorted(ids[2:])


def test_prune_older_than_and_with_keep(workdir: Path) -> None:
    ids = [run_tiny(workdir) for _ in range(4)]
    runs = workdir / "runs" / "tiny"
    for run_id, days in zip(ids, (90, 40, 10, 0), strict=True):
        if days:
            age_run(runs / run_id, days)
    listed = as_json(osiris("runs", "list", "--json", cwd=workdir))
    assert [r["run_id"] for r in listed["runs"]] == ids[::-1]

    both = as_json(osiris("runs", "prune", "--older-than", "30d", "--keep", "3", "--json", cwd=workdir))
    assert [d["run_id"] for d in both["deleted"]] == [ids[0]]  # 40 days old but among the newest 3: kept
    age = as_json(osiris("runs", "prune", "--older-than", "1w", "--json", cwd=workdir))
    assert sorted(d["run_id"] for d in age["deleted"]) == sorted(ids[1:3])
    assert [p.name for p in runs.iterdir()] == [ids[3]]


def test_prune_keep_data_removes_only_data_artifacts(workdir: Path) -> None:
    ids = [run_tiny(workdir) for _ in range(3)]
    runs = workdir / "runs" / "tiny"
    leftover = runs / ids[0] / "artifacts" / "read" / ".output.parquet.4242.tmp"
    leftover.write_bytes(b"half-written")
    before = {i: tree(runs / i) for i in ids}

    result = as_json(osiris("runs", "prune", "--keep-data", "1", "--json", cwd=workdir))
    assert sorted(d["run_id"] for d in result["data_removed"]) == sorted(ids[:2]) and not result["deleted"]
    for run_id in ids[:2]:
        after = tree(runs / run_id)
        removed = set(before[run_id]) - set(after)
        expected = {"artifacts/read/output.parquet"}
        if run_id == ids[0]:
            expected.add(f"artifacts/read/{leftover.name}")
        assert removed == expected, run_id
        # every diagnostic is still there, unchanged; a note says what went
        assert {k: v for k, v in after.items() if k != "artifacts/_system/retention.json"} == {
            k: v for k, v in before[run_id].items() if k not in removed
        }
        note = json.loads(after["artifacts/_system/retention.json"])
        assert sorted(f["path"] for f in note["data_removed"][0]["files"]) == sorted(removed)
    assert tree(runs / ids[2]) == before[ids[2]]

    listed = {r["run_id"]: r for r in as_json(osiris("runs", "list", "--json", cwd=workdir))["runs"]}
    assert [listed[i]["data"] for i in ids] == ["removed", "removed", "kept"]
    assert [listed[i]["status"] for i in ids] == ["succeeded"] * 3
    shown = osiris("runs", "show", ids[0], cwd=workdir)
    assert "data removed at" in shown.stdout and "keep data of the newest 1 runs" in shown.stdout

    again = as_json(osiris("runs", "prune", "--keep-data", "1", "--json", cwd=workdir))
    assert again["data_removed"] == [] and again["freed_bytes"] == 0


def test_retention_setting_is_applied_after_each_run(workdir: Path) -> None:
    env = {"OSIRIS_RUNS_KEEP_DATA": "1", "OSIRIS_RUNS_KEEP": "3"}
    ids = []
    for _ in range(4):
        ids.append(run_tiny(workdir, env=env))
    runs = workdir / "runs" / "tiny"
    assert sorted(p.name for p in runs.iterdir()) == sorted(ids[1:])
    with_data = [i for i in ids[1:] if (runs / i / "artifacts" / "read" / "output.parquet").exists()]
    assert with_data == [ids[-1]]
    for i in ids[1:]:
        assert (runs / i / "run_card.json").is_file() and (runs / i / "events.jsonl").is_file()

    proc = osiris("run", "tiny.yaml", cwd=workdir, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "retention (keep the newest 3 runs; keep data of the newest 1 runs)" in proc.stderr
    as_json_run = osiris("run", "tiny.yaml", "--json", cwd=workdir, env=env)
    json.loads(as_json_run.stdout)  # the retention message goes to stderr: stdout stays one JSON document

    count = len(list(runs.iterdir()))
    for name, value in [("OSIRIS_RUNS_KEEP_DATA", "many"), ("OSIRIS_RUNS_KEEP", "0"), ("OSIRIS_RUNS_MAX_AGE", "1y")]:
        bad = osiris("run", "tiny.yaml", cwd=workdir, env={name: value})
        assert bad.returncode == 2 and f"`{name}`" in bad.stderr, bad.stderr
    assert len(list(runs.iterdir())) == count  # nothing ran with a bad setting

    from_env = as_json(osiris("runs", "prune", "--json", cwd=workdir, env={"OSIRIS_RUNS_KEEP": "1"}))
    assert len(from_env["deleted"]) == count - 1 and len(list(runs.iterdir())) == 1


@pytest.mark.mysql
def test_prune_never_touches_a_running_run(workdir: Path) -> None:
    """A real run still extracting (a MySQL query that sleeps) is skipped by every rule, then a kill leaves it
    damaged and prune may remove it."""
    (workdir / "osiris_connections.yaml").write_text(
        textwrap.dedent(
            """
            connections:
              mysql:
                default: {host: 127.0.0.1, port: 3306, user: root, password: "", database: mysql}
            """
        )
    )
    (workdir / "slow.yaml").write_text(
        textwrap.dedent(
            """
            oml_version: "0.1.0"
            name: tiny
            steps:
              - id: read
                component: mysql.extractor
                mode: read
                config: {connection: "@mysql.default", query: "SELECT SLEEP(60) AS s"}
            """
        )
    )
    older = run_tiny(workdir)
    env = {k: v for k, v in os.environ.items() if k not in RETENTION_VARS}
    slow = subprocess.Popen(
        [*OSIRIS, "run", "slow.yaml"], cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        runs = workdir / "runs" / "tiny"
        deadline = time.monotonic() + 60
        running = None
        while time.monotonic() < deadline and running is None:
            for d in runs.iterdir():
                if d.name != older and any('"step_start"' in line for line in _lines(d / "events.jsonl")):
                    running = d
            time.sleep(0.2)
        assert running is not None, "the slow run did not start its step"
        newest = run_tiny(workdir)
        before = tree(running)

        listed = {r["run_id"]: r["status"] for r in as_json(osiris("runs", "list", "--json", cwd=workdir))["runs"]}
        assert listed[running.name] == "running"
        for rule in (["--keep", "1"], ["--keep-data", "0"], ["--older-than", "0s"]):
            result = as_json(osiris("runs", "prune", *rule, "--json", cwd=workdir))
            skipped = {s["run_id"]: s["reason"] for s in result["skipped"]}
            assert running.name in skipped and "still running" in skipped[running.name], rule
            assert running.name not in [d["run_id"] for d in result["deleted"] + result["data_removed"]]
            assert tree(running) == before or set(before) <= set(tree(running)), rule
        # `--keep 1` deleted the older finished run, `--older-than 0s` the newest: only the running one is left
        assert [p.name for p in runs.iterdir()] == [running.name]
        assert newest and not (runs / older).exists()
    finally:
        slow.send_signal(signal.SIGKILL)
        slow.wait(timeout=30)
    # Killed: no run card and nothing holds its files open, so it is damaged; but it changed only just now,
    # so prune still leaves it alone for a while (a process we cannot see may be running it).
    listed = {r["run_id"]: r["status"] for r in as_json(osiris("runs", "list", "--json", cwd=workdir))["runs"]}
    assert listed[running.name] == "damaged"
    result = as_json(osiris("runs", "prune", "--older-than", "0s", "--json", cwd=workdir))
    assert [(s["run_id"], "may still be running" in s["reason"]) for s in result["skipped"]] == [(running.name, True)]
    assert running.is_dir()


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []


@pytest.mark.slow
def test_a_sandbox_run_is_read_and_compared_like_a_host_run(workdir: Path) -> None:
    host = run_tiny(workdir)
    proc = osiris("run", "tiny.yaml", "--sandbox", "local", "--json", cwd=workdir)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    sandbox = json.loads(proc.stdout)["run_id"]
    shown = as_json(osiris("runs", "show", sandbox, "--json", cwd=workdir))
    assert shown["run"]["status"] == "succeeded" and shown["versions"]["sandbox"] == "local"
    diff = as_json(osiris("runs", "diff", host, sandbox, "--json", cwd=workdir))
    assert diff["same_data"] is True  # parity by data: rows and data_sha256 per step
    assert [v["name"] for v in diff["versions"] if not v["same"]] == ["sandbox"]
    text = osiris("runs", "diff", host, sandbox, "--exit-code", cwd=workdir)
    assert text.returncode == 0 and "sandbox: - -> local" in text.stdout
    report = osiris("runs", "report", sandbox, cwd=workdir)
    assert report.returncode == 0, report.stderr
