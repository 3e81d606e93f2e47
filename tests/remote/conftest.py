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
