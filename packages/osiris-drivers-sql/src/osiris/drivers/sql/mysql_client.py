"""Connecting to MySQL/MariaDB with pymysql, describing queries, and turning failures into Osiris errors.

Used by the extractor and the connection doctor. Every message names the host, port
and database, never the password; the password value is also scrubbed from any text
that comes back from a client library.
"""

from __future__ import annotations

import re
import struct
from functools import cache
from typing import Any

from osiris.core.errors import OsirisError, TerminalError, TransientError, UserInputError

# Server and client error codes after which trying again may succeed.
TRANSIENT_CODES = {
    1040,  # too many connections
    1053,  # server shutdown in progress
    1158,  # network read error
    1159,  # network read timeout
    1160,  # network write error
    1161,  # network write timeout
    1203,  # the user has more than `max_user_connections` connections (MySQL)
    1205,  # lock wait timeout
    1213,  # deadlock
    1317,  # query execution was interrupted
    1927,  # connection was killed (MariaDB)
    2002,  # can't connect through socket
    2003,  # can't connect to server (refused, unreachable, timed out)
    2006,  # server has gone away
    2013,  # lost connection during query
    2055,  # lost connection at reading
}
# 1226 is a resource limit of the account: `max_user_connections` (MariaDB) frees up as soon as another
# connection of the user closes; the hourly ones (`max_queries_per_hour`...) do not, within a retry.
_USER_CONNECTIONS_LIMIT = re.compile(r"\bmax_user_connections\b")
_CX_ERROR = re.compile(r"ERROR (\d+) \(([0-9A-Z]{5})\): (.*?)(?:\s*\}|\"|$)", re.S)
# connectorx (mysql_common) panics on a DATE/DATETIME/TIMESTAMP value chrono cannot hold, e.g.
# Could not retrieve `core::option::Option<chrono::naive::date::NaiveDate>`: Couldn't convert the value
# `Date("'0000-00-00'")` to a desired type
_CX_BAD_DATE = re.compile(
    r"Could not retrieve `[^`]*chrono::naive::\w+::(NaiveDate|NaiveDateTime)\b[^`]*`: "
    r"Couldn't convert the value `Date\(\"'([^']*)'\"\)`"
)
_CX_LOST = re.compile(
    r"connection reset|broken pipe|unexpected ?eof|lost connection|connection refused|server has gone away"
    r"|os error 10[0-9]|os error 32|timed out|io ?error",
    re.I,
)


@cache
def connection_defaults() -> dict[str, Any]:
    """The connection field defaults declared in the `mysql.extractor` spec's `x-connection` schema."""
    from osiris.core.spec import apply_defaults

    return apply_defaults(load_spec()["x-connection"]["schema"], {})


@cache
def load_spec() -> dict[str, Any]:
    """The packaged `mysql.extractor` spec as a plain mapping."""
    from importlib import resources

    from osiris.core.documents import load_yaml_text

    package = "osiris.drivers.sql.components"
    text = resources.files(package).joinpath("mysql.extractor.yaml").read_text("utf-8")
    data, _ = load_yaml_text(text, file=f"{package}/mysql.extractor.yaml")
    return data


def with_defaults(connection: dict[str, Any]) -> dict[str, Any]:
    """The connection fields with the spec's defaults filled in for absent or null keys."""
    out = dict(connection_defaults())
    out.update({k: v for k, v in connection.items() if v is not None})
    return out


def where(connection: dict[str, Any]) -> str:
    """`host:port`, database `db` — the place named in messages."""
    place = f"`{connection.get('host')}:{connection.get('port', 3306)}`"
    db = connection.get("database")
    return f"{place}, database `{db}`" if db else f"{place} (no database selected)"


def scrub(text: str, connection: dict[str, Any]) -> str:
    """Remove the password (raw and URL-encoded) from text coming back from a client library."""
    from urllib.parse import quote

    password = connection.get("password")
    if password:
        for form in {str(password), quote(str(password), safe="")}:
            text = text.replace(form, "***")
    return text


def ssl_options(ssl: Any) -> dict[str, Any] | None:
    """pymysql's `ssl` argument for the connection's `ssl` field (false, true or a mapping)."""
    if not ssl:
        return None
    if ssl is True:
        return {}
    return dict(ssl)


# pymysql's `_auth` imports three `cryptography` modules when it is itself imported, for the RSA password
# exchange of `sha256_password` and `caching_sha2_password` over a connection without TLS. Where
# `cryptography` is installed (other drivers' dependencies bring it), that was 34 ms of every run reading
# MySQL, and most never need it (MariaDB, `mysql_native_password`, TLS). `pymysql_module` imports pymysql
# with `cryptography` hidden and hands `_auth` stand-ins that import the real modules at their first use.
_DEFERRED_CRYPTOGRAPHY = {
    "serialization": "cryptography.hazmat.primitives.serialization",
    "hashes": "cryptography.hazmat.primitives.hashes",
    "padding": "cryptography.hazmat.primitives.asymmetric.padding",
}


