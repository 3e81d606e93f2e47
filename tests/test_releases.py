"""Releases: the repository's changelogs, versions and ranges agree, and the check catches what it should.

The negative cases run on throwaway commits in a temporary clone, never on this checkout.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("releases", ROOT / "scripts" / "releases.py")
releases = importlib.util.module_from_spec(_spec)
sys.modules["releases"] = releases
_spec.loader.exec_module(releases)

CORE_SRC = "packages/osiris-core/src/osiris/core/errors.py"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_this_repository_passes_the_release_check():
    assert releases.check() == []


def test_every_package_has_a_released_version_at_the_commit_that_set_it():
    for pkg in releases.packages().values():
        version, date = releases.last_release(pkg)
        assert pkg.version == version
        commit = releases.release_commit(pkg, version)
        shown = git(ROOT, "show", f"{commit}:{pkg.about.relative_to(ROOT).as_posix()}")
        assert f'__version__ = "{version}"' in shown
        dt.date.fromisoformat(date)


def test_the_development_install_reports_the_versions_of_the_source():
    """Editable installs rebuild their metadata when `__about__.py` changes (`[tool.uv] cache-keys`)."""
    from importlib import metadata

    for pkg in releases.packages().values():
        assert metadata.version(pkg.name) == pkg.version, f"{pkg.name}: stale install, run scripts/bootstrap"


def test_development_settings_in_a_pyproject_need_no_changelog_entry(clone: Path):
    pyproject = clone / "packages/osiris-compiler/pyproject.toml"
    pyproject.write_text(pyproject.read_text(encoding="utf-8") + "\n[tool.ruff]\nline-length = 100\n")
    # against the commit before (not the release's: what it publishes may have changed since, unreleased)
    commit = git(clone, "rev-parse", "HEAD").strip()
    git(clone, "commit", "-qam", "compiler: a development setting")
    compiler = releases.packages(clone)["osiris-compiler"]
    listed = "packages/osiris-compiler/pyproject.toml"
    assert listed not in releases.changed_since(compiler, commit, clone)
    text = pyproject.read_text(encoding="utf-8").replace('description = "', 'description = "Changed: ', 1)
    pyproject.write_text(text, encoding="utf-8")
    assert listed in releases.changed_since(compiler, commit, clone)


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A clone of this repository's committed state with an identity to commit as."""
    target = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(ROOT), str(target))
    git(target, "config", "user.email", "tests@osiris.invalid")
    git(target, "config", "user.name", "Osiris tests")
    return target


def _core_problems(root: Path) -> list[str]:
    return [p for p in releases.check(root) if "`osiris-core`" in p]


def _add_note(root: Path, note: str) -> None:
    changelog = root / "packages/osiris-core/CHANGELOG.md"
    text = changelog.read_text(encoding="utf-8")
    changelog.write_text(text.replace("## [Unreleased]\n", f"## [Unreleased]\n\n### Changed\n- {note}\n", 1))


def _touch_core(root: Path, line: str) -> None:
    path = root / CORE_SRC
    path.write_text(path.read_text(encoding="utf-8") + f"\n# {line}\n", encoding="utf-8")


def test_release_then_an_unrecorded_change_fails_the_check(clone: Path):
    core = releases.packages(clone)["osiris-core"]
    major, minor, patch = map(int, core.version.split("."))
    new = f"{major}.{minor}.{patch + 1}"
    _add_note(clone, "A change worth releasing.")
    _touch_core(clone, "first change")
    git(clone, "commit", "-qam", "core: a change")

    tag = releases.release("osiris-core", new, root=clone, today=dt.date(2026, 12, 1))

    assert tag == f"osiris-core-v{new}"
    assert git(clone, "tag", "--list", tag).strip() == tag
    assert git(clone, "rev-parse", f"{tag}^{{commit}}") == git(clone, "rev-parse", "HEAD")
    assert releases.packages(clone)["osiris-core"].version == new
    changelog = (clone / "packages/osiris-core/CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [Unreleased]\n\n## [{new}] - 2026-12-01\n\n### Changed\n- A change worth releasing." in changelog
    assert releases.unreleased_notes(releases.packages(clone)["osiris-core"]) == ""
    assert _core_problems(clone) == []

    _touch_core(clone, "second change, not recorded")
    git(clone, "commit", "-qam", "core: an unrecorded change")
    problems = _core_problems(clone)
    assert len(problems) == 1 and CORE_SRC in problems[0] and "[Unreleased]" in problems[0]
    cli = subprocess.run([sys.executable, str(clone / "scripts/releases.py"), "check"], capture_output=True, text=True)
    assert cli.returncode == 1 and CORE_SRC in cli.stderr

    # A change to the package's tests alone needs no entry; recording the change clears the problem.
    _add_note(clone, "The second change.")
    git(clone, "commit", "-qam", "core: record the change")
    assert _core_problems(clone) == []


def test_a_test_only_change_needs_no_changelog_entry(clone: Path):
    test_file = clone / "packages/osiris-core/tests/test_wire.py"
    test_file.write_text(test_file.read_text(encoding="utf-8") + "\n# a comment\n", encoding="utf-8")
    git(clone, "commit", "-qam", "core tests: a comment")
    core = releases.packages(clone)["osiris-core"]
    commit = releases.release_commit(core, core.version, clone)
    assert "packages/osiris-core/tests/test_wire.py" not in releases.changed_since(core, commit, clone)


def test_release_refuses_what_it_cannot_do(clone: Path):
    core = releases.packages(clone)["osiris-core"]
    with pytest.raises(releases.ReleaseError, match="must be newer"):
        releases.release("osiris-core", core.version, root=clone)
    with pytest.raises(releases.ReleaseError, match="Unknown package `osiris-nope`"):
        releases.release("osiris-nope", "9.0.0", root=clone)
    with pytest.raises(releases.ReleaseError, match=r"is not X\.Y\.Z"):
        releases.release("osiris-core", "1.0", root=clone)
    _touch_core(clone, "uncommitted")
    with pytest.raises(releases.ReleaseError, match="uncommitted changes"):
        releases.release("osiris-core", "9.0.0", root=clone)


def test_pins_and_wrong_ceilings_between_our_packages_fail_the_check(clone: Path):
    pyproject = clone / "packages/osiris-compiler/pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    core_version = releases.packages(clone)["osiris-core"].version
    line = next(s for s in text.splitlines() if s.startswith("dependencies"))
    pinned = text.replace(line, f'dependencies = ["osiris-core=={core_version}", "jsonschema>=4.18"]')
    pyproject.write_text(pinned, encoding="utf-8")
    assert any("never pins" in p and "osiris-compiler" in p for p in releases.check(clone))
    pyproject.write_text(text.replace(line, 'dependencies = ["osiris-core>=0.1,<3", "jsonschema>=4.18"]'))
    assert any("ceiling" in p for p in releases.check(clone))
    pyproject.write_text(text.replace(line, 'dependencies = ["osiris-core>=0.99,<1", "jsonschema>=4.18"]'))
    assert any("`osiris-core` is at" in p for p in releases.check(clone))
