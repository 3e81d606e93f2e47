"""Stopping runs on purpose: waiting for a moment of a run, holding a table lock, finding sandbox workers.

Shared by the interrupt tests on the host and in sandboxes (`tests/test_interrupts.py`,
`tests/remote/test_sandbox_stops.py`).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from databases import Database
from osiris_cli import start_osiris

LIMITED_RUN = Path(__file__).with_name("limited_run.py")


SOURCE_ROWS = 3000
OLD_ROWS = [(1, "old one"), (2, "old two"), (9999, "old only")]
EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


def pipeline(*, write_mode: str, sleep_at: int | None = None, table: str = "target") -> str:
    """MariaDB `items` -> `table` in PostgreSQL; with `sleep_at`, the extract stalls at that row."""
    stall = f"SLEEP(IF(id = {sleep_at}, 60, 0))" if sleep_at else "0"
    columns = "id, name" if table == "plain" else f"id, name, {stall} AS stalled"
    return f"""
oml_version: "0.1.0"
name: stops
steps:
  - id: items
    component: mysql.extractor
    mode: read
    config:
      connection: "@mysql.default"
      query: "SELECT {columns} FROM items ORDER BY id"
      batch_size: 100
  - id: load
    component: supabase.writer
    mode: write
    needs: [items]
    config:
      connection: "@supabase.default"
      table: {table}
      write_mode: {write_mode}
      primary_key: [id]
"""


def make_project(new_mysql_db: Any, new_pg_db: Any, tmp_path: Path) -> tuple[Database, Database, Path]:
    """A source with `SOURCE_ROWS` items, a target holding `OLD_ROWS`, and a connections file in `tmp_path`."""
    import flagship

    source, target = new_mysql_db("osiris_stops"), new_pg_db("osiris_stops")
    with source.cursor() as cur:
        cur.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40))")
        cur.execute(f"INSERT INTO items SELECT seq, CONCAT('item ', seq) FROM seq_1_to_{SOURCE_ROWS}")
    with target.cursor() as cur:
        cur.execute("CREATE TABLE target (id integer PRIMARY KEY, name text, stalled bigint)")
        cur.executemany("INSERT INTO target VALUES (%s, %s, 0)", OLD_ROWS)
    flagship.write_connections(
        tmp_path / "osiris_connections.yaml", mysql_database=source.name, pg_database=target.name
    )
    return source, target, tmp_path


def start(tmp_path: Path, text: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`osiris run` of the pipeline `text` (written to `stops.yaml`) in `tmp_path`, left running."""
    import flagship

    (tmp_path / "stops.yaml").write_text(text)
    return start_osiris("run", "stops.yaml", *extra, cwd=tmp_path, env={**flagship.ENV, **(env or {})})


def old_rows() -> list[tuple[Any, ...]]:
    """The target's rows before any run."""
    return [(i, name, 0) for i, name in OLD_ROWS]


def assert_interrupted(proc: subprocess.Popen[str], runs: Path, sig: int, step: str) -> dict[str, Any]:
    """The run exited 128 + sig, left an `interrupted` card naming `step`, no temporary file."""
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT[sig], err
    assert "internal error" not in err and "interrupted" in err
    run_dir = the_run_dir(runs)
    assert run_dir is not None
    card = json.loads((run_dir / "run_card.json").read_text())
    assert card["status"] == "interrupted"
    assert card["interrupted"]["signal"] == signal.Signals(sig).name and card["interrupted"]["step"] == step
    assert card["error"]["exit_code"] == EXIT[sig] and card["error"]["step"] == step
    statuses = {s["id"]: s["status"] for s in card["steps"]}
    assert statuses[step] == "interrupted"
    assert [e for e in events(run_dir) if e["event"] == "run_interrupted"]
    assert temporary_files(run_dir) == []
    return card


def wait_for(what: str, check: Callable[[], Any], *, timeout: float = 120, every: float = 0.05) -> Any:
    """Poll `check()` until it returns something true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def events(run_dir: Path) -> list[dict[str, Any]]:
    """The events a run wrote so far (a line being written is skipped)."""
    out = []
    path = run_dir / "events.jsonl"
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out


def the_run_dir(runs: Path) -> Path | None:
    """The only run directory under `runs` (one pipeline, one run), once it exists."""
    found = sorted(p for p in runs.glob("*/*") if p.is_dir() and not p.name.startswith("."))
    return found[0] if len(found) == 1 else None


def step_started(runs: Path, step: str) -> bool:
    """Whether the run under `runs` emitted `step_start` for `step` (streamed from a sandbox too)."""
    run_dir = the_run_dir(runs)
    return run_dir is not None and any(e["event"] == "step_start" and e.get("step_id") == step for e in events(run_dir))


@contextlib.contextmanager
def table_locked(db: Database, table: str) -> Iterator[Callable[[], None]]:
    """Hold an ACCESS EXCLUSIVE lock on `table` (a load's last statement waits for it); yields `release()`."""
    conn = db.connect()
    conn.autocommit = False
    with conn.cursor() as cur:
        cur.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    released = []

    def release() -> None:
        if not released:
            conn.rollback()
            released.append(True)

    try:
        yield release
    finally:
        release()


_watchers: dict[int, tuple[Database, Any]] = {}


def _watcher(db: Database) -> Any:
    """One connection to `db` for all the polling of a test (a new one per poll would exhaust the server)."""
    held = _watchers.get(id(db))
    if held is None or held[0] is not db or held[1].closed:
        held = _watchers[id(db)] = (db, db.connect())
    return held[1]


def waiting_on_lock(db: Database) -> bool:
    """Whether a session of `db` other than ours waits for a lock (the load is at its last statement)."""
    with _watcher(db).cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cur.fetchone()[0] > 0


def rows(db: Database, table: str) -> list[tuple[Any, ...]]:
    """Every row of `table`, sorted."""
    with _watcher(db).cursor() as cur:
        cur.execute(f"SELECT * FROM {table} ORDER BY 1")
        return cur.fetchall()


def worker_pids(root: Path) -> list[int]:
    """The processes whose working directory is under `root` (the sandbox workers of a test)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cwd = os.readlink(entry / "cwd")
            if cwd == str(root) or cwd.startswith(str(root) + os.sep):
                status = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if status != "Z":
                    found.append(int(entry.name))
    return found


def temporary_files(run_dir: Path) -> list[str]:
    """Temporary files left in a run directory (`.name.<pid>.tmp`)."""
    return sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*.tmp"))
