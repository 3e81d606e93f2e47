"""Installed distributions and their entry points, read straight from their metadata folders.

`importlib.metadata` answers the same questions, but importing it took about 30 ms (it imports the
`email` package to parse metadata files, `zipfile`, `csv` and `importlib.resources`): a twentieth of a
short `osiris run`, which asks it only three things. Those three are answered here:

- `entry_points(group)`: each distribution's `entry_points.txt`;
- `version(name)`: the `Version` header of its `METADATA` (`PKG-INFO` for an `.egg-info`);
- `distributions()`: every installed one, with its `Name` and `Version`.

Distributions are found as `importlib.metadata` finds them: the `*.dist-info` and `*.egg-info` folders of
each `sys.path` entry, in order, the first one of a (normalized) name winning. Only the header lines of a
metadata file are read (up to its first blank line), without the `email` parser. Distributions inside
zip files or provided by custom finders are not seen; osiris and its drivers are never installed that way.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SUFFIXES = (".dist-info", ".egg-info")
_NORMALIZE = re.compile(r"[-_.]+")


def normalize(name: str) -> str:
    """A distribution name as installers compare it (PEP 503): lower case, runs of `-_.` as one `-`."""
    return _NORMALIZE.sub("-", name).lower()


@dataclass(frozen=True)
class Distribution:
    """One installed distribution: its metadata folder, and its name and version as its metadata states them."""

    path: Path

    @property
    def _headers(self) -> dict[str, str]:
        return _headers(self.path)

    @property
    def name(self) -> str:
        """The `Name` header (as written: `importlib.metadata`'s `Distribution.name`)."""
        return self._headers.get("Name", "")

    @property
    def version(self) -> str:
        """The `Version` header."""
        return self._headers.get("Version", "")

    @property
    def entry_points(self) -> list[EntryPoint]:
        """Every entry point of its `entry_points.txt`, in file order."""
        return list(_entry_points_of(self))


@dataclass(frozen=True)
class EntryPoint:
    """`name = value` in `[group]` of a distribution's `entry_points.txt`."""

    name: str
    value: str
    group: str
    dist: Distribution | None = None

    def load(self) -> Any:
        """The object it names: `module` or `module:attribute.path` (extras in brackets are ignored)."""
        target = self.value.split("[", 1)[0].strip()
        module, _, attrs = target.partition(":")
        obj = importlib.import_module(module.strip())
        for attr in filter(None, attrs.strip().split(".")):
            obj = getattr(obj, attr)
        return obj


def _headers(folder: Path) -> dict[str, str]:
    """The header fields of a metadata folder's `METADATA` / `PKG-INFO` (first occurrence of each)."""
    cached = _HEADERS.get(folder)
    if cached is not None:
        return cached
    found: dict[str, str] = {}
    for filename in ("METADATA", "PKG-INFO"):
        try:
            with open(folder / filename, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if not line.strip():
                        break
                    if line[:1] in " \t":  # a folded continuation line of the field before
                        continue
                    key, sep, value = line.partition(":")
                    if sep:
                        found.setdefault(key.strip(), value.strip())
            break
        except OSError:
            continue
    _HEADERS[folder] = found
    return found


# Header fields by folder, for this process: an installed distribution's metadata does not change under it
# (an upgrade installs another folder, with its version in the name).
_HEADERS: dict[Path, dict[str, str]] = {}


def _folder_name(entry: str) -> str:
    """The distribution name a metadata folder's name starts with, normalized (`osiris_core-0.4.0.dist-info`)."""
    stem = entry.rsplit(".", 1)[0]
    return normalize(stem.split("-", 1)[0])


# The metadata folders of each `sys.path` entry, by entry, with the entry's modification time when read: an
# install or uninstall changes the folder's mtime, so the listing is read again (as `importlib.metadata` does).
_LISTINGS: dict[str, tuple[int, list[tuple[str, Path]]]] = {}


def _listing(entry: str) -> list[tuple[str, Path]]:
    """(normalized name, folder) of every metadata folder directly in the `sys.path` entry `entry`."""
    folder = Path(entry or ".")
    try:
        mtime = os.stat(folder).st_mtime_ns
    except OSError:
        return []
    cached = _LISTINGS.get(entry)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    found = []
    try:
        with os.scandir(folder) as it:
            for item in it:
                if item.name.endswith(_SUFFIXES) and item.is_dir():
                    found.append((_folder_name(item.name), Path(item.path)))
    except OSError:  # not a folder (a zip file), or gone
        return []
    found.sort(key=lambda pair: pair[1].name)
    _LISTINGS[entry] = (mtime, found)
    return found


def distributions() -> Iterator[Distribution]:
    """Every installed distribution, in `sys.path` order, the first of each normalized name only."""
    seen: set[str] = set()
    for entry in sys.path:
        for key, path in _listing(entry):
            if key not in seen:
                seen.add(key)
                yield Distribution(path)


def distribution(name: str) -> Distribution | None:
    """The installed distribution called `name` (compared normalized), or None."""
    wanted = normalize(name)
    for dist in distributions():  # by its folder's name, as `importlib.metadata` finds it: no file read
        if _folder_name(dist.path.name) == wanted:
            return dist
    return None


def version(name: str) -> str | None:
    """The installed version of `name`, or None when it is not installed."""
    dist = distribution(name)
    return dist.version if dist is not None else None


def _entry_points_of(dist: Distribution) -> Iterator[EntryPoint]:
    try:
        text = (dist.path / "entry_points.txt").read_text(encoding="utf-8")
    except OSError:
        return
    group = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1].strip()
            continue
        name, sep, value = line.partition("=")
        if sep and group is not None:
            yield EntryPoint(name.strip(), value.strip(), group, dist)


def entry_points(group: str) -> list[EntryPoint]:
    """Every installed entry point of `group`, distribution by distribution in `sys.path` order."""
    return [ep for dist in distributions() for ep in _entry_points_of(dist) if ep.group == group]
