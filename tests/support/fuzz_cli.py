"""Fuzzing every `osiris` command at its boundary: malformed connections files, manifests, run
directories, pipelines and command lines, and the rules every outcome must keep.

Used by `tests/test_fuzz_cli.py` (bounded and seeded, in CI) and `scripts/fuzz_cli.py` (longer).
A world is one folder made once: a pipeline (MySQL `SELECT` -> CSV file), its connections file
(with the canary secret in a literal password and a DSN), its compiled build and one real run.
A case copies the world, damages some of its files, and runs one command in-process through
`osiris.core.cli.main`. The outcome must be a documented exit code, no traceback, no `internal
error`, with `--json` exactly one JSON object on stdout, no hang, and the canary in no output and
no file but the connections file itself.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import msgspec
import yaml
from fuzz_inputs import CANARY, CANARY_ENV, KEYS, VALUES, _get, _paths, mutated_pipelines
from hypothesis import strategies as st

TIME_LIMIT = 20  # seconds one command may take in-process before it counts as a hang

PIPELINE = """oml_version: "0.1.0"
name: fuzzed
params:
  limit: {type: integer, default: 3}
steps:
  - id: source
    component: mysql.extractor
    mode: read
    config:
      connection: "@mysql.default"
      query: "SELECT 1 AS id, 'a' AS name UNION ALL SELECT 2, 'b'"
  - id: save
    component: filesystem.csv_writer
    mode: write
    needs: [source]
    config: {path: out/result.csv}
"""
CONNECTIONS = f"""connections:
  mysql:
    default:
      host: 127.0.0.1
      port: 3306
      user: root
      password: ""
      charset: utf8mb4
      connect_timeout: 3
      default: true
    spare:
      host: 127.0.0.1
      user: fuzz_nobody
      password: "{CANARY}"
  supabase:
    default:
      dsn: "postgresql://app:{CANARY}@127.0.0.1:5432/db"
      service_role_key: "${{{CANARY_ENV}}}"
"""
# The exit codes each command documents (a run or a doctor check may fail for real: 1).
EXIT_CODES = {
    "run": {0, 1, 2},
    "connections doctor": {0, 1, 2},
    "runs diff": {0, 1, 2},
}
DEFAULT_CODES = {0, 2}


class Hang(BaseException):
    """A command took longer than its bound (raised by an alarm, past every `except Exception`)."""


@dataclass
class CliCase:
    """One command line run in a copy of the world with some files replaced."""

    name: str
    argv: tuple[str, ...]
    files: dict[str, bytes] = field(default_factory=dict)  # path relative to the world -> new content


@dataclass
class CliOutcome:
    """What one command did."""

    code: int
    out: str
    err: str
    seconds: float
    files: dict[str, bytes]


def command_name(argv: tuple[str, ...]) -> str:
    """`runs diff` for ``("runs", "diff", ...)``, `run` for ``("run", ...)``."""
    if argv and argv[0] in ("runs", "connections", "components") and len(argv) > 1:
        return f"{argv[0]} {argv[1]}"
    return argv[0] if argv else ""


# -- the world ---------------------------------------------------------------------------------------


def make_world(folder: Path) -> Path:
    """Write the pipeline and connections, compile, and run once (for the `runs` commands)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.yaml").write_text(PIPELINE)
    (folder / "osiris_connections.yaml").write_text(CONNECTIONS)
    for argv in (("compile", "pipeline.yaml"), ("run", "--last-compile")):
        outcome = _call(folder, argv)
        assert outcome.code == 0, f"the fuzz world does not work: osiris {' '.join(argv)}\n{outcome.err}"
    return folder


def world_files(world: Path) -> dict[str, str]:
    """Where the world's manifest, run card and events are, relative to it."""
    manifest = next((world / "build").rglob("manifest.yaml"))
    card = next((world / "runs").rglob("run_card.json"))
    return {
        "manifest": str(manifest.relative_to(world)),
        "run_card": str(card.relative_to(world)),
        "events": str((card.parent / "events.jsonl").relative_to(world)),
        "run_id": card.parent.name,
    }


# -- strategies --------------------------------------------------------------------------------------