class _ImportedOnFirstUse:
    """A module's stand-in: the first attribute asked for imports the module."""

    def __init__(self, module: str) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        import importlib

        return getattr(importlib.import_module(self._module), name)


def _default_backend() -> Any:
    from cryptography.hazmat.backends import default_backend

    return default_backend()


class _HideCryptography:
    """A `sys.meta_path` finder that makes `cryptography` look absent to pymysql's `_auth` alone.

    It is installed only while pymysql is imported, and it looks at the importing thread's own stack,
    so another thread importing `cryptography` meanwhile (a parallel step) is not affected.
    """

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        import sys

        if fullname != "cryptography" and not fullname.startswith("cryptography."):
            return None
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_globals.get("__name__") == "pymysql._auth":
                raise ModuleNotFoundError(f"No module named {fullname!r} (deferred)", name=fullname)
            frame = frame.f_back
        return None


@cache
def pymysql_module() -> Any:
    """`pymysql`, imported without importing `cryptography` before a password exchange needs it."""
    import importlib.util
    import sys

    if "pymysql" in sys.modules or "cryptography" in sys.modules or importlib.util.find_spec("cryptography") is None:
        import pymysql

        return pymysql
    hide = _HideCryptography()
    sys.meta_path.insert(0, hide)
    try:
        import pymysql
        import pymysql._auth as auth
    finally:
        sys.meta_path.remove(hide)
    names = (*_DEFERRED_CRYPTOGRAPHY, "default_backend")
    if getattr(auth, "_have_cryptography", None) is False and not any(hasattr(auth, n) for n in names):
        for name, module in _DEFERRED_CRYPTOGRAPHY.items():
            setattr(auth, name, _ImportedOnFirstUse(module))
        auth.default_backend = _default_backend
        auth._have_cryptography = True
    return pymysql


def connect(connection: dict[str, Any], *, step: str | None, raw: bool = False) -> Any:
    """Open a pymysql connection (session time zone UTC); `raw` keeps every value as text or bytes."""
    pymysql = pymysql_module()
    from pymysql.converters import conversions

    c = with_defaults(connection)
    kwargs: dict[str, Any] = {
        "host": c.get("host"),
        "port": int(c.get("port") or 3306),
        "user": c.get("user"),
        "password": c.get("password") or "",
        "database": c.get("database"),
        "charset": c.get("charset") or "utf8mb4",
        "connect_timeout": c.get("connect_timeout"),
        "read_timeout": c.get("read_timeout"),
        "write_timeout": c.get("read_timeout"),
        "ssl": ssl_options(c.get("ssl")),
        "autocommit": True,
        "init_command": "SET time_zone = '+00:00'",
        "local_infile": False,
    }
    if not kwargs["ssl"]:
        # Without `ssl`, no TLS at all (as connectorx connects). pymysql would otherwise try TLS
        # when the server offers it, and build a CA context per connection (~30 ms) to do so.
        kwargs["ssl_disabled"] = True
    if raw:
        # Keep the encoders (for parameter escaping), drop every decoder: values arrive as str/bytes.
        kwargs["conv"] = {k: v for k, v in conversions.items() if not isinstance(k, int)}
    try:
        return pymysql.connect(**kwargs)
    except pymysql.err.Error as exc:
        raise translate(exc, connection=c, step=step, action="connecting to") from None


def bind(conn: Any, sql: str, params: Any) -> str:
    """`sql` with `params` escaped in by the connection (pymysql's `%s` / `%(name)s` style)."""
    if params is None:
        return sql
    cur = conn.cursor()
    try:
        return cur.mogrify(sql, params)
    finally:
        cur.close()


def error_code(exc: BaseException) -> tuple[int | None, str]:
    """The MySQL error code and text of a pymysql error."""
    args = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[0], int):
        return args[0], str(args[1])
    return None, str(exc) or type(exc).__name__


def make_error(
    code: int | None, text: str, *, connection: dict[str, Any], step: str | None, action: str
) -> OsirisError:
    """An Osiris error for MySQL error `code`: transient for lost connections and the like."""
    text = scrub(text, connection)
    head = f"MySQL error {code}: {text}" if code is not None else f"MySQL error: {text}"
    context = f"step `{step}`, " if step else ""
    message = f"{head} ({context}{action} {where(connection)})"
    hint = None
    if code == 1045:
        hint = "check the `user` and `password` of the connection"
    elif code == 1049:
        hint = "check the connection's `database`, or create it"
    elif code in (2003, 2002):
        hint = "is the server running and reachable at this host and port?"
    elif code == 1064:
        hint = "check the SQL of `query` (or `table`, `columns`, `where`)"
    elif code in (2013, 2006, 1927):
        hint = "the connection was lost while reading; the step can be retried"
    elif code in (1203, 1226):
        hint = "the account has reached a connection or resource limit (`max_user_connections` and the like)"
    cls = TransientError if is_transient(code, text) else TerminalError
    return cls(message, step=step, hint=hint)


