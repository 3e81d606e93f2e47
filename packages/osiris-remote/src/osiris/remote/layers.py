"""Dependency layers of the `local` sandbox: a run's third-party requirements, installed once and reused.

A layer plays the part an E2B template plays for `--e2b`: the third-party
dependencies of the osiris distributions a run installs (pyarrow, duckdb, the
database clients, ...) are installed once into a cache folder keyed by the hash of
the exact requirement set and the Python they are for. Every run still gets a fresh
folder and a fresh venv; the venv sees the layer through a ``.pth`` file and installs
only the osiris wheels itself (``--no-index --no-deps``).

Two ways to build one:

- **from the host** (the usual case): when the host's own environment already holds
  distributions that satisfy the requirement set and everything it requires
  (`host_closure`), their installed files (each distribution's ``RECORD``) are hard-linked
  (copied across file systems) into the layer, which is then byte-compiled. No index and no
  resolver: the sandbox runs exactly the host's versions. The key then also covers those
  pins, so a host that upgrades a dependency gets a new layer.
- **with pip** from the index (``pip install --target``), when the host lacks one of them.

Layout, under ``$OSIRIS_CACHE_DIR/sandbox-layers`` (default ``~/.cache/osiris/sandbox-layers``)::

    <key>/site-packages/    the requirements (linked from the host, or pip install --target), pip and uv
    <key>/requirements.txt  the exact requirement set
    <key>/layer.json        hash, python, requirements, source (host or pip), pins, build seconds, time
    <key>/build.log         what the build did (pip's output, or the distributions linked)

A layer is built in a temporary folder and renamed into place when complete, under
a lock, so concurrent runs build it once and never see half a layer. A failed build
leaves its log as ``<key>.failed.log``. Delete a layer's folder to rebuild it (for
example to pick up newer versions within the same requirement ranges).
"""

from __future__ import annotations

import compileall
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import HeaderParser
from importlib import metadata
from pathlib import Path
from typing import Any

from osiris.core.errors import TerminalError

# Requirements that only the host needs: the E2B SDK drives a sandbox from outside, never inside one.
HOST_ONLY_REQUIREMENTS = frozenset({"e2b"})
# The layer carries pip, so a run's venv is made without ensurepip and still runs pip, and uv, which
# installs a run's osiris wheels in ~0.15 s where pip takes ~1.2 s (measured here; see docs/remote.md).
LAYER_TOOLS = ("pip", "uv")
LAYER_FORMAT = 1
# Set to 0 to build every layer with pip from the index, never from the host's installed distributions.
FROM_HOST_VARIABLE = "OSIRIS_LAYER_FROM_HOST"


def cache_root() -> Path:
    """The folder of Osiris caches: ``$OSIRIS_CACHE_DIR``, default ``~/.cache/osiris``."""
    return Path(os.environ.get("OSIRIS_CACHE_DIR") or Path.home() / ".cache" / "osiris")


