"""The build folder: what `osiris compile` writes and `osiris run` reads, defined once.

::

    <out>/                                (`--build-dir`, default `build`)
      .last_compile.json                  the newest compile (its `compile.json`, naming its manifest)
      <pipeline>/<manifest_short>/
        manifest.yaml                     the manifest, fingerprinted (byte-identical for identical inputs)
        cfg/<step>.json                   each step's config; its sha256 is the step's `cfg_sha256`
        compile.json                      when, from what and by which compiler (times live here only)

`write_build` (the compiler) writes a build atomically: a temporary folder renamed into
place, then the `.last_compile.json` pointer. `load_build` (the runtime, the sandbox host)
reads one and refuses a build edited after compiling: the manifest must match its
`fingerprints.manifest` and every cfg file its step's `cfg_sha256`, else a `DocumentError`
(exit code 2) names the file. `last_compile` follows the pointer (`osiris run --last-compile`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from osiris.core.errors import DocumentError, UserInputError
from osiris.core.fingerprint import sha256_hex
from osiris.core.manifest import Manifest, load_manifest

MANIFEST_FILE = "manifest.yaml"
CFG_DIR = "cfg"
COMPILE_INFO = "compile.json"
LAST_COMPILE = ".last_compile.json"


def cfg_path(step_id: str) -> str:
    """Where a step's config lives in its build folder, relative to it (`ManifestStep.cfg_path`)."""
    return f"{CFG_DIR}/{step_id}.json"


def build_dir(out_dir: str | Path, manifest: Manifest) -> Path:
    """The folder of `manifest`'s build under `out_dir`: ``<out>/<pipeline>/<manifest_short>``."""
    return Path(out_dir) / manifest.pipeline.name / manifest.short


@dataclass(frozen=True)
class Build:
    """A compiled build as read from disk, every file checked against the manifest's fingerprints."""

    manifest_path: Path
    manifest: Manifest
    manifest_text: str
    cfgs: dict[str, dict[str, Any]]

    @property
    def dir(self) -> Path:
        """The build folder."""
        return self.manifest_path.parent


def load_build(manifest_path: str | Path) -> Build:
    """Read the build of `manifest_path`: the manifest, its text and every step's cfg, each verified."""
    path = Path(manifest_path)
    manifest = load_manifest(path)
    text = path.read_text(encoding="utf-8")
    cfgs: dict[str, dict[str, Any]] = {}
    for step in manifest.steps:
        cfg_file = path.parent / step.cfg_path
        try:
            body = cfg_file.read_bytes()
        except FileNotFoundError:
            raise UserInputError(
                f"The cfg of step `{step.id}` is missing: `{cfg_file}`; compile the pipeline again", step=step.id
            ) from None
        if sha256_hex(body) != step.cfg_sha256:
            raise DocumentError(
                f"The cfg of step `{step.id}` does not match the manifest's `cfg_sha256`; it was edited after "
                "compiling. Compile the pipeline again",
                file=str(cfg_file),
                step=step.id,
            )
        try:
            cfg = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # the manifest was made to match
            raise DocumentError(
                f"Invalid JSON ({type(exc).__name__}); expected the step's config object",
                file=str(cfg_file),
                step=step.id,
            ) from None
        if not isinstance(cfg, dict):
            raise DocumentError(
                f"Expected the step's config object, got {_json_type(cfg)}", file=str(cfg_file), path="$", step=step.id
            )
        cfgs[step.id] = cfg
    return Build(path, manifest, text, cfgs)


def write_build(
    out_dir: str | Path, manifest: Manifest, manifest_text: str, cfgs: Mapping[str, bytes], info: dict[str, Any]
) -> Path:
    """Write a build folder atomically and point `.last_compile.json` at it; returns the folder.

    `cfgs` maps step id to the exact bytes of its cfg file (their sha256 is in the manifest);
    `info` is `compile.json` (and the pointer's content).
    """
    out = Path(out_dir)
    target = build_dir(out, manifest)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{manifest.short}.", dir=target.parent))
    try:
        (tmp / CFG_DIR).mkdir()
        (tmp / MANIFEST_FILE).write_text(manifest_text, encoding="utf-8")
        for step_id, body in cfgs.items():
            (tmp / cfg_path(step_id)).write_bytes(body)
        (tmp / COMPILE_INFO).write_text(_json(info), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pointer = out / LAST_COMPILE
    staged = pointer.with_name(pointer.name + ".tmp")
    staged.write_text(_json(info), encoding="utf-8")
    os.replace(staged, pointer)
    return target


def last_compile(out_dir: str | Path = "build") -> Path:
    """The manifest of the newest compile under `out_dir`, from `.last_compile.json`."""
    pointer = Path(out_dir) / LAST_COMPILE
    if not pointer.exists():
        raise UserInputError(f"No compile found: `{pointer}` does not exist; run `osiris compile` first")
    info = read_json_file(pointer, what="the newest compile's pointer")
    manifest = info.get("manifest") if isinstance(info, dict) else None
    if not isinstance(manifest, str) or not manifest or "\0" in manifest:
        raise DocumentError(
            f"Expected an object with a `manifest` path, got {_json_type(info)}",
            file=str(pointer),
            path="$.manifest" if isinstance(info, dict) else "$",
            hint="compile again: `osiris compile PIPELINE.yaml`",
        )
    if not Path(manifest).is_file():
        raise UserInputError(
            f"The newest compile's manifest `{manifest}` (named by `{pointer}`) no longer exists; compile again"
        )
    return Path(manifest)


def read_json_file(path: str | Path, *, what: str) -> Any:
    """The JSON document in `path`; a missing file, invalid UTF-8 or invalid JSON is a `DocumentError` (exit 2)."""
    p = Path(path)
    try:
        body = p.read_bytes()
    except FileNotFoundError:
        raise UserInputError(f"`{p}` does not exist; expected {what}") from None
    except IsADirectoryError:
        raise DocumentError(f"Expected {what} (a JSON file), found a folder", file=str(p)) from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            f"Invalid UTF-8 at byte {exc.start} (0x{body[exc.start]:02x}); expected {what} as UTF-8 JSON", file=str(p)
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(
            f"The file is not valid JSON ({exc.msg}); expected {what}", file=str(p), line=exc.lineno, column=exc.colno
        ) from None
    except RecursionError:
        raise DocumentError(f"JSON nested too deeply; expected {what}", file=str(p)) from None


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    if isinstance(value, bool) or value is None:
        return names[type(value)]
    if isinstance(value, (int, float)):
        return "a number"
    return names.get(type(value), type(value).__name__)


def is_manifest_document(path: str | Path) -> bool:
    """True when the YAML file at `path` is a compiled manifest rather than an OML pipeline."""
    from osiris.core.documents import load_yaml_file

    data, _ = load_yaml_file(path)
    return isinstance(data, dict) and "manifest_version" in data and "oml_version" not in data


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
