"""The packages as they would be published: built, checked, and installed the way users install them.

One build of every wheel and sdist (scripts/build_dists.py) serves all tests here. Installs go into
fresh virtual environments made with uv, our packages from that folder only, third-party ones from
the configured index (cached by uv).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
import sysconfig
import tomllib
import urllib.request
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file())
pytestmark = pytest.mark.slow


def _script(name: str):
    if name in sys.modules:
        return sys.modules[name]
    sys.path.insert(0, str(ROOT / "scripts"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dists(osiris_dists) -> Path:
    return osiris_dists  # built once per session (testkit), shared with tests/test_index_install.py


def _metadata(wheel: Path) -> tuple[list[str], str]:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    return names, meta


def test_every_package_builds_a_wheel_and_an_sdist_that_pass_twine_check_strict(dists: Path):
    wheels, sdists = sorted(dists.glob("*.whl")), sorted(dists.glob("*.tar.gz"))
    assert len(wheels) == len(PACKAGES) == len(sdists)
    proc = subprocess.run(
        [_script("build_dists").tool("twine"), "check", "--strict", *map(str, wheels + sdists)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_wheels_carry_license_types_classifiers_and_urls(dists: Path):
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in license_text and "Version 2.0" in license_text
    for wheel in dists.glob("*.whl"):
        names, meta = _metadata(wheel)
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), wheel.name
        assert any(n.endswith("/py.typed") for n in names), wheel.name
        assert "License-Expression: Apache-2.0" in meta
        assert "Classifier: Typing :: Typed" in meta and "Classifier: Programming Language :: Python :: 3.11" in meta
        assert "Project-URL: Repository" in meta and "Project-URL: Changelog" in meta
    for project in PACKAGES:
        assert (project / "LICENSE").read_text(encoding="utf-8") == license_text, f"{project.name}/LICENSE differs"


@pytest.mark.skipif(sysconfig.get_platform() != "linux-x86_64", reason="the manylinux repair is for Linux x86-64")
def test_the_binary_wheel_is_tagged_manylinux(dists: Path):
    (wheel,) = dists.glob("osiris_drivers_sql-*.whl")
    assert "-cp311-abi3-manylinux" in wheel.name and wheel.name.endswith("_x86_64.whl")
    assert "linux_x86_64" not in wheel.name.replace("manylinux", "")
    names, _ = _metadata(wheel)
    assert "osiris/drivers/sql/_mysql_rows.abi3.so" in names


def _walk_runtime_imports(node: ast.AST):
    """Every node below `node`, leaving out `if TYPE_CHECKING:` blocks (imports for type hints only)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
            continue
        yield child
        yield from _walk_runtime_imports(child)


def _top_level_imports(folder: Path) -> set[str]:
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in _walk_runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] if a.name.split(".")[0] != "osiris" else a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                top = node.module.split(".")[0]
                found.add(node.module if top == "osiris" else top)
    return found


def _requirement_names(project: dict) -> set[str]:
    reqs = list(project.get("dependencies", []))
    for extra in (project.get("optional-dependencies") or {}).values():
        reqs += extra
    names = set()
    for req in reqs:
        name = req.split(";")[0]
        for sep in "<>=!~[ ":
            name = name.split(sep)[0]
        names.add(name.lower().replace("_", "-"))
    return names


