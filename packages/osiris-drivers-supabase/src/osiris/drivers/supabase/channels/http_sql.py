"""The `http_sql` channel: SQL over the Supabase Management API (`POST /v1/projects/{ref}/database/query`)."""

from __future__ import annotations

from typing import Any

from osiris.core.errors import TransientError
from osiris.drivers.supabase.connection import SupabaseConnection, redact
from osiris.drivers.supabase.errors import http_error


def query_endpoint(conn: SupabaseConnection) -> str:
    """The full query URL: `sql_url` may be the API base, a template with `{ref}`, or the endpoint itself."""
    base = (conn.sql_url or "").rstrip("/")
    if "{ref}" in base:
        return base.replace("{ref}", conn.project_ref or "")
    if base.endswith("/database/query"):
        return base
    return f"{base}/v1/projects/{conn.project_ref}/database/query"


class HttpSqlClient:
    """Runs SQL through the Management API with a bearer token; each call is its own transaction."""

    def __init__(self, conn: SupabaseConnection, *, timeout: float = 60, step: str | None = None) -> None:
        self.conn = conn
        self.timeout = timeout
        self.step = step
        self.endpoint = query_endpoint(conn)

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run `sql`; returns the result rows as dicts (empty for statements without rows)."""
        import httpx

        headers = {"Authorization": f"Bearer {self.conn.access_token}", "Content-Type": "application/json"}
        try:
            r = httpx.post(self.endpoint, json={"query": sql}, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise TransientError(
                f"SQL over HTTP to `{self.endpoint}` failed: {redact(str(exc), self.conn.secrets())}", step=self.step
            ) from None
        if r.status_code >= 400:
            raise http_error(
                r.status_code,
                redact(r.text, self.conn.secrets()),
                step=self.step,
                doing=f"SQL over HTTP ({self.endpoint})",
            )
        data = r.json() if r.content else []
        return data if isinstance(data, list) else []
