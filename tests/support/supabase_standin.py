"""A local stand-in for the Supabase HTTP APIs, backed by a real PostgreSQL database.

It speaks the subset of the PostgREST protocol (`/rest/v1/<table>`) that supabase-py
uses for select / insert / upsert / delete with filters, `or=(and(...))`, ranges,
`Prefer` headers and schema profiles, and the Management API's
`POST /v1/projects/{ref}/database/query`. Test support only: not shipped.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import psycopg2.extras
from psycopg2 import sql as pgsql

OPS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
STATUS = {"23": 409, "22": 400, "42P01": 404, "42703": 400, "42": 400, "08": 503, "40": 503, "57": 503}


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses and double quotes."""
    out, depth, cur, quoted, esc = [], 0, [], False, False
    for ch in text:
        if esc:
            cur.append(ch)
            esc = False
            continue
        if ch == "\\" and quoted:
            cur.append(ch)
            esc = True
            continue
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    if cur:
        out.append("".join(cur))
    return out


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        body, out, i = value[1:-1], [], 0
        while i < len(body):
            if body[i] == "\\" and i + 1 < len(body):
                i += 1
            out.append(body[i])
            i += 1
        return "".join(out)
    return value


def _condition(column: str, expr: str, params: list[Any]) -> pgsql.Composable:
    """`col` + `op.value` → SQL, e.g. `eq.5`, `in.(1,2)`, `is.null`, `not.is.null`."""
    negate = expr.startswith("not.")
    if negate:
        expr = expr[4:]
    op, _, value = expr.partition(".")
    ident = pgsql.Identifier(column)
    if op in OPS:
        params.append(_unquote(value))
        cond = pgsql.SQL("{} " + OPS[op] + " %s").format(ident)
    elif op == "in":
        items = [_unquote(v) for v in _split_top(value[1:-1])] if value.startswith("(") else []
        if not items:
            cond = pgsql.SQL("false")
        else:
            params.extend(items)
            cond = pgsql.SQL("{} IN ({})").format(ident, pgsql.SQL(", ").join(pgsql.SQL("%s") for _ in items))
    elif op == "is":
        word = {"null": "NULL", "true": "TRUE", "false": "FALSE"}[value.lower()]
        cond = pgsql.SQL("{} IS " + word).format(ident)
    else:
        raise ValueError(f"unsupported operator {op!r}")
    return pgsql.SQL("NOT ({})").format(cond) if negate else cond


def _logic(kind: str, body: str, params: list[Any]) -> pgsql.Composable:
    """`or(...)` / `and(...)` bodies → SQL."""
    parts = []
    for item in _split_top(body):
        item = item.strip()
        if item.startswith(("and(", "or(")):
            inner = item[item.index("(") + 1 : -1]
            parts.append(_logic(item[: item.index("(")], inner, params))
        else:
            col, _, expr = item.partition(".")
            parts.append(_condition(col, expr, params))
    joiner = pgsql.SQL(" AND " if kind == "and" else " OR ")
    return pgsql.SQL("({})").format(joiner.join(parts))


def where_clause(query: list[tuple[str, str]], params: list[Any]) -> pgsql.Composable:
    """The filters of a PostgREST query string as a WHERE clause (or nothing)."""
    reserved = {"select", "order", "limit", "offset", "columns", "on_conflict"}
    conds = []
    for key, value in query:
        if key in reserved:
            continue
        if key in ("or", "and"):
            conds.append(_logic(key, value[1:-1], params))
        else:
            conds.append(_condition(key, value, params))
    if not conds:
        return pgsql.SQL("")
    return pgsql.SQL(" WHERE ") + pgsql.SQL(" AND ").join(conds)