def test_every_imported_distribution_is_declared():
    """Each package declares (in its dependencies or an extra) every distribution its code imports."""
    providers = metadata.packages_distributions()
    own = {
        "osiris.core": "osiris-core",
        "osiris.compiler": "osiris-compiler",
        "osiris.runtime": "osiris-runtime",
        "osiris.remote": "osiris-remote",
        "osiris.drivers.sql": "osiris-drivers-sql",
        "osiris.drivers.supabase": "osiris-drivers-supabase",
    }
    # Imported only when present, never required: hatchling builds sandbox wheels in-process, the doctor
    # checks duckdb where a driver brought it, `osiris run x.yaml` compiles when the compiler is there, and
    # pymysql's RSA password exchange imports cryptography at its first use where it is installed.
    optional = {
        "osiris-remote": {"hatchling", "duckdb"},
        "osiris-runtime": {"osiris-compiler"},
        "osiris-drivers-sql": {"cryptography"},
    }
    problems = []
    for folder in PACKAGES:
        project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        declared = _requirement_names(project) | {project["name"]} | optional.get(project["name"], set())
        for module in sorted(_top_level_imports(folder / "src")):
            if module.startswith("osiris."):
                dist = next(
                    (d for prefix, d in own.items() if module == prefix or module.startswith(prefix + ".")), None
                )
                dists = {dist} if dist else set()
            elif module in sys.stdlib_module_names or module == "osiris":
                continue
            else:
                dists = {d.lower().replace("_", "-") for d in providers.get(module, [module])}
            if dists and not dists & declared:
                problems.append(
                    f"{project['name']} imports `{module}` ({', '.join(sorted(dists))}) without declaring it"
                )
    assert problems == []


def test_one_floor_for_each_shared_third_party_dependency():
    floors: dict[str, set[str]] = {}
    for folder in PACKAGES:
        project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        reqs = list(project.get("dependencies", []))
        for extra in (project.get("optional-dependencies") or {}).values():
            reqs += extra
        for req in reqs:
            if not req.startswith("osiris-"):
                name = req.split(">")[0].split("<")[0].split("=")[0].split("[")[0]
                floors.setdefault(name, set()).add(req)
    assert {n: r for n, r in floors.items() if len(r) > 1} == {}


def test_install_stories_keep_their_promises(dists: Path):
    """compile-only ≤ 60 MB without data libraries and the same fingerprint; run-only; the sandbox set."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "install_stories.py"), "--dists", str(dists), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout.startswith("["), proc.stderr[-3000:]
    report = {r["story"]: r for r in json.loads(proc.stdout)}
    assert {s: r["problems"] for s, r in report.items()} == {s: [] for s in report}, proc.stderr[-2000:]
    assert proc.returncode == 0
    lean = report["compile-only"]
    assert lean["size_mb"] <= 60
    assert lean["extras"] == {
        "osiris-drivers-sql": ["duckdb", "mysql"],
        "osiris-drivers-supabase": ["http", "postgres"],
    }
    assert "pyarrow" in report["run-only"]["packages"] and "osiris-compiler" not in report["run-only"]["packages"]
    assert "e2b" not in report["sandbox (flagship)"]["packages"]


def test_install_stories_by_name_from_a_package_index(dists: Path, tmp_path: Path):
    """The same stories with our packages installed by name from a PEP 503 index served over HTTP."""
    index = _script("package_index")
    projects = index.write_index(dists, tmp_path / "index")
    assert set(projects) == {p.name for p in PACKAGES}
    assert all(
        any(f.endswith(".whl") for f in files) and any(f.endswith(".tar.gz") for f in files)
        for files in projects.values()
    )
    with index.serve(tmp_path / "index") as url:
        page = urllib.request.urlopen(f"{url}/osiris-core/").read().decode()
        assert "#sha256=" in page and 'data-requires-python="&gt;=3.11"' in page
        proc = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "install_stories.py"), "--index", url, "--json"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
    assert proc.stdout.startswith("["), proc.stderr[-3000:]
    report = {r["story"]: r for r in json.loads(proc.stdout)}
    assert {s: r["problems"] for s, r in report.items()} == {s: [] for s in report}
    assert report["compile-only"]["size_mb"] <= 60


def test_the_oldest_allowed_versions_of_our_packages_run_the_quickstart(dists: Path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compat_oldest.py"), "--dists", str(dists)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.stdout.count(": ok") >= 2, proc.stdout


def test_osiris_remote_version():
    exe = Path(sys.executable).parent / "osiris-remote"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"osiris-remote {metadata.version('osiris-remote')}"
