"""docs/type-mapping.md is what scripts/type_mapping.py makes of the drivers' code today."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_type_mapping_doc_is_current() -> None:
    spec = importlib.util.spec_from_file_location("type_mapping", ROOT / "scripts" / "type_mapping.py")
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    committed = (ROOT / "docs" / "type-mapping.md").read_text(encoding="utf-8")
    assert committed == script.render(), "docs/type-mapping.md is stale: run .venv/bin/python scripts/type_mapping.py"
