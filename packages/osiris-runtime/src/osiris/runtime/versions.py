"""One version rule for every place a run happens, and what a run card records about versions.

A manifest pins every driver distribution it needs (`drivers[].package` at `version`, the
versions it was compiled against). `check_pins` refuses a run whose installed distributions
differ, before anything runs: on the host (`Runner.prepare`), before a sandbox is made
(`osiris.remote.wheels.plan_wheels`) and in the sandbox's worker, always with the same message
(exit code 2).

`environment` is what the run card records: the Python, the osiris distributions the run
uses (core, runtime and every distribution providing a component of the manifest, third-party
ones included) and the data libraries the drivers load. `differences` compares two of them
(a host's and a sandbox's).
"""

from __future__ import annotations

import platform
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from osiris.core.errors import UserInputError
from osiris.core.manifest import Manifest

try:  # osiris-core after 0.4 reads installed distributions without importlib.metadata (30 ms less a run)
    from osiris.core import installed
except ImportError:  # the osiris-core 0.4 this release still allows
    installed = None  # type: ignore[assignment]

# The third-party libraries whose versions decide what data a run produces; each recorded under
# its first installed distribution name (psycopg2 is often installed as psycopg2-binary).
LIBRARIES: dict[str, tuple[str, ...]] = {
    "pyarrow": ("pyarrow",),
    "duckdb": ("duckdb",),
    "pymysql": ("pymysql", "PyMySQL"),
    "psycopg2": ("psycopg2", "psycopg2-binary"),
    "adbc-driver-postgresql": ("adbc-driver-postgresql",),
    "adbc-driver-manager": ("adbc-driver-manager",),
}
BASE_DISTRIBUTIONS = ("osiris-core", "osiris-runtime")


def normalize(name: str) -> str:
    """A distribution name compared as installers compare it: lowercase, `_` and `.` as `-`."""
    return name.lower().replace("_", "-").replace(".", "-")


def installed_version(dist: str) -> str | None:
    """The installed version of `dist`, or None when it is not installed."""
    if installed is None:  # osiris-core 0.4, which has no `installed` module
        from importlib import metadata

        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None
    return installed.version(dist)


@dataclass(frozen=True)
class PinMismatch:
    """A distribution the manifest pins at `wanted` while `installed` (None: not at all) is installed."""

    distribution: str
    wanted: str
    installed: str | None
    install_spec: str

    def describe(self) -> str:
        """One line of the error."""
        have = f"`{self.distribution} {self.installed}` is installed" if self.installed else "it is not installed"
        return f"the manifest needs `{self.distribution}=={self.wanted}` but {have}"

    def to_data(self) -> dict[str, Any]:
        """The mismatch as event data."""
        return {"distribution": self.distribution, "manifest_version": self.wanted, "installed_version": self.installed}


def pin_mismatches(manifest: Manifest) -> list[PinMismatch]:
    """Every driver distribution of the manifest whose installed version is not the one it names."""
    found = []
    for req in manifest.drivers:
        have = installed_version(req.package)
        if have != req.version:
            found.append(PinMismatch(normalize(req.package), req.version, have, req.install_spec))
    return found


def check_pins(manifest: Manifest) -> None:
    """Raise (exit code 2) when an installed driver distribution differs from the manifest's pin."""
    mismatches = pin_mismatches(manifest)
    if not mismatches:
        return
    installs = " ".join(shlex.quote(m.install_spec) for m in mismatches)
    raise UserInputError(
        "The installed drivers differ from the ones the manifest was compiled against: "
        + "; ".join(m.describe() for m in mismatches)
        + "; nothing was run. Compile the pipeline again with this install, or install the versions it names",
        hint=f"pip install {installs}",
    )


def _first_version(names: tuple[str, ...]) -> str | None:
    for name in names:
        version = installed_version(name)
        if version is not None:
            return version
    return None


def environment(manifest: Manifest | None = None, components: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The versions a run card records: Python, the distributions the run uses, the data libraries."""
    dists = set(BASE_DISTRIBUTIONS)
    if manifest is not None:
        dists.update(normalize(req.package) for req in manifest.drivers)
    for comp in (components or {}).values():
        dist = getattr(comp, "distribution", None)
        if dist:
            dists.add(normalize(dist))
    return {
        "python": platform.python_version(),
        "distributions": {d: installed_version(d) for d in sorted(dists)},
        "libraries": {name: _first_version(names) for name, names in LIBRARIES.items()},
    }


def differences(host: Mapping[str, Any], sandbox: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every version that differs between two `environment` records: (kind, name, host, sandbox).

    A data library installed on one side only is not a difference (the sandbox installs only
    what the manifest's drivers need); one at two versions is.
    """
    found = []
    if host.get("python") != sandbox.get("python"):
        found.append({"kind": "python", "name": "python", "host": host.get("python"), "sandbox": sandbox.get("python")})
    for kind in ("distributions", "libraries"):
        ours, theirs = host.get(kind) or {}, sandbox.get(kind) or {}
        for name in sorted(set(ours) | set(theirs)):
            a, b = ours.get(name), theirs.get(name)
            # A library one side lacks is one the run does not need there (a sandbox installs only
            # what the manifest's drivers need); a distribution the run uses must be on both.
            if a != b and (kind == "distributions" or (a is not None and b is not None)):
                found.append({"kind": kind, "name": name, "host": a, "sandbox": b})
    return found


__all__ = [
    "LIBRARIES",
    "PinMismatch",
    "check_pins",
    "differences",
    "environment",
    "installed_version",
    "pin_mismatches",
]
