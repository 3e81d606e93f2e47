"""`osiris --help` and `osiris compile` import no data library (checked in a fresh process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from osiris_cli import run_osiris

REPO = Path(__file__).resolve().parents[1]
HEAVY = ["pyarrow", "duckdb", "pandas", "pymysql", "psycopg2", "supabase", "e2b", "connectorx", "numpy"]

PROBE = """
import json, sys
from osiris.core.cli import main
code = main(sys.argv[1:])
heavy = {heavy!r}
print(json.dumps({{"code": code, "loaded": [m for m in heavy if m in sys.modules]}}))
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["components", "list"],
        ["runs", "--help"],
        ["compile", str(REPO / "docs/examples/mysql_duckdb_supabase.yaml")],
        ["validate", str(REPO / "docs/examples/quickstart.yaml")],
    ],
)
def test_cli_imports_no_data_library(args, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, proc.stderr
    assert result["loaded"] == []


def test_examples_compile_cleanly(tmp_path):
    for example in sorted((REPO / "docs" / "examples").glob("*.yaml")):
        proc = run_osiris("compile", example, "--out", tmp_path / "build", cwd=tmp_path)
        assert proc.returncode == 0, (example.name, proc.stderr)