def cache_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Where the installers a sandbox runs (pip, uv) keep their caches.

    With `OSIRIS_CACHE_DIR` set, under it (`pip/`, `uv/`), so that nothing is written to
    `~/.cache`; an explicit `PIP_CACHE_DIR` or `UV_CACHE_DIR` still wins. Without it, the
    installers' own defaults, so a sandbox reuses what the user's pip and uv already cached.
    """
    env = os.environ if environ is None else environ
    explicit = {name: env[name] for name in ("PIP_CACHE_DIR", "UV_CACHE_DIR") if env.get(name)}
    root = env.get("OSIRIS_CACHE_DIR")
    if not root:
        return explicit
    return {"PIP_CACHE_DIR": str(Path(root) / "pip"), "UV_CACHE_DIR": str(Path(root) / "uv"), **explicit}


def layers_root() -> Path:
    """Where dependency layers are kept."""
    return cache_root() / "sandbox-layers"


def _requirement_name(requirement: str) -> str:
    name = requirement.split(";", 1)[0]
    for sep in "<>=!~[ (@":
        name = name.split(sep, 1)[0]
    return name.strip().lower().replace("_", "-")


_EXTRA_MARKER = re.compile(r"""^(?:(?P<rest>.*?)\s+and\s+)?\(?\s*extra\s*==\s*["'](?P<extra>[^"']+)["']\s*\)?$""")


def _normalize_extra(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _with_extras(requirement: str, extras: Collection[str]) -> str | None:
    """`requirement` as an install with these `extras` needs it (extra marker resolved), or None.

    ``pymysql>=1.1; extra == "mysql"`` is ``pymysql>=1.1`` when `mysql` is asked for, else None;
    a requirement without an `extra` marker always applies, its other markers kept for pip.
    """
    spec, _, marker = requirement.partition(";")
    if "extra" not in marker.replace(" ", ""):
        return requirement
    match = _EXTRA_MARKER.match(marker.strip())
    if match is None or _normalize_extra(match["extra"]) not in {_normalize_extra(e) for e in extras}:
        return None
    rest = (match["rest"] or "").strip()
    return f"{spec.strip()}; {rest}" if rest else spec.strip()


def _wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        return HeaderParser().parsestr(zf.read(name).decode("utf-8"))


def wheel_requirements(wheel: Path) -> list[str]:
    """The `Requires-Dist` entries of a wheel's metadata."""
    return list(_wheel_metadata(wheel).get_all("Requires-Dist") or [])


def provided_extras(source: Path | str) -> list[str]:
    """The extras a wheel (a path) or an installed distribution (a name) declares."""
    meta = _wheel_metadata(source) if isinstance(source, Path) else metadata.metadata(source)
    return sorted(meta.get_all("Provides-Extra") or [])


def third_party_requirements(
    sources: Iterable[Path | str], extras: Mapping[str, Collection[str]] | None = None
) -> list[str]:
    """The third-party requirements of osiris distributions: wheels (paths) or installed ones (names).

    `extras` maps a distribution to the extras installed with it (the manifest's
    ``drivers[].extras``): their requirements are included, the extra's marker resolved.
    Osiris distributions themselves are left out (they come as wheels), and so are the
    requirements of other extras and `HOST_ONLY_REQUIREMENTS`. Sorted and deduplicated.
    """
    wanted = {_requirement_name(k): v for k, v in (extras or {}).items()}
    found: set[str] = set()
    for source in sources:
        if isinstance(source, Path):
            meta = _wheel_metadata(source)
            dist, reqs = str(meta["Name"]), list(meta.get_all("Requires-Dist") or [])
        else:
            dist, reqs = source, metadata.requires(source) or []
        for req in reqs:
            name = _requirement_name(req)
            if name.startswith("osiris-") or name in HOST_ONLY_REQUIREMENTS:
                continue
            applied = _with_extras(req, wanted.get(_requirement_name(dist), ()))
            if applied is not None:
                found.add(" ".join(applied.split()))
    return sorted(found)


def template_requirements(dists: Iterable[str] | None = None) -> list[str]:
    """What an E2B template for Osiris holds: the third-party requirements of the installed osiris
    distributions (`dists`, default all) with every extra they provide, so any manifest runs on it."""
    from osiris.remote.dists import installed

    names = sorted(dists if dists is not None else installed())
    return third_party_requirements(names, extras={d: provided_extras(d) for d in names})


def python_tag(python_info: dict[str, str] | None = None) -> str:
    """`cpython-3.11-linux-x86_64`: what compiled wheels in a layer depend on."""
    info = python_info or {
        "implementation": sys.implementation.name,
        "version": f"{sys.version_info.major}.{sys.version_info.minor}",
        "platform": sysconfig.get_platform(),
    }
    return f"{info['implementation']}-{info['version']}-{info['platform']}"


def layer_key(requirements: Iterable[str], python: str, pins: Iterable[str] | None = None) -> str:
    """The hash naming a layer: the exact requirement set (with the layer's tools) and the Python tag;
    for a layer linked from the host, also the pins (``name==version``) of every distribution in it."""
    data: dict[str, Any] = {
        "format": LAYER_FORMAT,
        "python": python,
        "requirements": sorted({*requirements, *LAYER_TOOLS}),
    }
    if pins is not None:
        data["host"] = sorted(pins)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:20]


