"""A run whose driver library is missing stops at the requirements preflight with the install hint.

Each case runs the real `osiris` in a real virtual environment that lacks one library: its
site-packages are the project environment's entries (symlinked, so it costs nothing) without
that library's. The preflight must come before anything imports a driver library (Arrow's
memory pool, the drivers themselves, the live display), so the user sees what to install and
exit code 2, never "internal error: ModuleNotFoundError".
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "docs/examples/quickstart.yaml"


def venv_without(root: Path, library: str) -> Path:
    """A venv whose site-packages hold everything of this one but `library` (its package, native
    part and metadata); returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    target = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    source = Path(sysconfig.get_paths()["purelib"])
    dropped = []
    for entry in source.iterdir():
        name = entry.name.lower()
        if name.startswith((library, f"_{library}")):
            dropped.append(entry.name)
            continue
        (target / entry.name).symlink_to(entry)
    assert dropped, f"`{library}` is not installed here, so the case would test nothing"
    probe = subprocess.run([str(python), "-c", f"import {library}"], capture_output=True, text=True)
    assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr
    return python


def osiris(python: Path, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    import os

    full = {k: v for k, v in os.environ.items() if k != "OSIRIS_DEBUG"} | (env or {})
    return subprocess.run(
        [str(python), "-m", "osiris.core.cli", *args], cwd=cwd, capture_output=True, text=True, env=full, timeout=300
    )


def _mysql_pipeline(cwd: Path) -> str:
    (cwd / "osiris_connections.yaml").write_text(
        textwrap.dedent(
            """
            connections:
              mysql:
                default: {host: 127.0.0.1, port: 3306, user: root, password: "${PREFLIGHT_PW}", database: nowhere}
            """
        )
    )
    (cwd / "p.yaml").write_text(
        textwrap.dedent(
            """
            oml_version: "0.1.0"
            name: preflight_mysql
            steps:
              - id: read
                component: mysql.extractor
                config: {connection: "@mysql.default", table: t}
              - id: save
                component: filesystem.csv_writer
                needs: [read]
                config: {path: out.csv}
            """
        )
    )
    return "p.yaml"


@pytest.mark.parametrize(
    ("library", "pipeline", "install"),
    [
        ("pyarrow", "quickstart", "pyarrow"),
        ("duckdb", "quickstart", "osiris-drivers-sql[duckdb]"),
        ("pymysql", "mysql", "osiris-drivers-sql[mysql]"),
    ],
)
def test_a_missing_driver_library_is_the_install_hint_and_exit_2(tmp_path, library, pipeline, install) -> None:
    python = venv_without(tmp_path / "venv", library)
    work = tmp_path / "work"
    (work / "docs/examples/data").mkdir(parents=True)
    (work / "docs/examples/data/orders.csv").write_bytes((REPO / "docs/examples/data/orders.csv").read_bytes())
    target = str(QUICKSTART) if pipeline == "quickstart" else _mysql_pipeline(work)
    env = {"PREFLIGHT_PW": ""}

    human = osiris(python, "run", target, cwd=work, env=env)
    assert human.returncode == 2, human.stdout + human.stderr
    assert "internal error" not in human.stderr and "Traceback" not in human.stderr, human.stderr
    assert "Missing runtime requirements; nothing was run" in human.stderr
    assert f"`{library}`" in human.stderr and install in human.stderr, human.stderr

    as_json = osiris(python, "run", target, "--json", cwd=work, env=env)
    data = json.loads(as_json.stdout)
    assert as_json.returncode == 2 and data["exit_code"] == 2 and data["status"] == "failed"
    assert install in data["error"]["hint"]
    card = json.loads((work / data["run_card"]).read_text())
    assert card["status"] == "failed" and all(s["status"] == "not_run" for s in card["steps"])
    events = [json.loads(line) for line in (work / data["run_dir"] / "events.jsonl").read_text().splitlines()]
    check = next(e for e in events if e["event"] == "dependency_check")
    assert not check["ok"] and library in {m["import"] for m in check["missing"]}
