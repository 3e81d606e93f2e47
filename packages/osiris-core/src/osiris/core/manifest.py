"""The compiled manifest: what the runtime executes, fingerprinted and byte-stable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import yaml

from osiris.core.documents import load_yaml_file, load_yaml_text
from osiris.core.errors import DocumentError
from osiris.core.fingerprint import fingerprint
from osiris.core.oml import Mode, OnError, convert

MANIFEST_VERSION = "0.1.0"


class DriverRequirement(msgspec.Struct, kw_only=True, frozen=True):
    """A driver distribution a manifest needs, at the version it was compiled against, with the
    extras its components need at run time (what a sandbox installs: ``package[extras]==version``)."""

    package: str
    version: str
    components: list[str]
    extras: list[str] = []

    @property
    def install_spec(self) -> str:
        """The pip requirement that installs exactly this: ``osiris-drivers-sql[duckdb,mysql]==0.2.0``."""
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.package}{extras}=={self.version}"


class ManifestStep(msgspec.Struct, kw_only=True, frozen=True):
    """One step as the runtime sees it; its config lives in `cfg_path`."""

    id: str
    component: str
    mode: Mode
    driver: str
    needs: list[str] = []
    cfg_path: str
    cfg_sha256: str
    # `continue`: when this step fails, steps that do not depend on it still run. Unset means `stop`.
    on_error: OnError | None = None


class Fingerprints(msgspec.Struct, kw_only=True, frozen=True):
    """sha256 fingerprints over canonical JSON of each input of the compile."""

    oml: str
    params: str
    specs: str
    drivers: str
    manifest: str = ""


class PipelineInfo(msgspec.Struct, kw_only=True, frozen=True):
    """The pipeline a manifest was compiled from."""

    name: str
    description: str | None = None


class ToolInfo(msgspec.Struct, kw_only=True, frozen=True):
    """The compiler that made the manifest."""

    package: str
    version: str


class Manifest(msgspec.Struct, kw_only=True, frozen=True):
    """A compiled pipeline: steps in topological order, drivers, params and fingerprints."""

    manifest_version: str = MANIFEST_VERSION
    pipeline: PipelineInfo
    compiler: ToolInfo
    params: dict[str, Any] = {}
    drivers: list[DriverRequirement] = []
    steps: list[ManifestStep]
    fingerprints: Fingerprints

    @property
    def short(self) -> str:
        """The first 12 hex digits of the manifest fingerprint (names the build folder)."""
        return self.fingerprints.manifest.split(":", 1)[-1][:12]


def _builtins(manifest: Manifest) -> dict[str, Any]:
    """The manifest as plain data; fields added later are left out while unset, so manifests
    compiled before them keep their bytes and fingerprints."""
    data = msgspec.to_builtins(manifest)
    for step in data.get("steps", []):
        if step.get("on_error") is None:
            step.pop("on_error", None)
    return data


def seal(manifest: Manifest) -> Manifest:
    """Return `manifest` with `fingerprints.manifest` set over everything else in it."""
    body = _builtins(
        msgspec.structs.replace(manifest, fingerprints=msgspec.structs.replace(manifest.fingerprints, manifest=""))
    )
    return msgspec.structs.replace(
        manifest, fingerprints=msgspec.structs.replace(manifest.fingerprints, manifest=fingerprint(body))
    )


def dump_manifest(manifest: Manifest) -> str:
    """The manifest as YAML text; identical manifests give identical bytes."""
    data = _builtins(manifest)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)


def load_manifest(path: str | Path) -> Manifest:
    """Read a `manifest.yaml` and check that its fingerprint still matches its content."""
    data, index = load_yaml_file(path)
    return _checked(convert(data, Manifest, file=str(path), index=index), file=str(path))


def parse_manifest(text: str, *, file: str = "manifest.yaml") -> Manifest:
    """A manifest from its YAML text (e.g. sent over the wire), checked against its fingerprint like a file."""
    data, index = load_yaml_text(text, file=file)
    return _checked(convert(data, Manifest, file=file, index=index), file=file)


def _checked(manifest: Manifest, *, file: str) -> Manifest:
    if seal(manifest).fingerprints.manifest != manifest.fingerprints.manifest:
        raise DocumentError(
            "The manifest's content does not match its `fingerprints.manifest`; it was edited after "
            "compiling. Compile the pipeline again",
            file=file,
        )
    return manifest
