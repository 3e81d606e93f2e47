#!/usr/bin/env python3
"""The oldest allowed version of each of our packages still works under the newest of its dependents.

    .venv/bin/python scripts/compat_oldest.py [--dists FOLDER]

"Separately versioned" promises that `osiris-runtime>=0.2,<1` really works with osiris-core 0.2.0,
not only with the core of this checkout. For each of our packages that others in the quickstart's
install depend on (osiris-core, osiris-runtime), this finds the oldest release their ranges allow
(from the changelogs and the commits that set those versions; scripts/releases.py), builds its
wheel from that commit, installs it next to the newest wheels of everything else in a fresh venv,
and runs the quickstart pipeline there. Exit 1 when one of those runs fails.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from build_dists import build, tool  # noqa: E402
from releases import OWN_RANGE_RE, own_requirements, packages, release_commit  # noqa: E402

# What the quickstart installs (compile and run on one machine), with the extras it needs.
QUICKSTART_SET = {"osiris-core": "", "osiris-compiler": "", "osiris-runtime": "", "osiris-drivers-sql": "[duckdb]"}
HEADING = re.compile(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}", re.M)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


def released_versions(dist: str) -> list[str]:
    """Every released version of `dist`, oldest first, from its changelog headings."""
    text = packages()[dist].changelog.read_text(encoding="utf-8")
    return sorted(HEADING.findall(text), key=_version)


def ranges_on(dist: str) -> list[tuple[str, str, tuple[int, ...]]]:
    """(dependent, requirement, floor) of every range on `dist` held by another package of the quickstart set."""
    pkgs = packages()
    found = []
    for name in QUICKSTART_SET:
        for req in own_requirements(pkgs[name]):
            m = OWN_RANGE_RE.match(req)
            if m and m["name"] == dist and name != dist:
                found.append((name, req, _version(m["floor"])))
    return found


def oldest_allowed(dist: str, floors: list[tuple[int, ...]]) -> str:
    """The oldest release of `dist` at or above every floor."""
    floor = max(floors)
    for version in released_versions(dist):
        if _version(version)[: len(floor)] >= floor:
            return version
    raise SystemExit(f"error: no release of `{dist}` is at or above {'.'.join(map(str, floor))}")


def wheel_at_release(dist: str, version: str, out: Path) -> Path:
    """Build `dist`'s wheel from the commit that released `version`."""
    pkg = packages()[dist]
    commit = release_commit(pkg, version)
    folder = pkg.folder.relative_to(ROOT).as_posix()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, folder], cwd=ROOT, capture_output=True, check=True
    )
    src = Path(tempfile.mkdtemp(prefix=f"osiris-{dist}-{version}-"))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(src, filter="data")
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [tool("uv"), "build", "--quiet", "--wheel", "--out-dir", str(out), str(src / folder)],
            check=True,
            capture_output=True,
        )
    finally:
        shutil.rmtree(src, ignore_errors=True)
    return next(out.glob(f"{dist.replace('-', '_')}-{version}-*.whl"))


def run_quickstart(wheels: dict[str, Path], work: Path) -> tuple[bool, str]:
    """Install `wheels` (with the quickstart's extras) in a fresh venv, run the quickstart; (ok, report)."""
    venv = work / "venv"
    uv = tool("uv")
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    reqs = [f"{name}{QUICKSTART_SET[name]} @ {wheel.as_uri()}" for name, wheel in wheels.items()]
    python = str(venv / "bin" / "python")
    proc = subprocess.run([uv, "pip", "install", "--quiet", "--python", python, *reqs], capture_output=True, text=True)
    if proc.returncode != 0:
        return False, f"install failed:\n{proc.stderr[-3000:]}"
    cwd = work / "cwd"
    shutil.copytree(ROOT / "docs" / "examples", cwd / "docs" / "examples")
    osiris = str(venv / "bin" / "osiris")
    versions = subprocess.run([osiris, "--version"], capture_output=True, text=True).stdout.split("\n")
    proc = subprocess.run(
        [osiris, "run", "docs/examples/quickstart.yaml", "--json"], cwd=cwd, capture_output=True, text=True
    )
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        result = {}
    ok = proc.returncode == 0 and result.get("status") == "succeeded"
    report = f"installed {', '.join(v for v in versions if v)}; run {result.get('status', 'failed')}"
    if not ok:
        report += f" (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    return ok, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dists", type=Path, help="a folder holding the newest wheels (default: build them now)")
    args = parser.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory(prefix="osiris-oldest-") as tmp:
        work = Path(tmp)
        newest_dir = args.dists or work / "newest"
        if args.dists is None:
            build(newest_dir, [packages()[n].folder for n in QUICKSTART_SET])
        newest = {n: next(newest_dir.glob(f"{n.replace('-', '_')}-*.whl")) for n in QUICKSTART_SET}
        for dist in QUICKSTART_SET:
            ranges = ranges_on(dist)
            if not ranges:
                continue
            version = oldest_allowed(dist, [floor for _, _, floor in ranges])
            wheels = {**newest, dist: wheel_at_release(dist, version, work / "oldest")}
            ok, report = run_quickstart(wheels, work / dist)
            held = "; ".join(f"{n}: {r}" for n, r, _ in ranges)
            print(
                f"==> {dist} {version}, the oldest allowed by {held}, with the newest of the rest: "
                f"{'ok' if ok else 'FAILED'}\n    {report}"
            )
            failures += not ok
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