@dataclass
class StandIn:
    """Configuration of a running stand-in."""

    dsn: str
    key: str
    access_token: str
    project_ref: str = "localref"
    port: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    fail_writes: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The base URL (as a Supabase project URL)."""
        return f"http://127.0.0.1:{self.port}"


def _error(exc: psycopg2.Error) -> tuple[int, dict[str, Any]]:
    code = exc.pgcode or "08000"
    status = STATUS.get(code, STATUS.get(code[:2], 400))
    body = {
        "code": code,
        "message": (exc.diag.message_primary or str(exc)).strip(),
        "details": exc.diag.message_detail,
        "hint": exc.diag.message_hint,
    }
    return status, body


def make_app(cfg: StandIn) -> Any:
    """The Starlette application."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def connect() -> Any:
        return psycopg2.connect(cfg.dsn)

    def rest_auth(request: Request) -> bool:
        bearer = request.headers.get("authorization", "")
        return request.headers.get("apikey") == cfg.key and bearer in ("", f"Bearer {cfg.key}")

    async def rest(request: Request) -> Response:
        cfg.requests.append((request.method, str(request.url)))
        if cfg.fail_next:
            return JSONResponse({"message": "injected failure"}, status_code=cfg.fail_next.pop(0))
        if cfg.fail_writes and request.method != "GET":
            return JSONResponse({"message": "injected failure"}, status_code=cfg.fail_writes.pop(0))
        if not rest_auth(request):
            return JSONResponse({"message": "Invalid API key", "code": "401"}, status_code=401)
        table = request.path_params["table"]
        profile = "Accept-Profile" if request.method in ("GET", "HEAD") else "Content-Profile"
        schema = request.headers.get(profile) or "public"
        query = list(request.query_params.multi_items())
        prefer = {p.strip() for p in request.headers.get("prefer", "").split(",") if p.strip()}
        target = pgsql.Identifier(schema, table)
        body = await request.body()
        conn = connect()
        try:
            with conn, conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                cur.execute("SELECT to_regclass(%s)", (f'"{schema}"."{table}"',))
                if cur.fetchone()["to_regclass"] is None:
                    return JSONResponse(
                        {
                            "code": "PGRST205",
                            "message": f"Could not find the table '{schema}.{table}' in the schema cache",
                        },
                        status_code=404,
                    )
                params: list[Any] = []
                if request.method == "GET":
                    select = request.query_params.get("select", "*")
                    cols = (
                        pgsql.SQL("*")
                        if select == "*"
                        else pgsql.SQL(", ").join(pgsql.Identifier(c) for c in select.split(","))
                    )
                    stmt = pgsql.SQL("SELECT {} FROM {}").format(cols, target) + where_clause(query, params)
                    if "order" in request.query_params:
                        parts = []
                        for item in request.query_params["order"].split(","):
                            col, _, direction = item.partition(".")
                            parts.append(pgsql.Identifier(col) + pgsql.SQL(" DESC" if direction == "desc" else ""))
                        stmt += pgsql.SQL(" ORDER BY ") + pgsql.SQL(", ").join(parts)
                    if "limit" in request.query_params:
                        stmt += pgsql.SQL(" LIMIT %s")
                        params.append(int(request.query_params["limit"]))
                    if "offset" in request.query_params:
                        stmt += pgsql.SQL(" OFFSET %s")
                        params.append(int(request.query_params["offset"]))
                    cur.execute(stmt, params)
                    data = json.loads(json.dumps(cur.fetchall(), default=str))
                    return JSONResponse(data)
                if request.method == "POST":
                    payload = json.loads(body or b"[]")
                    payload = payload if isinstance(payload, list) else [payload]
                    if "columns" in request.query_params:
                        cols = [c.strip('"') for c in request.query_params["columns"].split(",")]
                    else:
                        cols = list(payload[0]) if payload else []
                    idents = pgsql.SQL(", ").join(pgsql.Identifier(c) for c in cols)
                    stmt = pgsql.SQL("INSERT INTO {} ({}) SELECT {} FROM json_populate_recordset(NULL::{}, %s)").format(
                        target, idents, idents, target
                    )
                    params.append(json.dumps(payload))
                    if "resolution=merge-duplicates" in prefer:
                        conflict = request.query_params.get("on_conflict")
                        if not conflict:
                            cur.execute(
                                "SELECT string_agg(a.attname, ',') AS k FROM pg_index i JOIN pg_attribute a "
                                "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                                "WHERE i.indrelid = to_regclass(%s) AND i.indisprimary",
                                (f'"{schema}"."{table}"',),
                            )
                            conflict = cur.fetchone()["k"]
                        keys = conflict.split(",")
                        rest_cols = [c for c in cols if c not in keys]
                        sets = pgsql.SQL(", ").join(
                            pgsql.SQL("{} = EXCLUDED.{}").format(pgsql.Identifier(c), pgsql.Identifier(c))
                            for c in rest_cols
                        )
                        stmt += pgsql.SQL(" ON CONFLICT ({}) ").format(
                            pgsql.SQL(", ").join(pgsql.Identifier(k) for k in keys)
                        ) + (pgsql.SQL("DO UPDATE SET ") + sets if rest_cols else pgsql.SQL("DO NOTHING"))
                    cur.execute(stmt, params)
                    return Response(status_code=201)
                if request.method == "DELETE":
                    stmt = pgsql.SQL("DELETE FROM {}").format(target) + where_clause(query, params)
                    cur.execute(stmt, params)
                    headers = {"Content-Range": f"*/{cur.rowcount}"} if "count=exact" in prefer else {}
                    return Response(status_code=204, headers=headers)
                return JSONResponse({"message": "method not supported"}, status_code=405)
        except psycopg2.Error as exc:
            status, err = _error(exc)
            return JSONResponse(err, status_code=status)
        finally:
            conn.close()

    async def database_query(request: Request) -> Response:
        cfg.requests.append((request.method, str(request.url)))
        if request.headers.get("authorization") != f"Bearer {cfg.access_token}":
            return JSONResponse({"message": "Unauthorized"}, status_code=401)
        if request.path_params["ref"] != cfg.project_ref:
            return JSONResponse({"message": "Project not found"}, status_code=404)
        payload = await request.json()
        conn = connect()
        conn.autocommit = True
        try:
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                cur.execute(payload["query"])
                data = cur.fetchall() if cur.description else []
            return JSONResponse(json.loads(json.dumps(data, default=str)), status_code=201)
        except psycopg2.Error as exc:
            return JSONResponse({"message": f"Failed to run sql query: {exc.pgerror or exc}"}, status_code=400)
        finally:
            conn.close()

    async def root(request: Request) -> Response:
        if not rest_auth(request):
            return JSONResponse({"message": "Invalid API key"}, status_code=401)
        return JSONResponse({"swagger": "2.0", "info": {"title": "stand-in"}, "paths": {}})

    return Starlette(
        routes=[
            Route("/rest/v1/", root, methods=["GET"]),
            Route("/rest/v1/{table}", rest, methods=["GET", "POST", "DELETE", "PATCH"]),
            Route("/v1/projects/{ref}/database/query", database_query, methods=["POST"]),
        ]
    )


class Server:
    """Runs the stand-in with uvicorn in a background thread."""

    def __init__(self, cfg: StandIn) -> None:
        import uvicorn

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        cfg.port = sock.getsockname()[1]
        sock.close()
        self.cfg = cfg
        self.server = uvicorn.Server(
            uvicorn.Config(make_app(cfg), host="127.0.0.1", port=cfg.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> StandIn:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self.cfg
            time.sleep(0.02)
        raise RuntimeError("stand-in did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
