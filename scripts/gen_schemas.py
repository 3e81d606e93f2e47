"""Write the JSON Schemas of the OML and manifest types next to their modules, and the CLI's
`--json` failure object into docs/.

Run after changing `osiris.core.oml`, `osiris.core.manifest` or `osiris.core.cli_errors`:
    .venv/bin/python scripts/gen_schemas.py
A test fails when a committed schema is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from osiris.core.cli_errors import CliFailure
from osiris.core.manifest import Manifest
from osiris.core.oml import Pipeline
from osiris.core.schemas import json_schema, schema_text

CORE = Path(__file__).resolve().parents[1] / "packages" / "osiris-core" / "src" / "osiris" / "core"
DOCS = Path(__file__).resolve().parents[1] / "docs"
SCHEMAS = {"oml.schema.json": Pipeline, "manifest.schema.json": Manifest}
DOCS_SCHEMAS = {"cli-error.schema.json": CliFailure}


def render(type_: type) -> str:
    """The schema of `type_` as stable, pretty JSON text (the same under every msgspec release)."""
    return schema_text(json_schema(type_))


def main() -> int:
    for name, type_ in SCHEMAS.items():
        (CORE / name).write_text(render(type_), encoding="utf-8")
        print(f"wrote {CORE / name}")
    for name, type_ in DOCS_SCHEMAS.items():
        (DOCS / name).write_text(render(type_), encoding="utf-8")
        print(f"wrote {DOCS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
