"""Checking connection fields against a component's `x-connection.schema`, every error at once.

A small validator for the part of JSON Schema that connection schemas use (`type`, `enum`,
`minimum`/`maximum`, `minLength`/`maxLength`, `pattern`, `required`, `additionalProperties`,
nested `properties`), written for messages a user can act on and for secrets: a secret field
must be a string, and no message ever shows a secret field's value.

It runs twice: on the file as written (`check_written`; a `${VAR}` reference stands for any
value) and on the fields after `${VAR}` substitution (`check_resolved`), which first turns a
variable's text into the integer, number or boolean the schema asks for. It needs no
third-party library, so core, the runtime and a sandbox worker can all use it.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from osiris.core.documents import did_you_mean

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ANY_REF = re.compile(r"\$\{")
META_KEYS = ("default", "description")


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with one field: its key path inside the connection and the message."""

    keys: tuple[str, ...]
    message: str


def describe_value(value: Any) -> str:
    """What kind of value `value` is, in a user's words (`a list`, `a date`, `a number with a fraction`)."""
    if value is None:
        return "null (an empty value)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "an infinite or not-a-number value"
        return "a number with a fraction" if value != int(value) else "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dt.datetime):
        return "a date and time"
    if isinstance(value, dt.date):
        return "a date"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bytes):
        return "binary data"
    return type(value).__name__


def _shown(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else repr(value) if not isinstance(value, (dt.date,)) else value.isoformat()
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return f"`{text[: limit - 3]}...`" if len(text) > limit else f"`{text}`"


_TYPES = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}
_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def _types(prop: dict[str, Any]) -> list[str]:
    t = prop.get("type")
    if isinstance(t, str):
        return [t]
    if isinstance(t, list):
        return [x for x in t if isinstance(x, str)]
    return []


def _is_reference(value: Any) -> bool:
    return isinstance(value, str) and bool(ENV_REF.search(value))


def _unclosed_reference(value: str) -> str | None:
    """The first `${` in `value` that does not start a well-formed `${VAR}`, or None."""
    for m in _ANY_REF.finditer(value):
        if not ENV_REF.match(value, m.start()):
            return value[m.start() : m.start() + 30]
    return None


def check_fields(
    fields: dict[str, Any],
    schema: dict[str, Any],
    *,
    secret_keys: Iterable[str] = (),
    written: bool = True,
    prefix: tuple[str, ...] = (),
    hidden: Iterable[str] = (),
) -> list[FieldProblem]:
    """Every problem of `fields` against `schema`; `written` means `${VAR}` references still stand for values.

    Values of secret fields and of the `hidden` ones (e.g. those read from the environment) are never shown."""
    secrets = set(secret_keys)
    hide = set(hidden)
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    problems: list[FieldProblem] = []
    for key in schema.get("required") or []:
        if key not in fields and "default" not in (props.get(key) or {}):
            problems.append(FieldProblem((*prefix, key), f"`{key}` is required and missing"))
    extra = schema.get("additionalProperties")
    for key, value in fields.items():
        keys = (*prefix, str(key))
        secret = str(key) in secrets
        prop = props.get(key)
        if prop is None:
            if extra is False:
                problems.append(
                    FieldProblem(keys, f"unknown field `{key}`; expected one of {', '.join(f'`{p}`' for p in props)}")
                )
            elif secret and not isinstance(value, str):
                problems.append(_secret_problem(keys, value))
            continue
        if not isinstance(prop, dict):
            continue
        problems.extend(
            _check_value(keys, value, prop, secret=secret, written=written, secrets=secrets, show=str(key) not in hide)
        )
    return problems


def _secret_problem(keys: tuple[str, ...], value: Any) -> FieldProblem:
    return FieldProblem(
        keys,
        f"`{keys[-1]}` is a secret and must be a string; got {describe_value(value)} "
        "(quote the value in YAML, or use `${VAR}`); the value is not shown",
    )


