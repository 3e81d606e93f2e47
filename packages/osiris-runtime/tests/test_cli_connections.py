"""`osiris connections list|doctor` on a real connections file, in a subprocess."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from osiris_cli import run_osiris

CONNS = """connections:
  mysql:
    default:
      host: 127.0.0.1
      user: root
      password: literal-Secret-42
    env_only:
      host: 127.0.0.1
      user: root
      password: ${OSIRIS_TEST_UNSET_VAR_XYZ}
  nothing:
    one: {url: "https://x.example"}
"""


def osiris(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_osiris(*args, cwd=cwd, unset=["OSIRIS_TEST_UNSET_VAR_XYZ"])


def test_list_masks_literal_secrets_and_shows_references(tmp_path: Path) -> None:
    (tmp_path / "osiris_connections.yaml").write_text(CONNS)
    done = osiris("connections", "list", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "literal-Secret-42" not in done.stdout
    assert "@mysql.default (default)" in done.stdout and "${OSIRIS_TEST_UNSET_VAR_XYZ}" in done.stdout
    data = json.loads(osiris("connections", "list", "--json", cwd=tmp_path).stdout)
    assert data["connections"][0]["fields"]["password"] == "***"


def test_doctor_reports_missing_variables_and_families_without_a_check(tmp_path: Path) -> None:
    path = tmp_path / "conns.yaml"
    path.write_text(CONNS)
    done = osiris("connections", "doctor", "--connections", str(path), "--json", cwd=tmp_path)
    results = {f"{r['family']}.{r['alias']}": r for r in json.loads(done.stdout)["results"]}
    assert done.returncode == 2  # a missing variable is a misconfiguration, not a failed connection
    assert results["mysql.env_only"]["ok"] is False
    assert "OSIRIS_TEST_UNSET_VAR_XYZ" in results["mysql.env_only"]["message"]
    assert "@mysql.env_only" in results["mysql.env_only"]["message"]
    assert results["nothing.one"]["ok"] is None and "no check available" in results["nothing.one"]["message"]
    assert "literal-Secret-42" not in done.stdout
