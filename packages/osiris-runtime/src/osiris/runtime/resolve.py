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

from osiris.core.connection_check import FieldProblem, check_fields, coerce_from_env
from osiris.core.connections import (
    ConnectionSchema,
    check_connections,
    field_error,
    find_connections_file,
    load_connections,
    parse_reference,
    raise_connection_errors,
    select_alias,
)
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
    secret_pointers: list[str] | tuple[str, ...] = (),
) -> tuple[str, dict[str, Any]]:
    """The selected alias and its resolved fields (env substituted, schema defaults applied)."""
    env = os.environ if environ is None else environ
    chosen = select_alias(connections, family, alias)
    raw = {k: v for k, v in connections[family][chosen].items() if k not in CONNECTION_META_KEYS}
    fields = substitute_env(raw, env, where=f"connection `@{family}.{chosen}`")
    if schema:
        fields = coerce_from_env(fields, raw, schema)
        check_resolved(connections, family, chosen, raw, fields, ConnectionSchema.of(schema, secret_pointers))
        fields = apply_defaults(schema, fields)
    return chosen, fields


def check_resolved(
    connections: dict[str, dict[str, dict[str, Any]]],
    family: str,
    alias: str,
    written: dict[str, Any],
    fields: dict[str, Any],
    schema: ConnectionSchema,
) -> None:
    """Check a connection's fields once `${VAR}` values are in; errors name the variable, never its value."""
    file = getattr(connections, "file", None)
    secrets = set(schema.secret_keys) | {k for k in fields if is_secret_key(k)}
    errors = []
    from_env = {k for k, v in written.items() if isinstance(v, str) and "${" in v}
    for problem in check_fields(fields, schema.schema, secret_keys=secrets, written=False, hidden=from_env):
        raw = written.get(problem.keys[0]) if problem.keys else None
        if not (isinstance(raw, str) and "${" in raw):
            continue  # written that way: `check_connections` reported it already
        names = ", ".join(f"`{n}`" for n in ENV_REF.findall(raw))
        message = problem.message
        errors.append(
            field_error(
                FieldProblem(problem.keys, f"{message} (the value comes from the environment variable {names})"),
                family,
                alias,
                file=file,
                lines=getattr(connections, "lines", None),
            )
        )
    raise_connection_errors(errors, file)


def check_run_connections(
    manifest: Manifest,
    cfgs: Mapping[str, dict[str, Any]],
    components: Mapping[str, Component | ComponentSpec],
    connections: dict[str, dict[str, dict[str, Any]]] | None,
) -> None:
    """Check, before anything resolves, every connection the run's steps use against their schemas,
    and raise all the errors together (file, family, alias and key each)."""
    if not connections:
        return
    schemas: dict[str, ConnectionSchema] = {}
    used: set[tuple[str, str]] = set()
    for step in manifest.steps:
        spec = spec_of(components[step.component]) if step.component in components else None
        info = spec.x_connection if spec is not None else None
        if info is None or not info.schema:
            continue
        ref = cfgs.get(step.id, {}).get("connection")
        family, alias = info.family, None
        if isinstance(ref, str) and ref:
            try:
                family, alias = parse_reference(ref)
            except UserInputError:
                continue  # reported with its step when the step is resolved
        if not info.required and not ref and family not in connections:
            continue
        try:
            chosen = select_alias(connections, family, alias)
        except UserInputError:
            continue  # reported with its step when the step is resolved
        schemas.setdefault(family, ConnectionSchema.of(info.schema, spec.secrets))  # type: ignore[union-attr]
        used.add((family, chosen))
    raise_connection_errors(check_connections(connections, schemas, only=used), getattr(connections, "file", None))


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
        chosen, fields = resolve_connection(
            connections, family, alias, schema=info.schema, environ=env, secret_pointers=spec.secrets
        )
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
            if is_secret_key(k):
                found |= _leaves(v)
    return found


def _leaves(value: Any) -> set[str]:
    """Every scalar inside `value` as text (a secret written as a list or mapping is still masked)."""
    if isinstance(value, dict):
        return set().union(*(_leaves(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_leaves(v) for v in value)) if value else set()
    if value is None or isinstance(value, bool):
        return set()
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return {text} if text else set()


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
    """Every step's config ready for its driver (`${VAR}` substituted, `resolved_connection` set).

    The connections the steps use are checked against their schemas first, all errors at once."""
    check_run_connections(manifest, cfgs, components, connections)
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
