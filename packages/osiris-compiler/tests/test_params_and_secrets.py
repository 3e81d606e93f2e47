"""Params resolution, and secrets never reaching compiled files."""

from __future__ import annotations

import json

import pytest

from osiris.compiler.compiler import compile_to_build
from osiris.compiler.params import resolve_params, substitute
from osiris.core.errors import UserInputError


def _cfg(out, step: str) -> dict:
    return json.loads((out.build_dir / "cfg" / f"{step}.json").read_text())


def test_param_default_cli_and_environment_precedence(write, tmp_path, monkeypatch, pipeline_text):
    oml = write("p.yaml", pipeline_text)
    monkeypatch.delenv("OSIRIS_PARAM_MIN_QTY", raising=False)
    default = compile_to_build(oml, tmp_path / "b1")
    assert "qty >= 1" in _cfg(default, "totals")["query"]
    monkeypatch.setenv("OSIRIS_PARAM_MIN_QTY", "5")
    from_env = compile_to_build(oml, tmp_path / "b2")
    assert "qty >= 5" in _cfg(from_env, "totals")["query"]
    from_cli = compile_to_build(oml, tmp_path / "b3", param_overrides={"min_qty": "7"})
    assert "qty >= 7" in _cfg(from_cli, "totals")["query"]
    assert from_cli.compiled.manifest.params == {"min_qty": 7}
    fps = {o.compiled.manifest.fingerprints.params for o in (default, from_env, from_cli)}
    assert len(fps) == 3


def test_whole_string_reference_keeps_the_type_and_env_references_stay():
    params = {"n": 3, "flag": True}
    out = substitute({"a": "${params.n}", "b": "x${params.flag}", "c": "${HOME}", "d": ["${params.n}"]}, params, "$")
    assert out == {"a": 3, "b": "xtrue", "c": "${HOME}", "d": [3]}


def test_required_param_without_value():
    with pytest.raises(UserInputError, match="has no default and was not given"):
        resolve_params({"day": {"type": "string"}}, {}, environ={})


def test_no_secret_reaches_any_compiled_file(write, tmp_path, monkeypatch):
    canary = "canary-Secret-9f31"
    monkeypatch.setenv("MYSQL_PW", canary)
    monkeypatch.setenv("SUPA_KEY", canary)
    conns = write(
        "osiris_connections.yaml",
        f"""
        connections:
          mysql:
            default: {{host: 127.0.0.1, user: root, password: "${{MYSQL_PW}}", database: shop}}
          supabase:
            main: {{url: "https://x.supabase.co", service_role_key: "{canary}", default: true}}
        """,
    )
    oml = write(
        "p.yaml",
        """
        oml_version: "0.1.0"
        name: secrets
        steps:
          - id: src
            component: mysql.extractor
            config: {connection: "@mysql.default", table: t}
          - id: load
            component: supabase.writer
            needs: [src]
            config: {connection: "@supabase", table: t, write_mode: append}
        """,
    )
    compile_to_build(oml, tmp_path / "build", connections_file=conns)
    files = [p for p in (tmp_path / "build").rglob("*") if p.is_file()]
    assert len(files) >= 4
    for p in files:
        assert canary not in p.read_text(), p
