"""Connection doctor for the `supabase` family: connect for real and say what works."""

from __future__ import annotations

import time
from typing import Any

from osiris.core.errors import OsirisError
from osiris.drivers.supabase.connection import SupabaseConnection, redact


def check(connection: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    """Connect over Postgres (or, with only url + key, the REST API) and report `ok` and a message."""
    start = time.perf_counter()
    try:
        conn = SupabaseConnection.from_dict(connection)
    except OsirisError as exc:
        return {"ok": False, "message": str(exc)}
    if conn.has_postgres:
        from osiris.drivers.supabase.postgres_connect import connect

        try:
            pg, target = connect(conn, timeout=timeout)
        except OsirisError as exc:
            return {"ok": False, "channel": "psycopg2", "message": redact(str(exc), conn.secrets())}
        try:
            with pg.cursor() as cur:
                cur.execute("SHOW server_version")
                version = cur.fetchone()[0]
        finally:
            pg.close()
        return {
            "ok": True,
            "channel": "psycopg2",
            "message": f"connected to PostgreSQL {version}",
            "server_version": version,
            "hostaddr": target.hostaddr,
            "latency_ms": int((time.perf_counter() - start) * 1000),
        }
    if conn.has_rest:
        import httpx

        url = f"{(conn.url or '').rstrip('/')}/rest/v1/"
        headers = {"apikey": conn.key or "", "Authorization": f"Bearer {conn.key}"}
        try:
            r = httpx.get(url, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            return {"ok": False, "channel": "http", "message": redact(f"cannot reach {url}: {exc}", conn.secrets())}
        ok = r.status_code < 400
        return {
            "ok": ok,
            "channel": "http",
            "message": f"REST API at {url} answered HTTP {r.status_code}" + ("" if ok else " (check the key)"),
            "latency_ms": int((time.perf_counter() - start) * 1000),
        }
    return {"ok": False, "message": "the connection has neither `dsn`/`host` nor `url` + `service_role_key`"}
