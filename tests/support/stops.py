"""Stopping runs on purpose: waiting for a moment of a run, holding a table lock, finding sandbox workers.

Shared by the interrupt tests on the host and in sandboxes (`tests/test_interrupts.py`,
`tests/remote/test_sandbox_stops.py`).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from databases import Database

LIMITED_RUN = Path(__file__).with_name("limited_run.py")


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
