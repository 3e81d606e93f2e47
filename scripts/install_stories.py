#!/usr/bin/env python3
"""Install the packages as users do, one story at a time, and report what each costs.

    .venv/bin/python scripts/install_stories.py [--dists FOLDER | --index URL] [--json]

Builds every wheel and sdist into one folder (scripts/build_dists.py; or takes `--dists`), then,
in a fresh virtual environment per story, installs our packages from that folder only (each by
its file, so no index can substitute another `osiris-*`) and their third-party dependencies from
the configured index, and prints the site-packages size and the packages installed. With
`--index URL` (a PEP 503 index of our packages, e.g. scripts/package_index.py) our packages are
installed by name from it instead, as a user types them, the index consulted before the default:

- compile-only: osiris-compiler and the driver packages of the flagship pipeline, without
  extras. It must stay within 60 MB, hold no data library, and compile the flagship to the
  same manifest fingerprint as the full development install.
- run-only: osiris-runtime and osiris-drivers-sql[duckdb], no compiler: runs the quickstart's
  compiled manifest with the same `data_sha256` per step as the development install; a manifest
  that needs `[mysql]` exits 2 with the `pip install` that fixes it; `osiris compile` says which
  package to install.
- sandbox: what a sandbox installs for the flagship: the osiris wheels without dependencies and
  the third-party requirements of exactly the manifest's drivers and extras, as
  `osiris.remote.wheels` computes them; `osiris-remote doctor` must pass in it.

Exit 1 when a story breaks its promise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from build_dists import build, tool  # noqa: E402

FLAGSHIP = "docs/examples/mysql_duckdb_supabase.yaml"
QUICKSTART = "docs/examples/quickstart.yaml"
COMPILE_ONLY_LIMIT_MB = 60
DATA_LIBRARIES = (
    "pyarrow",
    "duckdb",
    "connectorx",
    "psycopg2",
    "psycopg2-binary",
    "adbc-driver-postgresql",
    "adbc-driver-manager",
    "supabase",
    "pymysql",
    "pandas",
    "numpy",
)


class StoryFailed(Exception):
    """A story broke a promise; the message says which."""


class Source:
    """Where our packages come from: a folder of built files (each installed by its file), or a
    package index (installed by name, as users do; third-party packages still come from the
    configured default index, which is consulted after ours)."""

    def __init__(self, dists: Path, index: str | None = None) -> None:
        self.dists = dists
        self.index = index
        self._downloads: dict[str, Path] = {}

    def wheel(self, name: str) -> Path:
        """The wheel of `name`: from the folder, or downloaded by name from the index."""
        if self.index is not None:
            if name not in self._downloads:
                out = self.dists / "downloaded"
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "download",
                        "--quiet",
                        "--no-deps",
                        "--only-binary",
                        ":all:",
                        "--index-url",
                        self.index,
                        "--dest",
                        str(out),
                        name,
                    ],
                    check=True,
                    capture_output=True,
                )
                self._downloads[name] = next(out.glob(f"{name.replace('-', '_')}-*.whl"))
            return self._downloads[name]
        found = sorted(self.dists.glob(f"{name.replace('-', '_')}-*.whl"))
        if len(found) != 1:
            raise StoryFailed(f"expected one wheel of `{name}` in {self.dists}, found {len(found)}")
        return found[0]

    def requirements(self, typed: list[str], implied: list[str]) -> list[str]:
        """What to ask the installer for. By name: what a user types (`osiris-drivers-sql[duckdb]`); from
        files: those and the osiris packages they imply (`implied`), each pinned to its file."""
        if self.index is not None:
            return typed
        out = []
        for req in [*typed, *implied]:
            name = req.split("[")[0]
            out.append(f"{req} @ {self.wheel(name).as_uri()}")
        return out

    def installer_args(self) -> list[str]:
        """Our index first (uv's first-index strategy then never looks for `osiris-*` elsewhere)."""
        return ["--extra-index-url", self.index] if self.index is not None else []


def osiris(venv: Path, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(venv / "bin" / "osiris"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    if check and proc.returncode != 0:
        raise StoryFailed(f"`osiris {' '.join(args)}` exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return proc


def make_venv(path: Path, requirements: list[str], *, no_deps: list[str] = (), args: list[str] = ()) -> None:
    uv = tool("uv")
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(path)], check=True)
    for reqs, extra in ((list(no_deps), ["--no-deps"]), (requirements, [])):
        if reqs:
            proc = subprocess.run(
                [uv, "pip", "install", "--quiet", "--python", str(path / "bin" / "python"), *args, *extra, *reqs],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise StoryFailed(f"installing {reqs} failed:\n{proc.stderr[-3000:]}")


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def installed(venv: Path) -> dict[str, str]:
    out = subprocess.run(
        [tool("uv"), "pip", "list", "--python", str(venv / "bin" / "python"), "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {p["name"].lower(): p["version"] for p in json.loads(out)}


def manifest_of(build_dir: Path) -> dict:
    import yaml

    return yaml.safe_load(next(build_dir.rglob("manifest.yaml")).read_text(encoding="utf-8"))


def run_card_hashes(runs: Path) -> dict[str, str]:
    card = json.loads(next(runs.rglob("run_card.json")).read_text(encoding="utf-8"))
    if card.get("status") != "succeeded":
        raise StoryFailed(f"the run did not succeed: {card.get('error')}")
    return {s["id"]: s.get("data_sha256") for s in card["steps"] if s.get("data_sha256")}


def dev_osiris() -> Path:
    """The development install (.venv, or the venv running this script)."""
    return Path(sys.executable).parent.parent


def story_compile_only(src: Source, work: Path) -> dict:
    venv = work / "compile-only"
    typed = ["osiris-compiler", "osiris-drivers-sql", "osiris-drivers-supabase"]
    make_venv(venv, src.requirements(typed, ["osiris-core"]), args=src.installer_args())
    have = installed(venv)
    size = size_mb(site_packages(venv))
    args = ("compile", FLAGSHIP, "--param", "since=2026-01-01")
    osiris(venv, *args, "--out", str(work / "build-lean"), cwd=ROOT)
    osiris(dev_osiris(), *args, "--out", str(work / "build-full"), cwd=ROOT)
    lean, full = manifest_of(work / "build-lean"), manifest_of(work / "build-full")
    problems = []
    if size > COMPILE_ONLY_LIMIT_MB:
        problems.append(f"site-packages is {size:.1f} MB, over {COMPILE_ONLY_LIMIT_MB} MB")
    heavy = sorted(set(have) & set(DATA_LIBRARIES))
    if heavy:
        problems.append(f"data libraries installed: {', '.join(heavy)}")
    if lean["fingerprints"]["manifest"] != full["fingerprints"]["manifest"]:
        problems.append(
            f"fingerprint {lean['fingerprints']['manifest']} != full install's {full['fingerprints']['manifest']}"
        )
    return {
        "story": "compile-only",
        "size_mb": round(size, 1),
        "packages": have,
        "problems": problems,
        "fingerprint": lean["fingerprints"]["manifest"],
        "extras": {d["package"]: d.get("extras", []) for d in lean["drivers"]},
    }


def story_run_only(src: Source, work: Path) -> dict:
    venv = work / "run-only"
    typed = ["osiris-runtime", "osiris-drivers-sql[duckdb]"]
    make_venv(venv, src.requirements(typed, ["osiris-core"]), args=src.installer_args())
    have = installed(venv)
    size = size_mb(site_packages(venv))
    problems = []
    osiris(dev_osiris(), "compile", QUICKSTART, "--out", str(work / "build-quick"), cwd=ROOT)
    manifest = next((work / "build-quick").rglob("manifest.yaml"))
    hashes = {}
    for label, env in (("run-only", venv), ("full", dev_osiris())):
        cwd = work / f"cwd-{label}"
        shutil.copytree(ROOT / "docs" / "examples" / "data", cwd / "docs" / "examples" / "data")
        osiris(env, "run", str(manifest), "--runs-dir", str(cwd / "runs"), cwd=cwd)
        hashes[label] = run_card_hashes(cwd / "runs")
    if hashes["run-only"] != hashes["full"]:
        problems.append(f"data_sha256 differ: {hashes['run-only']} != {hashes['full']}")
    missing = _run_without_the_mysql_extra(venv, work)
    if missing:
        problems.append(missing)
    no_compiler = osiris(venv, "compile", QUICKSTART, cwd=ROOT, check=False)
    if no_compiler.returncode != 2 or "pip install osiris-compiler" not in no_compiler.stderr:
        problems.append(
            f"`osiris compile` without the compiler: exit {no_compiler.returncode}, {no_compiler.stderr.strip()!r}"
        )
    if "osiris-compiler" in have or "jsonschema" in have:
        problems.append("the compiler came along")
    return {
        "story": "run-only",
        "size_mb": round(size, 1),
        "packages": have,
        "problems": problems,
        "steps": len(hashes["full"]),
    }


MYSQL_PIPELINE = """oml_version: "0.1.0"
name: needs_mysql
steps:
  - id: read
    component: mysql.extractor
    mode: read
    config: {connection: "@mysql.default", table: t}
"""


def _run_without_the_mysql_extra(venv: Path, work: Path) -> str | None:
    """A manifest that needs `[mysql]`, run where it is missing: exit 2 and the pip command that fixes it."""
    cwd = work / "cwd-missing-extra"
    cwd.mkdir()
    (cwd / "needs_mysql.yaml").write_text(MYSQL_PIPELINE, encoding="utf-8")
    (cwd / "osiris_connections.yaml").write_text(
        "connections:\n  mysql:\n    default: {host: 127.0.0.1, user: root, password: '', database: x, default: true}\n",
        encoding="utf-8",
    )
    osiris(dev_osiris(), "compile", "needs_mysql.yaml", "--out", "build", cwd=cwd)
    manifest = next((cwd / "build").rglob("manifest.yaml"))
    proc = osiris(venv, "run", str(manifest), cwd=cwd, check=False)
    want = "pip install 'osiris-drivers-sql[mysql]=="
    if proc.returncode != 2 or want not in proc.stderr:
        return f"a run missing `[mysql]`: exit {proc.returncode}, expected 2 and `{want}…`: {proc.stderr[-800:]!r}"
    return None


def story_sandbox(src: Source, work: Path) -> dict:
    from osiris.remote.layers import third_party_requirements

    full = manifest_of(work / "build-full")
    wheels = {n: src.wheel(n) for n in ("osiris-core", "osiris-runtime", "osiris-remote")}
    extras = {}
    for driver in full["drivers"]:
        wheels[driver["package"]] = src.wheel(driver["package"])
        extras[driver["package"]] = driver.get("extras", [])
    requirements = third_party_requirements(list(wheels.values()), extras=extras)
    venv = work / "sandbox"
    make_venv(venv, requirements, no_deps=[str(w) for w in wheels.values()])
    have = installed(venv)
    size = size_mb(site_packages(venv))
    problems = []
    doctor = subprocess.run([str(venv / "bin" / "osiris-remote"), "doctor", "--json"], capture_output=True, text=True)
    if doctor.returncode != 0:
        problems.append(f"osiris-remote doctor failed:\n{doctor.stdout[-2000:]}{doctor.stderr[-1000:]}")
    if "e2b" in have:
        problems.append("the host-only e2b SDK was installed")
    return {
        "story": "sandbox (flagship)",
        "size_mb": round(size, 1),
        "packages": have,
        "problems": problems,
        "requirements": requirements,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dists", type=Path, help="a folder of built wheels (default: build them now)")
    parser.add_argument("--index", help="install our packages by name from this PEP 503 index instead of by file")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="osiris-stories-") as tmp:
        work = Path(tmp)
        dists = args.dists or work / "dist"
        if args.dists is None and args.index is None:
            build(dists)
        src = Source(work / "from-index" if args.index else dists, args.index)
        report = []
        for story in (story_compile_only, story_run_only, story_sandbox):
            try:
                report.append(story(src, work))
            except StoryFailed as exc:
                report.append({"story": story.__name__.removeprefix("story_"), "problems": [str(exc)]})
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        for r in report:
            status = "ok" if not r["problems"] else "FAILED"
            print(
                f"==> {r['story']}: {r.get('size_mb', '?')} MB in site-packages, {len(r.get('packages', {}))} packages, {status}"
            )
            if r.get("packages"):
                print("    " + ", ".join(f"{n} {v}" for n, v in sorted(r["packages"].items())))
            for p in r["problems"]:
                print(f"    problem: {p}")
    return 1 if any(r["problems"] for r in report) else 0


if __name__ == "__main__":
    sys.exit(main())
