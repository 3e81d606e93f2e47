"""Every bad input is a clear error at the CLI boundary: connections, CLI values, and `--json` on failure.

In-process through the CLI's `main` (fast); `tests/test_fuzz_cli.py` throws generated inputs at the
same commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import jsonschema
import msgspec
import pytest
from osiris_cli import osiris_in_process

from osiris.core.cli import cli

ROOT = Path(__file__).resolve().parents[1]
ERROR_SCHEMA = json.loads((ROOT / "docs" / "cli-error.schema.json").read_text())
CANARY = "canary-Cb7-Lq3"

PIPELINE = """oml_version: "0.1.0"
name: boundary
steps:
  - id: customers
    component: mysql.extractor
    mode: read
    config: {connection: "@mysql.default", query: "SELECT 1 AS x"}
  - id: save
    component: filesystem.csv_writer
    mode: write
    needs: [customers]
    config: {path: out.csv}
"""
GOOD = {"host": "127.0.0.1", "user": "root", "password": f'"{CANARY}"', "database": "shop"}


def connections_text(**fields: str) -> str:
    """A connections file whose `@mysql.default` has GOOD's fields updated with `fields` (YAML text values)."""
    body = "\n".join(f"      {k}: {v}" for k, v in {**GOOD, **fields}.items())
    return f"connections:\n  mysql:\n    default:\n{body}\n    spare:\n      host: h\n      user: u\n"


