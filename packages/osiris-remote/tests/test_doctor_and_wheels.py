"""`osiris-remote doctor` output and the wheel plan for a manifest."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from osiris_cli import compile_build

from osiris.remote import dists, wheels

ROOT = Path(__file__).resolve().parents[3]


def _doctor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "osiris.remote.cli", "doctor", *args], capture_output=True, text=True, timeout=120
    )


def test_doctor_json_reports_every_check():
    proc = _doctor("--json")
    report = json.loads(proc.stdout)
    names = [c["name"] for c in report["checks"]]
    assert names == ["python", "distributions", "drivers", "arrow", "duckdb"]
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["python"]["ok"]
    assert by_name["arrow"]["ok"] and by_name["duckdb"]["ok"]
    assert "osiris-core" in by_name["distributions"]["distributions"]
    assert len(by_name["distributions"]["distributions"]["osiris-core"]["sha256"]) == 64
    assert "duckdb.processor" in by_name["drivers"]["drivers"]
    assert proc.returncode == (0 if report["ok"] else 1)


def test_doctor_human_output_has_one_line_per_check():
    proc = _doctor()
    lines = proc.stdout.splitlines()
    for name in ("python", "distributions", "drivers", "arrow", "duckdb"):
        assert any(line.startswith(("[ok  ] " + name, "[FAIL] " + name)) for line in lines), proc.stdout
    assert lines[-1] in ("all checks passed", "some checks failed")


def test_tree_hash_ignores_bytecode_and_sees_content(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    first = dists.tree_sha256(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"junk")
    assert dists.tree_sha256(tmp_path) == first
    (tmp_path / "a.py").write_text("x = 2\n")
    assert dists.tree_sha256(tmp_path) != first


def test_a_built_wheel_holds_the_same_code_as_the_source(tmp_path):
    project = ROOT / "packages" / "osiris-core"
    wheel = wheels.build_wheel(project, tmp_path / "w")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(tmp_path / "x")
    assert dists.tree_sha256(tmp_path / "x" / "osiris" / "core") == dists.distribution_sha256("osiris-core")


@pytest.mark.parametrize("native", [True, False])
def test_the_sql_drivers_wheel_carries_the_row_parser_only_when_built_for_the_sandbox_platform(
    tmp_path, monkeypatch, native
):
    import sysconfig

    monkeypatch.setattr(wheels, "_host_builds_for_sandbox", lambda: native)
    wheel = wheels.build_wheel(ROOT / "packages" / "osiris-drivers-sql", tmp_path / "w")
    with zipfile.ZipFile(wheel) as z:
        parsers = [n for n in z.namelist() if n.startswith("osiris/drivers/sql/_mysql_rows") and n.endswith(".so")]
    if native:
        platform_tag = sysconfig.get_platform().replace("-", "_").replace(".", "_")
        assert wheel.name.endswith(f"-cp311-abi3-{platform_tag}.whl")
        assert parsers == ["osiris/drivers/sql/_mysql_rows.abi3.so"]
    else:
        assert wheel.name.endswith("-py3-none-any.whl") and parsers == []


def test_the_plan_names_exactly_the_manifests_drivers(tmp_path, monkeypatch):
    pytest.importorskip("osiris.compiler")
    monkeypatch.setenv("OSIRIS_WHEEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(ROOT)
    from osiris.core.manifest import load_manifest

    manifest = load_manifest(compile_build("docs/examples/quickstart.yaml", tmp_path / "build", cwd=ROOT))
    plan = wheels.plan_wheels(manifest)
    assert plan.base == [f"{d}=={dists.installed()[d]}" for d in wheels.BASE_DISTRIBUTIONS]
    assert [p.split("==")[0] for p in plan.drivers] == ["osiris-drivers-sql"]
    assert set(plan.wheels) == {"osiris-core", "osiris-runtime", "osiris-remote", "osiris-drivers-sql"}
    assert "osiris-drivers-supabase" not in plan.wheels
    again = wheels.plan_wheels(manifest)
    assert again.wheels == plan.wheels, "wheels are cached by source hash, not rebuilt"
    names = {r.split(">")[0].split("<")[0].split("=")[0].split(";")[0].strip() for r in plan.requirements}
    assert plan.extras == {"osiris-drivers-sql": ["duckdb"]}, "the quickstart uses duckdb.processor only"
    assert (
        plan.install_spec(plan.drivers[0]) == f"osiris-drivers-sql[duckdb]=={dists.installed()['osiris-drivers-sql']}"
    )
    assert {"msgspec", "pyarrow", "duckdb"} <= names, "the layer holds the wheels' dependencies"
    assert not names & {"e2b", "psycopg2-binary", "supabase"}, "no host-only or unnamed-driver dependencies"
    assert not names & {"pymysql", "connectorx"}, "no dependencies of extras the manifest does not name"
    assert not any(n.startswith("osiris") for n in names)


SPEC = """name: {name}
version: 0.1.0
modes: [transform]
configSchema: {{type: object}}
x-runtime: {{driver: "{package}.driver:D"}}
"""


def test_the_doctor_lists_third_party_distributions_and_fails_on_a_name_clash(tmp_path, monkeypatch):
    from builders import component_distribution

    from osiris.core.discovery import ComponentRegistry
    from osiris.core.errors import ComponentError
    from osiris.remote import doctor

    for dist in ("acme-doc-one", "acme-doc-two"):
        package = dist.replace("-", "_")
        component_distribution(
            tmp_path / dist, monkeypatch, dist, "2.0.1", {"c.yaml": SPEC.format(name="acme.same", package=package)}
        )
        (tmp_path / dist / package / "driver.py").write_text(
            "class D:\n    def run(self, **kw):\n        return None\n"
        )
    listed = doctor.check_distributions()["distributions"]
    assert listed["acme-doc-one"]["version"] == "2.0.1" and len(listed["acme-doc-one"]["sha256"]) == 64
    assert listed["acme-doc-one"]["sha256"] == dists.tree_sha256(tmp_path / "acme-doc-one" / "acme_doc_one")
    drivers = doctor.check_drivers()
    with pytest.raises(ComponentError) as raised:
        ComponentRegistry.discover().get("acme.same")
    assert not drivers["ok"] and str(raised.value) in drivers["provider_failures"]


def _pipless_python(where: Path) -> str:
    """The interpreter of a venv made without pip (as `uv venv` makes them)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    assert subprocess.run([python, "-c", "import pip"], capture_output=True).returncode != 0
    return str(python)


