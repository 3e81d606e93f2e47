"""Fixtures: connections to the module's PostgreSQL database (`pg_db`, tests/support/testkit.py), and a way
to run the writer on Arrow data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from databases import POSTGRES, postgres_connect


@pytest.fixture()
def pg(pg_db: str) -> Iterator[Any]:
    """An autocommit psycopg2 connection to the test database."""
    conn = postgres_connect(pg_db)
    yield conn
    conn.close()


@pytest.fixture()
def connection(pg_db: str) -> dict[str, Any]:
    """A resolved `supabase` connection (host fields) pointing at the test database."""
    return {**POSTGRES, "dbname": pg_db, "sslmode": "disable"}


class Recorder:
    """Collects events, metrics and progress from a `StepContext`."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.metrics: list[tuple[str, float, dict[str, Any]]] = []
        self.progress = 0

    def names(self) -> list[str]:
        """Event names in order."""
        return [n for n, _ in self.events]

    def event(self, name: str) -> dict[str, Any]:
        """The last event called `name`."""
        return [d for n, d in self.events if n == name][-1]


def write_parquet(table: Any, path: Path) -> Path:
    """Write an Arrow table to Parquet (small row groups, so batches stream)."""
    import pyarrow.parquet as pq

    pq.write_table(table, path, row_group_size=1000)
    return path


@pytest.fixture()
def run_writer(tmp_path: Path, connection: dict[str, Any]):
    """Call `SupabaseWriter.run` on an Arrow table; returns (result, recorder)."""
    from osiris.drivers.supabase.writer import SupabaseWriter
    from osiris.runtime.contract import InputHandle, StepContext

    counter = [0]

    def run(data: Any, *, conn: dict[str, Any] | None = None, **config: Any) -> tuple[Any, Recorder]:
        counter[0] += 1
        path = write_parquet(data, tmp_path / f"in{counter[0]}.parquet")
        rec = Recorder()
        out = tmp_path / f"artifacts{counter[0]}" / "load"
        ctx = StepContext(
            step_id="load",
            output_dir=out,
            on_event=lambda n, d: rec.events.append((n, d)),
            on_metric=lambda n, v, t: rec.metrics.append((n, v, t)),
            on_progress=lambda n: setattr(rec, "progress", rec.progress + n),
        )
        cfg = {"retries": 0, **config, "resolved_connection": conn if conn is not None else connection}
        handle = InputHandle("upstream", path)
        result = SupabaseWriter().run(step_id="load", config=cfg, inputs={"df": handle, "upstream": handle}, ctx=ctx)
        rec.output_dir = out  # type: ignore[attr-defined]
        return result, rec

    return run


def rows(pg: Any, sql: str) -> list[tuple[Any, ...]]:
    """All rows of a query."""
    with pg.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()
