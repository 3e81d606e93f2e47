"""Fixtures for the SQL driver tests (the throwaway databases come from tests/support/testkit.py)."""

from __future__ import annotations

from typing import Any

import pytest
from databases import mysql_connect

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


class Recorder:
    """Collects what a driver reports through its `StepContext`."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.metrics: list[tuple[str, float, dict[str, Any]]] = []
        self.progress: list[int] = []

    def context(self, step_id: str, output_dir: Any) -> Any:
        """A real `StepContext` wired to this recorder."""
        from osiris.runtime.contract import StepContext

        return StepContext(
            step_id=step_id,
            output_dir=output_dir,
            on_event=lambda n, d: self.events.append((n, d)),
            on_metric=lambda n, v, t: self.metrics.append((n, v, t)),
            on_progress=self.progress.append,
        )

    def metric(self, name: str) -> float:
        """The value of the one metric called `name`."""
        values = [v for n, v, _ in self.metrics if n == name]
        assert len(values) == 1, f"expected one `{name}` metric, got {values}"
        return values[0]

    def event(self, name: str) -> dict[str, Any]:
        """The data of the one event called `name`."""
        found = [d for n, d in self.events if n == name]
        assert len(found) == 1, f"expected one `{name}` event, got {found}"
        return found[0]


@pytest.fixture
def recorder() -> Recorder:
    """A fresh event/metric/progress recorder."""
    return Recorder()


READ_PATHS = ("native", "connectorx", "pymysql")


@pytest.fixture
def read_path(request: Any, monkeypatch: Any) -> str:
    """The read path a test runs on: its `path` parameter, else its `read_path` marker, else connectorx (the
    path most extractor tests were written for; the native path, the default everywhere else, has its own).

    Native is the extractor's first choice where it is built; turning it off leaves connectorx, and
    turning connectorx off too leaves pymysql.
    """
    from osiris.drivers.sql import mysql_extractor

    params = getattr(getattr(request.node, "callspec", None), "params", {})
    marker = request.node.get_closest_marker("read_path")
    path = params.get("path") or (marker.args[0] if marker else "connectorx")
    if path not in READ_PATHS:
        raise ValueError(path)
    if path != "native":
        monkeypatch.setattr(mysql_extractor, "_native_available", lambda: False)
    if path == "pymysql":
        monkeypatch.setattr(mysql_extractor, "_connectorx_available", lambda: False)
    return path
