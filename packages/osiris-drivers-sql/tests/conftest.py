"""Fixtures for the SQL driver tests: a throw-away MariaDB database per test module."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


def admin_connection(database: str | None = None) -> Any:
    """A plain pymysql connection as root (for setting up and inspecting test data)."""
    import pymysql

    return pymysql.connect(**MYSQL, database=database, charset="utf8mb4", autocommit=True)


@pytest.fixture(scope="session")
def mysql_admin() -> Any:
    """A factory of root connections: `mysql_admin(database=None)`."""
    return admin_connection


@pytest.fixture(scope="module")
def mysql_db() -> Iterator[dict[str, Any]]:
    """A fresh database (dropped afterwards); yields its resolved connection fields."""
    import pymysql

    name = f"osiris_test_mysql_{secrets.token_hex(4)}"
    try:
        admin = admin_connection()
    except pymysql.err.OperationalError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"MariaDB on 127.0.0.1:3306 is not reachable: {exc}")
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield {**MYSQL, "database": name}
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


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