CONNECTION_VALUES = st.one_of(
    VALUES,
    st.sampled_from(
        [
            "abc",
            "3306.5",
            "70000",
            "utf9",
            "${OSIRIS_FUZZ_UNSET}",
            "${" + CANARY_ENV + "}",
            "${PORT",
            "2024-01-01",
            "localhost",
            "",
        ]
    ),
)
CONNECTION_KEYS = st.sampled_from(
    ["host", "port", "user", "password", "charset", "connect_timeout", "read_timeout", "ssl", "database",
     "default", "dsn", "url", "key", "sslmode", "schema", "x"]
)  # fmt: skip


def _mutate(draw: st.DrawFn, data: Any, keys: Any, values: Any, times: int) -> tuple[Any, list[str]]:
    ops = []
    for _ in range(times):
        path = draw(st.sampled_from(_paths(data)))
        op = draw(st.sampled_from(["replace", "drop", "add"]))
        ops.append(f"{op} {'.'.join(map(str, path)) or '$'}")
        if not path:
            data = draw(values) if op == "replace" else data
            continue
        parent = _get(data, path[:-1])
        if op == "replace":
            parent[path[-1]] = draw(values)
        elif op == "drop":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(keys)] = draw(values)
        elif isinstance(parent, list):
            parent.insert(draw(st.integers(0, len(parent))), draw(values))
    return data, ops


def _dump_yaml(draw: st.DrawFn, data: Any, fallback: bytes) -> bytes:
    try:
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=draw(st.booleans())).encode("utf-8", "surrogatepass")
    except (yaml.YAMLError, ValueError, RecursionError):
        return fallback


def _damage(draw: st.DrawFn, text: bytes) -> bytes:
    if draw(st.integers(0, 4)):
        return text
    at = draw(st.integers(0, max(0, len(text) - 1)))
    return text[:at] + draw(st.binary(max_size=6)) + text[at + draw(st.integers(0, 6)) :]


def _json_flag(draw: st.DrawFn) -> tuple[str, ...]:
    return ("--json",) if draw(st.booleans()) else ()


@st.composite
def connection_cases(draw: st.DrawFn, where: dict[str, str]) -> CliCase:
    """A damaged connections file, loaded by `connections list|doctor` or a run of the compiled manifest.

    Half the time a secret field first gets the canary inside a value that is not a string (a list,
    a mapping): it must be refused without being shown. Other mutations never move the canary into
    a field that is not a secret (nothing could know it is one)."""
    data = yaml.safe_load(CONNECTIONS)
    ops = []
    if draw(st.booleans()):
        alias = draw(st.sampled_from(["default", "spare"]))
        data["connections"]["mysql"][alias]["password"] = draw(
            st.sampled_from([[CANARY], {"v": CANARY}, [[CANARY, 1]], {CANARY: 1}, CANARY])
        )
        ops.append(f"canary password in {alias}")
    data, more = _mutate(draw, data, CONNECTION_KEYS, CONNECTION_VALUES, draw(st.integers(0, 4)))
    ops += more
    text = _damage(draw, _dump_yaml(draw, data, CONNECTIONS.encode()))
    argv = draw(
        st.sampled_from(
            [
                ("connections", "list"),
                ("connections", "doctor", "--timeout", "3"),
                ("connections", "doctor", "--family", "mysql", "--timeout", "3"),
                ("run", where["manifest"], "--runs-dir", "fuzz-runs"),
            ]
        )
    )
    return CliCase(f"connections: {', '.join(ops)}", (*argv, *_json_flag(draw)), {"osiris_connections.yaml": text})


@st.composite
def manifest_cases(draw: st.DrawFn, where: dict[str, str], manifest_text: str) -> CliCase:
    """A damaged manifest (resealed half the time, so it gets past its fingerprint), then run."""
    from osiris.core.manifest import Manifest, dump_manifest, seal

    data, ops = _mutate(draw, yaml.safe_load(manifest_text), KEYS, VALUES, draw(st.integers(1, 3)))
    text = _dump_yaml(draw, data, manifest_text.encode())
    if draw(st.booleans()):
        try:
            text = dump_manifest(seal(msgspec.convert(yaml.safe_load(text), Manifest))).encode()
            ops.append("resealed")
        except Exception:
            pass
    text = _damage(draw, text)
    target = draw(st.sampled_from([(where["manifest"],), ("--last-compile",)]))
    argv = ("run", *target, "--runs-dir", "fuzz-runs", *_json_flag(draw))
    return CliCase(f"manifest: {', '.join(ops)}", argv, {where["manifest"]: text})


