"""The build folder contract: written atomically, read back with every file checked against the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from builders import make_manifest, make_spec

from osiris.core import build
from osiris.core.errors import DocumentError, UserInputError
from osiris.core.manifest import dump_manifest

CFGS = {
    "extract": b'{\n  "path": "in.csv"\n}\n',
    "load": b'{\n  "path": "out.parquet",\n  "compression": "zstd"\n}\n',
}


def _write(out: Path, cfgs: dict[str, bytes] = CFGS) -> Path:
    read = make_spec("filesystem.csv_extractor", "x:Y", ["read"])
    write = make_spec("filesystem.parquet_writer", "x:Y", ["write"])
    manifest = make_manifest("demo", [("extract", read, []), ("load", write, ["extract"])], cfgs)
    target = build.build_dir(out, manifest)
    info = {"pipeline": "demo", "manifest": str((target / build.MANIFEST_FILE).resolve())}
    assert build.write_build(out, manifest, dump_manifest(manifest), cfgs, info) == target
    return target / build.MANIFEST_FILE


def test_a_build_reads_back_as_written(tmp_path: Path) -> None:
    manifest_path = _write(tmp_path / "build")
    loaded = build.load_build(manifest_path)
    assert loaded.dir == manifest_path.parent and loaded.manifest_text == manifest_path.read_text()
    assert loaded.cfgs == {sid: json.loads(body) for sid, body in CFGS.items()}
    assert sorted(p.name for p in loaded.dir.iterdir()) == ["cfg", "compile.json", "manifest.yaml"]
    assert build.last_compile(tmp_path / "build") == manifest_path.resolve()
    assert build.is_manifest_document(manifest_path)


@pytest.mark.parametrize("step", list(CFGS))
@pytest.mark.parametrize(
    "edit",
    [lambda b: b.replace(b'"', b"'"), lambda b: b + b"\n", lambda b: b.replace(b"\n  ", b"\n    ")],
    ids=["value", "trailing-newline", "whitespace"],
)
def test_a_cfg_edited_after_compiling_is_refused_naming_the_file(tmp_path: Path, step: str, edit) -> None:
    manifest_path = _write(tmp_path / "build")
    cfg_file = manifest_path.parent / "cfg" / f"{step}.json"
    cfg_file.write_bytes(edit(cfg_file.read_bytes()))
    with pytest.raises(DocumentError) as info:
        build.load_build(manifest_path)
    assert info.value.exit_code == 2 and info.value.step == step
    assert str(cfg_file) in str(info.value) and "edited after compiling" in str(info.value)


def test_a_missing_cfg_and_an_edited_manifest_are_refused(tmp_path: Path) -> None:
    manifest_path = _write(tmp_path / "build")
    (manifest_path.parent / "cfg" / "load.json").unlink()
    with pytest.raises(UserInputError, match=r"cfg of step `load` is missing"):
        build.load_build(manifest_path)
    manifest_path.write_text(manifest_path.read_text().replace("demo", "demo2"))
    with pytest.raises(DocumentError, match=r"fingerprints\.manifest"):
        build.load_build(manifest_path)


def test_last_compile_says_what_is_wrong_with_the_pointer(tmp_path: Path) -> None:
    out = tmp_path / "build"
    with pytest.raises(UserInputError, match=r"No compile found.*run `osiris compile` first"):
        build.last_compile(out)
    manifest_path = _write(out)
    (out / build.LAST_COMPILE).write_text("{not json")
    with pytest.raises(UserInputError, match="is not valid JSON"):
        build.last_compile(out)
    (out / build.LAST_COMPILE).write_text(json.dumps({"manifest": str(manifest_path) + ".gone"}))
    with pytest.raises(UserInputError, match="no longer exists"):
        build.last_compile(out)
