"""The `supabase` connection family: which fields mean what, and which channels they allow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from osiris.core.errors import UserInputError


@dataclass(frozen=True)
class SupabaseConnection:
    """A resolved `supabase` connection, normalised.

    A direct Postgres connection comes from `dsn`, or from `host`/`port`/`user`/
    `password`/`dbname`/`sslmode`, or from `project_ref` + `password` (the
    project's `db.<ref>.supabase.co` host). The REST channel needs `url` and a key
    (`service_role_key` or `key`); the HTTP SQL channel needs `sql_url` and `access_token`.
    """

    url: str | None = None
    key: str | None = None
    project_ref: str | None = None
    dsn: str | None = None
    host: str | None = None
    port: int = 5432
    user: str | None = None
    password: str | None = None
    dbname: str = "postgres"
    sslmode: str = "prefer"
    sql_url: str | None = None
    access_token: str | None = None
    schema: str = "public"

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, *, step: str | None = None) -> SupabaseConnection:
        """Build from `config["resolved_connection"]` (unknown keys such as `default` are ignored)."""
        if not data:
            raise UserInputError(
                f'Step `{step}` has no resolved `supabase` connection; expected `connection: "@supabase.<alias>"`',
                step=step,
            )
        d = dict(data)
        host = d.get("host")
        if not host and not d.get("dsn") and d.get("project_ref") and d.get("password"):
            host = f"db.{d['project_ref']}.supabase.co"
        try:
            port = int(d.get("port") or 5432)
        except (TypeError, ValueError):
            raise UserInputError(
                f"Invalid `port` in the `supabase` connection of step `{step}`: expected an integer", step=step
            ) from None
        return cls(
            url=(d.get("url") or None),
            key=d.get("service_role_key") or d.get("key") or None,
            project_ref=d.get("project_ref") or None,
            dsn=d.get("dsn") or None,
            host=host or None,
            port=port,
            user=d.get("user") or None,
            password=d.get("password") if d.get("password") not in ("", None) else None,
            dbname=d.get("dbname") or "postgres",
            sslmode=d.get("sslmode") or "prefer",
            sql_url=d.get("sql_url") or None,
            access_token=d.get("access_token") or None,
            schema=d.get("schema") or "public",
        )

    @property
    def has_postgres(self) -> bool:
        """Whether a direct Postgres connection (the `psycopg2` channel) is configured."""
        return bool(self.dsn or self.host)

    @property
    def has_rest(self) -> bool:
        """Whether the REST API (the `http` channel) is configured."""
        return bool(self.url and self.key)

    @property
    def has_http_sql(self) -> bool:
        """Whether the Management API SQL endpoint (the `http_sql` DDL channel) is configured."""
        return bool(self.sql_url and self.access_token and (self.project_ref or "{ref}" not in self.sql_url))

    def secrets(self) -> list[str]:
        """Every secret value of this connection (to keep out of messages)."""
        return [s for s in (self.key, self.password, self.access_token, self.dsn) if s]


def redact(text: str, secrets: list[str]) -> str:
    """`text` with every secret value replaced by `***`."""
    for s in sorted(secrets, key=len, reverse=True):
        if s and len(s) >= 3:
            text = text.replace(s, "***")
    return text
