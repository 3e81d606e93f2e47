"""Component specs: what a component is, what config it takes, where its driver lives.

A spec is the single source of a component's defaults: `apply_defaults` fills a
config from the spec's `configSchema`, and both the compiler and the drivers use it.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from osiris.core.oml import Mode


class RuntimeRequirements(msgspec.Struct, kw_only=True):
    """What a driver needs at run time: importable modules, the packages providing them, and
    the extras of the component's own distribution that install those packages
    (``extras: [mysql]`` → ``pip install osiris-drivers-sql[mysql]``)."""

    imports: list[str] = []
    packages: list[str] = []
    extras: list[str] = []


class RuntimeInfo(msgspec.Struct, kw_only=True):
    """`x-runtime`: the driver class (``module:Class``) and its requirements."""

    driver: str
    requirements: RuntimeRequirements = msgspec.field(default_factory=RuntimeRequirements)


class ConnectionInfo(msgspec.Struct, kw_only=True):
    """`x-connection`: the connection family a component uses and how to check one.

    `schema` is a JSON Schema of the connection's fields (with their defaults);
    `doctor` names a ``module:function`` taking ``(connection: dict, timeout: float)``
    that connects for real and returns ``{"ok": bool, "message": str, ...}``;
    `discover` names a ``module:function`` taking ``(connection: dict, include: list[str],
    exclude: list[str])`` that returns the source's tables as `osiris.core.snapshot.SnapshotTable`s
    (what `osiris discover` writes).
    """

    family: str
    required: bool = True
    schema: dict[str, Any] = {}
    doctor: str | None = None
    discover: str | None = None


class ComponentSpec(
    msgspec.Struct,
    kw_only=True,
    rename={"config_schema": "configSchema", "x_runtime": "x-runtime", "x_connection": "x-connection"},
):
    """A component spec as shipped in a driver package's `components/` folder."""

    name: str
    version: str
    modes: list[Mode]
    config_schema: dict[str, Any]
    x_runtime: RuntimeInfo
    title: str = ""
    description: str = ""
    capabilities: dict[str, Any] = {}
    secrets: list[str] = []
    x_connection: ConnectionInfo | None = None
    examples: list[dict[str, Any]] = []

    @property
    def family(self) -> str:
        """The part of the name before the first dot (`mysql` for `mysql.extractor`)."""
        return self.name.split(".", 1)[0]


def apply_defaults(schema: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `config` with every `default` of `schema`'s properties filled in.

    Nested objects present in `config` get their own defaults filled in too.
    """
    out = copy.deepcopy(config)
    for key, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        if key not in out and "default" in prop:
            out[key] = copy.deepcopy(prop["default"])
        elif isinstance(out.get(key), dict) and prop.get("type") == "object":
            out[key] = apply_defaults(prop, out[key])
    return out
