"""Fixtures: connections to the module's PostgreSQL database (`pg_db`, tests/support/testkit.py), and a way
to run the writer on Arrow data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from databases import POSTGRES, postgres_connect

from osiris.runtime.testing import RecordingContext


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


def write_parquet(table: Any, path: Path) -> Path:
    """Write an Arrow table to Parquet (small row groups, so batches stream)."""
    import pyarrow.parquet as pq

    pq.write_table(table, path, row_group_size=1000)
    return path


@pytest.fixture()
def run_writer(tmp_path: Path, connection: dict[str, Any]):
    """Run a `supabase.writer` step on an Arrow table as the runner does (retries included, `retries: 0`
    unless given); returns (the driver's facts, its `RecordingContext`)."""
    from osiris.runtime.testing import run_component

    counter = [0]

    def run(data: Any, *, conn: dict[str, Any] | None = None, **config: Any) -> tuple[Any, RecordingContext]:
        counter[0] += 1
        path = write_parquet(data, tmp_path / f"in{counter[0]}.parquet")
        cfg = {"retries": 0, **config, "resolved_connection": conn if conn is not None else connection}
        done = run_component(
            "supabase.writer", cfg, inputs={"upstream": path}, work_dir=tmp_path / f"run{counter[0]}", step_id="load"
        )
        return done.facts, done.ctx

    return run


def rows(pg: Any, sql: str) -> list[tuple[Any, ...]]:
    """All rows of a query."""
    with pg.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()
