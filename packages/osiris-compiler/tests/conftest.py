"""Helpers for compiler tests: write an OML file and run the real `osiris` CLI in-process."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from osiris.core.cli import main


@pytest.fixture
def write(tmp_path: Path):
    """Write a dedented file under tmp_path and return its path."""

    def _write(name: str, text: str) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return p

    return _write


@pytest.fixture
def osiris(capsys, monkeypatch, tmp_path):
    """Run `osiris ARGS...` in tmp_path; return (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    for key in list(__import__("os").environ):
        if key.startswith("OSIRIS_"):
            monkeypatch.delenv(key)

    def _run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return _run


PIPELINE = """
oml_version: "0.1.0"
name: demo
params:
  min_qty:
    default: 1
steps:
  - id: orders
    component: filesystem.csv_extractor
    mode: read
    config:
      path: data/orders.csv
  - id: totals
    component: duckdb.processor
    mode: transform
    needs: [orders]
    config:
      query: "SELECT count(*) AS n FROM input_df WHERE qty >= ${params.min_qty}"
  - id: save
    component: filesystem.parquet_writer
    mode: write
    needs: [totals]
    config:
      path: out/totals.parquet
"""


@pytest.fixture
def pipeline_text() -> str:
    """A small valid pipeline using built-in and SQL components."""
    return PIPELINE