@st.composite
def run_dir_cases(draw: st.DrawFn, where: dict[str, str], card_text: str) -> CliCase:
    """A damaged run card or events file, read by `osiris runs ...`."""
    files: dict[str, bytes] = {}
    ops: list[str] = []
    if draw(st.booleans()):
        data, ops = _mutate(draw, json.loads(card_text), KEYS, VALUES, draw(st.integers(1, 4)))
        try:
            body = json.dumps(data, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
        except (TypeError, ValueError):
            body = card_text.encode()
        files[where["run_card"]] = _damage(draw, body)
    else:
        ops = ["events damaged"]
        files[where["events"]] = draw(st.binary(max_size=200)) + b"\n{" + draw(st.binary(max_size=20))
    run_id = where["run_id"]
    argv = draw(
        st.sampled_from(
            [
                ("runs", "list"),
                ("runs", "show", run_id),
                ("runs", "show", "latest"),
                ("runs", "diff", run_id, "latest"),
                ("runs", "report", run_id, "--out", "report.html"),
                ("runs", "prune", "--keep", "1", "--dry-run"),
            ]
        )
    )
    return CliCase(f"run dir: {', '.join(ops)}", (*argv, *_json_flag(draw)), files)


@st.composite
def pipeline_run_cases(draw: st.DrawFn) -> CliCase:
    """A mutated example pipeline compiled and run in one go (`osiris run PIPELINE.yaml`)."""
    case = draw(mutated_pipelines())
    argv = ("run", "pipeline.yaml", "--runs-dir", "fuzz-runs", *case.args, *_json_flag(draw))
    return CliCase(f"pipeline run: {case.name}", argv, {"pipeline.yaml": case.pipeline})


PATHS = st.sampled_from(
    ["pipeline.yaml", "missing.yaml", "afile", "build", "runs", "/proc/osiris-fuzz", "/proc/self/status", "", ".",
     "osiris_connections.yaml", "no/such/dir", "\udcff.yaml", "a" * 300]
)  # fmt: skip
TEXT = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12),
    st.sampled_from(["", "-", "--", "x=1", "since=", "=1", "latest", "mysql.extractor", "@mysql.default"]),
)


def _option_value(draw: st.DrawFn, param: click.Parameter, where: dict[str, str]) -> list[str]:
    t = param.type
    if isinstance(param, click.Option) and param.is_flag:
        return []
    if isinstance(t, (click.IntRange, click.FloatRange)) or t in (click.INT, click.FLOAT):
        n = draw(
            st.one_of(
                st.integers(-(10**20), 10**20),
                st.floats(allow_nan=True, allow_infinity=True),
                st.sampled_from([0, 1, -1, 2**63, 0.5]),
            )
        )
        return [str(n) if draw(st.integers(0, 9)) else draw(TEXT)]
    if isinstance(t, click.Path) or t.name == "folder" or param.name in ("runs_dir", "build_dir", "out_dir", "out"):
        return [draw(st.one_of(PATHS, st.just(where["manifest"])))]
    return [draw(TEXT)]


@st.composite
def argument_cases(draw: st.DrawFn, where: dict[str, str]) -> CliCase:
    """A command with generated options and arguments, values drawn from each parameter's type."""
    from osiris.core.cli import cli

    ctx = click.Context(cli)
    path = draw(st.sampled_from(sorted(all_commands())))
    cmd: Any = cli
    for name in path:
        cmd = cmd.get_command(ctx, name)
    argv: list[str] = list(path)
    # Not drawn: a browser, and starting a sandbox (that builds wheels for seconds; the sandbox tests do it).
    params = [p for p in cmd.params if p.name not in ("verbose_flag", "open_browser", "e2b", "sandbox")]
    for param in draw(st.lists(st.sampled_from(params), max_size=5)) if params else []:
        if isinstance(param, click.Option):
            if param.name == "timeout":
                argv += ["--timeout", draw(st.sampled_from(["1", "0", "-1", "nan", "inf", "x"]))]
                continue
            argv.append(draw(st.sampled_from(param.opts)))
        argv += _option_value(draw, param, where)
    if draw(st.integers(0, 3)) == 0:
        argv.append(draw(st.one_of(PATHS, TEXT)))
    if "connections" in path and "doctor" in path and "--timeout" not in argv:
        argv += ["--timeout", "3"]
    return CliCase(f"arguments: {' '.join(argv)[:120]}", tuple(argv))


