"""Gathering the wheels a sandbox installs: osiris-core, -runtime, -remote and the manifest's drivers.

The plan also lists the third-party requirements of those distributions (read from
the wheels' metadata), which the `local` sandbox installs as a cached dependency layer.

For each distribution, in order: a matching wheel in ``$OSIRIS_WHEELHOUSE``; a
wheel built from the monorepo source of an editable install (with hatchling,
cached by a hash of the source under ``$OSIRIS_WHEEL_CACHE``, default
``$OSIRIS_CACHE_DIR/wheels`` or ``~/.cache/osiris/wheels``); else nothing, and the sandbox installs the pinned
version from its package index.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from osiris.core.errors import TerminalError, UserInputError
from osiris.core.manifest import Manifest
from osiris.remote.dists import editable_source, installed, tree_sha256
from osiris.remote.layers import cache_env, cache_root, third_party_requirements

BASE_DISTRIBUTIONS = ("osiris-core", "osiris-runtime", "osiris-remote")


@dataclass
class WheelPlan:
    """What a sandbox installs: exact pins, and the wheels to upload for those that have one."""

    base: list[str] = field(default_factory=list)
    drivers: list[str] = field(default_factory=list)
    extras: dict[str, list[str]] = field(default_factory=dict)
    wheels: dict[str, Path] = field(default_factory=dict)
    from_index: list[str] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)

    @property
    def all_pins(self) -> list[str]:
        """Every pin (``name==version``), base first."""
        return [*self.base, *self.drivers]

    def install_spec(self, pin: str) -> str:
        """`pin` with the extras the manifest names for it: ``osiris-drivers-sql[duckdb,mysql]==0.2.0``."""
        name, _, version = pin.partition("==")
        extras = self.extras.get(name)
        return f"{name}[{','.join(extras)}]=={version}" if extras else pin


def _norm(name: str) -> str:
    return name.lower().replace("_", "-")


def _wheel_prefix(dist: str, version: str) -> str:
    return f"{dist.replace('-', '_')}-{version}-"


def cache_dir() -> Path:
    """Where built wheels are kept between runs: `$OSIRIS_WHEEL_CACHE`, else `wheels` in the Osiris cache."""
    return Path(os.environ.get("OSIRIS_WHEEL_CACHE") or cache_root() / "wheels")


def source_hash(project: Path) -> str:
    """A short hash of what goes into a wheel: the `src` tree, the project files and any build hook."""
    h = hashlib.sha256(tree_sha256(project / "src").encode())
    for name in ("pyproject.toml", "README.md", "hatch_build.py"):
        p = project / name
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


# E2B sandboxes are Linux x86-64. A compiled part built on another host (osiris-drivers-sql's row
# parser) would not install there, so such a host builds the wheels without it.
SANDBOX_PLATFORM = ("linux", "x86_64")


def _host_builds_for_sandbox() -> bool:
    return (sys.platform, platform.machine()) == SANDBOX_PLATFORM


def build_wheel(project: Path, out_dir: Path) -> Path:
    """Build the wheel of `project` into `out_dir` (hatchling in-process, else `pip wheel`).

    On a host of another platform than the sandboxes', compiled parts are left out
    (`OSIRIS_BUILD_NATIVE=0`), so the wheel is pure Python.
    """
    if not _host_builds_for_sandbox() and os.environ.get("OSIRIS_BUILD_NATIVE") != "0":
        os.environ["OSIRIS_BUILD_NATIVE"] = "0"
        try:
            return build_wheel(project, out_dir)
        finally:
            del os.environ["OSIRIS_BUILD_NATIVE"]
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        from hatchling.builders.wheel import WheelBuilder
    except ImportError:
        WheelBuilder = None
    if WheelBuilder is not None:
        builder = WheelBuilder(str(project))
        built = list(builder.build(directory=str(out_dir), versions=["standard"]))
        return Path(built[0])
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out_dir), str(project)],
        capture_output=True,
        text=True,
        env={**os.environ, **cache_env()},
    )
    if proc.returncode != 0:
        raise TerminalError(f"Building a wheel of `{project.name}` failed:\n{proc.stderr[-2000:]}")
    found = sorted(out_dir.glob("*.whl"))
    if not found:
        raise TerminalError(f"Building a wheel of `{project.name}` produced no wheel")
    return found[0]


def wheel_for(dist: str, version: str) -> Path | None:
    """A wheel of `dist` at `version`: from the wheelhouse, the cache, or built from source."""
    prefix = _wheel_prefix(dist, version)
    house = os.environ.get("OSIRIS_WHEELHOUSE")
    if house:
        for p in sorted(Path(house).glob(f"{prefix}*.whl")):
            return p
    project = editable_source(dist)
    if project is None:
        return None
    target = cache_dir() / f"{dist}-{version}-{source_hash(project)}"
    existing = sorted(target.glob(f"{prefix}*.whl")) if target.is_dir() else []
    if existing:
        return existing[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        wheel = build_wheel(project, Path(tmp))
        target.mkdir(exist_ok=True)
        final = target / wheel.name
        shutil.move(str(wheel), final)
    return final


def plan_wheels(manifest: Manifest) -> WheelPlan:
    """The base distributions at the host's versions plus exactly the drivers the manifest names."""
    have = {_norm(k): v for k, v in installed().items()}
    plan = WheelPlan()
    wanted: list[tuple[str, str, bool]] = []
    for dist in BASE_DISTRIBUTIONS:
        if dist not in have:
            raise UserInputError(f"`{dist}` is not installed on the host; it is needed to run in a sandbox")
        wanted.append((dist, have[dist], True))
    for req in manifest.drivers:
        dist = _norm(req.package)
        if dist in BASE_DISTRIBUTIONS:
            continue
        if have.get(dist) != req.version:
            raise UserInputError(
                f"The manifest needs `{dist}=={req.version}` but the host has "
                f"{'`' + dist + '==' + have[dist] + '`' if dist in have else 'none'}; compile again or install it"
            )
        wanted.append((dist, req.version, False))
        if req.extras:
            plan.extras[dist] = sorted(req.extras)
    for dist, version, base in wanted:
        pin = f"{dist}=={version}"
        (plan.base if base else plan.drivers).append(pin)
        wheel = wheel_for(dist, version)
        if wheel is None:
            plan.from_index.append(pin)
        else:
            plan.wheels[dist] = wheel
    plan.requirements = third_party_requirements(
        (plan.wheels.get(dist, dist) for dist, _, _ in wanted), extras=plan.extras
    )
    return plan
