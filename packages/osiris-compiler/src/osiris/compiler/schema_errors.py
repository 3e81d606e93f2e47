"""Turning jsonschema errors into messages a user can act on.

jsonschema's own messages repeat the whole instance and say nothing of intent
(`... is not valid under any of the given schemas`). These say what key, what
was expected and what was found, and never echo a whole config.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

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


def config_errors(schema: dict[str, Any], config: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Yield (path inside config, message) for every way `config` fails `schema`."""
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    for err in errors:
        yield from _explain(err, schema)


def _explain(err: ValidationError, root: dict[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    for where, message in _explain_raw(err, root):
        named = where and not message.startswith(("unknown config key", "missing required"))
        yield where, f"config key `{'.'.join(map(str, where))}`: {message}" if named else message


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
        yield path, _explain_choice(err)
    elif kind == "pattern":
        yield path, f"{_show(err.instance)} does not match the expected form `{err.validator_value}`"
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
    else:
        yield path, err.message


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
