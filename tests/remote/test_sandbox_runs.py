"""Runs in a sandbox: parity with the host, installs, secrets, faults and teardown.

Every sandbox here is fresh (new folder, new venv with our wheels); the third-party
dependencies come from the `local` sandbox's cached dependency layer (built on first use).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import misbehaving_worker
import pytest
from osiris_cli import compile_build
from parity import WHERE, by_step, load_run, run_everywhere

from osiris.core import wire
from osiris.remote.host import HostAdapter
from osiris.remote.plugins import local_plugin
from osiris.remote.sandbox import LocalSandbox
from osiris.runtime.runlog import RunListener
from osiris.runtime.sandbox_api import SandboxOptions

CANARY = "canary-Zq8-sandbox-4b1e0c"


def _card(runs: Path) -> tuple[dict, list[dict], Path]:
    run_dir = max(runs.glob("*/*"), key=lambda p: p.stat().st_mtime)
    card = json.loads((run_dir / "run_card.json").read_text())
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return card, events, run_dir


def _steps(card: dict) -> list[tuple]:
    return [
        (s["id"], s["status"], s["rows_in"], s["rows_out"], [o["data_sha256"] for o in s["outputs"]])
        for s in card["steps"]
    ]


def _installed(pip_log: str) -> set[str]:
    """The distributions a pip log says were installed (pip's `Successfully installed` or uv's ` + name==v`)."""
    names: set[str] = set()
    for line in pip_log.splitlines():
        if line.startswith("Successfully installed "):
            names |= {item.rsplit("-", 1)[0] for item in line.split()[2:]}
        elif line.startswith(" + "):
            names.add(line[3:].split("==")[0].strip())
    return names


def _sequence(events: list[dict]) -> dict[str | None, list[tuple]]:
    # `step_progress` events come once a second: how many depends on timing, not on where a step ran.
    return by_step(
        [(e["event"], e.get("step_id")) for e in events if e.get("origin") != "host" and e["event"] != "step_progress"]
    )


def test_quickstart_parity_host_local_and_e2b(quickstart_manifest, workdir, envd):
    runs = run_everywhere(quickstart_manifest, workdir, None)
    (host, host_events), (local, local_events), (e2b, e2b_events) = (load_run(runs[w]) for w in WHERE)
    local_dir, e2b_dir = runs["local"], runs["e2b"]
    assert _steps(host) == _steps(local) == _steps(e2b)
    assert all(s[1] == "succeeded" for s in _steps(host))
    assert _sequence(host_events) == _sequence(local_events) == _sequence(e2b_events)
    assert host["drivers_fingerprint"] == local["drivers_fingerprint"] == e2b["drivers_fingerprint"]

    for events in (local_events, e2b_events):
        verified = [e for e in events if e["event"] == "driver_file_verified"]
        assert {e["distribution"] for e in verified} == {
            "osiris-core",
            "osiris-runtime",
            "osiris-remote",
            "osiris-drivers-sql",
        }
        assert all(e["sha256_match"] for e in verified)
    for run_dir in (local_dir, e2b_dir):
        for rel in (
            "artifacts/_system/pip_install.log",
            "artifacts/_system/run_card.json",
            "metrics.jsonl",
            "artifacts/orders/cleaned_config.json",
            "artifacts/revenue/output.parquet",
        ):
            assert (run_dir / rel).is_file(), rel
        pip_log = (run_dir / "artifacts/_system/pip_install.log").read_text()
        assert _installed(pip_log) == {"osiris-core", "osiris-runtime", "osiris-remote", "osiris-drivers-sql"}
        assert "supabase" not in pip_log and "psycopg2" not in pip_log
    assert (workdir / "output/quickstart/revenue.parquet").is_file()
    assert e2b["sandbox"]["name"] == "e2b" and set(e2b["sandbox"]["timings"]) >= {
        "environment",
        "install",
        "registration",
    }
    assert not envd.running_pids(), "the worker in the stand-in sandbox was torn down"


def test_data_artifacts_come_back_only_when_asked_or_small(quickstart_manifest, workdir):
    opts = SandboxOptions(name="local", artifact_max_mb=0.0)
    assert local_plugin(quickstart_manifest, opts, connections_file=None, runs_dir=workdir / "r").exit_code == 0
    card, _, run_dir = _card(workdir / "r")
    assert not (run_dir / "artifacts/revenue/output.parquet").exists()
    assert "artifacts/revenue/output.parquet" in card["sandbox"]["downloaded"]["skipped"]
    assert (run_dir / "artifacts/revenue/cleaned_config.json").is_file()
    assert (run_dir / "run_card.json").is_file() and (run_dir / "artifacts/_system/pip_install.log").is_file()


SLOW_PIPELINE = """
oml_version: "0.1.0"
name: slow
steps:
  - id: orders
    component: filesystem.csv_extractor
    mode: read
    config: {path: docs/examples/data/orders.csv}
  - id: crunch
    component: duckdb.processor
    mode: transform
    needs: [orders]
    config:
      threads: 1
      query: |
        SELECT count(*) AS n FROM range(400000) a, range(400000) b WHERE (a.range * 7 + b.range) % 13 = 5
