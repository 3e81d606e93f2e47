"""Every stop leaves a record: SIGINT and SIGTERM during an extract (MariaDB) and during a load
(PostgreSQL) of `osiris run` on the host, a second Ctrl-C, and a disk that fills after the commit.

Each test runs the real `osiris` in a subprocess against the real servers, stops it at a known
moment and checks the run card, the temporary files, the target table's exact content and the
exit code.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from osiris_cli import run_osiris
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
    temporary_files,
    the_run_dir,
    wait_for,
)
from stops import waiting_on_lock as load_waits

pytestmark = [pytest.mark.mysql, pytest.mark.postgres]


@pytest.fixture
def project(new_mysql_db: Any, new_pg_db: Any, tmp_path: Path) -> Any:
    """A source with `SOURCE_ROWS` items, a target holding `OLD_ROWS`, and a connections file in `tmp_path`."""
    return make_project(new_mysql_db, new_pg_db, tmp_path)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_an_extract_stops_it_cleanly(project: Any, sig: int) -> None:
    _, target, tmp_path = project
    # Row 2,500 stalls: 24 batches of 100 rows are already in the output's temporary file. The load
    # waits for the extract here (no overlap; a stop of an overlapped pair: tests/test_overlap.py).
    proc = start(tmp_path, pipeline(write_mode="upsert", sleep_at=2500), env={"OSIRIS_OVERLAP": "0"})
    wait_for("the extract to stall", lambda: step_started(tmp_path / "runs", "items"))
    run_dir = the_run_dir(tmp_path / "runs")
    wait_for("the extract's temporary output", lambda: temporary_files(run_dir))
    proc.send_signal(sig)
    card = assert_interrupted(proc, tmp_path / "runs", sig, "items")
    assert {s["id"]: s["status"] for s in card["steps"]} == {"items": "interrupted", "load": "not_run"}
    assert not (run_dir / "artifacts/items/output.parquet").exists()
    assert rows(target, "target") == old_rows()
    # The run history reads it as what it is.
    shown = run_osiris("runs", "show", "latest", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    run = json.loads(shown.stdout)["run"]
    assert run["status"] == "interrupted" and run["run_id"] == run_dir.name


@pytest.mark.parametrize(("sig", "write_mode"), [(signal.SIGINT, "upsert"), (signal.SIGTERM, "append")])
def test_a_signal_during_a_load_rolls_it_back(project: Any, sig: int, write_mode: str) -> None:
    _, target, tmp_path = project
    with table_locked(target, "target") as release:
        proc = start(tmp_path, pipeline(write_mode=write_mode))
        wait_for("the load to wait for the table", lambda: load_waits(target))
        proc.send_signal(sig)
        release()  # the load's statement completes; the interrupt is handled before its COMMIT
        assert_interrupted(proc, tmp_path / "runs", sig, "load")
    assert rows(target, "target") == old_rows()
    with target.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE '%osiris_stage%'")
        assert cur.fetchone()[0] == 0


def test_a_second_ctrl_c_forces_the_exit(project: Any) -> None:
    _, target, tmp_path = project
    with target.cursor() as cur:
        cur.execute("CREATE TABLE plain (id integer PRIMARY KEY, name varchar(40))")
        cur.execute("INSERT INTO plain VALUES (1, 'old one')")
    with table_locked(target, "plain"):
        # An append straight into the table: its bulk COPY waits for the lock, and nothing cancels it.
        proc = start(tmp_path, pipeline(write_mode="append", table="plain"))
        wait_for("the load to wait for the table", lambda: load_waits(target))
        proc.send_signal(signal.SIGINT)
        time.sleep(1)  # the first one is being handled: the step cannot stop while the COPY waits
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130
        assert "forcing the exit" in err
    # The process is gone with its connection: PostgreSQL rolled its transaction back.
    wait_for("the load's session to end", lambda: not load_waits(target), timeout=30)
    assert rows(target, "plain") == [(1, "old one")]


def test_a_full_disk_after_the_commit_is_a_warning_not_a_failure(project: Any) -> None:
    import flagship

    _, target, tmp_path = project
    (tmp_path / "stops.yaml").write_text(pipeline(write_mode="upsert"))
    done = subprocess.run(
        [sys.executable, str(LIMITED_RUN), "run", "stops.yaml", "--json"],
        cwd=tmp_path,
        env={**_env(), **flagship.ENV, "OSIRIS_TEST_FULL_AFTER": "write.complete"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "internal error" not in done.stderr
    assert "diagnostics are incomplete" in done.stderr and "run_card.json" in done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded" and result["exit_code"] == 0
    assert any("run_card.json" in line for line in result["diagnostics_incomplete"])
    assert len(rows(target, "target")) == SOURCE_ROWS + 1  # upserted, plus the old row 9999
    run_dir = the_run_dir(tmp_path / "runs")
    assert run_dir is not None and not (run_dir / "run_card.json").exists()
    assert temporary_files(run_dir) == []


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "OSIRIS_DEBUG"}
