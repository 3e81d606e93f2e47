"""The runner retries transient failures of steps whose component is safe to retry, against the real MariaDB.

A refused connection (nothing listens on the port yet) and a server-side refusal (the account's
`max_user_connections` reached) are transient: `mysql.extractor` declares `safe_to_retry`, so the
runner runs the step again after a backoff, recording each retry as `step_retry`. Each test lets
the cause go away during the backoff, from a listener that sees the `step_retry` event, and the
run then succeeds with the right data; a cause that stays ends the run after the allowed retries;
a terminal error is never retried.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from databases import MYSQL

from osiris.compiler.compiler import compile_to_build
from osiris.core.build import load_build
from osiris.runtime.runcard import RunResult
from osiris.runtime.runlog import RunListener
from osiris.runtime.runner import Runner
from osiris.runtime.session import RunSession

pytestmark = pytest.mark.mysql

PIPELINE = """
oml_version: "0.1.0"
name: retried
steps:
  - id: extract
    component: mysql.extractor
    mode: read
    config: {connection: "@mysql.default", query: "SELECT seq AS n FROM seq_1_to_1000"}
  - id: total
    component: duckdb.processor
    mode: transform
    needs: [extract]
    config: {query: "SELECT count(*) AS rows, sum(n) AS total FROM input_df"}
"""


class OnRetry(RunListener):
    """Calls `action` at the first `step_retry` event, and keeps every event."""

    def __init__(self, action: Callable[[], None] = lambda: None) -> None:
        self.action = action
        self.events: list[dict[str, Any]] = []

    def on_event(self, record: dict[str, Any]) -> None:
        self.events.append(record)
        if record["event"] == "step_retry" and sum(e["event"] == "step_retry" for e in self.events) == 1:
            self.action()

    def retries(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "step_retry"]


def run(tmp_path: Path, connection: dict[str, Any], listener: RunListener) -> RunResult:
    """Compile the pipeline with `connection` as `@mysql.default` and run it with `listener`."""
    fields = ", ".join(f"{k}: {v!r}" if isinstance(v, str) else f"{k}: {v}" for k, v in connection.items())
    (tmp_path / "osiris_connections.yaml").write_text(f"connections:\n  mysql:\n    default: {{{fields}}}\n")
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    out = compile_to_build(tmp_path / "pipeline.yaml", tmp_path / "build")
    session = RunSession.for_build(
        load_build(out.manifest_path),
        runs_dir=tmp_path / "runs",
        connections_file=tmp_path / "osiris_connections.yaml",
        listeners=[listener],
        base_dir=tmp_path,
    )
    return Runner(session).run()


def total(result: RunResult) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(result.run_dir / "artifacts/total/output.parquet").to_pylist()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Forwarder:
    """Forwards TCP connections from a local port to MariaDB, once started (until then the port refuses)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server: socket.socket | None = None

    def start(self) -> None:
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        assert self.server is not None
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection((MYSQL["host"], MYSQL["port"]))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.fixture
def forwarder(closed_port: int) -> Iterator[Forwarder]:
    fwd = Forwarder(closed_port)
    yield fwd
    fwd.stop()


def test_a_refused_connection_is_retried_until_the_server_listens(tmp_path, forwarder):
    listener = OnRetry(forwarder.start)  # the port starts listening during the first backoff
    result = run(tmp_path, {**MYSQL, "port": forwarder.port, "database": "mysql"}, listener)
    assert result.status == "succeeded", result.error
    assert total(result) == [{"rows": 1000, "total": 500500}]
    (retry,) = listener.retries()
    assert (retry["step_id"], retry["attempt"], retry["of"], retry["delay_s"]) == ("extract", 1, 2, 0.5)
    assert retry["error"]["type"] == "TransientError" and "MySQL error 2003" in retry["error"]["message"]
    assert retry["error"]["retryable"] is True
    card_step = result.run_card["steps"][0]
    assert card_step["status"] == "succeeded" and card_step["rows_out"] == 1000


@pytest.fixture
def limited_user(mysql_admin, mysql_db) -> Iterator[dict[str, Any]]:
    """An account allowed one connection at a time (`MAX_USER_CONNECTIONS 1`), dropped afterwards."""
    user, password = f"osiris_retry_{secrets.token_hex(3)}", "pw-" + secrets.token_hex(6)
    with mysql_admin() as conn, conn.cursor() as cur:
        for host in ("%", "localhost"):
            cur.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}' WITH MAX_USER_CONNECTIONS 1")
            cur.execute(f"GRANT SELECT ON `{mysql_db['database']}`.* TO '{user}'@'{host}'")
    yield {**mysql_db, "user": user, "password": password}
    with mysql_admin() as conn, conn.cursor() as cur:
        for host in ("%", "localhost"):
            cur.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")


def _hold(connection: dict[str, Any]) -> Any:
    import pymysql

    return pymysql.connect(**{k: connection[k] for k in ("host", "port", "user", "password")})


def test_a_server_refusing_the_account_is_retried_until_a_connection_frees_up(tmp_path, limited_user):
    held = _hold(limited_user)  # the account's only connection is taken
    listener = OnRetry(held.close)  # ... and given back during the first backoff
    result = run(tmp_path, limited_user, listener)
    assert result.status == "succeeded", result.error
    assert total(result) == [{"rows": 1000, "total": 500500}]
    (retry,) = listener.retries()
    assert retry["error"]["type"] == "TransientError" and "MySQL error 1226" in retry["error"]["message"]
    assert "max_user_connections" in retry["error"]["message"] and limited_user["password"] not in str(retry)


def test_a_refusal_that_stays_fails_the_step_after_the_allowed_retries(tmp_path, limited_user):
    held = _hold(limited_user)
    try:
        listener = OnRetry()
        result = run(tmp_path, limited_user, listener)
    finally:
        held.close()
    assert result.status == "failed" and result.exit_code == 1
    assert [(r["attempt"], r["delay_s"]) for r in listener.retries()] == [(1, 0.5), (2, 1.0)]
    step = result.run_card["steps"][0]
    assert step["status"] == "failed" and step["error"]["retryable"] is True
    assert "MySQL error 1226" in step["error"]["message"]
    assert [s["status"] for s in result.run_card["steps"]] == ["failed", "not_run"]
    assert not (result.run_dir / "artifacts/extract/output.parquet").exists()


def test_a_terminal_error_is_never_retried(tmp_path, limited_user):
    listener = OnRetry()
    result = run(tmp_path, {**limited_user, "password": "wrong-" + secrets.token_hex(3)}, listener)
    assert result.status == "failed"
    assert listener.retries() == []
    error = result.run_card["steps"][0]["error"]
    assert error["type"] == "TerminalError" and "MySQL error 1045" in error["message"] and not error["retryable"]
