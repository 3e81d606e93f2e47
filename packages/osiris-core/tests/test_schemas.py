"""The committed JSON Schemas of OML and the manifest match the msgspec types."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def test_committed_schemas_are_current():
    spec = importlib.util.spec_from_file_location("gen_schemas", REPO / "scripts" / "gen_schemas.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    for name, type_ in gen.SCHEMAS.items():
        committed = (gen.CORE / name).read_text(encoding="utf-8")
        assert committed == gen.render(type_), f"{name} is stale: run scripts/gen_schemas.py"
    for name, type_ in gen.DOCS_SCHEMAS.items():
        committed = (gen.DOCS / name).read_text(encoding="utf-8")
        assert committed == gen.render(type_), f"docs/{name} is stale: run scripts/gen_schemas.py"


@pytest.mark.slow
@pytest.mark.parametrize("msgspec_version", ["0.19.0", "0.23.0"])
def test_committed_schemas_are_the_same_under_every_supported_msgspec(tmp_path, msgspec_version):
    """The oldest msgspec the range allows and the newest known render the committed files exactly."""
    uv = Path(sys.executable).parent / "uv"
    venv = tmp_path / "venv"
    subprocess.run([str(uv), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [
            str(uv),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            f"msgspec=={msgspec_version}",
            "pyyaml",
            "click",
        ],
        check=True,
    )
    core_src = REPO / "packages" / "osiris-core" / "src"
    script = (
        "import json, sys\n"
        "from osiris.core import wire\n"
        "from osiris.core.manifest import Manifest\n"
        "from osiris.core.oml import Pipeline\n"
        "from osiris.core.schemas import json_schema, schema_text\n"
        "print(json.dumps({'wire.schema.json': wire.wire_schema_text(),\n"
        "  'oml.schema.json': schema_text(json_schema(Pipeline)),\n"
        "  'manifest.schema.json': schema_text(json_schema(Manifest))}))\n"
    )
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", script],
        env={"PYTHONPATH": str(core_src), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name, text in json.loads(out).items():
        committed = (core_src / "osiris" / "core" / name).read_text(encoding="utf-8")
        assert text == committed, f"{name} renders differently under msgspec {msgspec_version}"


def test_descriptions_are_normalized_whatever_the_indentation():
    from osiris.core.schemas import normalize_description

    indented = "First line\n    continues here.\n\n    Second paragraph\n    too."
    dedented = "First line\ncontinues here.\n\nSecond paragraph\ntoo."
    assert normalize_description(indented) == normalize_description(dedented)
    assert normalize_description(dedented) == "First line continues here.\n\nSecond paragraph too."