"""


def _adapter(manifest: Path, workdir: Path, *, worker_command: str | None = None, **opts) -> tuple[HostAdapter, list]:
    made: list[LocalSandbox] = []

    def factory() -> LocalSandbox:
        made.append(LocalSandbox())
        return made[-1]

    extra = {"worker_command": worker_command} if worker_command else {}
    adapter = HostAdapter(
        manifest,
        SandboxOptions(name="local", **opts),
        sandbox_factory=factory,
        connections_file=None,
        runs_dir=workdir / "runs",
        **extra,
    )
    return adapter, made


def _assert_failed_and_torn_down(workdir: Path, made: list, expected: str, step: str | None) -> str:
    card, events, _ = _card(workdir / "runs")
    message = card["error"]["message"]
    assert expected in message
    assert "worker exit code" in message
    if step is not None:
        assert f"step `{step}`" in message and card["error"]["step"] == step
    assert any(e["event"] == "sandbox_failed" for e in events)
    assert not made[0].root.exists(), "the sandbox folder was removed"
    assert made[0]._workers[0].returncode() is not None, "the worker is not running"
    return message


@pytest.fixture
def slow_manifest(workdir, tmp_path):
    """A pipeline whose second step, `crunch`, runs for minutes (a DuckDB cross join of 1.6e11 rows)."""
    (workdir / "slow.yaml").write_text(SLOW_PIPELINE)
    return compile_build("slow.yaml", tmp_path / "slow-build", cwd=workdir)


def test_worker_killed_mid_step_ends_the_run_clearly(slow_manifest, workdir):
    import signal
    import threading
    import time

    adapter, made = _adapter(slow_manifest, workdir)
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(adapter.run().exit_code))
    runner.start()
    # Wait until the slow step has started in the sandbox (its `step_start` event streamed to the host).
    deadline = time.monotonic() + 120
    started = False
    while not started and time.monotonic() < deadline and runner.is_alive():
        for events in (workdir / "runs").glob("*/*/events.jsonl"):
            started = any(
                json.loads(line).get("event") == "step_start" and json.loads(line).get("step_id") == "crunch"
                for line in events.read_text().splitlines()
            )
        time.sleep(0.1)
    assert started, "the slow step never started"
    pid = made[0]._workers[0].proc.pid
    os.kill(pid, signal.SIGKILL)
    runner.join(timeout=60)
    assert result and result[0] != 0
    message = _assert_failed_and_torn_down(workdir, made, "exited unexpectedly", "crunch")
    assert "exit code -9" in message
    assert "step `crunch`: started" in message, "the tail of the worker's stderr is shown"


def test_sandbox_timeout_ends_the_run_clearly(slow_manifest, workdir):
    adapter, made = _adapter(slow_manifest, workdir, timeout_s=20.0)
    assert adapter.run().exit_code != 0
    _assert_failed_and_torn_down(workdir, made, "timed out (the sandbox timeout is 20 s)", "crunch")


@pytest.mark.parametrize(
    ("mode", "expected", "step", "tail"),
    [
        ("garbage", "sent an invalid message", "orders", "sending garbage instead of running step orders"),
        ("unknown", "Teleport", "orders", "sending an unknown message type"),
        ("protocol-worker", "speaks another protocol", None, "claiming protocol version"),
        ("protocol-host", "refused the session", None, "passing the host's Prepare on as protocol version"),
    ],
)
def test_protocol_faults_end_the_run_clearly(quickstart_manifest, workdir, mode, expected, step, tail):
    command = f"venv/bin/python {misbehaving_worker.__file__} {mode}"
    adapter, made = _adapter(quickstart_manifest, workdir, worker_command=command)
    assert adapter.run().exit_code != 0
    message = _assert_failed_and_torn_down(workdir, made, expected, step)
    assert tail in message, "the tail of the worker's stderr is shown"
    if mode.startswith("protocol"):
        version = wire.PROTOCOL_VERSION
        assert str(version) in message and str(version + 1) in message, "both protocol versions are named"


def test_canary_secret_never_reaches_a_file(workdir, tmp_path, monkeypatch):
    pipeline = workdir / "canary.yaml"
    pipeline.write_text(
        """
