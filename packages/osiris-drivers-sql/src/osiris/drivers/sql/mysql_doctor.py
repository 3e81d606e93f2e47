"""`osiris connections doctor` for the `mysql` family: connect for real, read the version, find the database."""

from __future__ import annotations

import time
from typing import Any

from osiris.core.errors import OsirisError
from osiris.drivers.sql import mysql_client as client


def check(connection: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Check a MySQL/MariaDB connection: reachable, credentials accepted, database present.

    Returns ``{"ok", "message", "version", "database_exists", "latency_ms", "host", "port",
    "database"}``; never raises for a failed check and never includes the password.
    """
    c = client.with_defaults(connection)
    seconds = max(1.0, float(timeout)) if timeout else c.get("connect_timeout") or 10
    probe = {**c, "connect_timeout": seconds, "read_timeout": seconds}
    # Connect without the database first, so a missing database is reported as such.
    db = c.get("database")
    result: dict[str, Any] = {
        "ok": False,
        "message": "",
        "version": None,
        "database_exists": None,
        "latency_ms": None,
        "host": c.get("host"),
        "port": c.get("port"),
        "database": db,
    }
    started = time.perf_counter()
    try:
        conn = client.connect({**probe, "database": None}, step=None)
    except OsirisError as exc:
        result["message"] = exc.message
        result["error_type"] = type(exc).__name__
        result["retryable"] = exc.retryable
        return result
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            result["version"] = cur.fetchone()[0]
            if db:
                cur.execute("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (db,))
                result["database_exists"] = cur.fetchone() is not None
        result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    except Exception as exc:
        err = client.translate(exc, connection=c, step=None, action="checking")
        result["message"] = err.message
        result["error_type"] = type(err).__name__
        result["retryable"] = err.retryable
        return result
    finally:
        conn.close()
    place = client.where(c)
    if db and not result["database_exists"]:
        result["message"] = (
            f"Connected to MySQL {result['version']} at `{c.get('host')}:{c.get('port')}`, "
            f"but database `{db}` does not exist (or user `{c.get('user')}` cannot see it)"
        )
        return result
    result["ok"] = True
    result["message"] = f"Connected to MySQL {result['version']} at {place} in {result['latency_ms']} ms"
    return result
