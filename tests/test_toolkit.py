"""The test toolkit itself: throwaway databases are dropped, and a server that is down fails, never skips."""

from __future__ import annotations

import socket

import databases
import pytest


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("server", ["mariadb", "postgres"])
def test_a_database_server_that_is_down_fails_loudly(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    settings, make = {
        "mariadb": (databases.MYSQL, databases.mariadb_database),
        "postgres": (databases.POSTGRES, databases.postgres_database),
    }[server]
    monkeypatch.setitem(settings, "port", port)
    expected = rf"(?s)127\.0\.0\.1:{port} is not reachable.*scripts/services"
    with pytest.raises(pytest.fail.Exception, match=expected), make():
        pass


def test_throwaway_databases_exist_while_used_and_are_dropped_after() -> None:
    def mariadb_has(name: str) -> bool:
        with databases.mysql_connect() as conn, conn.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE %s", (name,))
            return bool(cur.fetchall())

    def postgres_has(name: str) -> bool:
        conn = databases.postgres_connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                return bool(cur.fetchall())
        finally:
            conn.close()

    with databases.mariadb_database() as mysql, databases.postgres_database() as pg:
        with mysql.cursor() as cur:
            cur.execute("SELECT DATABASE()")
            assert cur.fetchone() == (mysql.name,)
        pg.connect()  # a session left open does not keep the database from being dropped
        assert mariadb_has(mysql.name) and postgres_has(pg.name)
    assert not mariadb_has(mysql.name) and not postgres_has(pg.name)