# ------------------------------------------------------------------------------ from the host


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _host_distributions() -> dict[str, metadata.Distribution]:
    """The distributions this interpreter imports from, by canonical name (the first on `sys.path` wins)."""
    found: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions():
        # The name from the `.dist-info` folder when importlib offers it (no METADATA to parse), else METADATA's.
        name = getattr(dist, "_normalized_name", None) or dist.metadata["Name"]
        if name:
            found.setdefault(_canonical(name), dist)
    return found


def _is_editable(dist: metadata.Distribution) -> bool:
    text = dist.read_text("direct_url.json")
    if not text:
        return False
    try:
        return bool(json.loads(text).get("dir_info", {}).get("editable"))
    except ValueError:
        return True  # unreadable: not something to link


def host_closure(
    requirements: Iterable[str], host: Mapping[str, metadata.Distribution] | None = None
) -> list[tuple[str, metadata.Distribution]] | None:
    """The host's installed distributions that satisfy `requirements` and, recursively, what they require
    (markers evaluated for this interpreter, extras followed), as (``name==version``, distribution) sorted
    by name; None when one is missing, at a version outside its range, installed editable, or without a
    file list (``RECORD``)."""
    from packaging.markers import default_environment
    from packaging.requirements import InvalidRequirement, Requirement

    host = _host_distributions() if host is None else host
    base_env = {**default_environment(), "extra": ""}
    chosen: dict[str, metadata.Distribution] = {}
    meta: dict[str, Any] = {}
    extras_done: dict[str, set[str]] = {}
    todo: list[tuple[str, str | None]] = [(r, None) for r in requirements]  # (requirement, the extra it is for)
    while todo:
        text, extra = todo.pop()
        try:
            req = Requirement(text)
        except InvalidRequirement:
            return None
        if req.marker is not None and not req.marker.evaluate({**base_env, "extra": extra or ""}):
            continue
        name = _canonical(req.name)
        dist = host.get(name)
        if dist is None or req.url:
            return None
        if name not in meta:
            meta[name] = dist.metadata
        if not req.specifier.contains(meta[name]["Version"], prereleases=True):
            return None
        wanted = {_normalize_extra(e) for e in req.extras}
        if name in chosen and wanted <= extras_done[name]:
            continue
        if name not in chosen:
            if _is_editable(dist) or dist.read_text("RECORD") is None:
                return None
            chosen[name] = dist
            extras_done[name] = set()
            new = {None, *wanted}
        else:
            new = wanted - extras_done[name]
        extras_done[name] |= wanted
        for sub in meta[name].get_all("Requires-Dist") or []:
            for e in new:
                todo.append((sub, e))
    return [(f"{n}=={meta[n]['Version']}", chosen[n]) for n in sorted(chosen)]


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed: a copy
        shutil.copy2(src, dst)


def _link_distributions(dists: list[tuple[str, metadata.Distribution]], site: Path, log: Any) -> int:
    """Hard-link every installed file of `dists` into `site` (scripts outside site-packages left out,
    but for the `bin/` executables of the layer's tools); the number of files."""
    count = 0
    for pin, dist in dists:
        name = pin.split("==")[0]
        files = list(dist.files or [])
        linked = 0
        for rel in files:
            src = Path(dist.locate_file(rel))
            parts = rel.parts
            if parts and parts[0] == "..":
                if name not in LAYER_TOOLS or len(parts) < 2 or parts[-2] != "bin" or parts[-1] not in ("uv", "uvx"):
                    continue  # console scripts name the host's Python: not for the layer
                dst = site / "bin" / parts[-1]
            else:
                dst = site / Path(*parts)
            if not src.is_file():
                if rel.suffix in (".pyc", ".pyo"):
                    continue  # byte code listed but never written: compiled below
                raise FileNotFoundError(f"{pin}: `{src}` is listed in its RECORD but missing")
            _link(src, dst)
            linked += 1
        count += linked
        log.write(f"{pin}: {linked} files from {dist.locate_file('')}\n")
    return count


