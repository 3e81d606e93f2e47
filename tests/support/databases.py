"""Throwaway MariaDB and PostgreSQL databases on the servers of this machine, for tests.

Each database gets a unique name and is dropped afterwards, whatever the test did. A server
that does not answer fails the test at once, naming the server and how to start it: the
suite needs both, and a skip would hide that it never ran (`scripts/services` starts them).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
POSTGRES = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
START_SERVICES = "start it with `scripts/services`"


def unique_name(prefix: str) -> str:
    """`prefix` and a random suffix: a database name no other test or engineer uses."""
    return f"{prefix}_{secrets.token_hex(4)}"


def mysql_connect(database: str | None = None) -> Any:
    """An autocommit pymysql connection as root (utf8mb4); fails the test when MariaDB does not answer."""
    import pymysql

    try:
        return pymysql.connect(**MYSQL, database=database, charset="utf8mb4", autocommit=True)
    except pymysql.err.OperationalError as exc:
        if exc.args and exc.args[0] in (2002, 2003):
            pytest.fail(f"MariaDB on {MYSQL['host']}:{MYSQL['port']} is not reachable ({exc}); {START_SERVICES}")
        raise


def postgres_connect(dbname: str = "postgres") -> Any:
    """An autocommit psycopg2 connection as `postgres`; fails the test when PostgreSQL does not answer."""
    import psycopg2

    try:
        conn = psycopg2.connect(**POSTGRES, dbname=dbname)
    except psycopg2.OperationalError as exc:
        if "does not exist" in str(exc):
            raise
        pytest.fail(f"PostgreSQL on {POSTGRES['host']}:{POSTGRES['port']} is not reachable ({exc}); {START_SERVICES}")
    conn.autocommit = True
    return conn


@dataclass
class Database:
    """A throwaway database on one of the two servers: its name, connection fields, and connections to it."""

    server: str  # "mariadb" or "postgres"
    name: str
    _conns: list[Any] = field(default_factory=list, repr=False)

    @property
    def connection(self) -> dict[str, Any]:
        """Resolved connection fields for this database (`mysql`, or libpq / `supabase` ones)."""
        if self.server == "mariadb":
            return {**MYSQL, "database": self.name}
        return {**POSTGRES, "dbname": self.name}

    def connect(self) -> Any:
        """A new autocommit connection to this database, closed when the database is dropped."""
        conn = mysql_connect(self.name) if self.server == "mariadb" else postgres_connect(self.name)
        self._conns.append(conn)
        return conn

    def cursor(self) -> Any:
        """A cursor of a new connection to this database."""
        return self.connect().cursor()


# Per server: how to connect as the admin, and the statements that make and drop a database.
_SERVERS = {
    "mariadb": (mysql_connect, "CREATE DATABASE `{}` CHARACTER SET utf8mb4", "DROP DATABASE IF EXISTS `{}`"),
    "postgres": (postgres_connect, 'CREATE DATABASE "{}"', 'DROP DATABASE IF EXISTS "{}" WITH (FORCE)'),
}


@contextlib.contextmanager
def throwaway_database(server: str, prefix: str = "osiris_test") -> Iterator[Database]:
    """A new database on `server` (`mariadb` or `postgres`), dropped on exit with every session on it."""
    admin_connect, create, drop = _SERVERS[server]
    admin = admin_connect()
    db = Database(server, unique_name(prefix))
    try:
        with admin.cursor() as cur:
            cur.execute(create.format(db.name))
        yield db
    finally:
        for conn in db._conns:
            with contextlib.suppress(Exception):
                conn.close()
        with admin.cursor() as cur:
            cur.execute(drop.format(db.name))
        admin.close()


def mariadb_database(prefix: str = "osiris_test") -> contextlib.AbstractContextManager[Database]:
    """A new utf8mb4 MariaDB database, dropped on exit."""
    return throwaway_database("mariadb", prefix)


def postgres_database(prefix: str = "osiris_test") -> contextlib.AbstractContextManager[Database]:
    """A new PostgreSQL database, dropped on exit (with any session still connected to it)."""
    return throwaway_database("postgres", prefix)
