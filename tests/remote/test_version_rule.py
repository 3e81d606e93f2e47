"""One version rule on the host and for a sandbox: the manifest's driver pins against what is installed."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import msgspec
import pytest

from osiris.core.errors import UserInputError
from osiris.core.manifest import dump_manifest, load_manifest, seal
from osiris.remote.plugins import e2b_plugin, local_plugin
from osiris.runtime.cli import run_on_host
from osiris.runtime.sandbox_api import SandboxOptions


def _pinned(manifest_path: Path, out: Path, versions: dict[str, str]) -> Path:
    """A copy of the build whose manifest pins `versions` (distribution -> version), sealed again."""
    import shutil

    shutil.copytree(manifest_path.parent, out)
    manifest = load_manifest(manifest_path)
    drivers = [msgspec.structs.replace(d, version=versions.get(d.package, d.version)) for d in manifest.drivers]
    (out / "manifest.yaml").write_text(dump_manifest(seal(msgspec.structs.replace(manifest, drivers=drivers))))
    return out / "manifest.yaml"


def _bumped(version: str, up: bool) -> str:
    major, minor, _patch = (int(x) for x in version.split(".")[:3])
    return f"{major}.{minor + 1}.0" if up else (f"{major}.{minor - 1}.9" if minor else "0.0.1")


@pytest.mark.parametrize("up", [True, False], ids=["manifest-newer", "manifest-older"])
def test_a_pin_that_differs_from_the_installed_driver_is_the_same_exit_2_on_host_and_for_sandboxes(
    quickstart_manifest, workdir, tmp_path, envd, up
):
    installed = metadata.version("osiris-drivers-sql")
    wanted = _bumped(installed, up)
    manifest = _pinned(quickstart_manifest, tmp_path / "build", {"osiris-drivers-sql": wanted})
    results = {"host": run_on_host(manifest, runs_dir=workdir / "host", connections_file=None)}
    for where, plugin in (("local", local_plugin), ("e2b", e2b_plugin)):
        results[where] = plugin(manifest, SandboxOptions(name=where), connections_file=None, runs_dir=workdir / where)
    messages = {}
    for where, run in results.items():
        assert run.exit_code == 2, (where, run.error)
        assert all(s.status == "not_run" for s in run.steps), where
        messages[where] = run.error["message"]
        card = json.loads((run.run_dir / "run_card.json").read_text())
        assert (
            card["status"] == "failed"
            and card["error"]["hint"] == f"pip install 'osiris-drivers-sql[duckdb]=={wanted}'"
        )
    assert messages["host"] == messages["local"] == messages["e2b"], messages
    text = messages["host"]
    assert f"`osiris-drivers-sql=={wanted}`" in text and f"`osiris-drivers-sql {installed}` is installed" in text
    assert "Compile the pipeline again" in text
    for where in ("local", "e2b"):
        events = (results[where].run_dir / "events.jsonl").read_text()
        assert '"sandbox_failed"' in events and '"sandbox_created"' not in events, "no sandbox was made"
    host_events = [json.loads(x) for x in (results["host"].run_dir / "events.jsonl").read_text().splitlines()]
    (check,) = [e for e in host_events if e["event"] == "version_check"]
    assert check["ok"] is False and check["mismatches"] == [
        {"distribution": "osiris-drivers-sql", "manifest_version": wanted, "installed_version": installed}
    ]


def test_a_driver_distribution_that_is_not_installed_at_all_is_named(quickstart_manifest, workdir, tmp_path):
    from osiris.runtime.versions import check_pins, pin_mismatches

    manifest = load_manifest(quickstart_manifest)
    ghost = msgspec.structs.replace(manifest.drivers[0], package="acme-not-installed", version="1.0.0")
    fake = msgspec.structs.replace(manifest, drivers=[*manifest.drivers, ghost])
    (mismatch,) = pin_mismatches(fake)
    assert mismatch.installed is None and "it is not installed" in mismatch.describe()
    with pytest.raises(UserInputError, match=r"acme-not-installed==1\.0\.0"):
        check_pins(fake)


@pytest.mark.parametrize("library", ["duckdb", "pyarrow"])
def test_a_sandbox_whose_data_library_versions_differ_says_so_in_an_event_and_the_run_card(
    quickstart_manifest, workdir, tmp_path, library
):
    """The sandbox's worker sees another version of `library` (metadata first on its path): the run still
    runs, and the difference is in `sandbox_versions_differ` and the card's `version_differences`."""
    fake = tmp_path / "other-versions"
    (fake / f"{library}-0.0.1.dist-info").mkdir(parents=True)
    (fake / f"{library}-0.0.1.dist-info" / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {library}\nVersion: 0.0.1\n"
    )
    options = SandboxOptions(name="local", env={"PYTHONPATH": str(fake)})
    run = local_plugin(quickstart_manifest, options, connections_file=None, runs_dir=workdir / "local")
    assert run.exit_code == 0, run.error
    card = run.run_card
    host_version = metadata.version(library)
    assert card["environment"]["libraries"][library] == "0.0.1"
    assert card["sandbox"]["host_environment"]["libraries"][library] == host_version
    expected = {"kind": "libraries", "name": library, "host": host_version, "sandbox": "0.0.1"}
    assert expected in card["sandbox"]["version_differences"]
    events = [json.loads(x) for x in (run.run_dir / "events.jsonl").read_text().splitlines()]
    (differ,) = [e for e in events if e["event"] == "sandbox_versions_differ"]
    assert differ["origin"] == "host" and expected in differ["differences"]
    (created,) = [e for e in events if e["event"] == "sandbox_created"]
    assert created["from_index"] == [] and created["index"] is None, "a checkout's host uploads its own wheels"


def test_differences_compare_what_both_sides_have():
    from osiris.runtime.versions import differences

    host = {
        "python": "3.11.7",
        "distributions": {"osiris-core": "0.3.0", "acme": "1.0"},
        "libraries": {"duckdb": "1.1.3", "pymysql": "1.1.0", "pyarrow": "20.0.0"},
    }
    sandbox = {
        "python": "3.11.7",
        "distributions": {"osiris-core": "0.3.0"},
        "libraries": {"duckdb": "2.0.1", "pymysql": None, "pyarrow": "20.0.0"},
    }
    assert differences(host, sandbox) == [
        {"kind": "distributions", "name": "acme", "host": "1.0", "sandbox": None},
        {"kind": "libraries", "name": "duckdb", "host": "1.1.3", "sandbox": "2.0.1"},
    ]
    assert differences(host, host) == []
    assert differences(host, {**host, "python": "3.12.1"})[0]["kind"] == "python"