oml_version: "0.1.0"
name: canary
steps:
  - id: extract
    component: mysql.extractor
    mode: read
    config: {connection: "@mysql.default", query: "SELECT 1 AS one"}
  - id: shape
    component: duckdb.processor
    mode: transform
    needs: [extract]
    config: {query: "SELECT * FROM input_df"}
"""
    )
    (workdir / "osiris_connections.yaml").write_text(
        "connections:\n  mysql:\n    default:\n      host: 127.0.0.1\n      port: 3306\n"
        "      user: osiris_canary_nobody\n      password: ${OSIRIS_CANARY_PW}\n      database: mysql\n"
    )
    monkeypatch.setenv("OSIRIS_CANARY_PW", CANARY)
    manifest = compile_build(pipeline, tmp_path / "b", cwd=workdir)
    made: list[LocalSandbox] = []

    def factory() -> LocalSandbox:
        made.append(LocalSandbox(keep=True))
        return made[-1]

    adapter = HostAdapter(
        manifest,
        SandboxOptions(name="local"),
        sandbox_factory=factory,
        connections_file=workdir / "osiris_connections.yaml",
        runs_dir=workdir / "runs",
    )
    adapter.run()
    sandbox_root = made[0].root
    try:
        scanned = 0
        for base in (sandbox_root, workdir / "runs"):
            for path in base.rglob("*"):
                if path.is_file() and not path.is_symlink():
                    scanned += 1
                    assert CANARY.encode() not in path.read_bytes(), f"canary found in {path}"
        assert scanned > 20
    finally:
        import shutil

        shutil.rmtree(sandbox_root, ignore_errors=True)
    assert os.environ["OSIRIS_CANARY_PW"] == CANARY


def _cold_then_warm(manifest: Path, workdir: Path) -> tuple[list[tuple], dict[str, list[str]]]:
    """A run with an empty cache, then one with the cache it left: (card, events, run dir) of each, and what
    each run's display was told while its sandbox was built."""
    watchers = {"cold": _Watcher(), "warm": _Watcher()}
    runs = []
    for name, watcher in watchers.items():
        opts = SandboxOptions(name="local")
        result = local_plugin(manifest, opts, runs_dir=workdir / name, listeners=[watcher], connections_file=None)
        assert result.exit_code == 0
        runs.append(_card(workdir / name))
    return runs, {run: [s[2] for s in w.seen if s[0] == "stage"] for run, w in watchers.items()}


