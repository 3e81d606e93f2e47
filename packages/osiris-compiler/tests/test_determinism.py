"""Identical inputs give byte-identical manifests; any change moves the fingerprint."""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path

import yaml
from osiris_cli import run_osiris

from osiris.compiler.compiler import compile_to_build
from osiris.core.build import last_compile
from osiris.core.errors import DocumentError
from osiris.core.manifest import load_manifest

REPO = Path(__file__).resolve().parents[3]
FLAGSHIP = REPO / "docs" / "examples" / "mysql_duckdb_supabase.yaml"


def _compile_in(directory: Path, oml: Path) -> Path:
    directory.mkdir(parents=True)
    shutil.copy(oml, directory / "pipeline.yaml")
    proc = run_osiris("compile", "pipeline.yaml", "--json", cwd=directory)
    assert proc.returncode == 0, proc.stderr
    return next((directory / "build" / "mysql_duckdb_supabase").iterdir())


def _files(build: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(build)): p.read_bytes()
        for p in sorted(build.rglob("*"))
        if p.is_file() and p.name != "compile.json"
    }


def test_same_oml_in_two_directories_gives_byte_identical_output(tmp_path):
    a = _compile_in(tmp_path / "a", FLAGSHIP)
    b = _compile_in(tmp_path / "b", FLAGSHIP)
    files_a, files_b = _files(a), _files(b)
    assert set(files_a) == {"manifest.yaml", *(f"cfg/{s}.json" for s in ("customers", "orders", "revenue", "load"))}
    assert files_a == files_b
    assert a.name == b.name  # the folder is named after the manifest fingerprint


def test_changing_one_config_value_changes_the_manifest_fingerprint(tmp_path):
    base = load_manifest(_compile_in(tmp_path / "a", FLAGSHIP) / "manifest.yaml")
    changed = tmp_path / "changed.yaml"
    changed.write_text(FLAGSHIP.read_text().replace("table: revenue_by_month", "table: revenue_monthly"))
    other = load_manifest(_compile_in(tmp_path / "b", changed) / "manifest.yaml")
    assert other.fingerprints.manifest != base.fingerprints.manifest
    assert other.fingerprints.oml != base.fingerprints.oml
    assert other.fingerprints.specs == base.fingerprints.specs


def test_drivers_section_names_each_distribution_and_its_installed_version(tmp_path):
    manifest = load_manifest(_compile_in(tmp_path / "a", FLAGSHIP) / "manifest.yaml")
    drivers = {d.package: (d.version, d.components) for d in manifest.drivers}
    assert drivers == {
        "osiris-drivers-sql": (metadata.version("osiris-drivers-sql"), ["duckdb.processor", "mysql.extractor"]),
        "osiris-drivers-supabase": (metadata.version("osiris-drivers-supabase"), ["supabase.writer"]),
    }


def test_steps_are_in_topological_order_with_ties_in_declaration_order(write, tmp_path):
    oml = write(
        "p.yaml",
        """
        oml_version: "0.1.0"
        name: order
        steps:
          - {id: save, component: filesystem.parquet_writer, needs: [join], config: {path: o.parquet}}
          - {id: join, component: duckdb.processor, needs: [b, a], config: {query: "SELECT 1"}}
          - {id: b, component: filesystem.csv_extractor, config: {path: b.csv}}
          - {id: a, component: filesystem.csv_extractor, config: {path: a.csv}}
        """,
    )
    out = compile_to_build(oml, tmp_path / "build")
    assert [s.id for s in out.compiled.manifest.steps] == ["b", "a", "join", "save"]
    assert out.compiled.manifest.steps[2].needs == ["b", "a"]


def test_spec_defaults_are_filled_into_cfg(write, tmp_path, pipeline_text):
    out = compile_to_build(write("p.yaml", pipeline_text), tmp_path / "build")
    cfg = (out.build_dir / "cfg" / "save.json").read_text()
    assert '"compression": "zstd"' in cfg and '"row_group_size": 131072' in cfg


def test_last_compile_points_at_the_newest_manifest(write, tmp_path, pipeline_text):
    first = compile_to_build(write("p.yaml", pipeline_text), tmp_path / "build")
    second = compile_to_build(write("q.yaml", pipeline_text.replace("name: demo", "name: demo2")), tmp_path / "build")
    assert last_compile(tmp_path / "build") == second.manifest_path.resolve()
    assert first.manifest_path != second.manifest_path


def test_compile_json_holds_the_times_and_the_manifest_does_not(write, tmp_path, pipeline_text):
    out = compile_to_build(write("p.yaml", pipeline_text), tmp_path / "build")
    info = yaml.safe_load((out.build_dir / "compile.json").read_text())
    assert info["duration_ms"] >= 0 and "compiled_at" in info
    assert "compiled_at" not in out.manifest_path.read_text()


def test_an_edited_manifest_is_refused(write, tmp_path, pipeline_text):
    out = compile_to_build(write("p.yaml", pipeline_text), tmp_path / "build")
    text = out.manifest_path.read_text()
    out.manifest_path.write_text(text.replace("mode: transform", "mode: read"))
    try:
        load_manifest(out.manifest_path)
    except DocumentError as exc:
        assert "edited after compiling" in str(exc)
    else:
        raise AssertionError("an edited manifest was accepted")