def all_commands() -> set[tuple[str, ...]]:
    """Every leaf command of `osiris`."""
    from osiris.core.cli import cli

    ctx = click.Context(cli)
    found: set[tuple[str, ...]] = set()

    def walk(group: click.Group, prefix: tuple[str, ...]) -> None:
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            if isinstance(cmd, click.Group):
                walk(cmd, (*prefix, name))
            elif cmd is not None:
                found.add((*prefix, name))

    walk(cli, ())
    return found


def any_case(world: Path) -> st.SearchStrategy[CliCase]:
    """Cases of every kind against `world`."""
    where = world_files(world)
    manifest_text = (world / where["manifest"]).read_text()
    card_text = (world / where["run_card"]).read_text()
    return st.one_of(
        connection_cases(where),
        manifest_cases(where, manifest_text),
        run_dir_cases(where, card_text),
        argument_cases(where),
        pipeline_run_cases(),
    )


# -- running and checking ----------------------------------------------------------------------------


def _alarm(_signum: int, _frame: Any) -> None:
    raise Hang()


def _call(folder: Path, argv: tuple[str, ...], time_limit: int = TIME_LIMIT) -> CliOutcome:
    from osiris.core.cli import main

    env = {CANARY_ENV: CANARY}
    saved = {k: os.environ.get(k) for k in (*env, "OSIRIS_DEBUG", "OSIRIS_HOME")}
    old_cwd = os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    os.environ.update(env)
    os.environ.pop("OSIRIS_DEBUG", None)
    os.environ.pop("OSIRIS_HOME", None)
    os.chdir(folder)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(time_limit)
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
    except Hang:
        code = -1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        seconds = time.perf_counter() - started
        os.chdir(old_cwd)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return CliOutcome(code, out.getvalue(), err.getvalue(), seconds, {})


def run_case(world: Path, case: CliCase, folder: Path, time_limit: int = TIME_LIMIT) -> CliOutcome:
    """Copy `world` to `folder`, replace the case's files, and run its command there."""
    shutil.copytree(world, folder, symlinks=True)
    (folder / "afile").write_text("")
    for rel, body in case.files.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}
    outcome = _call(folder, case.argv, time_limit)
    outcome.files = {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and before.get(p) != p.stat().st_mtime_ns
    }
    return outcome


def cli_problems(case: CliCase, outcome: CliOutcome) -> list[str]:
    """Every rule `outcome` breaks; empty when it is fine."""
    found = []
    if outcome.code == -1:
        return [f"no answer within {TIME_LIMIT} s (a hang)"]
    allowed = EXIT_CODES.get(command_name(case.argv), DEFAULT_CODES)
    if outcome.code not in allowed:
        found.append(f"exit {outcome.code} (documented: {sorted(allowed)})")
    text = outcome.out + outcome.err
    for bad in ("Traceback", "internal error"):
        if bad in text:
            found.append(f"`{bad}` in the output")
    as_json = "--json" in case.argv and "--" not in case.argv[: case.argv.index("--json")]
    if outcome.code == 2 and not as_json and not outcome.err.lstrip().startswith(("error: ", "Error: ", "Usage: ")):
        found.append("exit 2 without an error message")
    if as_json:
        try:
            data = json.loads(outcome.out)
        except ValueError:
            found.append("--json but stdout is not one JSON document")
        else:
            if not isinstance(data, dict):
                found.append("--json but stdout is not a JSON object")
    if _asks_for_the_canary(case):
        return found  # the case itself puts `${OSIRIS_FUZZ_SECRET}` where it is no secret
    if CANARY in text:
        found.append("the canary secret in the output")
    for name, body in outcome.files.items():
        if CANARY.encode() in body and Path(name).name != "osiris_connections.yaml":
            found.append(f"the canary secret in {name}")
    return found


def _asks_for_the_canary(case: CliCase) -> bool:
    needle = CANARY_ENV.encode()
    if any(CANARY_ENV in a for a in case.argv):
        return True
    return any(needle in body for rel, body in case.files.items() if Path(rel).name != "osiris_connections.yaml")


def describe_case(case: CliCase, outcome: CliOutcome, found: list[str]) -> str:
    """A failure as text: the case, what broke, and what the command printed."""
    argv = " ".join(a if len(a) < 60 else a[:57] + "..." for a in case.argv)
    return (
        f"{case.name}\n  osiris {argv}: {'; '.join(found)}\n  exit {outcome.code}\n"
        f"  stderr: {outcome.err[:1500]}\n  stdout: {outcome.out[:500]}"
    )
