"""Write the JSON Schemas of the OML and manifest types next to their modules.

Run after changing `osiris.core.oml` or `osiris.core.manifest`:
    .venv/bin/python scripts/gen_schemas.py
A test fails when a committed schema is out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import msgspec

from osiris.core.manifest import Manifest
from osiris.core.oml import Pipeline

CORE = Path(__file__).resolve().parents[1] / "packages" / "osiris-core" / "src" / "osiris" / "core"
SCHEMAS = {"oml.schema.json": Pipeline, "manifest.schema.json": Manifest}


def render(type_: type) -> str:
    """The schema of `type_` as stable, pretty JSON text."""
    return json.dumps(msgspec.json.schema(type_), indent=2, sort_keys=True) + "\n"


def main() -> int:
    for name, type_ in SCHEMAS.items():
        (CORE / name).write_text(render(type_), encoding="utf-8")
        print(f"wrote {CORE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