def _check_value(
    keys: tuple[str, ...],
    value: Any,
    prop: dict[str, Any],
    *,
    secret: bool,
    written: bool,
    secrets: set[str],
    show: bool = True,
) -> list[FieldProblem]:
    key = keys[-1]
    if secret and not isinstance(value, str):
        return [_secret_problem(keys, value)]
    secret = secret or not show  # from here on: whether the value must not be shown
    if isinstance(value, str):
        bad = _unclosed_reference(value)
        if bad is not None:
            shown = "" if secret else f" `{bad}`"
            return [FieldProblem(keys, f"`{key}` has an unclosed or malformed reference{shown}; expected `${{VAR}}`")]
        if written and _is_reference(value):
            return []  # checked again once the variable's value is known
    types = _types(prop)
    if types and not any(_TYPES.get(t, lambda v: True)(value) for t in types):
        expected = " or ".join(_TYPE_WORDS.get(t, t) for t in types)
        got = describe_value(value)
        if not secret and isinstance(value, (str, int, float, dt.date)) and not isinstance(value, bool):
            got += f" {_shown(value)}"
        hint = ""
        if "string" in types and isinstance(value, (int, float, dt.date)):
            hint = " (quote the value in YAML)"
        return [FieldProblem(keys, f"`{key}`: expected {expected}, got {got}{hint}")]
    found: list[FieldProblem] = []
    enum = prop.get("enum")
    if isinstance(enum, list) and value not in enum:
        shown = "" if secret else f", got {_shown(value)}"
        if len(enum) <= 8:
            expected = "one of " + ", ".join(str(e) for e in enum)
        else:
            near = did_you_mean(value, [str(e) for e in enum]) if isinstance(value, str) and not secret else ""
            expected = f"one of {len(enum)} known values ({', '.join(str(e) for e in enum[-3:])}, ...){near}"
        found.append(FieldProblem(keys, f"`{key}`: expected {expected}{shown}"))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = prop.get("minimum"), prop.get("maximum")
        if isinstance(lo, (int, float)) and value < lo:
            found.append(
                FieldProblem(keys, f"`{key}`: expected at least {lo}, got {'a smaller number' if secret else value}")
            )
        if isinstance(hi, (int, float)) and value > hi:
            found.append(
                FieldProblem(keys, f"`{key}`: expected at most {hi}, got {'a larger number' if secret else value}")
            )
    if isinstance(value, str):
        lo, hi = prop.get("minLength"), prop.get("maxLength")
        if isinstance(lo, int) and len(value) < lo:
            found.append(FieldProblem(keys, f"`{key}`: expected at least {lo} characters, got {len(value)}"))
        if isinstance(hi, int) and len(value) > hi:
            found.append(FieldProblem(keys, f"`{key}`: expected at most {hi} characters, got {len(value)}"))
        pattern = prop.get("pattern")
        if isinstance(pattern, str) and not re.search(pattern, value):
            shown = "" if secret else f", got {_shown(value)}"
            found.append(FieldProblem(keys, f"`{key}`: expected text matching `{pattern}`{shown}"))
    if isinstance(value, dict) and isinstance(prop.get("properties"), dict):
        found.extend(check_fields(value, prop, secret_keys=secrets, written=written, prefix=keys))
    return found


def coerce_from_env(fields: dict[str, Any], written: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`fields` (after `${VAR}` substitution) with values that were a whole `${VAR}` reference in `written`
    turned into the integer, number or boolean the schema asks for, when their text is one."""
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    out = dict(fields)
    for key, value in fields.items():
        raw = written.get(key)
        prop = props.get(key)
        if not (isinstance(value, str) and isinstance(raw, str) and ENV_REF.fullmatch(raw) and isinstance(prop, dict)):
            continue
        types = _types(prop)
        if "string" in types:
            continue
        text = value.strip()
        if "integer" in types and re.fullmatch(r"[+-]?\d{1,18}", text):
            out[key] = int(text)
        elif "number" in types and re.fullmatch(r"[+-]?(\d{1,18}(\.\d{0,18})?|\.\d{1,18})([eE][+-]?\d{1,3})?", text):
            out[key] = float(text)
        elif "boolean" in types and text.lower() in ("true", "false"):
            out[key] = text.lower() == "true"
    return out


def secret_keys_of(schema: dict[str, Any], pointers: Iterable[str], is_secret_key: Any) -> set[str]:
    """The connection fields that are secrets: those the spec's `secrets` pointers name under
    `/resolved_connection/`, plus every field whose name looks secret."""
    keys = {p.split("/")[2] for p in pointers if p.startswith("/resolved_connection/") and p.count("/") >= 2}
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    keys |= {k for k in props if is_secret_key(k)}
    return keys
