"""Finding and reading `osiris_connections.yaml`, and `@family.alias` references.

This module never substitutes `${VAR}` values: the compiler checks that a
referenced alias exists without reading any secret; the runtime resolves values.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osiris.core.connection_check import META_KEYS, FieldProblem, check_fields, describe_value, secret_keys_of
from osiris.core.documents import LineIndex, did_you_mean, format_path, load_yaml_file
from osiris.core.errors import ConnectionConfigError, DocumentError, ValidationErrors
from osiris.core.redaction import is_secret_key

CONNECTIONS_FILE = "osiris_connections.yaml"
REFERENCE = re.compile(r"^@(?P<family>[A-Za-z][A-Za-z0-9_]*)(?:\.(?P<alias>[A-Za-z0-9_][A-Za-z0-9_-]*))?$")


def find_connections_file(explicit: str | Path | None = None) -> Path | None:
    """The connections file to use: `explicit`, else `$OSIRIS_HOME/`, else the current directory."""
    if explicit is not None:
        p = Path(explicit)
        if not p.is_file():
            raise ConnectionConfigError(f"Connections file `{explicit}` not found")
        return p
    home = os.environ.get("OSIRIS_HOME")
    candidates = [Path(home) / CONNECTIONS_FILE] if home else []
    candidates.append(Path.cwd() / CONNECTIONS_FILE)
    for c in candidates:
        if c.is_file():
            return c
    return None


class ConnectionsFile(dict):  # type: ignore[type-arg]
    """The parsed connections file, ``{family: {alias: {field: value}}}``, knowing its file and lines."""

    def __init__(self, families: dict[str, Any], *, file: str, lines: LineIndex | None = None) -> None:
        super().__init__(families)
        self.file = file
        self.lines = lines


def load_connections(path: str | Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Read a connections file: ``{family: {alias: {field: value}}}``, shape-checked, unresolved.

    The result is a `ConnectionsFile`: a plain mapping that also knows the file and its lines,
    so later checks (`check_connections`) can say where a field is."""
    data, lines = load_yaml_file(path)
    if not isinstance(data, dict) or not isinstance(data.get("connections"), dict):
        raise DocumentError("Expected a mapping with a `connections` key", file=str(path), path="$")
    families = data["connections"]
    for family, aliases in families.items():
        if not isinstance(aliases, dict):
            raise DocumentError(
                "Expected a mapping of aliases to connection fields", file=str(path), path=f"$.connections.{family}"
            )
        for alias, fields in aliases.items():
            if not isinstance(fields, dict):
                raise DocumentError(
                    "Expected a mapping of connection fields",
                    file=str(path),
                    path=f"$.connections.{family}.{alias}",
                )
    return ConnectionsFile(families, file=str(path), lines=lines)


@dataclass(frozen=True)
class ConnectionSchema:
    """What a family's connections must look like: the `x-connection.schema` and which fields are secrets."""

    schema: dict[str, Any]
    secret_keys: frozenset[str] = frozenset()

    @classmethod
    def of(cls, schema: dict[str, Any], secret_pointers: Iterable[str] = ()) -> ConnectionSchema:
        """From a spec's `x-connection.schema` and its `secrets` pointers."""
        return cls(schema, frozenset(secret_keys_of(schema, secret_pointers, is_secret_key)))


def check_connections(
    connections: dict[str, dict[str, dict[str, Any]]],
    schemas: dict[str, ConnectionSchema],
    *,
    only: Iterable[tuple[str, str]] | None = None,
) -> list[DocumentError]:
    """Every field error of the connections as written, against their family's schema.

    `only` limits the check to some ``(family, alias)`` pairs (those a run uses); families
    without a schema are not checked. Each error names the file, family, alias and key.
    """
    file = getattr(connections, "file", None)
    lines: LineIndex | None = getattr(connections, "lines", None)
    wanted = set(only) if only is not None else None
    errors: list[DocumentError] = []
    for family in connections:
        found = schemas.get(family)
        if found is None:
            continue
        for alias, fields in connections[family].items():
            if wanted is not None and (family, alias) not in wanted:
                continue
            body = {k: v for k, v in fields.items() if k not in META_KEYS}
            secrets = set(found.secret_keys) | {str(k) for k in body if is_secret_key(str(k))}
            for problem in check_fields(body, found.schema, secret_keys=secrets):
                errors.append(field_error(problem, family, alias, file=file, lines=lines))
            marker = fields.get("default")
            if "default" in fields and not isinstance(marker, bool):
                errors.append(
                    field_error(
                        FieldProblem(("default",), f"`default`: expected true or false, got {describe_value(marker)}"),
                        family,
                        alias,
                        file=file,
                        lines=lines,
                    )
                )
    return errors


def field_error(
    problem: FieldProblem, family: str, alias: str, *, file: str | None, lines: LineIndex | None = None
) -> DocumentError:
    """`problem` of connection `@family.alias` as a `DocumentError` with the file, line and JSON path."""
    parts = ("connections", family, alias, *problem.keys)
    return DocumentError(
        f"Connection `@{family}.{alias}`: {problem.message}",
        file=file,
        path=format_path(parts),
        line=lines.line_of(parts) if lines is not None else None,
    )


def raise_connection_errors(errors: list[DocumentError], file: str | None) -> None:
    """Raise `errors` together (a `ValidationErrors`, exit 2), if there are any."""
    if errors:
        raise ValidationErrors(list(errors), file=file)  # type: ignore[arg-type]


def parse_reference(ref: str) -> tuple[str, str | None]:
    """Split ``@family.alias`` (or ``@family``, meaning the default alias) into its parts."""
    m = REFERENCE.match(ref)
    if not m:
        raise ConnectionConfigError(
            f"Invalid connection reference `{ref}`; expected `@family.alias`, e.g. `@mysql.default`"
        )
    return m.group("family"), m.group("alias")


def select_alias(connections: dict[str, dict[str, dict[str, Any]]], family: str, alias: str | None) -> str:
    """The alias a reference means: the named one, else the family's default.

    The default is the alias marked `default: true`, else one called `default`,
    else the only alias of the family.
    """
    aliases = connections.get(family)
    if not aliases:
        raise ConnectionConfigError(
            f"No connections of family `{family}`{did_you_mean(family, connections)}; "
            f"families defined: {', '.join(sorted(connections)) or 'none'}"
        )
    if alias is not None:
        if alias not in aliases:
            raise ConnectionConfigError(
                f"Unknown connection `@{family}.{alias}`{did_you_mean(alias, aliases)}; "
                f"aliases of `{family}`: {', '.join(sorted(aliases))}"
            )
        return alias
    marked = [a for a, f in aliases.items() if f.get("default") is True]
    if len(marked) > 1:
        raise ConnectionConfigError(f"Several `{family}` connections are marked `default: true`: {', '.join(marked)}")
    if marked:
        return marked[0]
    if "default" in aliases:
        return "default"
    if len(aliases) == 1:
        return next(iter(aliases))
    raise ConnectionConfigError(
        f"No default `{family}` connection: mark one alias with `default: true` or name one, "
        f"e.g. `@{family}.{sorted(aliases)[0]}`"
    )