def _compile(site: Path) -> None:
    """Byte-compile the layer once, so no run compiles its imports (`PYTHONDONTWRITEBYTECODE` hosts)."""
    compileall.compile_dir(str(site), quiet=2, workers=0, legacy=False)


@dataclass
class DependencyLayer:
    """A built layer: its folder, the site-packages folder a venv adds, and how it was obtained."""

    key: str
    path: Path
    requirements: list[str]
    built: bool = False
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def site(self) -> Path:
        """The folder a venv adds to its path."""
        return self.path / "site-packages"

    @property
    def uv(self) -> Path | None:
        """The layer's `uv` executable, when it has one."""
        exe = self.site / "bin" / "uv"
        return exe if exe.is_file() else None

    @property
    def build_log(self) -> Path:
        """pip's output of the build."""
        return self.path / "build.log"

    def describe(self) -> dict[str, Any]:
        """What the run card and events say about the layer."""
        return {
            "hash": self.key,  # not `key`: a field called `key` is masked as a secret
            "path": str(self.path),
            "requirements": self.requirements,
            "cached": not self.built,
            "seconds": round(self.seconds, 3),
        }


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _pip_command(python: str, env: dict[str, str]) -> list[str]:
    """A pip that installs for `python`: its own, else the one running this process (same interpreter)."""
    for candidate in (python, sys.executable):
        probe = subprocess.run([candidate, "-m", "pip", "--version"], capture_output=True, env=env, check=False)
        if probe.returncode == 0:
            return [candidate, "-m", "pip"]
    raise TerminalError(
        f"Building a sandbox dependency layer needs pip: neither `{python} -m pip` nor "
        f"`{sys.executable} -m pip` works; install pip for that Python"
    )


def ensure_layer(
    requirements: list[str],
    *,
    python: str | None = None,
    root: Path | None = None,
    env: dict[str, str] | None = None,
    on_output: Callable[[str], None] | None = None,
) -> DependencyLayer:
    """The layer of `requirements` for `python` (default: this interpreter's base), built if missing.

    Linked from the host's installed distributions when they satisfy `requirements` (`host_closure`;
    not with ``OSIRIS_LAYER_FROM_HOST=0``, nor for another Python than this one's), else installed by
    pip. While it builds, `on_output` gets what it is doing: the linking, or each line pip prints
    that says what it is doing (collecting, downloading, installing a package).
    """
    this_python = getattr(sys, "_base_executable", None) or sys.executable
    python = python or this_python
    root = root or layers_root()
    reqs = sorted(set(requirements))
    t0 = time.perf_counter()
    build_env = dict(os.environ if env is None else env)
    closure = None
    if python == this_python and os.environ.get(FROM_HOST_VARIABLE, "1") != "0":
        host = _host_distributions()
        tools = [t for t in LAYER_TOOLS if _canonical(t) in host]
        closure = host_closure([*tools, *reqs], host) if tools else None
    if closure is not None:
        try:
            return _ensure(
                root,
                layer_key(reqs, python_tag(), [p for p, _ in closure]),
                reqs,
                t0,
                closure=closure,
                on_output=on_output,
            )
        except OSError as exc:  # a broken host environment (a file its RECORD lists is gone): pip instead
            if on_output is not None:
                on_output(f"linking from the host failed ({exc}); installing with pip")
    pip_env = {**build_env, **cache_env(build_env)}
    return _ensure(root, layer_key(reqs, python_tag()), reqs, t0, python=python, env=pip_env, on_output=on_output)


def _ensure(
    root: Path,
    key: str,
    reqs: list[str],
    t0: float,
    *,
    closure: list[tuple[str, metadata.Distribution]] | None = None,
    python: str = "",
    env: dict[str, str] | None = None,
    on_output: Callable[[str], None] | None = None,
) -> DependencyLayer:
    """The layer `key`: the cached one, else built (linked from `closure`, or by pip for `python`) under a lock."""
    final = root / key
    if (final / "layer.json").is_file():
        return DependencyLayer(key, final, reqs, built=False, seconds=time.perf_counter() - t0)
    with _locked(root / f".{key}.lock"):
        if (final / "layer.json").is_file():  # another run built it while we waited
            return DependencyLayer(key, final, reqs, built=False, seconds=time.perf_counter() - t0)
        if closure is not None:
            _build_from_host(final, key, reqs, closure, on_output)
        else:
            _build(final, key, reqs, python, env or {}, on_output)
    layer = DependencyLayer(key, final, reqs, built=True, seconds=time.perf_counter() - t0)
    layer.info = json.loads((final / "layer.json").read_text(encoding="utf-8"))
    return layer


