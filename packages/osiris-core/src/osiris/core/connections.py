"""Finding and reading `osiris_connections.yaml`, and `@family.alias` references.

This module never substitutes `${VAR}` values: the compiler checks that a
referenced alias exists without reading any secret; the runtime resolves values.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from osiris.core.documents import did_you_mean, load_yaml_file
from osiris.core.errors import ConnectionConfigError, DocumentError

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


def load_connections(path: str | Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Read a connections file: ``{family: {alias: {field: value}}}``, shape-checked, unresolved."""
    data, _ = load_yaml_file(path)
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
    return families


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
