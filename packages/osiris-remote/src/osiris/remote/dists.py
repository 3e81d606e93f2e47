"""Installed osiris distributions: where their code lives and a hash of it.

Host and sandbox compare these hashes to prove they run the same code. The hash
covers the files of the distribution's import package (``osiris-drivers-sql`` →
``osiris/drivers/sql/``; a third-party component distribution's: the top-level package
of its ``osiris.components`` entry point), by path relative to the namespace and content, so an
editable install on the host and a wheel install in a sandbox of the same source
hash the same.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from importlib import metadata
from pathlib import Path

from osiris.core.discovery import COMPONENTS_GROUP, installed_osiris_distributions

SKIP_DIRS = {"__pycache__"}
SKIP_SUFFIXES = (".pyc", ".pyo")


def import_package(dist: str) -> str:
    """The import package of an osiris distribution: `osiris-drivers-sql` → `osiris.drivers.sql`."""
    return dist.lower().replace("-", ".").replace("_", ".")


def _find_package(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def third_party_package(dist: str) -> str | None:
    """The top-level import package of a third-party component distribution: the package its
    `osiris.components` entry point names (``acme_upper.components`` → ``acme_upper``)."""
    try:
        eps = metadata.distribution(dist).entry_points
    except metadata.PackageNotFoundError:
        return None
    for ep in eps:
        if ep.group == COMPONENTS_GROUP:
            return ep.value.split(":")[0].split(".")[0]
    return None


def package_dir(dist: str) -> Path | None:
    """The folder holding the distribution's import package, or None when it is not importable.

    An osiris distribution's package follows from its name; a third-party component
    distribution's is the top-level package of its `osiris.components` entry point.
    """
    if dist.lower().startswith("osiris-"):
        return _find_package(import_package(dist))
    package = third_party_package(dist)
    return _find_package(package) if package else None


def tree_sha256(folder: Path) -> str:
    """sha256 over (relative path, content sha256) of every file below `folder`, sorted."""
    h = hashlib.sha256()
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(folder).parts) and p.suffix not in SKIP_SUFFIXES
    )
    for p in files:
        h.update(p.relative_to(folder).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def distribution_sha256(dist: str) -> str:
    """The code hash of an installed osiris distribution (empty when its package is not found)."""
    folder = package_dir(dist)
    return tree_sha256(folder) if folder is not None else ""


def installed() -> dict[str, str]:
    """Every installed osiris distribution and its version."""
    return dict(installed_osiris_distributions())


def editable_source(dist: str) -> Path | None:
    """The project folder of a distribution installed editable (``pip install -e``), else None."""
    try:
        text = metadata.distribution(dist).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    info = json.loads(text)
    if not info.get("dir_info", {}).get("editable"):
        return None
    url = info.get("url", "")
    if not url.startswith("file://"):
        return None
    folder = Path(url.removeprefix("file://"))
    return folder if (folder / "pyproject.toml").is_file() else None
