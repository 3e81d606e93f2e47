"""The committed JSON Schemas of OML and the manifest match the msgspec types."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_committed_schemas_are_current():
    spec = importlib.util.spec_from_file_location("gen_schemas", REPO / "scripts" / "gen_schemas.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    for name, type_ in gen.SCHEMAS.items():
        committed = (gen.CORE / name).read_text(encoding="utf-8")
        assert committed == gen.render(type_), f"{name} is stale: run scripts/gen_schemas.py"
