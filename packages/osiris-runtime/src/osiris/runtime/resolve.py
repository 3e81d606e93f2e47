"""Run-time resolution of step configs: `${VAR}` substitution and connections.

The compiler leaves `${VAR}` references and `connection: "@family.alias"` in the
cfg files; here they become values. A step whose component has an
`x-connection` gets `config["resolved_connection"]`: the alias's fields with
`${VAR}` substituted from the environment and the defaults of the spec's
`x-connection.schema` applied. Nothing resolved here is ever written to disk
unmasked; `step_secrets` (one step) and `run_secrets` (a whole run) list the values the
redactor must hide.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from osiris.core.connections import find_connections_file, load_connections, parse_reference, select_alias
from osiris.core.errors import ConnectionConfigError, UserInputError
from osiris.core.redaction import is_secret_key, secret_values
from osiris.core.spec import ComponentSpec, apply_defaults

if TYPE_CHECKING:
    from osiris.core.discovery import Component
    from osiris.core.manifest import Manifest

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
CONNECTION_META_KEYS = ("default", "description")


class MissingVariableError(UserInputError):
    """A `${VAR}` reference names an environment variable that is not set."""


def substitute_env(value: Any, environ: Mapping[str, str], *, where: str) -> Any:
    """`value` with every `${VAR}` replaced from `environ`; a missing variable is an error naming `where`."""
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in environ:
                raise MissingVariableError(
                    f"Environment variable `{name}` is not set; it is used by {where}",
                    hint=f"export {name}=... before running",
                )
            return environ[name]

        return ENV_REF.sub(repl, value)
    if isinstance(value, dict):
        return {k: substitute_env(v, environ, where=where) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, environ, where=where) for v in value]
    return value


def resolve_connection(
    connections: dict[str, dict[str, dict[str, Any]]],
    family: str,
    alias: str | None,
    *,
    schema: dict[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The selected alias and its resolved fields (env substituted, schema defaults applied)."""
    env = os.environ if environ is None else environ
    chosen = select_alias(connections, family, alias)
    raw = {k: v for k, v in connections[family][chosen].items() if k not in CONNECTION_META_KEYS}
    fields = substitute_env(raw, env, where=f"connection `@{family}.{chosen}`")
    if schema:
        fields = apply_defaults(schema, fields)
    return chosen, fields


def load_connections_for_run(connections_file: str | Path | None) -> dict[str, dict[str, dict[str, Any]]] | None:
    """The parsed connections file for a run (`--connections`, `$OSIRIS_HOME`, the current directory), or None."""
    path = find_connections_file(connections_file)
    return load_connections(path) if path else None


def resolve_step_config(
    step_id: str,
    cfg: dict[str, Any],
    spec: ComponentSpec,
    connections: dict[str, dict[str, dict[str, Any]]] | None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One step's config ready for its driver: `${VAR}` substituted and `resolved_connection` filled in."""
    env = os.environ if environ is None else environ
    config = substitute_env(cfg, env, where=f"step `{step_id}`")
    info = spec.x_connection
    if info is None:
        return config
    ref = config.get("connection")
    family, alias = info.family, None
    if isinstance(ref, str) and ref:
        family, alias = parse_reference(ref)
    if connections is None:
        if info.required or ref:
            raise ConnectionConfigError(
                f"Step `{step_id}` needs a `{family}` connection but no osiris_connections.yaml was found",
                step=step_id,
                hint="pass --connections FILE, set $OSIRIS_HOME, or run from the directory holding the file",
            )
        return config
    if not info.required and not ref and family not in connections:
        return config
    try:
        chosen, fields = resolve_connection(connections, family, alias, schema=info.schema, environ=env)
    except UserInputError as exc:
        exc.step = step_id
        raise
    config["resolved_connection"] = fields
    config["connection"] = f"@{family}.{chosen}"
    return config


def step_secrets(config: dict[str, Any], spec: ComponentSpec | None) -> set[str]:
    """The secret values in a resolved config: the spec's `secrets` pointers plus secret-looking fields."""
    pointers = list(spec.secrets) if spec is not None else []
    found = secret_values(config, pointers)
    conn = config.get("resolved_connection")
    if isinstance(conn, dict):
        for k, v in conn.items():
            if is_secret_key(k) and isinstance(v, (str, int, float)) and not isinstance(v, bool):
                found.add(str(v))
    return found


def spec_of(item: Component | ComponentSpec) -> ComponentSpec:
    """The spec of a discovered component, or the spec itself."""
    return getattr(item, "spec", item)


def resolve_configs(
    manifest: Manifest,
    cfgs: Mapping[str, dict[str, Any]],
    components: Mapping[str, Component | ComponentSpec],
    connections: dict[str, dict[str, dict[str, Any]]] | None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every step's config ready for its driver (`${VAR}` substituted, `resolved_connection` set)."""
    return {
        step.id: resolve_step_config(step.id, cfgs[step.id], spec_of(components[step.component]), connections, environ)
        for step in manifest.steps
    }


def run_secrets(
    manifest: Manifest,
    configs: Mapping[str, dict[str, Any]],
    components: Mapping[str, Component | ComponentSpec],
) -> set[str]:
    """Every secret value in a run's resolved configs (what its redactor masks)."""
    found: set[str] = set()
    for step in manifest.steps:
        spec = components.get(step.component)
        found |= step_secrets(configs.get(step.id, {}), spec_of(spec) if spec is not None else None)
    return found
