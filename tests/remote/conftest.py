"""Fixtures for the remote-execution tests: the envd stand-in and one shared sandbox environment."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SUPPORT = Path(__file__).resolve().parent.parent / "support"
if str(SUPPORT) not in sys.path:
    sys.path.insert(0, str(SUPPORT))


@pytest.fixture
def envd(tmp_path, monkeypatch):
    """A stand-in envd on the default port, with the SDK pointed at it (`E2B_DEBUG=true`)."""
    from envd_standin import ENVD_PORT, StandinEnvd, port_is_free

    if not port_is_free(ENVD_PORT):
        pytest.skip(f"port {ENVD_PORT} is taken; another envd stand-in is running")
    monkeypatch.setenv("E2B_DEBUG", "true")
    monkeypatch.delenv("E2B_SANDBOX_URL", raising=False)
    with StandinEnvd(tmp_path / "sandbox") as server:
        yield server


ROOT = Path(__file__).resolve().parents[2]
# What the worker imports besides our own packages; installed once into a cached layer that every
# test sandbox sees through a .pth file (like an E2B template with the dependencies baked in).
LAYER_REQUIREMENTS = [
    "msgspec>=0.18",
    "pyyaml>=6",
    "click>=8.1",
    "pyarrow>=14",
    "duckdb>=1.0",
    "pymysql>=1.1",
    "connectorx>=0.4.3,<0.5",
]


@pytest.fixture(scope="session")
def sandbox_site(tmp_path_factory):
    """A site-packages with the third-party dependencies, built once and cached; set for every sandbox."""
    import hashlib
    import os
    import subprocess

    key = hashlib.sha256(" ".join(LAYER_REQUIREMENTS).encode()).hexdigest()[:12]
    home = Path(os.environ.get("OSIRIS_TEST_LAYER_CACHE") or Path.home() / ".cache" / "osiris" / "test-layers")
    venv = home / f"deps-{key}"
    python = venv / "bin" / "python"
    marker = venv / ".complete"
    if not marker.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *LAYER_REQUIREMENTS],
            check=True,
        )
        marker.write_text("ok\n")
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    old = os.environ.get("OSIRIS_SANDBOX_SITE_PACKAGES")
    os.environ["OSIRIS_SANDBOX_SITE_PACKAGES"] = site
    yield site
    if old is None:
        os.environ.pop("OSIRIS_SANDBOX_SITE_PACKAGES", None)
    else:
        os.environ["OSIRIS_SANDBOX_SITE_PACKAGES"] = old


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working folder holding the quickstart's input CSV, made the current directory."""
    import shutil

    data = tmp_path / "work" / "docs" / "examples" / "data"
    data.mkdir(parents=True)
    shutil.copy(ROOT / "docs/examples/data/orders.csv", data / "orders.csv")
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path / "work"


@pytest.fixture(scope="session")
def quickstart_manifest(tmp_path_factory):
    """The quickstart pipeline compiled once."""
    import subprocess

    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "osiris.core.cli",
            "compile",
            str(ROOT / "docs/examples/quickstart.yaml"),
            "-o",
            str(build),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    return next(build.rglob("manifest.yaml"))
