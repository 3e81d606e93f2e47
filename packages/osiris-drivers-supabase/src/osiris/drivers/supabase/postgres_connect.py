"""Direct Postgres connections: libpq parameters, IPv4 resolution and trying every A record.

Sandboxes often have no IPv6 route while Supabase hosts publish AAAA records, so the
host name is resolved to its IPv4 addresses and each is tried with `hostaddr=` (the
host name is kept for TLS) until one connects; the error lists every address tried.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from osiris.core.errors import OsirisError, TerminalError, TransientError
from osiris.drivers.supabase.connection import SupabaseConnection, redact

APPLICATION_NAME = "osiris-supabase"


def conninfo(conn: SupabaseConnection, *, timeout: float) -> dict[str, Any]:
    """The libpq parameters of a connection (without `hostaddr`)."""
    params: dict[str, Any] = {}
    if conn.dsn:
        from psycopg2.extensions import parse_dsn

        params.update(parse_dsn(conn.dsn))
    else:
        params.update(host=conn.host, port=conn.port, dbname=conn.dbname, sslmode=conn.sslmode)
        if conn.user:
            params["user"] = conn.user
        if conn.password is not None:
            params["password"] = conn.password
    params.setdefault("connect_timeout", max(1, int(timeout)))
    params.setdefault("application_name", APPLICATION_NAME)
    return params


def ipv4_addresses(host: str, port: int) -> list[str]:
    """Every IPv4 address of `host`, in resolver order, without duplicates ([] for a socket path)."""
    if not host or host.startswith("/"):
        return []
    try:
        ipaddress.ip_address(host)
        return [host]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
    out: list[str] = []
    for info in infos:
        addr = str(info[4][0])
        if addr not in out:
            out.append(addr)
    return out


@dataclass
class Target:
    """Where a connection actually went: the libpq parameters that worked."""

    params: dict[str, Any]

    @property
    def hostaddr(self) -> str | None:
        """The IPv4 address used, if the host was resolved."""
        return self.params.get("hostaddr")

    def uri(self, **extra: Any) -> str:
        """The parameters as a libpq URI (for ADBC), e.g. `postgresql:///?host=…&hostaddr=…`."""
        merged = {k: v for k, v in {**self.params, **extra}.items() if v is not None}
        return "postgresql:///?" + urlencode({k: str(v) for k, v in merged.items()})


def connect(
    conn: SupabaseConnection, *, timeout: float = 30, step: str | None = None, application_name: str | None = None
) -> tuple[Any, Target]:
    """A psycopg2 connection (autocommit off) and the parameters that worked.

    Tries each IPv4 address of the host in turn; fails with every address and its error.
    """
    import psycopg2

    params = conninfo(conn, timeout=timeout)
    if application_name:
        params["application_name"] = application_name
    host = str(params.get("host") or "")
    port = int(params.get("port") or 5432)
    secrets = conn.secrets()
    if "hostaddr" in params or "," in host:
        candidates: list[str | None] = [None]
    else:
        try:
            candidates = list(ipv4_addresses(host, port)) or [None]
        except OSError as exc:
            raise TransientError(
                f"Cannot resolve the Postgres host `{host}` to an IPv4 address: {exc}", step=step
            ) from None
    failures: list[str] = []
    auth_failure = False
    for addr in candidates:
        attempt = dict(params)
        if addr is not None:
            attempt["hostaddr"] = addr
        try:
            pg = psycopg2.connect(**attempt)
            return pg, Target(attempt)
        except psycopg2.OperationalError as exc:
            msg = redact(str(exc).strip().replace("\n", " "), secrets)
            failures.append(f"{addr or host}: {msg}")
            low = msg.lower()
            if "authentication failed" in low or ("database" in low and "does not exist" in low):
                auth_failure = True
    listed = "; ".join(failures)
    text = f"Cannot connect to Postgres `{host}:{port}` (tried {len(failures)} address(es)): {listed}"
    err: OsirisError = TerminalError(text, step=step) if auth_failure else TransientError(text, step=step)
    raise err
