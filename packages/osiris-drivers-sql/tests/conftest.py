"""Fixtures for the SQL driver tests (the throwaway databases come from tests/support/testkit.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from databases import mysql_connect

from osiris.runtime.testing import RecordingContext

LEGACY_DATES_DDL = """
CREATE TABLE legacy_dates (
  id INT NOT NULL PRIMARY KEY,
  d DATE NULL, dtm DATETIME(3) NULL, ts TIMESTAMP(6) NULL, tm TIME(6) NULL
)
"""
# Zero, partial, NULL and ordinary values (with fractions); a TIMESTAMP holds no partial dates.
LEGACY_DATES_ROWS = [
    (1, "0000-00-00", "0000-00-00 00:00:00", "0000-00-00 00:00:00", "-12:00:00.5"),
    (2, "2024-02-00", "2024-00-05 10:00:00.123", "2038-01-19 03:14:07.999999", "-12:00:00.5"),
    (3, None, None, None, None),
    (4, "2024-02-29", "2024-02-29 23:59:59.999", "1970-01-01 00:00:01.000001", "-12:00:00.5"),
    (5, "1000-01-01", "0000-00-00 00:00:00", "2024-02-29 12:00:00.5", "-12:00:00.5"),
]


@pytest.fixture(scope="session")
def create_legacy_dates() -> Any:
    """A factory: `create_legacy_dates(database)` makes `legacy_dates`, holding zero and partial dates."""

    def create(database: str) -> None:
        with mysql_connect(database) as conn, conn.cursor() as cur:
            # Without NO_ZERO_DATE / NO_ZERO_IN_DATE (and strict mode) the server stores them as given.
            cur.execute("SET SESSION sql_mode = ''")
            cur.execute("SET time_zone = '+00:00'")
            cur.execute(LEGACY_DATES_DDL)
            cur.executemany("INSERT INTO legacy_dates VALUES (%s, %s, %s, %s, %s)", LEGACY_DATES_ROWS)

    return create


@pytest.fixture
def recorder(request: Any, tmp_path: Path) -> RecordingContext:
    """The step context the test's driver runs report to (`osiris.runtime.testing`); its step id is the
    test module's `STEP`, else `extract`."""
    return RecordingContext(getattr(request.module, "STEP", "extract"), tmp_path)


READ_PATHS = ("native", "connectorx", "pymysql")


@pytest.fixture
def read_path(request: Any) -> str:
    """The `read_path` a test's extractor runs on: its `path` parameter, else its `read_path` marker, else
    `native` (what users get where the row parser is built). The test puts it in the step's config."""
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    marker = request.node.get_closest_marker("read_path")
    path = params.get("path") or (marker.args[0] if marker else "native")
    if path not in READ_PATHS:
        raise ValueError(path)
    return path
