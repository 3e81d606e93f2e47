import msgspec
import pytest

from osiris.core.discovery import ComponentRegistry
from osiris.core.errors import UserInputError
from osiris.core.spec import ComponentSpec
from osiris.runtime.registry import DriverRegistry, check_requirements, raise_for_missing


def make(name: str, driver: str, modes=("read",), imports=()) -> ComponentSpec:
    return msgspec.convert(
        {
            "name": name,
            "version": "1",
            "modes": list(modes),
            "configSchema": {},
            "x-runtime": {"driver": driver, "requirements": {"imports": list(imports), "packages": list(imports)}},
        },
        ComponentSpec,
    )


def test_populate_reports_registered_skipped_failed_and_fingerprint():
    installed = ComponentRegistry.discover()
    specs = [installed.get("filesystem.csv_extractor"), installed.get("filesystem.csv_writer")]
    specs += [make("broken.reader", "no_such_module_xyz:Driver"), make("x.writer", "json:JSONDecoder", ["write"])]
    reg = DriverRegistry()
    summary = reg.populate_from_component_specs(specs, modes=["read"], deny=["x.writer"])
    assert list(summary.registered) == ["filesystem.csv_extractor"]
    assert summary.skipped == {"filesystem.csv_writer": "modes write not requested", "x.writer": "in deny list"}
    assert "ModuleNotFoundError" in summary.failed["broken.reader"]
    assert summary.fingerprint.startswith("sha256:")
    again = DriverRegistry().populate_from_component_specs(specs, modes=["read"], deny=["x.writer"])
    assert again.fingerprint == summary.fingerprint
    assert reg.create("filesystem.csv_extractor").__class__.__name__ == "CsvExtractor"


def test_driver_without_keyword_contract_fails_registration():
    summary = DriverRegistry().populate_from_component_specs([make("bad.reader", "json:JSONDecoder")])
    assert "bad.reader" in summary.failed and "run" in summary.failed["bad.reader"]


def test_preflight_lists_missing_imports_with_packages():
    missing = check_requirements([make("a.reader", "m:C", imports=["json", "no_such_mod_abc"])])
    assert [(m.module, m.package) for m in missing] == [("no_such_mod_abc", "no_such_mod_abc")]
    with pytest.raises(UserInputError, match=r"`no_such_mod_abc` for `a\.reader`"):
        raise_for_missing(missing)


def test_preflight_names_the_distribution_extra_and_version_to_install(monkeypatch):
    from osiris.core.discovery import Component

    spec = msgspec.convert(
        {
            "name": "demo.reader",
            "version": "1",
            "modes": ["read"],
            "configSchema": {},
            "x-runtime": {
                "driver": "m:C",
                "requirements": {"imports": ["no_such_mod_abc"], "packages": ["abc-lib"], "extras": ["abc"]},
            },
        },
        ComponentSpec,
    )
    comp = Component(spec=spec, raw={}, distribution="osiris-drivers-demo", version="0.4.2", source="x")
    missing = check_requirements([comp])
    assert [m.install for m in missing] == ["osiris-drivers-demo[abc]==0.4.2"]
    with pytest.raises(UserInputError) as info:
        raise_for_missing(missing)
    assert info.value.exit_code == 2
    assert info.value.hint == "pip install 'osiris-drivers-demo[abc]==0.4.2'"
    assert "`no_such_mod_abc` for `demo.reader`: install `osiris-drivers-demo[abc]==0.4.2`" in info.value.message