# The lines of pip's output that say what it is doing, for a live display of the build.
PIP_ACTIVITY = (
    "Collecting ",
    "Downloading ",
    "Using cached ",
    "Installing collected packages",
    "Successfully installed",
)


def _build_from_host(
    final: Path,
    key: str,
    requirements: list[str],
    dists: list[tuple[str, metadata.Distribution]],
    on_output: Callable[[str], None] | None = None,
) -> None:
    """Link the host's installed `dists` into a temporary folder next to `final`, compile it, rename it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=final.parent))
    pins = [pin for pin, _ in dists]
    t0 = time.perf_counter()
    try:
        (tmp / "requirements.txt").write_text("".join(r + "\n" for r in requirements), encoding="utf-8")
        with (tmp / "build.log").open("w", encoding="utf-8") as log:
            log.write(f"# linked from the host's installed distributions ({len(dists)}), for:\n")
            log.writelines(f"#   {r}\n" for r in requirements)
            if on_output is not None:
                on_output(f"linking {len(dists)} installed distributions from the host")
            files = _link_distributions(dists, tmp / "site-packages", log)
            t1 = time.perf_counter()
            if on_output is not None:
                on_output(f"compiling the byte code of {files} files")
            _compile(tmp / "site-packages")
            log.write(f"# {files} files linked in {t1 - t0:.2f} s, compiled in {time.perf_counter() - t1:.2f} s\n")
        info = {
            "hash": key,
            "format": LAYER_FORMAT,
            "python": python_tag(),
            "requirements": requirements,
            "source": "host",
            "pins": pins,
            "build_seconds": round(time.perf_counter() - t0, 3),
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        _publish(tmp, final, info)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _publish(tmp: Path, final: Path, info: dict[str, object]) -> None:
    """Write a finished layer's `layer.json` (what marks it complete) and rename it into place."""
    (tmp / "layer.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    if final.exists():  # an incomplete leftover (no layer.json): replace it
        shutil.rmtree(final)
    os.rename(tmp, final)


def _build(
    final: Path,
    key: str,
    requirements: list[str],
    python: str,
    env: dict[str, str],
    on_output: Callable[[str], None] | None = None,
) -> None:
    """Install into a temporary folder next to `final`, then rename it into place."""
    tmp = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=final.parent))
    log_path = tmp / "build.log"
    all_reqs = [*LAYER_TOOLS, *requirements]
    (tmp / "requirements.txt").write_text("".join(r + "\n" for r in all_reqs), encoding="utf-8")
    t0 = time.perf_counter()
    try:
        cmd = [
            *_pip_command(python, env),
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--target",
            str(tmp / "site-packages"),
            "-r",
            str(tmp / "requirements.txt"),
        ]
        with log_path.open("w", encoding="utf-8") as log:
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                text = line.strip()
                if on_output is not None and text.startswith(PIP_ACTIVITY):
                    on_output(text if len(text) <= 120 else text[:117] + "...")
            proc.wait()
        if proc.returncode != 0:
            failed = final.parent / f"{key}.failed.log"
            shutil.copyfile(log_path, failed)
            tail = "\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
            raise TerminalError(
                f"Building the sandbox dependency layer `{key}` failed (pip exit code {proc.returncode}); "
                f"full log: `{failed}`:\n{tail}"
            )
        info = {
            "hash": key,
            "format": LAYER_FORMAT,
            "python": python_tag(),
            "requirements": all_reqs,
            "source": "pip",
            "build_seconds": round(time.perf_counter() - t0, 3),
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        _publish(tmp, final, info)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ------------------------------------------------------------------------------ the osiris code

CODE_FORMAT = 1


def code_key(wheels: Iterable[Path], python: str) -> str:
    """The name of the code layer of these osiris wheels: `osiris-` and the hash of their names and contents."""
    h = hashlib.sha256(json.dumps({"format": CODE_FORMAT, "python": python}).encode())
    for wheel in sorted(wheels, key=lambda p: p.name):
        h.update(wheel.name.encode() + b"\0")
        h.update(hashlib.sha256(wheel.read_bytes()).digest())
    return "osiris-" + h.hexdigest()[:20]


@dataclass
class CodeLayer:
    """The osiris wheels of a run, installed once (byte-compiled) into the layer cache, keyed by their sha256."""

    key: str
    path: Path
    wheels: list[str]
    built: bool = False
    seconds: float = 0.0

    @property
    def site(self) -> Path:
        """The folder a venv adds to its path."""
        return self.path / "site-packages"

    @property
    def install_log(self) -> Path:
        """The installer's output when the layer was made."""
        return self.path / "install.log"

    def describe(self) -> dict[str, Any]:
        """What the run card and events say about it."""
        return {
            "hash": self.key,
            "path": str(self.path),
            "wheels": self.wheels,
            "cached": not self.built,
            "seconds": round(self.seconds, 3),
        }


def ensure_code_layer(
    wheels: Iterable[Path],
    *,
    uv: Path | None,
    python: str | None = None,
    root: Path | None = None,
    env: dict[str, str] | None = None,
) -> CodeLayer:
    """The osiris `wheels` installed (``--no-index --no-deps``, by `uv` when given, else pip) into a cached
    folder of their own, byte-compiled; made when missing, under a lock, renamed into place when complete."""
    python = python or getattr(sys, "_base_executable", None) or sys.executable
    root = root or layers_root()
    files = sorted(wheels, key=lambda p: p.name)
    names = [w.name for w in files]
    t0 = time.perf_counter()
    key = code_key(files, python_tag())
    final = root / key
    if (final / "layer.json").is_file():
        return CodeLayer(key, final, names, built=False, seconds=time.perf_counter() - t0)
    with _locked(root / f".{key}.lock"):
        if (final / "layer.json").is_file():
            return CodeLayer(key, final, names, built=False, seconds=time.perf_counter() - t0)
        run_env = dict(os.environ if env is None else env)
        run_env = {**run_env, **cache_env(run_env)}
        tmp = Path(tempfile.mkdtemp(prefix=f".build-{key}-", dir=root))
        try:
            target = tmp / "site-packages"
            tool = (
                [str(uv), "pip", "install", "--python", python]
                if uv is not None
                else [
                    *_pip_command(python, run_env),
                    "install",
                    "--disable-pip-version-check",
                    "--no-input",
                    "--no-compile",
                ]
            )
            cmd = [*tool, "--target", str(target), "--no-index", "--no-deps", *map(str, files)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=run_env, check=False)
            shown = " ".join(cmd).replace(str(tmp), str(final))
            (tmp / "install.log").write_text(f"$ {shown}\n{proc.stdout}{proc.stderr}", encoding="utf-8")
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
                raise TerminalError(f"Installing the osiris wheels into `{final}` failed:\n{tail}")
            _compile(target)
            info = {
                "hash": key,
                "format": CODE_FORMAT,
                "python": python_tag(),
                "wheels": names,
                "build_seconds": round(time.perf_counter() - t0, 3),
                "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            (tmp / "layer.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return CodeLayer(key, final, names, built=True, seconds=time.perf_counter() - t0)


def pth_line(site: Path) -> str:
    """The `.pth` line that makes a venv see a layer (as a site dir, so `.pth` files inside it work too)."""
    return f"import site; site.addsitedir({str(site)!r})\n"


__all__ = [
    "CodeLayer",
    "DependencyLayer",
    "cache_env",
    "cache_root",
    "ensure_code_layer",
    "ensure_layer",
    "host_closure",
    "layer_key",
    "layers_root",
    "provided_extras",
    "pth_line",
    "third_party_requirements",
]
