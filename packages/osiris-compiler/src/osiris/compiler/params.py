"""Pipeline parameters: declarations, overrides and `${params.x}` substitution.

Precedence, highest first: `--param k=v`, the `OSIRIS_PARAM_<NAME>` environment
variable, the declared default. `${ENV_VAR}` references are left for the runtime.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from osiris.core.documents import did_you_mean
from osiris.core.errors import UserInputError

PARAM_REF = re.compile(r"\$\{params\.([A-Za-z_][A-Za-z0-9_]*)\}")
ENV_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
# Anything that starts like a reference: `${` and a name. Bounded, so the scan stays linear.
_REF_LIKE = re.compile(r"\$\{(?P<inner>\s*[A-Za-z_][^{}]{0,200})(?P<close>\}?)")
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")
DECLARATION_KEYS = {"default", "description", "type", "required"}
TYPES = {"string": str, "integer": int, "number": float, "boolean": bool}
SECRET_NAME = re.compile(
    r"(^|_)(password|passwd|pwd|secret|token|apikey|api_key|access_key|private_key|service_role_key|credentials?)$",
    re.IGNORECASE,
)


class ParamDecl:
    """One declared parameter: its default, type and whether it must be given."""

    def __init__(self, name: str, raw: Any) -> None:
        self.name = name
        if isinstance(raw, dict) and set(raw) <= DECLARATION_KEYS:
            self.default = raw.get("default")
            self.type = raw.get("type") or _type_name(self.default)
            self.required = bool(raw.get("required", "default" not in raw))
        elif isinstance(raw, dict):
            unknown = sorted(set(raw) - DECLARATION_KEYS)
            raise UserInputError(
                f"Param `{name}` has unknown keys {', '.join(f'`{k}`' for k in unknown)}; "
                f"expected a value, or a mapping with {', '.join(sorted(DECLARATION_KEYS))}"
            )
        else:
            self.default = raw
            self.type = _type_name(raw)
            self.required = raw is None
        if self.type is not None and self.type not in TYPES:
            raise UserInputError(f"Param `{name}` has unknown type `{self.type}`; expected one of {', '.join(TYPES)}")

    def coerce(self, text: str, source: str) -> Any:
        """Turn a string from the command line or the environment into the declared type."""
        try:
            if self.type == "integer":
                return int(text)
            if self.type == "number":
                return float(text)
            if self.type == "boolean":
                low = text.strip().lower()
                if low in ("true", "1", "yes", "on"):
                    return True
                if low in ("false", "0", "no", "off"):
                    return False
                raise ValueError(text)
        except ValueError:
            raise UserInputError(
                f"Param `{self.name}` from {source} must be of type `{self.type}`; got {text!r}"
            ) from None
        return text


def _type_name(value: Any) -> str | None:
    for name, t in (("boolean", bool), ("integer", int), ("number", float), ("string", str)):
        if isinstance(value, t):
            return name
    return None


def _not_text(value: str) -> str | None:
    """Why `value` (from the command line or the environment) is not text Osiris can pass on, if it is not.

    Python turns bytes that are not UTF-8 into lone surrogates (U+DC80-U+DCFF); a manifest, a
    cfg file and every driver need real text.
    """
    bad = _NOT_TEXT.search(value)
    if bad is None:
        return None
    code = ord(bad.group())
    if 0xDC80 <= code <= 0xDCFF:
        return f"is not valid UTF-8 (byte 0x{code - 0xDC00:02x} at position {bad.start() + 1})"
    if code == 0:
        return f"holds a NUL character at position {bad.start() + 1}"
    return f"holds a lone surrogate (U+{code:04X}) at position {bad.start() + 1}"


def parse_param_args(items: list[str]) -> dict[str, str]:
    """Parse repeated ``--param k=v`` flags."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserInputError(f"Invalid `--param {_short(item)}`; expected `--param name=value`")
        name = key.strip()
        why = _not_text(name) or _not_text(value)
        if why:
            shown = name.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
            raise UserInputError(f"The value of `--param {_short(shown)}=...` {why}; expected text")
        out[name] = value
    return out


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def resolve_params(
    declared: Mapping[str, Any], overrides: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Resolve every declared param from overrides, the environment and defaults."""
    env = os.environ if environ is None else environ
    decls = {name: ParamDecl(name, raw) for name, raw in declared.items()}
    for name in decls:
        if SECRET_NAME.search(name):
            raise UserInputError(
                f"Param `{name}` looks like a secret; params are written into the manifest, so "
                f"secrets must come from a connection or an environment variable (`${{{name.upper()}}}`)"
            )
    for name in overrides:
        if name not in decls:
            raise UserInputError(
                f"Unknown param `{name}` in `--param`{did_you_mean(name, decls)}; "
                f"declared params: {', '.join(sorted(decls)) or 'none'}"
            )
    env_by_name = {k[len("OSIRIS_PARAM_") :].lower(): v for k, v in env.items() if k.startswith("OSIRIS_PARAM_")}
    for name, value in env_by_name.items():
        why = _not_text(value)
        if why and name in {n.lower() for n in decls}:
            raise UserInputError(f"`OSIRIS_PARAM_{name.upper()}` {why}; expected text")
    resolved: dict[str, Any] = {}
    for name, decl in decls.items():
        if name in overrides:
            resolved[name] = decl.coerce(overrides[name], f"`--param {name}=...`")
        elif name.lower() in env_by_name:
            resolved[name] = decl.coerce(env_by_name[name.lower()], f"`OSIRIS_PARAM_{name.upper()}`")
        elif not decl.required:
            resolved[name] = decl.default
        else:
            raise UserInputError(
                f"Param `{name}` has no default and was not given; pass `--param {name}=...` "
                f"or set `OSIRIS_PARAM_{name.upper()}`"
            )
    return resolved


class ReferenceSyntaxError(UserInputError):
    """A `${...}` reference that is malformed, unknown or not closed, with where it is inside the value."""

    def __init__(self, message: str, parts: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.parts = parts


def substitute(value: Any, params: Mapping[str, Any], where: str, _parts: tuple[str | int, ...] = ()) -> Any:
    """Replace `${params.x}` in every string of `value`; a whole-string reference keeps its type.

    A `${` followed by a name must be a whole reference: `${params.<name>}` (a declared param)
    or `${ENV_VAR}` (left for the run). Anything else, such as an unclosed `${params.since`,
    is an error rather than text used literally.
    """
    if isinstance(value, dict):
        return {k: substitute(v, params, f"{where}.{k}", (*_parts, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, params, f"{where}[{i}]", (*_parts, i)) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    _check_references(value, where, _parts)
    if "${params." not in value:
        return value
    whole = PARAM_REF.fullmatch(value)
    if whole:
        return params[_known(whole.group(1), params, where, _parts)]

    def repl(m: re.Match[str]) -> str:
        v = params[_known(m.group(1), params, where, _parts)]
        return str(v).lower() if isinstance(v, bool) else str(v)

    return PARAM_REF.sub(repl, value)


def _check_references(text: str, where: str, parts: tuple[str | int, ...]) -> None:
    for m in _REF_LIKE.finditer(text):
        ref = m.group()
        if m.group("close") and (PARAM_REF.fullmatch(ref) or ENV_REF.fullmatch(ref)):
            continue
        shown = _short(ref)
        if not m.group("close"):
            name = re.match(r"\s*(params\.)?[A-Za-z_][A-Za-z0-9_]*", m.group("inner"))
            fix = f"; expected `${{{name.group().strip()}}}`" if name else ""
            message = f"the reference `{shown}` is not closed{fix}"
        else:
            message = (
                f"`{shown}` is not a reference Osiris knows; expected `${{params.<name>}}` "
                "(a declared param) or `${ENV_VAR}` (an environment variable, read at run time)"
            )
        raise ReferenceSyntaxError(message, parts)


def _known(name: str, params: Mapping[str, Any], where: str, parts: tuple[str | int, ...] = ()) -> str:
    if name not in params:
        raise ReferenceSyntaxError(
            f"Unknown param `{name}` referenced at `{where}`{did_you_mean(name, params)}; declare it under `params:`",
            parts,
        )
    return name