def is_transient(code: int | None, text: str) -> bool:
    """Whether MySQL error `code` (with its `text`) may go away when the step is tried again."""
    if code == 1226:
        return bool(_USER_CONNECTIONS_LIMIT.search(text))
    return code in TRANSIENT_CODES


def translate(exc: BaseException, *, connection: dict[str, Any], step: str | None, action: str) -> OsirisError:
    """Turn a pymysql error into an Osiris error with MySQL's own code and text."""
    code, text = error_code(exc)
    return make_error(code, text, connection=connection, step=step, action=action)


def translate_cx(exc: BaseException, *, connection: dict[str, Any], step: str | None, action: str) -> OsirisError:
    """Turn a connectorx failure into an Osiris error, with the MySQL code when it carries one."""
    text = str(exc)
    m = _CX_ERROR.search(text)
    if m:
        return make_error(int(m.group(1)), m.group(3).strip(), connection=connection, step=step, action=action)
    if _CX_LOST.search(text):
        return make_error(
            2013,
            f"Lost connection to MySQL server during query ({text.strip()[:300]})",
            connection=connection,
            step=step,
            action=action,
        )
    return make_error(None, text.strip()[:500], connection=connection, step=step, action=action)


def cx_bad_date(exc: BaseException) -> tuple[str, str] | None:
    """(`date` or `datetime`, the value) when connectorx failed to convert a date value, else None."""
    m = _CX_BAD_DATE.search(str(exc))
    if not m:
        return None
    return ("date" if m.group(1) == "NaiveDate" else "datetime"), m.group(2)


def bad_date_error(
    value: str, columns: list[tuple[str, str]], *, connection: dict[str, Any], step: str | None
) -> UserInputError:
    """The error for a date value with no Arrow value, in one of `columns` ((name, MySQL type) pairs).

    A zero or partial date says how to read such values as NULL; any other (an invalid
    date stored under ALLOW_INVALID_DATES) says that `zero_dates` does not cover it.
    """
    from osiris.drivers.sql.mysql_types import is_zero_date

    named = ", ".join(f"`{name}` ({mysql_type})" for name, mysql_type in columns)
    if len(columns) == 1:
        place = f"column {named}"
    elif columns:
        place = f"one of the columns {named}"
    else:
        place = "a date column"
    context = f"Step `{step}`" if step else "The extractor"
    if is_zero_date(value):
        what = f"the zero or partial date `{scrub(value, connection)}`"
        todo = (
            'set `zero_dates: "null"` on the step to read zero and partial dates as NULL, '
            "or leave them out with `where` or in `query`"
        )
    else:
        what = f"the invalid date `{scrub(value, connection)}`"
        todo = "`zero_dates` covers only zero and partial dates: leave it out or convert it in `where` or `query`"
    return UserInputError(
        f"{context} read {what} in {place} from {where(connection)}; it has no Arrow date value: {todo}",
        step=step,
    )


def describe(conn: Any, sql: str) -> tuple[list[Any], int] | None:
    """Column metadata of `sql` without running it (COM_STMT_PREPARE), and its placeholder count.

    Returns None when the server cannot tell the result's columns up front (e.g.
    `CALL`); raises the server's error for invalid SQL.
    """
    from pymysql.constants import COMMAND

    stmt_id, fields, nparams = prepare(conn, sql)
    conn._execute_command(COMMAND.COM_STMT_CLOSE, struct.pack("<I", stmt_id))  # no reply to this one
    if not fields:
        return None
    return fields, nparams


def prepare(conn: Any, sql: str) -> tuple[int, list[Any], int]:
    """Have the server prepare `sql` (COM_STMT_PREPARE): the statement id, its column metadata, its `?` count.

    Raises the server's error for invalid SQL.
    """
    from pymysql.constants import COMMAND
    from pymysql.protocol import FieldDescriptorPacket

    conn._execute_command(COMMAND.COM_STMT_PREPARE, sql)
    first = conn._read_packet()  # an error packet raises here
    data = first.get_all_data()
    stmt_id, ncols, nparams = struct.unpack_from("<IHH", data, 1)
    for _ in range(nparams):
        conn._read_packet()
    if nparams:
        conn._read_packet()  # EOF after the parameter definitions
    fields = [conn._read_packet(FieldDescriptorPacket) for _ in range(ncols)]
    if ncols:
        conn._read_packet()  # EOF after the column definitions
    return stmt_id, fields, nparams


def quote_identifier(name: str, *, what: str, step: str | None) -> str:
    """Quote a (possibly `schema.`-qualified) identifier with backticks."""
    parts = name.split(".")
    if not name or any(not p for p in parts) or len(parts) > 2:
        raise UserInputError(f"Invalid {what} `{name}` in step `{step}`: expected a name or `schema.name`", step=step)
    return ".".join("`" + p.replace("`", "``") + "`" for p in parts)
