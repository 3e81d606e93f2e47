"""Every failure of `mysql.extractor` against the real server: MySQL's code and text, step, host, database, no password."""

from __future__ import annotations

import secrets
import socket
import time
from typing import Any

import pytest

from osiris.core.errors import TerminalError, TransientError, UserInputError
from osiris.drivers.sql import mysql_client, mysql_doctor
from osiris.drivers.sql.mysql_extractor import MySQLExtractor

pytestmark = [pytest.mark.mysql, pytest.mark.usefixtures("read_path")]

PASSWORD = "s3cret-Pa55-" + secrets.token_hex(4)
STEP = "load_orders"  # the step id of every run here (and of the `recorder` context)


@pytest.fixture(scope="module")
def db(mysql_db: dict[str, Any], mysql_admin: Any) -> dict[str, Any]:
    """The test database with a 300k-row table and a user with a password."""
    user = f"osiris_mysql_{secrets.token_hex(3)}"
    with mysql_admin(mysql_db["database"]) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE big (id INT PRIMARY KEY, s VARCHAR(40), tm TIME)")
        cur.execute("INSERT INTO big SELECT seq, CONCAT('row ', seq), SEC_TO_TIME(seq) FROM seq_1_to_300000")
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'")
        cur.execute(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY '{PASSWORD}'")
        cur.execute(f"GRANT SELECT ON `{mysql_db['database']}`.* TO '{user}'@'%'")
        cur.execute(f"GRANT SELECT ON `{mysql_db['database']}`.* TO '{user}'@'localhost'")
    yield {**mysql_db, "user": user, "password": PASSWORD}
    with mysql_admin() as conn, conn.cursor() as cur:
        cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        cur.execute(f"DROP USER IF EXISTS '{user}'@'localhost'")


@pytest.fixture
def run(recorder: Any, read_path: str) -> Any:
    """`run(connection, **config)`: run the driver on the test's read path and read its whole output; the rows."""

    def go(connection: dict[str, Any], **config: Any) -> int:
        out = MySQLExtractor().run(
            step_id=STEP,
            config={"read_path": read_path, **config, "resolved_connection": connection},
            inputs={},
            ctx=recorder,
        )
        return sum(b.num_rows for b in out["df"])

    return go


def check_message(exc: Exception, connection: dict[str, Any], code: int) -> str:
    text = str(exc)
    assert f"MySQL error {code}:" in text
    assert "step `load_orders`" in text
    assert f"`{connection['host']}:{connection['port']}`" in text
    if connection.get("database"):
        assert f"`{connection['database']}`" in text
    assert PASSWORD not in text and PASSWORD not in repr(exc.to_data())
    return text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_transient(db, recorder, tmp_path, run):
    conn = {**db, "port": free_port(), "connect_timeout": 2}
    with pytest.raises(TransientError) as info:
        run(conn, table="big")
    assert "Connection refused" in check_message(info.value, conn, 2003)


def test_wrong_password_is_terminal_and_never_shows_the_password(db, recorder, tmp_path, run):
    conn = {**db, "password": PASSWORD + "-wrong"}
    with pytest.raises(TerminalError) as info:
        run(conn, table="big")
    assert not isinstance(info.value, TransientError)
    text = check_message(info.value, conn, 1045)
    assert "Access denied" in text and conn["password"] not in text


def test_unknown_database(db, recorder, tmp_path, run):
    # As root: a user without rights on the name gets 1044 (access denied) instead.
    conn = {**db, "user": "root", "password": "", "database": db["database"] + "_missing"}
    with pytest.raises(TerminalError) as info:
        run(conn, table="big")
    assert "Unknown database" in check_message(info.value, conn, 1049)


def test_sql_syntax_error_fails_before_any_data(db, recorder, tmp_path, run):
    with pytest.raises(TerminalError) as info:
        run(db, query="SELEC id FROM big")
    assert "You have an error in your SQL syntax" in check_message(info.value, db, 1064)


def test_unknown_table(db, recorder, tmp_path, run):
    with pytest.raises(TerminalError) as info:
        run(db, table="nope")
    assert "doesn't exist" in check_message(info.value, db, 1146)


@pytest.mark.parametrize("path", ["native", "pymysql"])
def test_a_server_silent_for_longer_than_read_timeout_is_transient(db, recorder, tmp_path, path, run):
    # connectorx takes no read timeout; the native and pymysql paths put it on their socket.
    started = time.monotonic()
    with pytest.raises(TransientError) as info:
        run(
            {**db, "read_timeout": 1},
            query="SELECT seq, SLEEP(IF(seq = 2, 5, 0)) AS pause FROM seq_1_to_3",
        )
    assert time.monotonic() - started < 4.5
    text = check_message(info.value, db, 2013)
    assert "timed out" in text
    assert recorder.event("extract.plan")["path"] == path


@pytest.mark.parametrize("path", ["native", "connectorx", "pymysql"])
def test_lost_connection_mid_stream_is_transient(db, recorder, mysql_admin, path):
    marker = f"osiris_kill_{secrets.token_hex(4)}"
    out = MySQLExtractor().run(
        step_id="load_orders",
        config={
            "query": f"SELECT /* {marker} */ id, s, seq FROM big CROSS JOIN seq_1_to_100",
            "batch_size": 1000,
            "read_path": path,
            "resolved_connection": db,
        },
        inputs={},
        ctx=recorder,
    )
    rows = 0
    with pytest.raises(TransientError) as info, mysql_admin() as admin, admin.cursor() as cur:
        for i, batch in enumerate(out["df"]):
            rows += batch.num_rows
            if i == 0:
                cur.execute(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE %s AND ID <> CONNECTION_ID()",
                    (f"%{marker}%",),
                )
                ids = [r[0] for r in cur.fetchall()]
                assert ids, "the extracting connection should be running the query"
                for pid in ids:
                    cur.execute(f"KILL {pid}")
    assert rows < 30_000_000
    text = check_message(info.value, db, 2013)
    assert "Lost connection" in text
    assert info.value.retryable is True


def test_doctor_reports_version_and_database(db):
    result = mysql_doctor.check(db, timeout=5)
    assert result["ok"] is True, result
    assert "MariaDB" in result["version"] or result["version"][0].isdigit()
    assert result["database_exists"] is True
    assert PASSWORD not in repr(result)


def test_doctor_missing_database(db):
    result = mysql_doctor.check({**db, "database": db["database"] + "_missing"}, timeout=5)
    assert result["ok"] is False and result["database_exists"] is False
    assert "does not exist" in result["message"]


def test_doctor_wrong_password_and_refused(db):
    bad = mysql_doctor.check({**db, "password": "nope"}, timeout=5)
    assert bad["ok"] is False and "1045" in bad["message"] and PASSWORD not in repr(bad)
    refused = mysql_doctor.check({**db, "port": free_port()}, timeout=2)
    assert refused["ok"] is False and "2003" in refused["message"] and refused["retryable"] is True


# -- zero dates (`zero_dates: error`, the default) ------------------------------------------------


@pytest.fixture(scope="module")
def legacy(db, create_legacy_dates, mysql_admin):
    """`db` with `legacy_dates` (zero and partial dates) and `bad_calendar` (an invalid date)."""
    create_legacy_dates(db["database"])
    with mysql_admin(db["database"]) as conn, conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
        cur.execute("CREATE TABLE bad_calendar (id INT PRIMARY KEY, d DATE)")
        cur.execute("INSERT INTO bad_calendar VALUES (1, '2024-02-29'), (2, '2024-02-31')")
    return db


def check_date_message(exc: Exception, connection: dict[str, Any]) -> str:
    assert isinstance(exc, UserInputError) and not exc.retryable
    text = str(exc)
    assert text.startswith("Step `load_orders` read the ")
    assert f"`{connection['host']}:{connection['port']}`, database `{connection['database']}`" in text
    assert PASSWORD not in text and PASSWORD not in repr(exc.to_data())
    return text


@pytest.mark.parametrize(
    ("path", "config", "where"),
    [
        ("connectorx", {"table": "legacy_dates", "columns": ["id", "d"]}, "in column `d` (DATE)"),
        (
            "connectorx",
            {"query": "SELECT id, dtm, ts FROM legacy_dates"},
            # connectorx does not say which column; these are the ones of the failed type.
            "in one of the columns `dtm` (DATETIME), `ts` (TIMESTAMP)",
        ),
        # TIME is read as text (CAST) on this path too; the one DATETIME-like column is the one.
        ("connectorx", {"table": "legacy_dates", "columns": ["id", "ts", "tm"]}, "in column `ts` (TIMESTAMP)"),
        ("native", {"table": "legacy_dates"}, "in column `d` (DATE)"),
        ("native", {"query": "SELECT id, dtm, ts FROM legacy_dates"}, "in column `dtm` (DATETIME)"),
        ("native", {"table": "legacy_dates", "columns": ["ts"]}, "in column `ts` (TIMESTAMP)"),
        ("pymysql", {"table": "legacy_dates"}, "in column `d` (DATE)"),
        ("pymysql", {"query": "SELECT id, dtm FROM legacy_dates ORDER BY id"}, "in column `dtm` (DATETIME)"),
        ("pymysql", {"table": "legacy_dates", "columns": ["ts"]}, "in column `ts` (TIMESTAMP)"),
    ],
)
def test_a_zero_date_is_a_user_error_naming_the_column_and_the_option(
    legacy, recorder, tmp_path, monkeypatch, path, config, where, run
):
    with pytest.raises(UserInputError) as info:
        run(legacy, **config)
    text = check_date_message(info.value, legacy)
    assert "the zero or partial date `0000-00-00" in text
    assert where in text
    assert 'set `zero_dates: "null"` on the step to read zero and partial dates as NULL' in text
    assert recorder.event("extract.plan")["path"] == path


@pytest.mark.parametrize("path", ["native", "connectorx", "pymysql"])
def test_a_partial_date_is_named_with_its_value(legacy, recorder, tmp_path, monkeypatch, path, run):
    with pytest.raises(UserInputError) as info:
        run(legacy, query="SELECT id, dtm FROM legacy_dates WHERE id = 2")
    text = check_date_message(info.value, legacy)
    assert "the zero or partial date `2024-00-05 10:00:00.123" in text and "column `dtm` (DATETIME)" in text


@pytest.mark.parametrize("path", ["native", "connectorx", "pymysql"])
def test_an_invalid_date_is_not_offered_zero_dates(legacy, recorder, tmp_path, monkeypatch, path, run):
    with pytest.raises(UserInputError) as info:
        run(legacy, table="bad_calendar", zero_dates="null")
    text = check_date_message(info.value, legacy)
    assert "the invalid date `2024-02-31`" in text and "column `d` (DATE)" in text
    assert "`zero_dates` covers only zero and partial dates" in text


@pytest.mark.parametrize(
    ("value", "shown"), [("maybe", "got `maybe`"), (None, 'got null (no value; write `"null"` in quotes')]
)
def test_zero_dates_accepts_error_or_null_only(legacy, recorder, tmp_path, value, shown, run):
    with pytest.raises(UserInputError) as info:
        run(legacy, table="legacy_dates", zero_dates=value)
    assert "Invalid `zero_dates` for step `load_orders`: expected one of error, null" in str(info.value)
    assert shown in str(info.value)
    assert not recorder.events  # refused before connecting


def test_the_spec_declares_zero_dates_with_its_default():
    jsonschema = pytest.importorskip("jsonschema")
    schema = mysql_client.load_spec()["configSchema"]
    assert schema["properties"]["zero_dates"]["default"] == "error"
    assert schema["properties"]["zero_dates"]["description"]
    for ok in ("error", "null"):
        jsonschema.validate({"table": "t", "zero_dates": ok}, schema)
    for bad in ("NULL", None, True):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"table": "t", "zero_dates": bad}, schema)
