"""Connection fields checked against an `x-connection.schema`: every error at once, secrets never shown."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from osiris.core.connection_check import check_fields, coerce_from_env, describe_value
from osiris.core.connections import ConnectionSchema, check_connections, load_connections
from osiris.core.errors import DocumentError
from osiris.core.redaction import is_secret_key

SCHEMA = {
    "type": "object",
    "required": ["host"],
    "properties": {
        "host": {"type": "string", "minLength": 1},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "ratio": {"type": "number"},
        "password": {"type": "string"},
        "charset": {"type": "string", "enum": ["utf8mb4", "latin1"]},
        "ssl": {"type": ["boolean", "object"], "properties": {"ca": {"type": "string"}}},
        "name": {"type": "string", "pattern": "^[a-z]+$"},
    },
}
SECRET = "s3cr3t-Value-77"

# Values of every YAML-reachable kind that are not a string (what a careless file gives a secret).
NOT_STRINGS = [
    123456,
    12.5,
    True,
    None,
    dt.date(2024, 1, 1),
    dt.datetime(2024, 1, 1, 10, 0),
    [SECRET, "b"],
    {"v": SECRET},
    [[SECRET]],
]


@pytest.mark.parametrize("value", NOT_STRINGS, ids=describe_value)
@pytest.mark.parametrize("key", ["password", "service_role_key", "api_token", "dsn"])
def test_a_secret_must_be_a_string_and_its_value_is_never_shown(value, key) -> None:
    problems = check_fields(
        {"host": "h", key: value},
        SCHEMA,
        secret_keys={"password", "dsn", "service_role_key"} | ({key} if is_secret_key(key) else set()),
    )
    assert len(problems) == 1, problems
    text = problems[0].message
    assert problems[0].keys == (key,) and "must be a string" in text
    assert SECRET not in text and "123456" not in text and "2024" not in text and "12.5" not in text


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("port", "abc", "expected an integer, got a string `abc`"),
        ("port", 3306.5, "expected an integer, got a number with a fraction `3306.5`"),
        ("port", True, "expected an integer, got a boolean"),
        ("port", dt.date(2024, 1, 2), "expected an integer, got a date `2024-01-02`"),
        ("port", [1], "expected an integer, got a list"),
        ("port", 0, "expected at least 1, got 0"),
        ("port", 70000, "expected at most 65535, got 70000"),
        ("ratio", "half", "expected a number, got a string"),
        ("ratio", float("nan"), "expected a number, got an infinite or not-a-number value"),
        ("host", 42, "expected a string, got an integer `42` (quote the value in YAML)"),
        ("host", dt.date(2024, 1, 2), "expected a string, got a date `2024-01-02` (quote the value in YAML)"),
        ("host", "", "expected at least 1 characters"),
        ("charset", "utf9", "expected one of utf8mb4, latin1, got `utf9`"),
        ("ssl", "yes", "expected a boolean (true or false) or a mapping, got a string `yes`"),
        ("name", "Ab1", "expected text matching `^[a-z]+$`"),
        ("host", "db-${HOST", "unclosed or malformed reference"),
    ],
)
def test_each_kind_of_bad_value_is_named_with_what_was_expected(key, value, expected) -> None:
    fields = {"host": "h", key: value}
    problems = check_fields(fields, SCHEMA)
    assert [p.keys for p in problems] == [(key,)]
    assert expected in problems[0].message


def test_every_error_of_a_connection_is_reported_at_once_and_nested_fields_too() -> None:
    fields = {"port": "abc", "charset": "x", "ssl": {"ca": 5}, "password": 1}
    problems = check_fields(fields, SCHEMA, secret_keys={"password"})
    assert sorted(p.keys for p in problems) == [("charset",), ("host",), ("password",), ("port",), ("ssl", "ca")]


def test_references_stand_for_any_value_until_resolved_then_text_is_coerced() -> None:
    written = {"host": "h", "port": "${PORT}", "ratio": "${R}", "ssl": "${SSL}", "password": "${PW}"}
    assert check_fields(written, SCHEMA, secret_keys={"password"}) == []
    resolved = {"host": "h", "port": "5432", "ratio": "0.5", "ssl": "TRUE", "password": "x"}
    coerced = coerce_from_env(resolved, written, SCHEMA)
    assert coerced == {"host": "h", "port": 5432, "ratio": 0.5, "ssl": True, "password": "x"}
    assert check_fields(coerced, SCHEMA, written=False) == []
    bad = coerce_from_env({**resolved, "port": "54x", "ratio": "1e999999"}, written, SCHEMA)
    assert sorted(p.keys for p in check_fields(bad, SCHEMA, written=False)) == [("port",), ("ratio",)]
    # text written literally is never coerced: `port: "5432"` is a string the user wrote
    assert coerce_from_env({"port": "5432"}, {"port": "5432"}, SCHEMA) == {"port": "5432"}


def test_check_connections_names_file_line_family_alias_and_key(tmp_path: Path) -> None:
    path = tmp_path / "osiris_connections.yaml"
    path.write_text(
        "connections:\n"
        "  mysql:\n"
        "    a: {host: h, port: abc}\n"
        "    b:\n"
        "      host: h\n"
        f"      password: [{SECRET}]\n"
        "      default: maybe\n"
        "  other:\n"
        "    x: {port: abc}\n"
    )
    conns = load_connections(path)
    errors = check_connections(conns, {"mysql": ConnectionSchema.of(SCHEMA, ["/resolved_connection/password"])})
    assert all(isinstance(e, DocumentError) and e.file == str(path) for e in errors)
    located = {(e.path, e.line) for e in errors}
    assert located == {
        ("$.connections.mysql.a.port", 3),
        ("$.connections.mysql.b.password", 6),
        ("$.connections.mysql.b.default", 7),
    }
    assert all("@mysql." in str(e) for e in errors)
    assert SECRET not in " ".join(map(str, errors))
    only = check_connections(conns, {"mysql": ConnectionSchema.of(SCHEMA)}, only=[("mysql", "a")])
    assert [e.path for e in only] == ["$.connections.mysql.a.port"]
