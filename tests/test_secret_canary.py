"""A canary secret put in a connection appears in no file under the run dir and in no output."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest
from builders import driver_module, make_manifest, make_spec

from osiris.core.spec import ComponentSpec
from osiris.runtime.console import print_report
from osiris.runtime.resolve import load_connections_for_run, resolve_configs
from osiris.runtime.runner import Runner
from osiris.runtime.session import RunSession

CANARY = "canary-S3cr3t-7f1d9a"

DRIVER = textwrap.dedent(
    """
    import logging
    import pyarrow as pa


    class LeakyReader:
        def run(self, *, step_id, config, inputs, ctx):
            pw = config["resolved_connection"]["password"]
            ctx.log_event("connecting", dsn=f"mysql://app:{pw}@db.example/prod", note=f"using {pw}")
            ctx.log_metric("attempts", 1, detail=pw)
            logging.getLogger("leaky").error("login with %s", pw)
            (ctx.output_dir / "debug.txt").write_text(f"password was {pw}\\n")
            return {"df": pa.table({"id": [1, 2], "token_seen": [len(pw), 0]}), "note": f"pw={pw}"}


    class LeakyWriter:
        def run(self, *, step_id, config, inputs, ctx):
            pw = config["resolved_connection"]["password"]
            raise RuntimeError(f"Access denied for user app (password {pw!r}) at postgresql://app:{pw}@h/db")
    """
)


def spec(name: str, driver: str, modes: list[str]) -> ComponentSpec:
    return make_spec(
        name,
        driver,
        modes,
        secrets=["/resolved_connection/password"],
        x_connection={"family": "leaky", "schema": {"properties": {"port": {"type": "integer", "default": 1}}}},
    )


@pytest.fixture
def leaky_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    return driver_module(tmp_path, monkeypatch, "leaky_driver", DRIVER)


def test_canary_secret_never_reaches_disk_or_output(
    tmp_path: Path, leaky_module: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEAKY_PASSWORD", CANARY)
    conn_file = tmp_path / "osiris_connections.yaml"
    conn_file.write_text(
        "connections:\n  leaky:\n    main:\n      default: true\n      user: app\n      password: ${LEAKY_PASSWORD}\n"
    )
    components = {
        "leaky.reader": spec("leaky.reader", f"{leaky_module}:LeakyReader", ["read"]),
        "leaky.writer": spec("leaky.writer", f"{leaky_module}:LeakyWriter", ["write"]),
    }
    manifest = make_manifest(
        "leaky", [("read", components["leaky.reader"], []), ("write", components["leaky.writer"], ["read"])]
    )
    cfgs = {"read": {"connection": "@leaky.main"}, "write": {"connection": "@leaky"}}
    configs = resolve_configs(manifest, cfgs, components, load_connections_for_run(conn_file))
    assert configs["read"]["resolved_connection"] == {"user": "app", "password": CANARY, "port": 1}

    root = logging.getLogger()
    log_file = tmp_path / "run" / "driver.log"
    log_file.parent.mkdir()
    handler = logging.FileHandler(log_file)
    root.addHandler(handler)
    try:
        run = Runner(RunSession(manifest, configs, tmp_path / "run", components=components)).run()
    finally:
        root.removeHandler(handler)
        handler.close()
    print_report(run, as_json=False, verbose=True)
    print_report(run, as_json=True, verbose=True)

    assert run.status == "failed" and run.exit_code == 1
    assert [s.status for s in run.steps] == ["succeeded", "failed"]
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"events.jsonl", "metrics.jsonl", "run_card.json", "cleaned_config.json", "debug.txt", "driver.log"} <= names
    for path in files:
        assert CANARY.encode() not in path.read_bytes(), f"canary found in {path}"
    out = capsys.readouterr()
    assert CANARY not in out.out + out.err
    assert "Access denied" in out.err and "***" in out.err
    assert "***" in (tmp_path / "run" / "artifacts" / "read" / "debug.txt").read_text()
    assert "***" in log_file.read_text()
