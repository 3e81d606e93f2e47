#!/usr/bin/env python3
"""Releases of the monorepo's packages: cut one, and check that every change is recorded.

    scripts/release DIST VERSION     bump, move [Unreleased] under the version, commit, tag
    scripts/releases.py check        what CI runs (also as tests/test_releases.py)
    scripts/releases.py last DIST    the last release of DIST: version, date and commit

A package's last release is the newest `## [X.Y.Z] - DATE` heading of its CHANGELOG.md, and the
commit of that release is the one that set `__version__` to X.Y.Z in its `__about__.py`. Tags
(`<dist>-v<version>`) are made by `release` but not relied on: they do not travel with every clone.

`check` fails when
- a package's files (anything but its tests and its CHANGELOG) changed since its last release
  and its `[Unreleased]` section is empty;
- a package's `__about__.py` does not hold the version of its newest changelog heading;
- a requirement on one of our own packages is not a `>=X.Y,<N` range (never a pin), or its floor
  is newer than the package's current version.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
HEADING_RE = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?\s*$", re.M)
OWN_RANGE_RE = re.compile(
    r"^(?P<name>osiris-[a-z0-9-]+)(?:\[[^\]]*\])?>=(?P<floor>\d+\.\d+(?:\.\d+)?),<(?P<ceiling>\d+)$"
)
ABOUT_RE = re.compile(r'^__version__ = "(?P<version>[^"]+)"$', re.M)


class ReleaseError(Exception):
    """A release that cannot be made, or a check that failed; the message says why."""


@dataclass(frozen=True)
class Package:
    """One distribution of the monorepo."""

    name: str
    folder: Path

    @property
    def changelog(self) -> Path:
        return self.folder / "CHANGELOG.md"

    @property
    def about(self) -> Path:
        found = sorted(self.folder.glob("src/osiris/**/__about__.py"))
        if len(found) != 1:
            raise ReleaseError(f"`{self.name}`: expected one __about__.py under src/osiris, found {len(found)}")
        return found[0]

    @property
    def version(self) -> str:
        match = ABOUT_RE.search(self.about.read_text(encoding="utf-8"))
        if match is None:
            raise ReleaseError(f'`{self.about}` holds no `__version__ = "X.Y.Z"` line')
        return match["version"]

    def pyproject(self) -> dict:
        return tomllib.loads((self.folder / "pyproject.toml").read_text(encoding="utf-8"))


def packages(root: Path = ROOT) -> dict[str, Package]:
    """Every package under `packages/`, by distribution name."""
    found = {}
    for folder in sorted((root / "packages").iterdir()):
        if (folder / "pyproject.toml").is_file():
            name = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]
            found[name] = Package(name, folder)
    return found


def git(root: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ReleaseError(f"`git {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc.stdout


# ------------------------------------------------------------------ changelogs


def _sections(text: str) -> list[tuple[str, str | None, str]]:
    """(version, date, body) of every `## [...]` section, in file order."""
    heads = list(HEADING_RE.finditer(text))
    out = []
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        out.append((m["version"], m["date"], text[m.end() : end].strip()))
    return out


def unreleased_notes(pkg: Package) -> str:
    """The text of the `[Unreleased]` section (empty when it records nothing)."""
    for version, _, body in _sections(pkg.changelog.read_text(encoding="utf-8")):
        if version == "Unreleased":
            return body
    raise ReleaseError(f"`{pkg.changelog}` has no `## [Unreleased]` section")


def last_release(pkg: Package) -> tuple[str, str]:
    """(version, date) of the newest released heading of the changelog."""
    for version, date, _ in _sections(pkg.changelog.read_text(encoding="utf-8")):
        if version == "Unreleased":
            continue
        if not VERSION_RE.match(version) or date is None:
            raise ReleaseError(f"`{pkg.changelog}`: the heading `## [{version}]` is not `## [X.Y.Z] - YYYY-MM-DD`")
        return version, date
    raise ReleaseError(f"`{pkg.changelog}` has no released version heading (`## [X.Y.Z] - YYYY-MM-DD`)")


def release_commit(pkg: Package, version: str, root: Path = ROOT) -> str:
    """The commit that set `__version__` to `version` in the package's `__about__.py`."""
    about = pkg.about.relative_to(root).as_posix()
    out = git(root, "log", "--format=%H", "--reverse", f'-S__version__ = "{version}"', "--", about).split()
    for commit in out:
        shown = git(root, "show", f"{commit}:{about}")
        m = ABOUT_RE.search(shown)
        if m and m["version"] == version:
            return commit
    shallow = git(root, "rev-parse", "--is-shallow-repository").strip() == "true"
    raise ReleaseError(
        f'`{pkg.name}`: no commit sets `__version__ = "{version}"` in `{about}`'
        + ("; this clone is shallow: fetch the whole history (`git fetch --unshallow`)" if shallow else "")
    )


