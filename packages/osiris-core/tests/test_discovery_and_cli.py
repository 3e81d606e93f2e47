"""Component discovery through entry points, and the core CLI commands."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

import pytest

from osiris.core.cli import main
from osiris.core.discovery import ComponentRegistry, installed_osiris_distributions
from osiris.core.errors import ComponentError
from osiris.core.spec import apply_defaults

EXPECTED = {
    "mysql.extractor": "osiris-drivers-sql",
    "duckdb.processor": "osiris-drivers-sql",
    "duckdb.writer": "osiris-drivers-sql",
    "supabase.writer": "osiris-drivers-supabase",
    "supabase.extractor": "osiris-drivers-supabase",
    "filesystem.csv_extractor": "osiris-runtime",
    "filesystem.csv_writer": "osiris-runtime",
    "filesystem.parquet_writer": "osiris-runtime",
}


def test_every_shipped_component_is_found_with_its_provider_and_version():
    registry = ComponentRegistry.discover()
    found = {c.name: c for c in registry.all()}
    assert registry.failures == []
    for name, dist in EXPECTED.items():
        assert found[name].distribution == dist
        assert found[name].version == metadata.version(dist)
        spec = found[name].spec
        assert spec.config_schema["type"] == "object"
        assert spec.x_runtime.driver.count(":") == 1
        assert spec.examples, f"{name} has no examples"


def test_discovery_imports_no_driver_code():
    probe = (
        "import sys; from osiris.core.discovery import ComponentRegistry; ComponentRegistry.discover().all(); "
        "print(sorted(m for m in sys.modules if m.startswith(('osiris.drivers', 'osiris.runtime')) "
        "and not m.endswith('.components') and m.count('.') > 2))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unknown_component_error_suggests_a_name():
    with pytest.raises(ComponentError, match=r"did you mean `duckdb.processor`"):
        ComponentRegistry.discover().get("duckdb.procesor")


def test_spec_examples_are_valid_configs():
    from jsonschema import Draft202012Validator

    for comp in ComponentRegistry.discover().all():
        validator = Draft202012Validator(comp.spec.config_schema)
        for example in comp.spec.examples:
            errors = [e.message for e in validator.iter_errors(example["config"])]
            assert errors == [], (comp.name, example["title"], errors)


def test_defaults_come_from_the_spec():
    spec = ComponentRegistry.discover().get("supabase.writer").spec
    config = apply_defaults(spec.config_schema, {"table": "t"})
    assert config["write_mode"] == "append" and config["schema"] == "public" and config["batch_size"] == 10000


def test_version_lists_every_osiris_distribution(capsys):
    assert main(["--version"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = {line.split()[0] for line in lines}
    assert set(EXPECTED.values()) | {"osiris-core", "osiris-compiler", "osiris-remote"} <= names
    assert dict(installed_osiris_distributions())["osiris-core"] in " ".join(lines)


def test_components_list_and_show_json(capsys):
    assert main(["components", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {c["name"] for c in listed["components"]} >= set(EXPECTED)
    assert main(["components", "show", "mysql.extractor", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["provider"]["distribution"] == "osiris-drivers-sql"
    assert "configSchema" in shown and "x-runtime" in shown


def test_components_show_unknown_exits_2(capsys):
    assert main(["components", "show", "nope.thing"]) == 2
    assert "Unknown component `nope.thing`" in capsys.readouterr().err


def test_missing_subcommand_package_is_named(capsys, monkeypatch):
    from osiris.core import cli

    monkeypatch.setattr(cli, "_entry_points", lambda: {})
    assert main(["compile", "x.yaml"]) == 2
    assert "provided by the `osiris-compiler` package" in capsys.readouterr().err


def test_family_providers_match_the_shipped_specs():
    from osiris.core.discovery import FAMILY_PROVIDERS

    for comp in ComponentRegistry.discover().all():
        if comp.distribution.startswith("osiris-"):
            assert FAMILY_PROVIDERS[comp.spec.family] == comp.distribution, comp.name


@pytest.mark.parametrize(
    ("name", "dist"),
    [
        ("mysql.extractor", "osiris-drivers-sql"),
        ("duckdb.writer", "osiris-drivers-sql"),
        ("supabase.writer", "osiris-drivers-supabase"),
    ],
)
def test_unknown_component_of_a_missing_distribution_says_what_to_install(monkeypatch, name, dist):
    from osiris.core import discovery

    real = discovery.installed.distribution

    def without(d):
        return None if d == dist else real(d)

    monkeypatch.setattr(discovery.installed, "distribution", without)
    registry = ComponentRegistry()  # nothing installed
    with pytest.raises(ComponentError) as info:
        registry.get(name)
    assert f"provided by `{dist}`, which is not installed: `pip install {dist}`" in str(info.value)


def test_unknown_component_of_an_installed_distribution_suggests_the_spelling():
    with pytest.raises(ComponentError) as info:
        ComponentRegistry.discover().get("mysql.extracter")
    message = str(info.value)
    assert "did you mean `mysql.extractor`" in message and "pip install" not in message


SHADOW_SPEC = """name: {name}
version: 0.1.0
title: A second {name}
modes: [{mode}]
configSchema: {{type: object}}
x-runtime: {{driver: "acme_shadow.driver:Shadow"}}
"""


@pytest.mark.parametrize(
    ("name", "mode"), [("duckdb.processor", "transform"), ("acme.upper", "transform"), ("mysql.extractor", "read")]
)
def test_a_name_clash_is_reported_by_components_list_as_compile_reports_it(tmp_path, monkeypatch, capsys, name, mode):
    from builders import component_distribution

    for dist in ("acme-shadow", "acme-shadow-too"):
        component_distribution(
            tmp_path / dist, monkeypatch, dist, "0.1.0", {"shadow.yaml": SHADOW_SPEC.format(name=name, mode=mode)}
        )
    with pytest.raises(ComponentError) as raised:
        ComponentRegistry.discover().get(name)
    compile_says = str(raised.value)
    assert "provided twice" in compile_says and "acme-shadow" in compile_says

    assert main(["components", "list", "--json"]) == 2
    listed = json.loads(capsys.readouterr().out)
    assert name not in {c["name"] for c in listed["components"]}
    (clash,) = [f for f in listed["failures"] if f.get("component") == name]
    assert clash["error"] == compile_says

    assert main(["components", "list"]) == 2
    out = capsys.readouterr()
    assert f"error: {compile_says}" in out.err
    assert "filesystem.csv_writer" in out.out  # the other components are still listed


def test_version_and_discovery_list_third_party_component_distributions(tmp_path, monkeypatch, capsys):
    from builders import component_distribution

    spec = SHADOW_SPEC.format(name="acme.lower", mode="transform")
    component_distribution(tmp_path, monkeypatch, "acme-lower", "1.4.2", {"lower.yaml": spec})
    assert ("acme-lower", "1.4.2") in installed_osiris_distributions()
    assert main(["--version"]) == 0
    assert "acme-lower 1.4.2" in capsys.readouterr().out.splitlines()


def test_every_shipped_spec_file_is_named_after_its_component():
    """What lets a run parse only its own components' specs (`ComponentRegistry.get` reads `<name>.yaml`)."""
    registry = ComponentRegistry.discover()
    shipped = [c for c in registry.all() if c.distribution.startswith("osiris-")]
    assert shipped
    for comp in shipped:
        assert comp.source.rsplit("/", 1)[-1].rsplit(".", 1)[0] == comp.name, comp.source


def test_asking_for_one_component_parses_only_its_spec():
    registry = ComponentRegistry.discover()
    unread = set(registry._unread)
    assert {"mysql.extractor", "supabase.writer", "duckdb.processor"} <= unread
    assert registry.get("mysql.extractor").name == "mysql.extractor"
    assert set(registry._unread) == unread - {"mysql.extractor"}
    everything = {c.name for c in registry.all()}
    assert not registry._unread and unread <= everything
