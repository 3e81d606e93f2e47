"""Component specs, manifests and driver modules made in a test, for running the real runtime on them."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from osiris.core.build import cfg_path
from osiris.core.manifest import Fingerprints, Manifest, ManifestStep, PipelineInfo, ToolInfo, seal
from osiris.core.spec import ComponentSpec


def make_spec(name: str, driver: str, modes: list[str], **fields: Any) -> ComponentSpec:
    """A component spec `name` whose driver is `driver` (``module:Class``); `fields` add or override spec keys
    (`capabilities`, `configSchema`, `secrets`, `x-connection` ...)."""
    data = {"name": name, "version": "0.1.0", "modes": modes, "configSchema": {"type": "object"}}
    data.update({key.replace("_", "-") if key.startswith("x_") else key: value for key, value in fields.items()})
    data["x-runtime"] = {"driver": driver}
    return msgspec.convert(data, ComponentSpec)


def make_manifest(
    pipeline: str, steps: list[tuple[str, ComponentSpec, list[str]]], cfgs: dict[str, bytes] | None = None
) -> Manifest:
    """A sealed manifest of `steps` ((id, spec, needs) in order), as a compiler makes one; each step's
    `cfg_sha256` is that of its bytes in `cfgs` when given (for a build on disk)."""
    from osiris.core.fingerprint import sha256_hex

    return seal(
        Manifest(
            pipeline=PipelineInfo(name=pipeline),
            compiler=ToolInfo(package="test", version="0"),
            steps=[
                ManifestStep(
                    id=step_id,
                    component=spec.name,
                    mode=spec.modes[0],
                    driver=spec.x_runtime.driver,
                    needs=needs,
                    cfg_path=cfg_path(step_id),
                    cfg_sha256=sha256_hex(cfgs[step_id]) if cfgs else "not-compiled",
                )
                for step_id, spec, needs in steps
            ],
            fingerprints=Fingerprints(oml="a", params="b", specs="c", drivers="d"),
        )
    )


def driver_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str, source: str) -> str:
    """Write `source` as an importable module of its own under `tmp_path`; its name."""
    name = f"{prefix}_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def component_distribution(
    root: Path, monkeypatch: pytest.MonkeyPatch, dist: str, version: str, specs: dict[str, str]
) -> str:
    """Install (on `sys.path`, as a real distribution with metadata and an `osiris.components`
    entry point) a third-party package `dist` whose `components` folder holds `specs` (file name
    -> YAML text); the import package's name."""
    package = dist.replace("-", "_")
    folder = root / package / "components"
    folder.mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    (folder / "__init__.py").write_text("")
    for name, text in specs.items():
        (folder / name).write_text(text)
    info = root / f"{package}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[osiris.components]\n{package} = {package}.components\n")
    monkeypatch.syspath_prepend(str(root))
    for module in (package, f"{package}.components"):  # one an earlier test imported from elsewhere
        monkeypatch.delitem(sys.modules, module, raising=False)
    return package
