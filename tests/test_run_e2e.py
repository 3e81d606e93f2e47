"""End to end: `osiris run` in a real subprocess over real files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from osiris_cli import run_osiris as osiris

from osiris.runtime.runcard import comparable_run_card

ROOT = Path(__file__).resolve().parents[1]


def run_dirs(cwd: Path, pipeline: str) -> list[Path]:
    return sorted((cwd / "runs" / pipeline).iterdir())


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "docs" / "examples", tmp_path / "docs" / "examples")
    return tmp_path


def test_quickstart_runs_twice_with_the_same_data_and_run_card(workdir: Path) -> None:
    first = osiris("run", "docs/examples/quickstart.yaml", cwd=workdir)
    assert first.returncode == 0, first.stderr
    assert "run card" in first.stdout and "output/quickstart/revenue.csv" in first.stdout
    csv_1 = (workdir / "output/quickstart/revenue.csv").read_bytes()
    second = osiris("run", "docs/examples/quickstart.yaml", cwd=workdir)
    assert second.returncode == 0, second.stderr
    assert (workdir / "output/quickstart/revenue.csv").read_bytes() == csv_1
    assert csv_1.startswith(b'"country","month","order_lines","items","revenue"\n')

    a, b = run_dirs(workdir, "quickstart")
    for d in (a, b):
        for name in ("manifest.yaml", "events.jsonl", "metrics.jsonl", "run_card.json"):
            assert (d / name).is_file(), name
        for step in ("orders", "revenue"):
            assert (d / "artifacts" / step / "output.parquet").is_file()
            assert (d / "artifacts" / step / "cleaned_config.json").is_file()
    card_a = json.loads((a / "run_card.json").read_text())
    card_b = json.loads((b / "run_card.json").read_text())
    assert card_a["run_id"] != card_b["run_id"]
    assert comparable_run_card(card_a) == comparable_run_card(card_b)
    revenue = next(s for s in card_a["steps"] if s["id"] == "revenue")
    assert revenue["status"] == "succeeded" and revenue["rows_in"] == 12 and revenue["rows_out"] == 6
    assert revenue["outputs"][0]["data_sha256"].startswith("sha256:")
    assert pq.read_table(a / "artifacts/revenue/output.parquet").equals(
        pq.read_table(b / "artifacts/revenue/output.parquet")
    )

    metrics = [json.loads(line) for line in (a / "metrics.jsonl").read_text().splitlines()]
    for step in ("orders", "revenue", "revenue_parquet", "revenue_csv"):
        names = {m["metric"] for m in metrics if m["step_id"] == step}
        assert {"rows_read", "rows_written", "duration_ms"} <= names
    events = [json.loads(line)["event"] for line in (a / "events.jsonl").read_text().splitlines()]
    assert events[0] == "run_start" and events[-1] == "run_complete"
    assert "drivers_registered" in events and events.count("inputs_resolved") == 4

    last = osiris("run", "--last-compile", "--json", cwd=workdir)
    assert last.returncode == 0, last.stderr
    out = json.loads(last.stdout)
    assert out["status"] == "succeeded" and len(out["steps"]) == 4


def test_running_a_manifest_directly(workdir: Path) -> None:
    compiled = osiris("compile", "docs/examples/quickstart.yaml", "--json", cwd=workdir)
    assert compiled.returncode == 0, compiled.stderr
    manifest = json.loads(compiled.stdout)["manifest"]
    done = osiris("run", manifest, "--runs-dir", "elsewhere", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert (workdir / "elsewhere" / "quickstart").is_dir()


@pytest.mark.parametrize("where", [[], ["--sandbox", "local"]], ids=["host", "sandbox"])
def test_a_cfg_edited_after_compiling_is_refused_before_anything_runs(workdir: Path, where: list[str]) -> None:
    compiled = osiris("compile", "docs/examples/quickstart.yaml", "--json", cwd=workdir)
    assert compiled.returncode == 0, compiled.stderr
    manifest = Path(json.loads(compiled.stdout)["manifest"])  # relative to workdir
    cfg = manifest.parent / "cfg" / "revenue_csv.json"
    (workdir / cfg).write_text((workdir / cfg).read_text().replace("revenue.csv", "elsewhere.csv"))
    done = osiris("run", manifest, *where, cwd=workdir)
    assert done.returncode == 2, done.stderr
    assert f"{cfg}" in done.stderr and "edited after compiling" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (workdir / "runs").exists() and not (workdir / "output").exists()


@pytest.mark.parametrize("where", [[], ["--sandbox", "local"]], ids=["host", "sandbox"])
def test_a_missing_variable_fails_the_run_at_its_start_and_leaves_a_run_card(workdir: Path, where: list[str]) -> None:
    (workdir / "osiris_connections.yaml").write_text(
        "connections:\n  mysql:\n    default: {host: 127.0.0.1, user: root, password: '${OSIRIS_TEST_NOT_SET_PW}'}\n"
    )
    (workdir / "p.yaml").write_text(
        'oml_version: "0.1.0"\nname: unset_var\nsteps:\n'
        '  - {id: extract, component: mysql.extractor, config: {connection: "@mysql.default", query: "SELECT 1"}}\n'
    )
    done = osiris("run", "p.yaml", *where, "--json", cwd=workdir, unset=["OSIRIS_TEST_NOT_SET_PW"])
    assert done.returncode == 2, done.stderr
    out = json.loads(done.stdout)
    assert out["status"] == "failed" and out["exit_code"] == 2
    assert out["error"]["type"] == "MissingVariableError" and "OSIRIS_TEST_NOT_SET_PW" in out["error"]["message"]
    assert out["error"]["hint"] == "export OSIRIS_TEST_NOT_SET_PW=... before running"
    card = json.loads((workdir / out["run_card"]).read_text())
    assert card["status"] == "failed" and [s["status"] for s in card["steps"]] == ["not_run"]
    events = [
        json.loads(line)["event"] for line in (workdir / out["run_dir"] / "events.jsonl").read_text().splitlines()
    ]
    assert events == ["run_start", "run_complete"]


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_sql_stops_the_run_with_step_failed_and_exit_1(workdir: Path) -> None:
    _write(
        workdir / "bad.yaml",
        """oml_version: "0.1.0"
