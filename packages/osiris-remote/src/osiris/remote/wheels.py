"""Gathering the wheels a sandbox installs: osiris-core, -runtime, -remote and the manifest's drivers.

The plan also lists the third-party requirements of those distributions (read from
the wheels' metadata), which the `local` sandbox installs as a cached dependency layer.

For each distribution (an osiris one, or a third-party component distribution), in order:

1. a matching wheel in ``$OSIRIS_WHEELHOUSE``;
2. a wheel built from the monorepo source of an editable install (with hatchling,
   cached by a hash of the source under ``$OSIRIS_WHEEL_CACHE``, default
   ``$OSIRIS_CACHE_DIR/wheels`` or ``~/.cache/osiris/wheels``): a host running from this
   checkout uploads the code it runs;
3. else the wheel of that name and version downloaded by the host from the one package index
   the user configured (`index_url`: ``--index-url``, ``$OSIRIS_INDEX_URL``, else pip's own
   ``index-url`` setting, else pip's default), with no extra index, find-links folder or other
   pip configuration consulted, and cached under ``<wheel cache>/index``. Its code hash must be
   the host's installed code's, else nothing runs.

The sandbox then installs every osiris distribution from those uploaded files only
(``--no-index --no-deps``): it never asks an index for an osiris name. An index that lacks
the named version is exit 2, naming the distribution, the version and the index; pip's output
is in the run's ``artifacts/_system/pip_install.log`` on the host, whatever happened.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from osiris.core.discovery import COMPONENTS_GROUP
from osiris.core.errors import OsirisError, TerminalError, UserInputError
from osiris.core.manifest import Manifest
from osiris.remote.dists import distribution_sha256, editable_source, tree_sha256
from osiris.remote.layers import cache_env, cache_root, third_party_requirements
from osiris.runtime.versions import check_pins, installed_version

BASE_DISTRIBUTIONS = ("osiris-core", "osiris-runtime", "osiris-remote")


@dataclass
class WheelPlan:
    """What a sandbox installs: exact pins, and the wheels to upload for those that have one."""

    base: list[str] = field(default_factory=list)
    drivers: list[str] = field(default_factory=list)
    extras: dict[str, list[str]] = field(default_factory=dict)
    wheels: dict[str, Path] = field(default_factory=dict)
    from_index: list[str] = field(default_factory=list)  # pins whose wheel the host downloaded from `index`
    requirements: list[str] = field(default_factory=list)
    index: str | None = None  # the index those came from, shown without credentials

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
    # No hatchling here (an environment installed without the development tools): pip builds it in an
    # isolated environment, the host environment's pip or, in a venv made without pip (uv's), its base Python's.
    env = {**os.environ, **cache_env()}
    pip = _pip(env, needed_for=f"Building a wheel of `{project.name}` (hatchling is not installed either)")
    proc = subprocess.run(
        [*pip, "wheel", "--no-deps", "-q", "-w", str(out_dir), str(project)],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        raise TerminalError(f"Building a wheel of `{project.name}` failed:\n{proc.stderr[-2000:]}")
    found = sorted(out_dir.glob("*.whl"))
    if not found:
        raise TerminalError(f"Building a wheel of `{project.name}` produced no wheel")
    return found[0]


def local_wheel(dist: str, version: str) -> Path | None:
    """A wheel of `dist` at `version` from the wheelhouse, or built from the source of an editable install."""
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


# ------------------------------------------------------------------------------ from an index

PIP_DEFAULT_INDEX = "https://pypi.org/simple"
# pip settings that would add sources besides the one index: dropped for the download.
PIP_SOURCE_VARIABLES = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX", "PIP_CONSTRAINT")
_PIP_CONFIG_INDEX = re.compile(r"^(?:global|download|install)\.index-url='(?P<url>[^']*)'$", re.MULTILINE)


@dataclass(frozen=True)
class IndexChoice:
    """The package index the host downloads osiris wheels from, and who configured it."""

    url: str
    source: str

    @property
    def display(self) -> str:
        """The URL without credentials (`https://user:token@host/simple` → `https://host/simple`)."""
        return redact_url(self.url)


def redact_url(url: str) -> str:
    """`url` without its user-info part, which may hold a token."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


_PIP_FOUND: list[str] = []