# The classes of bad connection field: the cases, and the same classes with other data.
BAD_FIELDS = {
    "port abc": ({"port": "abc"}, "port", "expected an integer"),
    "port text from yaml quotes": ({"port": '"3306"'}, "port", "expected an integer"),
    "fractional port": ({"port": "3306.5"}, "port", "a number with a fraction"),
    "port out of range": ({"port": "70000"}, "port", "at most 65535"),
    "numeric password": ({"password": "123456"}, "password", "must be a string"),
    "float password": ({"password": "1.5e+3"}, "password", "must be a string"),
    "password as a list": ({"password": f"[{CANARY}, x]"}, "password", "must be a string"),
    "password as a mapping": ({"password": f"{{v: {CANARY}}}"}, "password", "must be a string"),
    "password as a date": ({"password": "2024-05-01"}, "password", "must be a string"),
    "unknown charset": ({"charset": "utf9"}, "charset", "known values"),
    "text connect_timeout": ({"connect_timeout": "ten"}, "connect_timeout", "expected an integer"),
    "zero connect_timeout": ({"connect_timeout": "0"}, "connect_timeout", "at least 1"),
    "date database": ({"database": "2024-01-01"}, "database", "got a date"),
    "integer host": ({"host": "10"}, "host", "quote the value"),
    "ssl as text": ({"ssl": "maybe"}, "ssl", "a boolean"),
    "unclosed reference": ({"user": '"${DB_USER"'}, "user", "unclosed"),
    "port from a bad variable": ({"port": "${BOUNDARY_PORT}"}, "port", "environment variable `BOUNDARY_PORT`"),
}
ENV = {"BOUNDARY_PORT": "33o6"}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A folder with the pipeline compiled once (the connections file is swapped per test)."""
    folder = tmp_path_factory.mktemp("boundary")
    (folder / "pipeline.yaml").write_text(PIPELINE)
    (folder / "osiris_connections.yaml").write_text(connections_text())
    done = osiris_in_process("compile", "pipeline.yaml", cwd=folder)
    assert done.code == 0, done.err
    return folder


def _manifest(folder: Path) -> str:
    return str(next((folder / "build").rglob("manifest.yaml")).relative_to(folder))


def _no_canary_anywhere(folder: Path, *texts: str) -> None:
    for text in texts:
        assert CANARY not in text
    for p in folder.rglob("*"):
        if p.is_file() and p.name != "osiris_connections.yaml":
            assert CANARY.encode() not in p.read_bytes(), f"the secret is in {p}"


@pytest.mark.parametrize("case", list(BAD_FIELDS), ids=list(BAD_FIELDS))
def test_a_bad_connection_field_is_refused_by_every_command_that_loads_it(project: Path, case: str) -> None:
    fields, key, expected = BAD_FIELDS[case]
    (project / "osiris_connections.yaml").write_text(connections_text(**fields))
    from_env = "${" in str(fields)  # `connections list` shows references as written: nothing to check
    for args in (
        *([] if from_env else [["connections", "list"]]),
        ["connections", "doctor", "--timeout", "1"],
        ["run", _manifest(project), "--runs-dir", "runs-bad"],
    ):
        done = osiris_in_process(*args, cwd=project, env=ENV)
        assert done.code == 2, f"{args}: {done.err}{done.out}"
        text = done.err + done.out
        assert "osiris_connections.yaml" in text and "`@mysql.default`" in text and f"`{key}`" in text, text
        assert expected in text, text
        assert "Traceback" not in text and "internal error" not in text
        _no_canary_anywhere(project, done.out, done.err)


def test_all_errors_of_a_connections_file_are_listed_at_once_with_their_lines(project: Path) -> None:
    fields = {
        "port": "abc",
        "password": "123456",
        "charset": "utf9",
        "connect_timeout": "ten",
        "database": "2024-01-01",
    }
    (project / "osiris_connections.yaml").write_text(connections_text(**fields) + "      port: 1.5\n")
    done = osiris_in_process("connections", "list", "--json", cwd=project)
    assert done.code == 2
    error = json.loads(done.out)["error"]
    assert error["kind"] == "validation" and error["where"].endswith("osiris_connections.yaml")
    where = {e["where"].split(":", 1)[1] for e in error["errors"]}
    assert where == {
        "6 at $.connections.mysql.default.password",
        "7 at $.connections.mysql.default.database",
        "8 at $.connections.mysql.default.port",
        "9 at $.connections.mysql.default.charset",
        "10 at $.connections.mysql.default.connect_timeout",
        "14 at $.connections.mysql.spare.port",
    }


def test_a_run_only_checks_the_connections_it_uses(project: Path) -> None:
    (project / "osiris_connections.yaml").write_text(connections_text() + "      port: abc\n")  # `spare` is bad
    done = osiris_in_process("run", _manifest(project), "--runs-dir", "runs-spare", cwd=project)
    assert "spare" not in done.err  # the run gets as far as connecting (no MySQL database `shop` here)
    assert osiris_in_process("connections", "list", cwd=project).code == 2


# -- CLI values -------------------------------------------------------------------------------------

BAD_VALUES = [
    (["run", "{manifest}", "--runs-dir", "afile"], "--runs-dir", "is a file"),
    (["run", "{manifest}", "--runs-dir", "afile/below"], "--runs-dir", "is a file"),
    (["run", "{manifest}", "--runs-dir", "/proc/osiris/runs"], "--runs-dir", "expected a writable folder"),
    (["run", "--last-compile", "--build-dir", "afile"], "--build-dir", "is a file"),
    (["run", "pipeline.yaml", "--build-dir", "/proc/osiris"], "--build-dir", "expected a writable folder"),
    (["compile", "pipeline.yaml", "-o", "afile"], "--out", "is a file"),
    (["compile", "pipeline.yaml", "-o", "/sys/osiris"], "--out", "expected a writable folder"),
    (["runs", "list", "--runs-dir", "afile"], "--runs-dir", "is a file"),
    (["run", "{manifest}", "--e2b", "--e2b-timeout", "-5"], "--e2b-timeout", "x>0"),
    (["run", "{manifest}", "--e2b", "--e2b-timeout", "0"], "--e2b-timeout", "x>0"),
    (["run", "{manifest}", "--e2b", "--e2b-cpu", "0"], "--e2b-cpu", "x>=1"),
    (["run", "{manifest}", "--e2b", "--e2b-mem", "-1"], "--e2b-mem", "x>=1"),
    (["run", "{manifest}", "--e2b", "--artifact-max-mb", "-1"], "--artifact-max-mb", "x>=0"),
    (["run", "{manifest}", "--e2b", "--artifact-max-mb", "lots"], "--artifact-max-mb", "not a valid float"),
    (["connections", "doctor", "--timeout", "-1"], "--timeout", "x>0"),
    (["runs", "list", "--limit", "-3"], "--limit", "x>=0"),
]


@pytest.mark.parametrize(("args", "option", "expected"), BAD_VALUES, ids=[" ".join(a) for a, _, _ in BAD_VALUES])
def test_a_bad_cli_value_is_a_usage_error_naming_the_option(project: Path, args, option, expected) -> None:
    (project / "osiris_connections.yaml").write_text(connections_text())
    (project / "afile").write_text("")
    argv = [a.replace("{manifest}", _manifest(project)) for a in args]
    done = osiris_in_process(*argv, cwd=project)
    assert done.code == 2, done.err
    assert option in done.err and expected in done.err, done.err
    assert not list(Path("/proc").glob("osiris*")) and not (project / "afile").is_dir()


UNUSED = [
    (["run", "{manifest}", "-p", "since=2024"], "`--param` does nothing when running a compiled manifest"),
    (["run", "{manifest}", "--build-dir", "elsewhere"], "`--build-dir` does nothing when running a compiled manifest"),
    (["run", "--last-compile", "-p", "x=1"], "`--param` does nothing with `--last-compile`"),
    (["run", "{manifest}", "--e2b-cpu", "2"], "`--e2b-cpu` does nothing without a sandbox"),
    (["run", "{manifest}", "--download-data"], "`--download-data` does nothing without a sandbox"),
    (["run", "{manifest}", "--artifact-max-mb", "3"], "`--artifact-max-mb` does nothing without a sandbox"),
    (["run", "{manifest}", "--e2b-env", "A=1", "--e2b-template", "t"], "do nothing without a sandbox"),
]


@pytest.mark.parametrize(("args", "expected"), UNUSED, ids=[" ".join(a) for a, _ in UNUSED])
def test_a_flag_that_does_nothing_in_a_mode_is_refused_with_the_reason(project: Path, args, expected) -> None:
    (project / "osiris_connections.yaml").write_text(connections_text())
    argv = [a.replace("{manifest}", _manifest(project)) for a in args]
    done = osiris_in_process(*argv, cwd=project)
    assert done.code == 2 and expected in done.err, done.err
    assert not (project / "runs").exists()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('["a", "b"]', "got an array"),
        ('"build/x/manifest.yaml"', "got a string"),
        ("42", "got a number"),
        ("null", "got null"),
        ('{"manifest": 7}', "at `$.manifest`"),
        ('{"manifest": ""}', "at `$.manifest`"),
        ("{not json", "not valid JSON"),
        ("[" * 100_000, "nested too deeply"),
        (b"\xff\xfe{}", "Invalid UTF-8 at byte 0"),
        (b'{"manifest": "\xc3("}', "Invalid UTF-8 at byte 14"),
    ],
)
def test_a_broken_last_compile_pointer_is_an_error_naming_the_file(project: Path, body, expected) -> None:
    folder = project / "pointer"
    (folder / "build").mkdir(parents=True, exist_ok=True)
    data = body if isinstance(body, bytes) else body.encode()
    (folder / "build" / ".last_compile.json").write_bytes(data)
    done = osiris_in_process("run", "--last-compile", cwd=folder)
    assert done.code == 2 and ".last_compile.json" in done.err and expected in done.err, done.err


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b"{not json", "Invalid JSON"), (b"[1, 2]", "got an array"), (b"\xff", "Invalid JSON"), (b'"x"', "got a string")],
)
def test_a_cfg_file_that_is_not_a_json_object_is_an_error_naming_it(tmp_path: Path, body: bytes, expected) -> None:
    from osiris.core.build import load_build
    from osiris.core.documents import load_yaml_text
    from osiris.core.errors import DocumentError
    from osiris.core.fingerprint import sha256_hex
    from osiris.core.manifest import Manifest, dump_manifest, seal

    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    (tmp_path / "osiris_connections.yaml").write_text(connections_text())
    assert osiris_in_process("compile", "pipeline.yaml", cwd=tmp_path).code == 0
    manifest = next((tmp_path / "build").rglob("manifest.yaml"))
    cfg = manifest.parent / "cfg" / "customers.json"
    old = sha256_hex(cfg.read_bytes())
    cfg.write_bytes(body)  # and make the manifest agree, as a carefully hand-edited build would
    data, _ = load_yaml_text(manifest.read_text().replace(old, sha256_hex(body)))
    manifest.write_text(dump_manifest(seal(msgspec.convert(data, Manifest))))
    with pytest.raises(DocumentError) as info:
        load_build(manifest)
    assert "customers.json" in str(info.value) or info.value.file == str(cfg)
    assert expected in str(info.value)


def test_an_unterminated_param_reference_is_refused_at_compile(tmp_path: Path) -> None:
    for ref in ("${params.since", "${params.since.x", "${ params.since", "x ${params.since} ${params.until"):
        (tmp_path / "p.yaml").write_text(
            'oml_version: "0.1.0"\nname: p\nparams: {since: {default: "1"}, until: {default: "2"}}\nsteps:\n'
            "  - {id: a, component: filesystem.csv_extractor, mode: read, config: {path: " + json.dumps(ref) + "}}\n"
        )
        done = osiris_in_process("compile", "p.yaml", cwd=tmp_path)
        assert done.code == 2 and "p.yaml:5" in done.err and "$.steps[0].config.path" in done.err, done.err


# -- --json always answers in JSON --------------------------------------------------------------------


def json_commands() -> list[tuple[str, ...]]:
    """Every `osiris` command that takes `--json` (found by walking the command tree)."""
    ctx = click.Context(cli)
    found: list[tuple[str, ...]] = []

    def walk(group: click.Group, path: tuple[str, ...]) -> None:
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            if isinstance(cmd, click.Group):
                walk(cmd, (*path, name))
            elif cmd is not None and any(p.name == "as_json" for p in cmd.params):
                found.append((*path, name))

    walk(cli, ())
    return found


def command_of(path: tuple[str, ...]) -> click.Command:
    ctx = click.Context(cli)
    cmd: click.Command = cli
    for name in path:
        cmd = cmd.get_command(ctx, name)  # type: ignore[attr-defined]
    return cmd


# For each command, arguments that are bad input (a missing file, an unknown name...): exit 2.
BAD_INPUT: dict[tuple[str, ...], list[str]] = {
    ("compile",): ["missing.yaml"],
    ("validate",): ["pipeline-bad.yaml"],
    ("run",): ["missing.yaml"],
    ("components", "list"): ["--unexpected-argument-is-usage"],
    ("components", "show"): ["no.such_component"],
    ("connections", "list"): ["--connections", "bad-connections.yaml"],
    ("connections", "doctor"): ["--connections", "missing.yaml"],
    ("runs", "list"): ["--runs-dir", "afile"],
    ("runs", "show"): ["no-such-run"],
    ("runs", "diff"): ["no-such-run", "other"],
    ("runs", "prune"): ["--older-than", "soon"],
    ("runs", "report"): ["no-such-run"],
    ("discover",): ["@mysql.no_such_alias"],
    ("state", "show"): ["missing.yaml"],
    ("state", "set"): ["missing.yaml", "2026-01-01"],
    ("state", "reset"): ["missing.yaml"],
}
# Arguments that let a command get as far as its own code (for the internal and interrupt cases).
GOOD_ARGS: dict[tuple[str, ...], list[str]] = {
    ("compile",): ["pipeline.yaml"],
    ("validate",): ["pipeline.yaml"],
    ("run",): ["pipeline.yaml"],
    ("components", "show"): ["mysql.extractor"],
    ("runs", "show"): ["x"],
    ("runs", "diff"): ["x", "y"],
    ("runs", "report"): ["x"],
    ("discover",): ["@mysql.db"],
    ("state", "show"): ["pipeline.yaml"],
    ("state", "set"): ["pipeline.yaml", "2026-01-01"],
    ("state", "reset"): ["pipeline.yaml"],
}


def test_the_json_command_list_is_complete() -> None:
    assert set(json_commands()) == set(BAD_INPUT), "add the new command to BAD_INPUT and GOOD_ARGS"


def _one_failure_object(done, code: int, kind: str | None = None) -> dict:
    assert done.code == code, done.err
    data = json.loads(done.out)  # exactly one JSON document, nothing else on stdout
    jsonschema.validate(data, ERROR_SCHEMA)
    assert data["ok"] is False and data["exit_code"] == code
    if kind:
        assert data["error"]["kind"] == kind, data
    assert "Traceback" not in done.out + done.err
    return data


@pytest.fixture()
def json_project(tmp_path: Path) -> Path:
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    (tmp_path / "pipeline-bad.yaml").write_text("oml_version: 1\nsteps: [{id: 1}]\nunknown: x\n")
    (tmp_path / "osiris_connections.yaml").write_text(connections_text())
    (tmp_path / "bad-connections.yaml").write_text(connections_text(port="abc"))
    (tmp_path / "afile").write_text("")
    return tmp_path


@pytest.mark.parametrize("path", json_commands(), ids=" ".join)
def test_json_failures_are_one_json_object_in_every_failure_class(json_project: Path, path, monkeypatch) -> None:
    usage = osiris_in_process(*path, "--json", "--no-such-option", cwd=json_project)
    assert "no-such-option" in _one_failure_object(usage, 2, "usage")["error"]["message"]

    bad = osiris_in_process(*path, *BAD_INPUT[path], "--json", cwd=json_project)
    data = _one_failure_object(bad, 2)
    assert data["error"]["kind"] != "internal" and data["error"]["message"]

    cmd = command_of(path)
    for exc, code, kind in ((RuntimeError("boom"), 1, "internal"), (KeyboardInterrupt(), 130, "interrupted")):

        def explode(*_a, _exc=exc, **_k):
            raise _exc

        monkeypatch.setattr(cmd, "callback", explode)
        done = osiris_in_process(*path, *GOOD_ARGS.get(path, []), "--json", cwd=json_project)
        data = _one_failure_object(done, code, kind)
        if kind == "internal":
            assert "RuntimeError: boom" in data["error"]["message"] and "bug" in data["error"]["hint"]


def test_json_failure_details_say_where(json_project: Path) -> None:
    done = osiris_in_process("run", "pipeline.yaml", "--e2b", "--e2b-timeout", "-5", "--json", cwd=json_project)
    assert _one_failure_object(done, 2, "usage")["error"]["where"] == "--e2b-timeout"
    done = osiris_in_process("validate", "pipeline-bad.yaml", "--json", cwd=json_project)
    error = _one_failure_object(done, 2, "validation")["error"]
    assert error["where"] == "pipeline-bad.yaml" and len(error["errors"]) >= 2
    assert all(e["where"].startswith("pipeline-bad.yaml") for e in error["errors"])
    done = osiris_in_process("components", "show", "nope", "--json", cwd=json_project)
    assert _one_failure_object(done, 2, "component")["error"]["message"].startswith("Unknown component `nope`")
    done = osiris_in_process("run", "--last-compile", "--build-dir", "afile", "--json", cwd=json_project)
    assert _one_failure_object(done, 2, "usage")["error"]["where"] == "--build-dir"


def test_osiris_remote_doctor_json_failures_are_one_json_object(monkeypatch, capsys) -> None:
    from osiris.remote import cli as remote_cli
    from osiris.remote import doctor

    for argv, patch, code, kind in (
        (["doctor", "--json", "--no-such-option"], None, 2, "usage"),
        (["doctor", "--json"], RuntimeError("boom"), 1, "internal"),
        (["doctor", "--json"], KeyboardInterrupt(), 130, "interrupted"),
    ):
        if patch is not None:

            def explode(*_a, _exc=patch, **_k):
                raise _exc

            monkeypatch.setattr(doctor, "run_doctor", explode)
        assert remote_cli.main(argv) == code
        data = json.loads(capsys.readouterr().out)
        jsonschema.validate(data, ERROR_SCHEMA)
        assert data["error"]["kind"] == kind and data["exit_code"] == code