def _isolated_caches(workdir: Path, monkeypatch) -> tuple[Path, Path]:
    """Every cache under a new `OSIRIS_CACHE_DIR` and a new `$HOME`; the two folders."""
    cache, home = workdir / "cache", workdir.parent / "home"
    home.mkdir()
    monkeypatch.setenv("OSIRIS_CACHE_DIR", str(cache))
    monkeypatch.setenv("HOME", str(home))
    for name in ("PIP_CACHE_DIR", "UV_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    return cache, home


def _check_code_layer(runs: list[tuple], cache: Path) -> None:
    """Both runs import the osiris wheels from one code layer: installed (and byte-compiled) by the first."""
    code = []
    for i, (card, events, run_dir) in enumerate(runs):
        assert all(s["status"] == "succeeded" for s in card["steps"])
        created = next(e for e in events if e["event"] == "sandbox_created")
        code.append(created["code_layer"])
        pip_log = (run_dir / "artifacts/_system/pip_install.log").read_text()
        commands = [line for line in pip_log.splitlines() if line.startswith("$ ")]
        assert len(commands) == 1 and "--no-index --no-deps" in commands[0], "one install call, osiris wheels only"
        assert "/bin/uv pip install --python " in commands[0] and " --target " in commands[0], "the layer's uv"
        assert ("installed now" in pip_log) == (i == 0) and ("installed by an earlier run" in pip_log) == (i == 1)
        assert _installed(pip_log) == {"osiris-core", "osiris-runtime", "osiris-remote", "osiris-drivers-sql"}
        assert all(e["sha256_match"] for e in events if e["event"] == "driver_file_verified")
    assert code[0]["hash"] == code[1]["hash"] and not code[0]["cached"] and code[1]["cached"]
    site = cache / "sandbox-layers" / code[0]["hash"] / "site-packages"
    assert list((site / "osiris" / "core" / "__pycache__").glob("wire.*.pyc")), "byte-compiled once, in the layer"


def test_local_sandbox_links_its_dependency_layer_from_the_host_once_then_reuses_it(
    quickstart_manifest, workdir, monkeypatch
):
    """A cold cache: the layer is the host's own installed distributions, hard-linked (no index, no resolver);
    the osiris wheels are installed once into a code layer. Then a warm run reuses both."""
    from importlib import metadata

    cache, home = _isolated_caches(workdir, monkeypatch)
    runs, building = _cold_then_warm(quickstart_manifest, workdir)
    layers = [next(e for e in events if e["event"] == "sandbox_created")["dependency_layer"] for _, events, _ in runs]
    assert layers[0]["hash"] == layers[1]["hash"] and not layers[0]["cached"] and layers[1]["cached"]
    assert any(d.startswith("linking ") and "from the host" in d for d in building["cold"]), building["cold"]
    assert not any(d.startswith("linking ") for d in building["warm"]), "a cached layer links nothing"
    layer = cache / "sandbox-layers" / layers[0]["hash"]
    info = json.loads((layer / "layer.json").read_text())
    assert info["source"] == "host"
    pins = dict(p.split("==") for p in info["pins"])
    assert pins["pyarrow"] == metadata.version("pyarrow") and pins["duckdb"] == metadata.version("duckdb")
    assert not {"pymysql", "connectorx", "psycopg2-binary", "psycopg2"} & set(pins), "only the named extras"
    host_file = Path(metadata.distribution("duckdb").locate_file("duckdb/__init__.py"))
    linked = layer / "site-packages" / "duckdb" / "__init__.py"
    assert linked.read_bytes() == host_file.read_bytes()
    assert os.path.samefile(linked, host_file) or linked.stat().st_dev != host_file.stat().st_dev, "a hard link"
    assert list((layer / "site-packages" / "duckdb" / "__pycache__").glob("__init__.*.pyc")), "byte-compiled"
    assert (runs[0][2] / "artifacts/_system/layer_build.log").is_file()
    assert not (runs[1][2] / "artifacts/_system/layer_build.log").exists()
    _check_code_layer(runs, cache)
    assert not (home / ".cache").exists(), f"nothing cached under $HOME: {sorted(home.rglob('*'))}"


def test_local_sandbox_builds_its_dependency_layer_with_pip_when_not_from_the_host(
    quickstart_manifest, workdir, monkeypatch
):
    """`OSIRIS_LAYER_FROM_HOST=0` (as when the host lacks a requirement): pip builds the layer from the index
    (slow: pyarrow, duckdb, ... into an empty cache). Every cache goes under `OSIRIS_CACHE_DIR`."""
    cache, home = _isolated_caches(workdir, monkeypatch)
    monkeypatch.setenv("OSIRIS_LAYER_FROM_HOST", "0")
    runs, building = _cold_then_warm(quickstart_manifest, workdir)
    cold, warm = (next(e for e in ev if e["event"] == "sandbox_created")["dependency_layer"] for _, ev, _ in runs)
    assert any(d.startswith("Collecting pyarrow") for d in building["cold"]), "the display says what pip installs"
    assert not any(d.startswith("Collecting") for d in building["warm"]), "a cached layer installs nothing"
    assert cold["hash"] == warm["hash"] and not cold["cached"] and warm["cached"]
    layer = cache / "sandbox-layers" / cold["hash"]
    info = json.loads((layer / "layer.json").read_text())
    assert info["source"] == "pip"
    assert {"pip", "duckdb>=1.0", "msgspec>=0.19"} <= set(info["requirements"])
    assert not [r for r in info["requirements"] if r.startswith(("pymysql", "connectorx", "psycopg2"))], (
        "the layer holds only the extras the manifest names (duckdb)"
    )
    assert "Successfully installed" in (layer / "build.log").read_text()
    assert (layer / "site-packages" / "pyarrow").is_dir() and (layer / "site-packages" / "duckdb").is_dir()
    assert (runs[0][2] / "artifacts/_system/layer_build.log").is_file()
    _check_code_layer(runs, cache)
    assert sorted(p.name.startswith("osiris-") for p in (cache / "sandbox-layers").iterdir() if p.name[0] != ".") == [
        False,
        True,
    ], "one dependency layer and one code layer"
    # Only caches are asked of: pip runs `rustc --version` for its user agent, and rustup's proxy of it
    # writes `~/.rustup/settings.toml` where Rust is installed.
    assert not (home / ".cache").exists(), f"nothing cached under $HOME: {sorted(home.rglob('*'))}"
    assert {"uv", "wheels"} <= {p.name for p in cache.iterdir()}, (
        "uv's cache is under Osiris's (pip's too, when it caches)"
    )


class _Watcher(RunListener):
    """What a display on the host is told during a sandboxed run, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def on_event(self, record: dict) -> None:
        self.seen.append(("event", record["event"], record.get("step_id"), record))

    def on_step_progress(self, progress) -> None:
        self.seen.append(("progress", progress.step_id, progress))

    def on_stage(self, stage: str, detail: str) -> None:
        self.seen.append(("stage", stage, detail))


def test_a_sandbox_run_shows_live_rows_and_its_build_stage(quickstart_manifest, workdir):
    """The worker's progress reaches the host's display while each step runs, and the sandbox's build is a stage."""
    import io

    from osiris.runtime.display import DisplayListener, PlainDisplay

    watcher, shown = _Watcher(), io.StringIO()
    listeners = [watcher, DisplayListener(PlainDisplay(shown, interval_s=0))]
    result = local_plugin(
        quickstart_manifest,
        SandboxOptions(name="local"),
        connections_file=None,
        runs_dir=workdir / "runs",
        listeners=listeners,
    )
    assert result.exit_code == 0
    seen = watcher.seen
    completes = {s[2]: i for i, s in enumerate(seen) if s[0] == "event" and s[1] == "step_complete"}
    size = (workdir / "docs/examples/data/orders.csv").stat().st_size
    for step in ("orders", "revenue", "revenue_parquet", "revenue_csv"):
        live = [i for i, s in enumerate(seen) if s[0] == "progress" and s[1] == step and s[2].rows > 0]
        assert live and live[0] < completes[step], f"live rows of `{step}` came before it completed"
    orders = [s[2] for s in seen if s[0] == "progress" and s[1] == "orders"]
    assert orders[-1].total_bytes == size and orders[-1].bytes == size, "the CSV's size is its total"
    stages = [s[3] for s in seen if s[0] == "event" and s[1] == "sandbox_stage"]
    assert [s["title"] for s in stages] == ["building the sandbox environment", "sandbox environment ready"]
    assert (
        stages[-1]["seconds"] > 0
        and completes
        and seen.index(("event", "sandbox_stage", None, stages[-1])) < min(completes.values())
    )
    details = [s[2] for s in seen if s[0] == "stage"]
    assert any(d.startswith("installing osiris-core==") for d in details), details
    text = shown.getvalue()
    assert "  sandbox: building the sandbox environment" in text and "  orders: 12 rows" in text
    assert "\x1b" not in text
