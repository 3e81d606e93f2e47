"""Dependency layers: which requirements go in, how a layer is named, and what a failed build leaves."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from osiris.core.errors import TerminalError
from osiris.remote import layers


def test_third_party_requirements_leave_out_osiris_extras_and_host_only(tmp_path):
    import zipfile

    wheel = tmp_path / "osiris_demo-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(
            "osiris_demo-0.1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: osiris-demo\nVersion: 0.1.0\n"
            "Requires-Dist: osiris-runtime<1,>=0.1\nRequires-Dist: duckdb>=1.0\n"
            "Requires-Dist: e2b<3,>=1.0\nRequires-Dist: pytest; extra == 'test'\n"
            'Requires-Dist: tomli>=2;  python_version < "3.11"\nRequires-Dist: pyarrow>=15\n',
        )
    reqs = layers.third_party_requirements([wheel, "osiris-core"])
    assert reqs == sorted(reqs)
    assert "duckdb>=1.0" in reqs and "pyarrow>=15" in reqs and "msgspec>=0.19" in reqs
    assert 'tomli>=2; python_version < "3.11"' in reqs, "markers are kept for pip to evaluate"
    assert not [r for r in reqs if r.startswith(("osiris", "e2b", "pytest"))]


def test_third_party_requirements_include_exactly_the_named_extras(tmp_path):
    import zipfile

    wheel = tmp_path / "osiris_demo-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(
            "osiris_demo-0.1.0.dist-info/METADATA",
            "Metadata-Version: 2.4\nName: osiris-demo\nVersion: 0.1.0\n"
            "Provides-Extra: mysql\nProvides-Extra: duck-db\n"
            "Requires-Dist: osiris-runtime<1,>=0.1; extra == 'mysql'\n"
            'Requires-Dist: pymysql<2,>=1.1; extra == "mysql"\n'
            "Requires-Dist: duckdb>=1.0; extra == 'duck-db'\n"
            "Requires-Dist: tomli>=2; python_version < '3.11' and extra == 'mysql'\n",
        )
    assert layers.provided_extras(wheel) == ["duck-db", "mysql"]
    assert layers.third_party_requirements([wheel]) == []
    assert layers.third_party_requirements([wheel], extras={"osiris-demo": ["mysql"]}) == [
        "pymysql<2,>=1.1",
        "tomli>=2; python_version < '3.11'",
    ]
    assert layers.third_party_requirements([wheel], extras={"osiris_demo": ["duck_db"]}) == ["duckdb>=1.0"]


def test_layer_key_is_the_exact_requirement_set_and_python():
    key = layers.layer_key(["b>=1", "a>=2"], "cpython-3.11-linux-x86_64")
    assert key == layers.layer_key(["a>=2", "b>=1", "a>=2"], "cpython-3.11-linux-x86_64")
    assert key != layers.layer_key(["a>=2", "b>=1.1"], "cpython-3.11-linux-x86_64")
    assert key != layers.layer_key(["a>=2", "b>=1"], "cpython-3.12-linux-x86_64")


def test_cache_dir_follows_osiris_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("OSIRIS_CACHE_DIR", str(tmp_path))
    assert layers.layers_root() == tmp_path / "sandbox-layers"


def test_a_failed_build_keeps_its_log_and_leaves_no_layer(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PIP_NO_INDEX": "1"}
    broken = "broken @ file:///nonexistent/osiris-test/broken-1.0-py3-none-any.whl"
    with pytest.raises(TerminalError, match="Building the sandbox dependency layer") as info:
        layers.ensure_layer([broken], root=tmp_path, env=env)
    key = layers.layer_key([broken], layers.python_tag())
    assert f"`{tmp_path / (key + '.failed.log')}`" in str(info.value)
    assert "broken" in (tmp_path / f"{key}.failed.log").read_text()
    assert not (tmp_path / key).exists()
    assert not list(tmp_path.glob(".build-*")), "the temporary build folder is removed"


def test_host_closure_follows_requirements_and_extras_at_the_host_versions():
    from importlib import metadata

    closure = layers.host_closure(["rich>=13", "pyarrow>=15"])
    assert closure is not None
    pins = dict(pin.split("==") for pin, _ in closure)
    assert pins["rich"] == metadata.version("rich") and pins["pyarrow"] == metadata.version("pyarrow")
    assert {"markdown-it-py", "pygments", "mdurl"} <= set(pins), "what rich requires, recursively"
    assert list(pins) == sorted(pins)


def test_host_closure_is_none_when_the_host_cannot_satisfy_a_requirement():
    from importlib import metadata

    pyarrow = metadata.version("pyarrow")
    assert layers.host_closure([f"pyarrow>{pyarrow}"]) is None, "outside the range"
    assert layers.host_closure(["osiris-no-such-distribution>=1"]) is None, "not installed"
    assert layers.host_closure(["pyarrow @ file:///nonexistent/pyarrow-1-py3-none-any.whl"]) is None
    assert layers.host_closure(["osiris-core>=0.1"]) is None, "an editable install is not linked"
    assert layers.host_closure(['pyarrow>=15; python_version < "3"', "duckdb>=1"]) is not None, "marker false"


def test_a_host_layer_is_named_by_its_pins_too():
    python = "cpython-3.11-linux-x86_64"
    key = layers.layer_key(["a>=1"], python, ["a==1.0"])
    assert key != layers.layer_key(["a>=1"], python, ["a==1.1"]), "a host that upgraded gets a new layer"
    assert key != layers.layer_key(["a>=1"], python), "and never the layer pip built"


def test_the_code_layer_is_named_by_the_wheels_contents(tmp_path):
    a, b = tmp_path / "osiris_a-1-py3-none-any.whl", tmp_path / "osiris_b-1-py3-none-any.whl"
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    python = "cpython-3.11-linux-x86_64"
    key = layers.code_key([a, b], python)
    assert key.startswith("osiris-") and key == layers.code_key([b, a], python)
    b.write_bytes(b"two, changed")
    assert layers.code_key([a, b], python) != key, "a changed checkout builds other wheels: another layer"
    assert layers.code_key([a, b], "cpython-3.12-linux-x86_64") != layers.code_key([a, b], python)


def test_a_layer_from_the_host_links_its_files_and_compiles_them(tmp_path):
    from importlib import metadata

    layer = layers.ensure_layer(["pyyaml>=6"], root=tmp_path)
    info = json.loads((layer.path / "layer.json").read_text())
    assert layer.built and info["source"] == "host" and f"pyyaml=={metadata.version('pyyaml')}" in info["pins"]
    host = Path(metadata.distribution("pyyaml").locate_file("yaml/__init__.py"))
    linked = layer.site / "yaml" / "__init__.py"
    assert linked.read_bytes() == host.read_bytes()
    assert os.path.samefile(linked, host) or linked.stat().st_dev != host.stat().st_dev
    assert list((layer.site / "yaml" / "__pycache__").glob("__init__.*.pyc"))
    assert layer.uv is not None, "the layer carries the host's uv"
    again = layers.ensure_layer(["pyyaml>=6"], root=tmp_path)
    assert again.key == layer.key and not again.built