def _pip(
    env: dict[str, str], *, needed_for: str = "Installing osiris distributions in a sandbox from a package index"
) -> list[str]:
    """A pip to run on the host: this environment's, else its base Python's (found once per process)."""
    if _PIP_FOUND:
        return list(_PIP_FOUND)
    for python in dict.fromkeys((sys.executable, getattr(sys, "_base_executable", sys.executable))):
        probe = subprocess.run(
            [python, "-c", "import pip"], capture_output=True, env={**env, "PIP_CONFIG_FILE": os.devnull}, check=False
        )
        if probe.returncode == 0:
            _PIP_FOUND[:] = [python, "-m", "pip"]
            return list(_PIP_FOUND)
    raise UserInputError(
        f"{needed_for} needs pip on the host; neither `{sys.executable} -m pip` nor its base Python's pip is available",
        hint=f"{sys.executable} -m ensurepip, or set OSIRIS_WHEELHOUSE to a folder with the wheels",
    )


def index_url(explicit: str | None = None) -> IndexChoice:
    """The one index osiris wheels come from: `explicit` (``--index-url``), ``$OSIRIS_INDEX_URL``,
    pip's own ``index-url`` (``$PIP_INDEX_URL`` or pip's configuration files), else pip's default."""
    if explicit:
        return IndexChoice(explicit, "--index-url")
    if os.environ.get("OSIRIS_INDEX_URL"):
        return IndexChoice(os.environ["OSIRIS_INDEX_URL"], "OSIRIS_INDEX_URL")
    if os.environ.get("PIP_INDEX_URL"):
        return IndexChoice(os.environ["PIP_INDEX_URL"].split()[0], "PIP_INDEX_URL")
    env = dict(os.environ)
    proc = subprocess.run([*_pip(env), "config", "list"], capture_output=True, text=True, env=env, check=False)
    found = _PIP_CONFIG_INDEX.findall(proc.stdout) if proc.returncode == 0 else []
    if found:
        return IndexChoice(found[-1], "pip's configuration")
    return IndexChoice(PIP_DEFAULT_INDEX, "pip's default")


