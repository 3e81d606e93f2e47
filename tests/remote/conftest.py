"""Fixtures for the remote-execution tests: the envd stand-in and one shared sandbox environment."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SUPPORT = Path(__file__).resolve().parent.parent / "support"
if str(SUPPORT) not in sys.path:
    sys.path.insert(0, str(SUPPORT))


@pytest.fixture(scope="session")
def template_layer():
    """What an E2B template for Osiris holds: the third-party dependencies of every osiris distribution.

    Built (once, then cached) by the `local` sandbox's own dependency-layer feature.
    """
    from osiris.remote.dists import installed
    from osiris.remote.layers import ensure_layer, provided_extras, third_party_requirements

    dists = sorted(installed())
    return ensure_layer(third_party_requirements(dists, extras={d: provided_extras(d) for d in dists}))


@pytest.fixture
def envd(tmp_path, monkeypatch, template_layer):
    """A stand-in envd on the default port, with the SDK pointed at it (`E2B_DEBUG=true`).

    Its commands see the template layer on `PYTHONPATH`, as if the packages were baked into the template.
    """
    from envd_standin import ENVD_PORT, StandinEnvd, port_is_free

    if not port_is_free(ENVD_PORT):
        pytest.skip(f"port {ENVD_PORT} is taken; another envd stand-in is running")
    monkeypatch.setenv("E2B_DEBUG", "true")
    monkeypatch.delenv("E2B_SANDBOX_URL", raising=False)
    with StandinEnvd(tmp_path / "sandbox", template_env={"PYTHONPATH": str(template_layer.site)}) as server:
        yield server


ROOT = Path(__file__).resolve().parents[2]


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
