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


def parse_param_args(items: list[str]) -> dict[str, str]:
    """Parse repeated ``--param k=v`` flags."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserInputError(f"Invalid `--param {item}`; expected `--param name=value`")
        out[key.strip()] = value
    return out


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


def substitute(value: Any, params: Mapping[str, Any], where: str) -> Any:
    """Replace `${params.x}` in every string of `value`; a whole-string reference keeps its type."""
    if isinstance(value, dict):
        return {k: substitute(v, params, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, params, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${params." not in value:
        return value
    whole = PARAM_REF.fullmatch(value)
    if whole:
        return params[_known(whole.group(1), params, where)]

    def repl(m: re.Match[str]) -> str:
        v = params[_known(m.group(1), params, where)]
        return str(v).lower() if isinstance(v, bool) else str(v)

    return PARAM_REF.sub(repl, value)


def _known(name: str, params: Mapping[str, Any], where: str) -> str:
    if name not in params:
        raise UserInputError(
            f"Unknown param `{name}` referenced at `{where}`{did_you_mean(name, params)}; declare it under `params:`"
        )
    return name
