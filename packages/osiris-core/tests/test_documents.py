"""Bounded YAML reading: every hostile or broken document is a `DocumentError` naming the file, the
position and the limit, with libyaml's parser and with the pure-Python one alike."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from osiris.core import documents, installed
from osiris.core.connections import load_connections
from osiris.core.discovery import ComponentRegistry
from osiris.core.documents import Limits, load_yaml_bytes, load_yaml_file, load_yaml_text
from osiris.core.errors import DocumentError
from osiris.core.manifest import load_manifest


@pytest.fixture(params=["libyaml", "python"], autouse=True)
def parser(request, monkeypatch):
    """Run every test with libyaml's event parser and with PyYAML's pure-Python one."""
    if request.param == "libyaml" and documents._EventParser is None:
        pytest.skip("PyYAML was built without libyaml")
    if request.param == "python":
        monkeypatch.setattr(documents, "_EventParser", None)
    return request.param


def laughs(levels: int = 9, width: int = 9) -> str:
    """The "billion laughs": each level a list of `width` aliases of the level before (about 1 KB)."""
    lines = ['l0: &l0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def fails(text: str | bytes, *expected: str, limits: Limits = documents.DEFAULT_LIMITS) -> DocumentError:
    load = load_yaml_bytes if isinstance(text, bytes) else load_yaml_text
    with pytest.raises(DocumentError) as info:
        load(text, file="doc.yaml", limits=limits)  # type: ignore[arg-type]
    message = str(info.value)
    for piece in expected:
        assert piece in message, f"{piece!r} not in {message!r}"
    assert "Traceback" not in message
    return info.value


def test_billion_laughs_stops_at_the_value_limit_in_well_under_a_second():
    text = laughs()
    assert len(text) < 1024
    started = time.perf_counter()
    err = fails(text, "more than 100000 values once its aliases (`*name`) are expanded (the limit)", "doc.yaml:")
    assert time.perf_counter() - started < 1.0
    assert err.line is not None


def test_aliases_within_the_limit_are_read_and_shared():
    data, _ = load_yaml_text(laughs(levels=3), file="doc.yaml")
    assert len(data["l3"]) == 9 and data["l3"][0] is data["l3"][1]  # one object, not 9 copies
    assert data["l3"][0][0] == [["lol"]] * 9


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 5000 + "]" * 5000,
        "a:\n" + "".join("  " * i + "- \n" for i in range(1, 200)),
        "a: " + "{x: " * 3000,
    ],
    ids=["flow-lists", "block-lists", "flow-mappings"],
)
def test_deep_nesting_names_the_depth_limit(text):
    fails(text, "more than 64 levels deep (the limit)", "doc.yaml:")


def test_nesting_at_the_limit_is_read():
    data, _ = load_yaml_text("a: " + "[" * 63 + "]" * 63, file="doc.yaml")
    assert isinstance(data["a"], list)


def test_aliases_that_nest_deeper_than_the_limit_are_refused():
    text = "a: &a " + "[" * 40 + "]" * 40 + "\nb: &b " + "[" * 30 + "*a" + "]" * 30 + "\n"
    fails(text, "more than 64 levels deep once its aliases (`*name`) are expanded")


def test_aliases_that_expand_to_too_much_text_are_refused():
    text = f"big: &big {'x' * 100_000}\nmany: [{', '.join(['*big'] * 100)}]\n"
    fails(text, "text exceeds 8 MiB once its aliases (`*name`) are expanded", "doc.yaml:2")


@pytest.mark.parametrize(
    "text", ["a: &x\n  b: *x\n", "a: &x [1, *x]\n", "a: &x\n  - b: [*x]\n"], ids=["mapping", "list", "nested"]
)
def test_a_self_referencing_alias_is_refused(text):
    fails(text, "Alias `*x` refers to the list or mapping that contains it", "doc.yaml:")


def test_an_undefined_alias_is_a_syntax_error():
    fails("a: *nowhere\n", "alias `*nowhere` names no anchor", "doc.yaml:1")


def test_the_size_limit_is_checked_before_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("a: " + "x" * 2000 + "\n")
    with pytest.raises(DocumentError, match=r"larger than 1000 bytes \(the limit\)"):
        load_yaml_file(path, limits=Limits(max_bytes=1000))
    fails("a: " + "x" * 2000, "larger than 1000 bytes (the limit)", limits=Limits(max_bytes=1000))


def test_the_value_limit_counts_plain_values_too():
    fails("a: [" + ", ".join(["1"] * 50) + "]", "more than 20 values (the limit)", limits=Limits(max_values=20))


@pytest.mark.parametrize(
    ("raw", "what", "where"),
    [
        (b'oml_version: "0.1.0"\nname: x\x00y\n', "a NUL character (U+0000)", "doc.yaml:2:8"),
        (b"a: 1\nb: tab\x01\n", "the control character U+0001", "doc.yaml:2:7"),
        (b"a: 1\nb: \x7f\n", "the control character U+007F", "doc.yaml:2:4"),
    ],
)
def test_nul_and_control_characters_are_refused_with_their_position(raw, what, where):
    fails(raw, what, where)


def test_invalid_utf8_names_the_byte_line_and_column():
    fails("a: 1\nname: caf\u00e9 ".encode() + b"\xff\xfe\n", "not valid UTF-8: byte 0xff", "doc.yaml:2:12")


def test_a_lone_surrogate_in_text_is_refused():
    fails("a: x\ud800\n", "a lone surrogate (U+D800)", "doc.yaml:1:5")


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\0", "\\x00"])
def test_escapes_for_nul_or_a_lone_surrogate_are_refused(escape):
    err = fails(f'a: 1\nb: "x{escape}y"\n', "doc.yaml:2")
    assert any(w in str(err) for w in ("NUL", "surrogate", "Unicode character escape")), err


def test_a_bom_and_crlf_line_ends_are_fine():
    data, index = load_yaml_bytes(b"\xef\xbb\xbfa: 1\r\nb: [x, y]\r\n", file="doc.yaml")
    assert data == {"a": 1, "b": ["x", "y"]}
    assert index.line_of(("b", 1)) == 2


def test_more_than_one_document_is_refused():
    fails("a: 1\n---\nb: 2\n", "more than one YAML document", "doc.yaml:2")


def test_duplicate_keys_are_refused_with_both_lines():
    fails("a: 1\nb:\n  c: 1\n  c: 2\n", "Duplicate key `c` (first defined on line 3)", "doc.yaml:4")


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("a: !!int abc\n", "int"),
        ("a: !!float abc\n", "float"),
        ("a: !!bool maybe\n", "bool"),
        ("a: 2020-13-45\n", "timestamp"),
        ("a: " + "1" * 5000 + "\n", "int"),
    ],
)
def test_a_value_that_cannot_be_read_as_its_type_is_a_yaml_error_that_does_not_echo_it(text, tag):
    err = fails(text, f"cannot read this value as `{tag}`", "doc.yaml:1")
    assert "abc" not in str(err) and "maybe" not in str(err) and "1111" not in str(err)


def test_merge_keys_work_and_a_long_chain_of_them_needs_no_recursion():
    data, _ = load_yaml_text("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\nd:\n  <<: [*b, {z: 4}]\n", file="d.yaml")
    assert data["c"] == {"x": 1, "y": 3} and data["d"] == {"x": 1, "y": 2, "z": 4}
    chain = ["m0: &m0 {k0: 0}"] + [f"m{i}: &m{i} {{<<: *m{i - 1}, k{i}: {i}}}" for i in range(1, 300)]
    data, _ = load_yaml_text("\n".join(chain) + "\n", file="d.yaml", limits=Limits(max_values=10**6))
    assert data["m299"]["k0"] == 0 and len(data["m299"]) == 300


def test_line_index_walks_mappings_lists_and_aliases():
    text = "defaults: &d\n  port: 1\nsteps:\n  - id: a\n    config: *d\n  - id: b\n    config:\n      port: 2\n"
    _, index = load_yaml_text(text, file="d.yaml")
    assert index.line_of(("steps", 1, "config", "port")) == 8
    assert index.line_of(("steps", 0, "config", "port")) == 2  # through the alias, where it is written
    assert index.line_of(("steps", 5)) == 3  # an unknown part falls back to the deepest known node
    assert index.line_of(()) == 1


HOSTILE = {
    "laughs.yaml": laughs().encode(),
    "deep.yaml": ("a: " + "[" * 5000 + "]" * 5000 + "\n").encode(),
    "self.yaml": b"a: &x\n  b: *x\n",
    "nul.yaml": b"connections:\n  mysql:\n    default: {host: h\x00}\n",
    "utf8.yaml": b"connections:\n  mysql: \xc3\x28\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_every_reader_refuses_hostile_files(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(HOSTILE[name])
    for read in (load_connections, load_manifest):
        with pytest.raises(DocumentError) as info:
            read(path)
        assert info.value.file == str(path) and info.value.line, info.value


def test_discovery_reports_a_hostile_spec_file_as_a_failed_provider(tmp_path, monkeypatch):
    pkg = tmp_path / "hostile_specs"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name, raw in HOSTILE.items():
        (pkg / name).write_bytes(raw)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = ComponentRegistry()
    registry._load(installed.EntryPoint(name="hostile", value="hostile_specs", group="osiris.components"))
    assert sorted(f.provider.rsplit("/", 1)[-1] for f in registry.failures) == sorted(HOSTILE)
    assert all("hostile_specs/" in f.error and ":" in f.error for f in registry.failures)
    sys.modules.pop("hostile_specs", None)


def test_a_file_that_cannot_be_read_is_a_document_error(tmp_path):
    with pytest.raises(DocumentError, match="File not found"):
        load_yaml_file(tmp_path / "missing.yaml")
    with pytest.raises(DocumentError, match="Expected a file, got a directory"):
        load_yaml_file(tmp_path)
    path = Path("/proc/self/mem")
    if path.exists():
        with pytest.raises(DocumentError, match="Cannot read file"):
            load_yaml_file(path)
