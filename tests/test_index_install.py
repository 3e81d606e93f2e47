"""Osiris installed by name from a package index, as a new user installs it, then run in `--sandbox local`.

The packages of this checkout and the example component package (examples/acme-osiris-upper)
are built once (`osiris_dists`) into a PEP 503 index served over HTTP on 127.0.0.1. A fresh
venv (no checkout on its path, started from a folder outside the checkout) installs them by
name from it, the index consulted first, third-party packages from the default index (uv,
whose cache keeps this fast). That host then runs pipelines on itself and in `--sandbox
local`, whose osiris wheels the host downloads by name and version from the index the user
configured and checks against its own code before anything is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import flagship
import pytest
from databases import postgres_connect
from testkit import _script

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "acme-osiris-upper"
pytestmark = pytest.mark.slow

HOST_INSTALL = [
    "osiris-remote",
    "osiris-compiler",
    "osiris-drivers-sql[duckdb,mysql]",
    "osiris-drivers-supabase[postgres,http]",
    "acme-osiris-upper",
]

UPPER_PIPELINE = """oml_version: "0.1.0"
name: shout
steps:
  - id: orders
    component: filesystem.csv_extractor
    mode: read
    config: {path: docs/examples/data/orders.csv}
  - id: shout
    component: acme.upper
    mode: transform
    needs: [orders]
    config: {columns: [country]}
  - id: out
    component: filesystem.parquet_writer
    mode: write
    needs: [shout]
    config: {path: output/shout.parquet}
"""


def _uv() -> str:
    return _script("build_dists").tool("uv")


@pytest.fixture(scope="module")
def index_files(osiris_dists, tmp_path_factory) -> Path:
    """The folder of every distribution the index serves: ours and the example component package's."""
    folder = tmp_path_factory.mktemp("index-files")
    for f in osiris_dists.iterdir():
        shutil.copy2(f, folder / f.name)
    _script("build_dists").build(folder, [EXAMPLE])
    return folder


@pytest.fixture(scope="module")
def index(index_files, tmp_path_factory):
    """The index URL (`http://127.0.0.1:<port>/simple`)."""
    pkg_index = _script("package_index")
    root = tmp_path_factory.mktemp("index")
    pkg_index.write_index(index_files, root)
    with pkg_index.serve(root) as url:
        yield url


