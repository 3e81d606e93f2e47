"""A sandbox run stops with its host: interrupted, killed or out of disk, on `--sandbox local` and E2B.

The real `osiris run --sandbox local|e2b` in a subprocess (E2B through the real SDK against the envd
stand-in), the real MariaDB and PostgreSQL. The load is held at its last statement by a lock the test
takes on the target table, the moment that decides: the worker must never commit once its host was
interrupted or died, and no worker may outlive its host.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from stops import (
    LIMITED_RUN,
    SOURCE_ROWS,
    assert_interrupted,
    make_project,
    old_rows,
    pipeline,
    rows,
    start,
    step_started,
    table_locked,
    the_run_dir,
    wait_for,
    worker_pids,
)
from stops import waiting_on_lock as load_waits

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]

# How long a worker may outlive its host: it stops at once, the bound is for a loaded machine.
WORKER_GONE_S = 45


@pytest.fixture
def project(new_mysql_db: Any, new_pg_db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The stop tests' source, target and connections; sandboxes made under `tmp_path/tmp` (to find workers)."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    return make_project(new_mysql_db, new_pg_db, tmp_path)


def _moment(moment: str, source: Any, target: Any, tmp_path: Path) -> None:
    if moment == "load":
        wait_for("the load to wait for the table", lambda: load_waits(target))
    else:
        wait_for("the extract to start", lambda: step_started(tmp_path / "runs", "items"))
        wait_for("the extract to stall", lambda: _stalled(source))


def _stalled(source: Any) -> bool:
    with source.cursor() as cur:
        cur.execute("SELECT count(*) FROM information_schema.processlist WHERE info LIKE 'SELECT id, name, SLEEP%'")
        return cur.fetchone()[0] > 0


@pytest.mark.parametrize(("sig", "moment"), [(signal.SIGINT, "load"), (signal.SIGTERM, "items")])
def test_an_interrupted_local_sandbox_run_stops_its_worker_and_leaves_a_card(project: Any, sig: int, moment: str):
    source, target, tmp_path = project
    with table_locked(target, "target"):
        # At the `items` moment the load waits for the stalled extract only without overlap (with it,
        # both steps run when the stop comes: tests/test_overlap.py).
        proc = start(
            tmp_path,
            pipeline(write_mode="upsert", sleep_at=2500 if moment == "items" else None),
            "--sandbox",
            "local",
            env={"OSIRIS_OVERLAP": "0"} if moment == "items" else None,
        )
        _moment(moment, source, target, tmp_path)
        proc.send_signal(sig)
        card = assert_interrupted(proc, tmp_path / "runs", sig, moment)
        assert worker_pids(tmp_path / "tmp") == []
    assert card["sandbox"]["name"] == "local"
    worker_card = json.loads((the_run_dir(tmp_path / "runs") / "artifacts/_system/run_card.json").read_text())
    assert worker_card["status"] == "interrupted" and worker_card["interrupted"]["reason"] == "host_interrupted"
    assert rows(target, "target") == old_rows()


@pytest.mark.parametrize("moment", ["load", "items"])
def test_a_killed_host_never_commits_and_its_worker_dies(project: Any, moment: str) -> None:
    source, target, tmp_path = project
    with table_locked(target, "target") as release:
        proc = start(
            tmp_path, pipeline(write_mode="append", sleep_at=2500 if moment == "items" else None), "--sandbox", "local"
        )
        _moment(moment, source, target, tmp_path)
        assert worker_pids(tmp_path / "tmp")
        proc.kill()
        proc.communicate(timeout=60)
        # The lock is still held: the worker stops on its own, without waiting for its statement.
        wait_for("the worker to die with its host", lambda: not worker_pids(tmp_path / "tmp"), timeout=WORKER_GONE_S)
        release()
    assert rows(target, "target") == old_rows()


def test_a_killed_e2b_host_stops_its_sandbox_worker(project: Any, envd: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    source, target, tmp_path = project
    monkeypatch.setenv("OSIRIS_SANDBOX_HEARTBEAT_S", "0.5")
    with table_locked(target, "target") as release:
        proc = start(tmp_path, pipeline(write_mode="upsert"), "--e2b")
        _moment("load", source, target, tmp_path)
        assert envd.running_pids()
        proc.kill()
        proc.communicate(timeout=60)
        # No stdin EOF across E2B: the worker hears no heartbeat and stops.
        wait_for("the sandbox worker to stop", lambda: not envd.running_pids(), timeout=WORKER_GONE_S)
        release()
    assert rows(target, "target") == old_rows()


def test_a_full_host_disk_after_a_sandbox_commit_is_a_warning(project: Any) -> None:
    import flagship

    _, target, tmp_path = project
    (tmp_path / "stops.yaml").write_text(pipeline(write_mode="upsert"))
    env = {k: v for k, v in os.environ.items() if k != "OSIRIS_DEBUG"}
    done = subprocess.run(
        [sys.executable, str(LIMITED_RUN), "run", "stops.yaml", "--sandbox", "local"],
        cwd=tmp_path,
        env={**env, **flagship.ENV},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "internal error" not in done.stderr and "diagnostics are incomplete" in done.stderr
    assert "run succeeded" in done.stdout
    assert len(rows(target, "target")) == SOURCE_ROWS + 1