name: bad_sql
steps:
  - id: orders
    component: filesystem.csv_extractor
    config: {path: docs/examples/data/orders.csv}
  - id: broken
    component: duckdb.processor
    needs: [orders]
    config: {query: "SELEC * FROM input_df"}
  - id: out
    component: filesystem.csv_writer
    needs: [broken]
    config: {path: out.csv}
""",
    )
    done = osiris("run", "bad.yaml", cwd=workdir)
    assert done.returncode == 1
    assert "step `broken` failed" in done.stderr and "SELEC" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    (run,) = run_dirs(workdir, "bad_sql")
    card = json.loads((run / "run_card.json").read_text())
    assert card["status"] == "failed"
    assert [s["status"] for s in card["steps"]] == ["succeeded", "failed", "not_run"]
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    failed = [e for e in events if e["event"] == "step_failed"]
    assert failed and failed[0]["step_id"] == "broken" and "SELEC" in failed[0]["error"]["message"]
    assert not (workdir / "out.csv").exists()

    verbose = osiris("run", "bad.yaml", "--verbose", cwd=workdir)
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr


def test_missing_input_file_fails_the_reading_step(workdir: Path) -> None:
    _write(
        workdir / "missing.yaml",
        """oml_version: "0.1.0"
name: missing_file
steps:
  - id: orders
    component: filesystem.csv_extractor
    config: {path: no/such/file.csv}
  - id: out
    component: filesystem.parquet_writer
    needs: [orders]
    config: {path: out.parquet}
""",
    )
    done = osiris("run", "missing.yaml", cwd=workdir)
    assert done.returncode == 1
    assert "step `orders` failed" in done.stderr and "no/such/file.csv" in done.stderr
    (run,) = run_dirs(workdir, "missing_file")
    card = json.loads((run / "run_card.json").read_text())
    assert [s["status"] for s in card["steps"]] == ["failed", "not_run"]


def test_three_way_join_gets_all_three_inputs(workdir: Path) -> None:
    _write(workdir / "data/customers.csv", "id,name,country_code\n1,Ada,GB\n2,Grace,US\n3,Linus,FI\n")
    _write(workdir / "data/countries.csv", "code,country\nGB,United Kingdom\nUS,United States\nFI,Finland\n")
    _write(workdir / "data/orders.csv", "id,customer_id,total\n10,1,5.5\n11,1,4.5\n12,2,7\n13,3,1\n")
    _write(
        workdir / "join.yaml",
        """oml_version: "0.1.0"
name: three_way
steps:
  - {id: customers, component: filesystem.csv_extractor, config: {path: data/customers.csv}}
  - {id: countries, component: filesystem.csv_extractor, config: {path: data/countries.csv}}
  - {id: orders, component: filesystem.csv_extractor, config: {path: data/orders.csv}}
  - id: joined
    component: duckdb.processor
    needs: [customers, countries, orders]
    config:
      query: |
        WITH totals AS (SELECT customer_id, sum(total) AS total FROM orders GROUP BY customer_id)
        SELECT c.name, k.country, t.total,
               rank() OVER (ORDER BY t.total DESC) AS position
        FROM customers c
        JOIN countries k ON k.code = c.country_code
        JOIN totals t ON t.customer_id = c.id
        ORDER BY position
  - id: out
    component: filesystem.csv_writer
    needs: [joined]
    config: {path: out/joined.csv}
""",
    )
    done = osiris("run", "join.yaml", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert (workdir / "out/joined.csv").read_text() == (
        '"name","country","total","position"\n'
        '"Ada","United Kingdom",10,1\n"Grace","United States",7,2\n"Linus","Finland",1,3\n'
    )
    (run,) = run_dirs(workdir, "three_way")
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    resolved = next(e for e in events if e["event"] == "inputs_resolved" and e["step_id"] == "joined")
    assert resolved["inputs"] == {
        "customers": {"rows": 3, "path": "artifacts/customers/output.parquet"},
        "countries": {"rows": 3, "path": "artifacts/countries/output.parquet"},
        "orders": {"rows": 4, "path": "artifacts/orders/output.parquet"},
    }


def test_sandbox_without_plugin_says_to_install_osiris_remote(workdir: Path) -> None:
    done = osiris("run", "docs/examples/quickstart.yaml", "--sandbox", "nosuchbox", cwd=workdir)
    assert done.returncode == 2
    assert "No sandbox `nosuchbox`" in done.stderr and "osiris-remote" in done.stderr


def test_help_imports_no_data_library() -> None:
    code = (
        "import sys\n"
        "from osiris.core.cli import main\n"
        "rc = main(['run', '--help'])\n"
        "heavy = [m for m in ('pyarrow', 'duckdb', 'pandas') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "--last-compile" in done.stdout and "--e2b-pass-env" in done.stdout