@pytest.fixture(scope="module")
def host(index, tmp_path_factory) -> Path:
    """A fresh venv with Osiris and the example component installed by name from the index."""
    venv = tmp_path_factory.mktemp("host") / "venv"
    subprocess.run([_uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    proc = subprocess.run(
        [
            _uv(),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            "--extra-index-url",
            index,
            # uv's cache knows wheels by their URL: one of an earlier session on the same port is stale
            *(f"--refresh-package={name.split('[')[0]}" for name in [*HOST_INSTALL, "osiris-core", "osiris-runtime"]),
            *HOST_INSTALL,
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    probe = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import osiris.runtime, sys; print(osiris.runtime.__file__); print(sys.path)",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=venv.parent,
    ).stdout
    assert str(ROOT) not in probe, "the host must not see the checkout"
    return venv


@pytest.fixture(scope="module")
def builds(host, tmp_path_factory) -> dict[str, Path]:
    """The quickstart and the `acme.upper` pipeline compiled once by the host: name -> manifest."""
    folder = tmp_path_factory.mktemp("builds")
    (folder / "shout.yaml").write_text(UPPER_PIPELINE)
    shutil.copy(ROOT / "docs" / "examples" / "quickstart.yaml", folder / "quickstart.yaml")
    return {name: compiled(host, f"{name}.yaml", folder) for name in ("quickstart", "shout")}


@pytest.fixture(scope="module")
def quickstart_on_host(host, builds, tmp_path_factory) -> list[tuple]:
    """The quickstart run once on the host (installed from the index): its steps' hashes."""
    cwd = tmp_path_factory.mktemp("host-run")
    shutil.copytree(ROOT / "docs" / "examples" / "data", cwd / "docs" / "examples" / "data")
    proc = osiris(host, "run", str(builds["quickstart"]), "--runs-dir", "runs", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return hashes(last_run(cwd / "runs")[0])


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """A folder outside the checkout holding the quickstart and its data; osiris caches of its own
    for built and downloaded wheels (the shared dependency layers are kept)."""
    folder = tmp_path / "work"
    shutil.copytree(ROOT / "docs" / "examples" / "data", folder / "docs" / "examples" / "data")
    monkeypatch.setenv("OSIRIS_WHEEL_CACHE", str(tmp_path / "wheel-cache"))
    for name in ("OSIRIS_WHEELHOUSE", "OSIRIS_INDEX_URL", "PIP_INDEX_URL", "PYTHONPATH"):
        monkeypatch.delenv(name, raising=False)
    return folder


def osiris(venv: Path, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "osiris"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )


def compiled(venv: Path, pipeline: str, cwd: Path, *extra: str) -> Path:
    proc = osiris(venv, "compile", pipeline, "--out", "build", *extra, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return next((cwd / "build").rglob("manifest.yaml"))


def last_run(runs: Path) -> tuple[dict, list[dict], Path]:
    run_dir = max(runs.glob("*/*"), key=lambda p: p.stat().st_mtime)
    card = json.loads((run_dir / "run_card.json").read_text())
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return card, events, run_dir


def hashes(card: dict) -> list[tuple]:
    return [(s["id"], s["status"], s["rows_out"], [o["data_sha256"] for o in s["outputs"]]) for s in card["steps"]]


def sandbox_run(venv: Path, manifest: Path, cwd: Path, *extra: str, env: dict[str, str] | None = None):
    proc = osiris(
        venv, "run", str(manifest), "--sandbox", "local", "--runs-dir", "sandbox-runs", *extra, cwd=cwd, env=env
    )
    return proc


def assert_installed_from_the_index(events: list[dict], run_dir: Path, index: str, expected: set[str]) -> None:
    (created,) = [e for e in events if e["event"] == "sandbox_created"]
    assert {p.split("==")[0] for p in created["from_index"]} == expected
    assert created["index"] == index
    verified = {e["distribution"]: e["sha256_match"] for e in events if e["event"] == "driver_file_verified"}
    assert verified == dict.fromkeys(expected, True)
    log = (run_dir / "artifacts" / "_system" / "pip_install.log").read_text()
    assert f"--index-url {index}" in log and "--no-index --no-deps" in log
    assert "/opt/" not in log.split("--no-index")[0], "no other configured source was consulted"


BASE = {"osiris-core", "osiris-runtime", "osiris-remote"}


@pytest.mark.parametrize("configured_by", ["--index-url", "OSIRIS_INDEX_URL", "pip configuration file"])
def test_a_host_installed_from_the_index_runs_the_quickstart_in_a_local_sandbox(
    host, index, builds, quickstart_on_host, work, configured_by
):
    manifest = builds["quickstart"]
    extra, env = (), {}
    if configured_by == "--index-url":
        extra = ("--index-url", index)
    elif configured_by == "OSIRIS_INDEX_URL":
        env = {"OSIRIS_INDEX_URL": index}
    else:  # pip's own configuration: what `pip install` on this host uses too
        conf = work / "pip.conf"
        conf.write_text(f"[global]\nindex-url = {index}\nextra-index-url = https://pypi.org/simple\n")
        env = {"PIP_CONFIG_FILE": str(conf)}
    proc = sandbox_run(host, manifest, work, *extra, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    card, events, run_dir = last_run(work / "sandbox-runs")
    assert hashes(card) == quickstart_on_host
    assert card["sandbox"]["options"]["index_url"] == (index if configured_by == "--index-url" else None)
    assert_installed_from_the_index(events, run_dir, index, BASE | {"osiris-drivers-sql"})


@pytest.mark.parametrize("absent", ["osiris-drivers-sql", "osiris-core"])
def test_an_index_without_the_named_version_is_exit_2_naming_distribution_version_and_index(
    host, index_files, builds, work, tmp_path, absent
):
    pkg_index = _script("package_index")
    partial = tmp_path / "partial-files"
    partial.mkdir()
    for f in index_files.iterdir():
        if not f.name.startswith(absent.replace("-", "_") + "-"):
            shutil.copy2(f, partial / f.name)
    pkg_index.write_index(partial, tmp_path / "partial")
    manifest = builds["quickstart"]
    version = subprocess.run(
        [str(host / "bin" / "python"), "-c", f"from importlib.metadata import version; print(version('{absent}'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with pkg_index.serve(tmp_path / "partial") as url:
        proc = sandbox_run(host, manifest, work, "--index-url", url)
    assert proc.returncode == 2, proc.stderr
    assert f"`{absent}=={version}`" in proc.stderr and url in proc.stderr and "does not have" in proc.stderr
    _, events, run_dir = last_run(work / "sandbox-runs")
    log = (run_dir / "artifacts" / "_system" / "pip_install.log").read_text()
    assert f"{absent}=={version}" in log and "No matching distribution" in log
    assert not any(e["event"] == "sandbox_created" for e in events), "no sandbox was made"


def test_an_index_serving_other_code_under_the_hosts_version_is_refused(host, index_files, builds, work, tmp_path):
    """A wheel of the same name and version but other code (a hijacked or republished name) never reaches the sandbox."""
    src = tmp_path / "tampered"
    shutil.copytree(EXAMPLE, src)
    driver = src / "src" / "acme_osiris_upper" / "driver.py"
    driver.write_text(driver.read_text().replace("pc.utf8_upper", "pc.utf8_lower"))
    files = tmp_path / "tampered-files"
    files.mkdir()
    for f in index_files.iterdir():
        if not f.name.startswith("acme_osiris_upper-"):
            shutil.copy2(f, files / f.name)
    _script("build_dists").build(files, [src])
    pkg_index = _script("package_index")
    pkg_index.write_index(files, tmp_path / "tampered-index")
    manifest = builds["shout"]
    with pkg_index.serve(tmp_path / "tampered-index") as url:
        proc = sandbox_run(host, manifest, work, "--index-url", url)
    assert proc.returncode == 2, proc.stderr
    assert "`acme-osiris-upper==0.1.0`" in proc.stderr and "is not the code installed on the host" in proc.stderr


def test_a_third_party_component_from_the_index_runs_on_the_host_and_in_a_local_sandbox(host, index, builds, work):
    version = osiris(host, "--version", cwd=work).stdout.splitlines()
    assert "acme-osiris-upper 0.1.0" in version
    listed = json.loads(osiris(host, "components", "list", "--json", cwd=work).stdout)
    (upper,) = [c for c in listed["components"] if c["name"] == "acme.upper"]
    assert upper["distribution"] == "acme-osiris-upper" and listed["failures"] == []
    doctor = subprocess.run([str(host / "bin" / "osiris-remote"), "doctor", "--json"], capture_output=True, text=True)
    assert "acme-osiris-upper" in doctor.stdout, doctor.stdout[-2000:]

    manifest = builds["shout"]
    on_host = osiris(host, "run", str(manifest), "--runs-dir", "host-runs", cwd=work)
    assert on_host.returncode == 0, on_host.stderr
    host_out = (work / "output" / "shout.parquet").read_bytes()
    proc = sandbox_run(host, manifest, work, "--index-url", index, "--download-data")
    assert proc.returncode == 0, proc.stderr[-3000:]
    host_card, _, _ = last_run(work / "host-runs")
    card, events, run_dir = last_run(work / "sandbox-runs")
    assert hashes(card) == hashes(host_card)
    assert (work / "output" / "shout.parquet").read_bytes() == host_out
    assert card["environment"]["distributions"]["acme-osiris-upper"] == "0.1.0"
    assert card["sandbox"]["host_environment"]["distributions"]["acme-osiris-upper"] == "0.1.0"
    assert_installed_from_the_index(events, run_dir, index, BASE | {"acme-osiris-upper"})
    rows = subprocess.run(
        [
            str(host / "bin" / "python"),
            "-c",
            "import pyarrow.parquet as pq; print(pq.read_table('output/shout.parquet').column('country').to_pylist())",
        ],
        capture_output=True,
        text=True,
        cwd=work,
        check=True,
    ).stdout
    assert rows.strip().startswith("[") and rows == rows.upper()


def test_the_example_packages_own_tests_pass_where_it_is_installed_from_the_index(host, work):
    subprocess.run(
        [_uv(), "pip", "install", "--quiet", "--python", str(host / "bin" / "python"), "pytest>=8"], check=True
    )
    proc = subprocess.run(
        [str(host / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        capture_output=True,
        text=True,
        cwd=work,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout


@pytest.mark.mysql
@pytest.mark.postgres
def test_a_host_installed_from_the_index_runs_the_flagship_in_a_local_sandbox_as_on_the_host(
    host, index, work, new_mysql_db, new_pg_db
):
    source = new_mysql_db("osiris_index_flag")
    flagship.fill_source(source)
    warehouses = {where: new_pg_db(f"osiris_index_{where}").name for where in ("host", "sandbox")}
    shutil.copy(flagship.EXAMPLE, work / "flagship.yaml")
    env = dict(flagship.ENV)
    conns = {
        where: flagship.write_connections(work / f"conn_{where}.yaml", mysql_database=source.name, pg_database=db)
        for where, db in warehouses.items()
    }
    manifest = compiled(host, "flagship.yaml", work)
    on_host = osiris(
        host, "run", str(manifest), "--runs-dir", "host-runs", "--connections", str(conns["host"]), cwd=work, env=env
    )
    assert on_host.returncode == 0, on_host.stderr
    proc = sandbox_run(host, manifest, work, "--index-url", index, "--connections", str(conns["sandbox"]), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    host_card, _, _ = last_run(work / "host-runs")
    card, events, run_dir = last_run(work / "sandbox-runs")
    assert hashes(card) == hashes(host_card) and len(card["steps"]) == 4
    tables = {}
    for where, db in warehouses.items():
        con = postgres_connect(db)
        with con.cursor() as cur:
            cur.execute("SELECT * FROM revenue_by_month ORDER BY 1, 4")
            tables[where] = cur.fetchall()
        con.close()
    assert tables["host"] == tables["sandbox"] and len(tables["host"]) == card["steps"][2]["rows_out"]
    assert_installed_from_the_index(events, run_dir, index, BASE | {"osiris-drivers-sql", "osiris-drivers-supabase"})