def changed_since(pkg: Package, commit: str, root: Path = ROOT) -> list[str]:
    """The package's files changed since `commit` (working tree included), tests and changelog left out.

    A `pyproject.toml` counts only when what it publishes changed (`[project]`, `[build-system]`, the
    build targets): a `[tool.uv]` or `[tool.ruff]` table is development setup, not part of a release.
    """
    folder = pkg.folder.relative_to(root).as_posix()
    names = git(root, "diff", "--name-only", commit, "--", folder).split()
    skip = (f"{folder}/tests/", f"{folder}/CHANGELOG.md")
    changed = [n for n in names if not n.startswith(skip)]
    pyproject = f"{folder}/pyproject.toml"
    if pyproject in changed and _published(git(root, "show", f"{commit}:{pyproject}")) == _published(
        (root / pyproject).read_text(encoding="utf-8")
    ):
        changed.remove(pyproject)
    return changed


def _published(pyproject_text: str) -> dict:
    """The parts of a pyproject.toml that shape the published distribution."""
    data = tomllib.loads(pyproject_text)
    return {
        "project": data.get("project"),
        "build-system": data.get("build-system"),
        "hatch-build": data.get("tool", {}).get("hatch", {}).get("build"),
        "hatch-version": data.get("tool", {}).get("hatch", {}).get("version"),
    }


# ------------------------------------------------------------------ checks


def own_requirements(pkg: Package) -> list[str]:
    """Every requirement of `pkg` (base and extras) on one of our own packages."""
    project = pkg.pyproject()["project"]
    reqs = list(project.get("dependencies", []))
    for extra in (project.get("optional-dependencies") or {}).values():
        reqs.extend(extra)
    return [r.replace(" ", "") for r in reqs if r.strip().lower().startswith("osiris-")]


def check(root: Path = ROOT) -> list[str]:
    """Every problem found; empty when the repository is consistent."""
    problems: list[str] = []
    pkgs = packages(root)
    for pkg in pkgs.values():
        try:
            version, _ = last_release(pkg)
            if pkg.version != version:
                problems.append(
                    f"`{pkg.name}`: `__version__` is {pkg.version} but the newest changelog heading is {version}; "
                    f"release with `scripts/release {pkg.name} VERSION`"
                )
                continue
            commit = release_commit(pkg, version, root)
            changed = changed_since(pkg, commit, root)
            if changed and not unreleased_notes(pkg):
                listed = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
                problems.append(
                    f"`{pkg.name}` changed since its release {version} ({commit[:10]}): {listed}; "
                    f"its CHANGELOG.md has nothing under `## [Unreleased]`: say what changed there"
                )
        except ReleaseError as exc:
            problems.append(str(exc))
        for req in own_requirements(pkg):
            m = OWN_RANGE_RE.match(req)
            if m is None:
                problems.append(
                    f"`{pkg.name}` requires `{req}`: requirements on our own packages are `>=X.Y,<N` ranges, never pins"
                )
                continue
            dep = pkgs.get(m["name"])
            if dep is None:
                problems.append(f"`{pkg.name}` requires `{m['name']}`, which is not a package of this repository")
                continue
            floor = tuple(int(x) for x in m["floor"].split("."))
            current = tuple(int(x) for x in dep.version.split("."))
            if floor > current[: len(floor)]:
                problems.append(f"`{pkg.name}` requires `{req}` but `{dep.name}` is at {dep.version}")
            if int(m["ceiling"]) != current[0] + 1:
                problems.append(
                    f"`{pkg.name}` requires `{req}`: the ceiling should be the next major version of "
                    f"`{dep.name}` {dep.version} (`<{current[0] + 1}`)"
                )
    return problems