def wheel_code_sha256(wheel: Path, dist: str) -> str:
    """The code hash (`osiris.remote.dists.tree_sha256`) of what `wheel` installs as `dist`'s import package."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        if dist.startswith("osiris-"):
            folder = dist.replace("-", "/") + "/"
        else:
            eps = next((n for n in names if n.endswith(".dist-info/entry_points.txt") and n.count("/") == 1), None)
            parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
            parser.optionxform = str  # type: ignore[assignment,method-assign]
            parser.read_string(zf.read(eps).decode() if eps else "")
            values = list(parser[COMPONENTS_GROUP].values()) if parser.has_section(COMPONENTS_GROUP) else []
            folder = (values[0].split(":")[0].strip().split(".")[0] + "/") if values else ""
        if not folder:
            return ""
        h = hashlib.sha256()
        files = sorted(
            n
            for n in names
            if n.startswith(folder)
            and not n.endswith("/")
            and "__pycache__" not in n.split("/")
            and not n.endswith((".pyc", ".pyo"))
        )
        for n in files:
            h.update(n[len(folder) :].encode() + b"\0")
            h.update(hashlib.sha256(zf.read(n)).digest())
        return h.hexdigest()


def _append(log: Path | None, text: str) -> None:
    if log is None:
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as f:
        f.write(text)


def download_wheels(pins: list[tuple[str, str]], index: IndexChoice, *, log: Path | None = None) -> dict[str, Path]:
    """The wheels of `pins` ((distribution, version)) from `index` only, cached by index and version;
    those not cached come in one `pip download`, its output appended to `log`.

    Exit 2 when the index does not have a pinned version; a wheel whose code is not the host's is refused.
    """
    key = hashlib.sha256(index.url.encode()).hexdigest()[:12]
    root = cache_dir() / "index" / key
    found: dict[str, Path] = {}
    missing = []
    for dist, version in pins:
        cached = sorted(root.glob(f"{_wheel_prefix(dist, version)}*.whl")) if root.is_dir() else []
        if cached:
            found[dist] = cached[0]
            _append(log, f"# {dist}=={version}: the wheel downloaded earlier from {index.display}: {cached[0].name}\n")
        else:
            missing.append((dist, version))
    if missing:
        env = {k: v for k, v in os.environ.items() if k not in PIP_SOURCE_VARIABLES}
        env["PIP_CONFIG_FILE"] = os.devnull  # no configured extra index, find-links or constraints: this index only
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            cmd = [
                *_pip(env),
                "download",
                "--disable-pip-version-check",
                "--no-input",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--retries",
                "2",
                "--index-url",
                index.url,
                "--dest",
                tmp,
                *(f"{d}=={v}" for d, v in missing),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            shown = " ".join(cmd)
            _append(log, f"$ {shown}\n{proc.stdout}{proc.stderr}".replace(index.url, index.display))
            got = {d: sorted(Path(tmp).glob(f"{_wheel_prefix(d, v)}*.whl")) for d, v in missing}
            if proc.returncode != 0 or not all(got.values()):
                raise _download_error(missing, index, proc.stdout + proc.stderr, proc.returncode)
            for dist, wheels in got.items():
                final = root / wheels[0].name
                os.replace(wheels[0], final)
                found[dist] = final
    versions = dict(pins)
    return {dist: _checked(found[dist], dist, versions[dist], index) for dist, _ in pins}


def _checked(wheel: Path, dist: str, version: str, index: IndexChoice) -> Path:
    """`wheel`, when its code is the code installed on the host."""
    host, theirs = distribution_sha256(dist), wheel_code_sha256(wheel, dist)
    if not host or host != theirs:
        raise UserInputError(
            f"The wheel of `{dist}=={version}` on the package index {index.display} ({index.source}) is not "
            f"the code installed on the host (code sha256 {theirs[:12] or 'none'}, host {host[:12] or 'none'}); "
            "nothing was run",
            hint="point --index-url or OSIRIS_INDEX_URL at the index the host installed from, "
            "or set OSIRIS_WHEELHOUSE to a folder with the host's wheels",
        )
    return wheel


_NOT_FOUND = re.compile(r"No matching distribution found for (?P<req>\S+)")


def _download_error(missing: list[tuple[str, str]], index: IndexChoice, output: str, code: int) -> OsirisError:
    where = f"the package index {index.display} ({index.source})"
    log = "pip's output is in artifacts/_system/pip_install.log"
    match = _NOT_FOUND.search(output)
    if match or "Could not find a version" in output:
        named = match["req"] if match else None
        dist, version = next(((d, v) for d, v in missing if named and _norm(named.split("==")[0]) == d), missing[0])
        return UserInputError(
            f"The sandbox needs `{dist}=={version}`, which {where} does not have; nothing was run ({log})",
            hint=f"publish {dist} {version} there, point --index-url or OSIRIS_INDEX_URL at an index that has it, "
            "or set OSIRIS_WHEELHOUSE to a folder with its wheel",
        )
    tail = "\n".join(output.replace(index.url, index.display).strip().splitlines()[-8:])
    pins = ", ".join(f"`{d}=={v}`" for d, v in missing)
    return UserInputError(
        f"Downloading {pins} from {where} failed (pip exit code {code}); nothing was run ({log}):\n{tail}"
    )


# ------------------------------------------------------------------------------------ the plan


def plan_wheels(manifest: Manifest, *, index: str | None = None, log: Path | None = None) -> WheelPlan:
    """The base distributions at the host's versions plus exactly the drivers the manifest names.

    The manifest's pins are checked first (`osiris.runtime.versions.check_pins`, the rule of a
    host run). A distribution without a local wheel comes from the index (`index_url(index)`),
    pip's output appended to `log`.
    """
    check_pins(manifest)
    plan = WheelPlan()
    wanted: list[tuple[str, str, bool]] = []
    for dist in BASE_DISTRIBUTIONS:
        version = installed_version(dist)  # by name: no scan of every installed distribution
        if version is None:
            raise UserInputError(f"`{dist}` is not installed on the host; it is needed to run in a sandbox")
        wanted.append((dist, version, True))
    for req in manifest.drivers:
        dist = _norm(req.package)
        if dist in BASE_DISTRIBUTIONS:
            continue
        wanted.append((dist, req.version, False))
        if req.extras:
            plan.extras[dist] = sorted(req.extras)
    remote: list[tuple[str, str]] = []
    for dist, version, base in wanted:
        (plan.base if base else plan.drivers).append(f"{dist}=={version}")
        wheel = local_wheel(dist, version)
        if wheel is None:
            remote.append((dist, version))
        else:
            plan.wheels[dist] = wheel
    if remote:
        choice = index_url(index)
        plan.wheels.update(download_wheels(remote, choice, log=log))
        plan.from_index = [f"{d}=={v}" for d, v in remote]
        plan.index = choice.display
    plan.wheels = {dist: plan.wheels[dist] for dist, _, _ in wanted}
    plan.requirements = third_party_requirements(plan.wheels.values(), extras=plan.extras)
    return plan
