"""Turning jsonschema errors into messages a user can act on.

jsonschema's own messages repeat the whole instance and say nothing of intent
(`... is not valid under any of the given schemas`). These say what key, what
was expected and what was found, and never echo a whole config.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from osiris.core.documents import did_you_mean

JSON_TYPES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return f"`{text if len(text) <= 60 else text[:57] + '...'}`"


def _bare_null_for_the_string_null(instance: Any, enum: Any) -> bool:
    """Whether the user wrote YAML `null` where the schema offers the string "null"."""
    return instance is None and isinstance(enum, list) and "null" in enum


def _types(t: Any) -> str:
    names = t if isinstance(t, list) else [t]
    return " or ".join(JSON_TYPES.get(n, n) for n in names)


_checked_schemas: dict[int, tuple[dict[str, Any], str | None]] = {}


def schema_problem(schema: dict[str, Any]) -> str | None:
    """Why `schema` is not a valid JSON Schema (a broken third-party spec), or None; checked once per schema."""
    known = _checked_schemas.get(id(schema))
    if known is not None and known[0] is schema:
        return known[1]
    try:
        Draft202012Validator.check_schema(schema)
        problem = None
    except SchemaError as exc:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in exc.absolute_path)
        problem = f"{exc.message[:200]} at `${where}`"
    _checked_schemas[id(schema)] = (schema, problem)
    return problem


def config_errors(schema: dict[str, Any], config: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Yield (path inside config, message) for every way `config` fails `schema`."""
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    for err in errors:
        yield from _explain(err, schema)


def key_path(parts: tuple[str | int, ...]) -> str:
    """A path inside a config as a user writes it: ``columns[1]``, ``options.mode``."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _explain(err: ValidationError, root: dict[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    for where, message in _explain_raw(err, root):
        named = where and not message.startswith(("unknown config key", "missing required"))
        yield where, f"config key `{key_path(where)}`: {message}" if named else message


def _explain_raw(err: ValidationError, root: dict[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    path = tuple(err.absolute_path)
    kind = err.validator
    if kind == "additionalProperties":
        props = err.schema.get("properties", {})
        for key in sorted(set(err.instance) - set(props)):
            yield (
                (*path, key),
                f"unknown config key `{key}`{did_you_mean(key, props)}; expected one of {', '.join(sorted(props))}",
            )
    elif kind == "required":
        missing = [k for k in err.validator_value if k not in err.instance]
        condition = _condition(err, root)
        for key in missing:
            yield path, f"missing required config key `{key}`{condition}"
    elif kind == "type":
        if _bare_null_for_the_string_null(err.instance, err.schema.get("enum")):
            return  # the enum's message says it all
        yield path, f"expected {_types(err.validator_value)}, got {_show(err.instance)}"
    elif kind == "enum":
        options = ", ".join(str(v) for v in err.validator_value)
        if _bare_null_for_the_string_null(err.instance, err.validator_value):
            yield path, f'expected one of {options}; got a bare `null`, which YAML reads as no value: write "null"'
            return
        yield path, f"expected one of {options}; got {_show(err.instance)}"
    elif kind == "const":
        yield path, f"expected {_show(err.validator_value)}; got {_show(err.instance)}"
    elif kind in ("oneOf", "anyOf"):
        branch = _fitting_branch(err)
        if branch:
            for sub in branch:
                yield from _explain_raw(sub, root)
        else:
            yield path, _explain_choice(err)
    elif kind == "pattern":
        expected = err.schema.get("x-expected")
        if isinstance(expected, str):
            yield path, f"expected {expected}; got {_show(err.instance)}"
        else:
            yield path, f"{_show(err.instance)} does not match the expected form `{err.validator_value}`"
    elif kind == "uniqueItems" and isinstance(err.instance, list):
        seen: list[Any] = []
        twice: list[Any] = []
        for item in err.instance:
            if item in seen and item not in twice:
                twice.append(item)
            seen.append(item)
        yield path, f"names {', '.join(_show(t) for t in twice)} more than once; expected each only once"
    elif kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        words = {
            "minimum": "at least",
            "maximum": "at most",
            "exclusiveMinimum": "greater than",
            "exclusiveMaximum": "less than",
        }
        yield path, f"expected a value {words[kind]} {err.validator_value}; got {_show(err.instance)}"
    elif kind in ("minLength", "minItems"):
        yield path, f"expected at least {err.validator_value} {'character' if kind == 'minLength' else 'item'}(s)"
    elif kind in ("maxLength", "maxItems"):
        yield path, f"expected at most {err.validator_value} {'character' if kind == 'maxLength' else 'item'}(s)"
    else:
        yield path, err.message


_FITS = {
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "null": lambda v: v is None,
}


def _fitting_branch(err: ValidationError) -> list[ValidationError]:
    """The errors inside the one alternative whose `type` fits the value (a list for a list), if one does."""
    options = err.validator_value
    if not isinstance(options, list):
        return []
    fitting = []
    for i, o in enumerate(options):
        types = o.get("type") if isinstance(o, dict) else None
        names = types if isinstance(types, list) else [types]
        if types is not None and any(_FITS.get(t, lambda _v: False)(err.instance) for t in names):
            fitting.append(i)
    if len(fitting) != 1:
        return []
    return [e for e in err.context or [] if e.relative_schema_path and e.relative_schema_path[0] == fitting[0]]


def _explain_choice(err: ValidationError) -> str:
    options = err.validator_value
    required_sets = [o.get("required") for o in options if isinstance(o, dict) and set(o) == {"required"}]
    if required_sets and len(required_sets) == len(options) and isinstance(err.instance, dict):
        keys = [k for req in required_sets for k in req]
        present = [k for k in keys if k in err.instance]
        listed = ", ".join(f"`{k}`" for k in keys)
        if present:
            return f"give only one of {listed}; got {', '.join(f'`{k}`' for k in present)}"
        return f"missing required config key: one of {listed}"
    forms = []
    for o in options:
        if isinstance(o, dict) and "type" in o:
            t = _types(o["type"])
            if o["type"] == "array" and isinstance(o.get("items"), dict) and "type" in o["items"]:
                t += f" of {_types(o['items']['type']).replace('a ', '').replace('an ', '')}s"
            forms.append(t)
    if forms:
        return f"expected {' or '.join(forms)}; got {_show(err.instance)}"
    return f"{_show(err.instance)} matches none of the allowed forms"


def _condition(err: ValidationError, root: dict[str, Any]) -> str:
    """For a `required` inside an `if/then`, say when it applies: `when write_mode is upsert`."""
    parts = list(err.schema_path)
    if len(parts) < 2 or parts[-2] != "then":
        return ""
    node: Any = root
    for p in parts[:-2]:
        node = node[p]
    cond = node.get("if", {}).get("properties", {}) if isinstance(node, dict) else {}
    words = [f"`{k}` is `{v['const']}`" for k, v in cond.items() if isinstance(v, dict) and "const" in v]
    return f" when {' and '.join(words)}" if words else ""