# ------------------------------------------------------------------ releasing


def _hatch() -> str:
    for candidate in (Path(sys.executable).parent / "hatch", shutil.which("hatch")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise ReleaseError("`hatch` is not installed: run scripts/bootstrap (it is in the dev group)")


def release(dist: str, version: str, *, root: Path = ROOT, today: dt.date | None = None) -> str:
    """Bump `dist` to `version`, move its [Unreleased] notes under the version, commit and tag. Returns the tag."""
    pkgs = packages(root)
    if dist not in pkgs:
        raise ReleaseError(f"Unknown package `{dist}`; expected one of {', '.join(pkgs)}")
    pkg = pkgs[dist]
    if not VERSION_RE.match(version):
        raise ReleaseError(f"Version `{version}` is not X.Y.Z")
    if tuple(map(int, version.split("."))) <= tuple(map(int, pkg.version.split("."))):
        raise ReleaseError(f"`{dist}` is at {pkg.version}; the new version must be newer, got {version}")
    if git(root, "status", "--porcelain", "--untracked-files=no").strip():
        raise ReleaseError("The working tree has uncommitted changes; commit them before releasing")
    notes = unreleased_notes(pkg)
    if not notes:
        raise ReleaseError(
            f"`{pkg.changelog.relative_to(root)}` has nothing under `## [Unreleased]`; nothing to release"
        )
    tag = f"{dist}-v{version}"
    if git(root, "tag", "--list", tag).strip():
        raise ReleaseError(f"The tag `{tag}` exists already")
    proc = subprocess.run([_hatch(), "version", version], cwd=pkg.folder, capture_output=True, text=True)
    if proc.returncode != 0 or pkg.version != version:
        raise ReleaseError(f"`hatch version {version}` failed in {pkg.folder}: {proc.stderr.strip()}")
    date = (today or dt.date.today()).isoformat()
    text = pkg.changelog.read_text(encoding="utf-8")
    text = text.replace("## [Unreleased]\n", f"## [Unreleased]\n\n## [{version}] - {date}\n", 1)
    pkg.changelog.write_text(text, encoding="utf-8")
    git(root, "add", str(pkg.about), str(pkg.changelog))
    git(root, "commit", "-q", "-m", f"{dist} {version}")
    git(root, "tag", "-a", tag, "-m", f"{dist} {version}\n\n{notes}\n")
    return tag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rel = sub.add_parser("release", help="release DIST at VERSION")
    rel.add_argument("dist")
    rel.add_argument("version")
    sub.add_parser("check", help="check changelogs, versions and ranges")
    last = sub.add_parser("last", help="the last release of DIST")
    last.add_argument("dist")
    args = parser.parse_args(argv)
    try:
        if args.command == "release":
            tag = release(args.dist, args.version)
            print(
                f"released {args.dist} {args.version}: commit {git(ROOT, 'rev-parse', '--short', 'HEAD').strip()}, tag {tag}"
            )
            print(f"publish: git push origin main {tag}")
        elif args.command == "last":
            pkg = packages()[args.dist]
            version, date = last_release(pkg)
            print(f"{args.dist} {version} {date} {release_commit(pkg, version)}")
        else:
            problems = check()
            for p in problems:
                print(f"error: {p}", file=sys.stderr)
            if problems:
                return 1
            print(f"releases: {len(packages())} packages consistent")
    except (ReleaseError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
