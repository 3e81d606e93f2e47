"""Fixtures for the remote-execution tests: the envd stand-in and one shared sandbox environment."""

from __future__ import annotations

from pathlib import Path

import pytest
from osiris_cli import compile_build

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def template_layer():
    """What an E2B template for Osiris holds: the third-party dependencies of every osiris distribution.

    Built (once, then cached) by the `local` sandbox's own dependency-layer feature.
    """
    from osiris.remote.layers import ensure_layer, template_requirements

    return ensure_layer(template_requirements())


@pytest.fixture
def envd(tmp_path, monkeypatch, template_layer):
    """A stand-in envd on a free port, with the SDK pointed at it (`E2B_DEBUG=true`, `E2B_SANDBOX_URL`).

    Its commands see the template layer on `PYTHONPATH`, as if the packages were baked into the template.
    A free port of its own means that runs of the suite side by side never wait for each other.
    """
    from envd_standin import StandinEnvd

    with StandinEnvd(tmp_path / "sandbox", template_env={"PYTHONPATH": str(template_layer.site)}) as server:
        for name, value in server.sdk_env().items():
            monkeypatch.setenv(name, value)
        yield server


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
    return compile_build(ROOT / "docs/examples/quickstart.yaml", tmp_path_factory.mktemp("build"), cwd=ROOT)