def test_without_hatchling_or_pip_in_the_environment_the_wheel_is_built_by_the_base_pythons_pip(tmp_path, monkeypatch):
    """An environment installed without the development tools, in a venv without pip: the base Python's pip builds."""
    base = getattr(sys, "_base_executable", sys.executable)
    if subprocess.run([base, "-c", "import pip"], capture_output=True).returncode != 0:
        pytest.skip("the base Python has no pip")
    monkeypatch.setitem(sys.modules, "hatchling.builders.wheel", None)  # import fails
    monkeypatch.setattr(sys, "executable", _pipless_python(tmp_path / "venv"))
    monkeypatch.setattr(wheels, "_PIP_FOUND", [])
    wheel = wheels.build_wheel(ROOT / "packages" / "osiris-core", tmp_path / "w")
    assert wheel.name.startswith("osiris_core-") and wheel.suffix == ".whl"
    assert wheels._PIP_FOUND[0] == base
    with zipfile.ZipFile(wheel) as z:
        z.extractall(tmp_path / "x")
    assert dists.tree_sha256(tmp_path / "x" / "osiris" / "core") == dists.distribution_sha256("osiris-core")


def test_with_no_builder_at_all_the_error_says_what_is_missing(tmp_path, monkeypatch):
    from osiris.core.errors import UserInputError

    python = _pipless_python(tmp_path / "venv")
    monkeypatch.setitem(sys.modules, "hatchling.builders.wheel", None)
    monkeypatch.setattr(sys, "executable", python)
    monkeypatch.setattr(sys, "_base_executable", python, raising=False)
    monkeypatch.setattr(wheels, "_PIP_FOUND", [])
    with pytest.raises(UserInputError) as raised:
        wheels.build_wheel(ROOT / "packages" / "osiris-core", tmp_path / "w")
    message = str(raised.value)
    assert "Building a wheel of `osiris-core`" in message and "hatchling is not installed" in message
    assert f"`{python} -m pip`" in message and "ensurepip" in raised.value.hint
