"""Malformed pipelines for fuzzing `osiris compile` and `osiris validate`, and the checks every outcome must pass.

Used by `tests/test_fuzz_compile.py` (bounded and seeded, in CI) and by `scripts/fuzz_compile`
(longer runs). A case is a pipeline file's bytes plus extra CLI arguments; the outcome of running
it must be exit 0 or 2, no traceback, no `internal error`, no hang, and the canary secret (set in an
environment variable and in the connections file) in no output and no file written.

Long on purpose: a catalogue of hand-written malformed cases next to the mutations and checks
that use them.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st
from osiris_cli import OSIRIS, osiris_in_process

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.yaml"))
CANARY = "canary-Fz9-q7Wx2"
CANARY_ENV = "OSIRIS_FUZZ_SECRET"
CONNECTIONS = f"""connections:
  mysql:
    default: {{host: 127.0.0.1, user: app, password: "{CANARY}", database: shop}}
  supabase:
    default: {{dsn: "postgresql://app:{CANARY}@127.0.0.1:5432/db", service_role_key: "${{{CANARY_ENV}}}"}}
"""
BOTH = ("compile", "validate")
TIME_LIMIT = 10.0  # seconds one compile may take in-process before it counts as a hang


@dataclass
class Case:
    """One input: a pipeline file's bytes, extra arguments, and the connections file beside it."""

    name: str
    pipeline: bytes
    args: tuple[str, ...] = ()
    connections: bytes | None = CONNECTIONS.encode()
    env: dict[str, str] = field(default_factory=dict)
    valid: tuple[str, ...] = ()  # the commands a hand-written case must pass (exit 0)


@dataclass
class Outcome:
    """What one run of `osiris` did."""

    code: int
    out: str
    err: str
    seconds: float
    files: dict[str, bytes]


def _head(steps: str, params: str = "") -> bytes:
    return f'oml_version: "0.1.0"\nname: fuzz\n{params}steps:\n{steps}'.encode()


READ = "  - {id: src, component: filesystem.csv_extractor, config: {path: a.csv}}\n"
WRITE = "  - {id: out, component: filesystem.csv_writer, needs: [src], config: {path: o.csv}}\n"


def laughs(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol"]'] + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def hand_written() -> list[Case]:
    """The classes of bad input found by hand, each as one or more cases."""
    big = "a" * 300_000
    cases = [
        Case("billion laughs", laughs().encode()),
        Case(
            "billion laughs in steps",
            _head("  - " + "{id: x, component: c, config: {a: *l9}}\n").replace(
                b"steps:\n", ("defs:\n" + "\n".join("  " + ln for ln in laughs().splitlines()) + "\nsteps:\n").encode()
            ),
        ),
        Case("deep flow lists", b"a: " + b"[" * 5000 + b"]" * 5000),
        Case("deep block lists", ("a:\n" + "".join("  " * i + "-\n" for i in range(1, 3000))).encode()),
        Case(
            "deep config",
            _head("  - {id: s, component: duckdb.processor, config: {query: x, a: " + "[" * 70 + "]" * 70 + "}}\n"),
        ),
        Case("self alias", b"a: &x\n  b: *x\n"),
        Case("self alias in config", _head("  - &s {id: s, component: duckdb.processor, config: {query: *s}}\n")),
        Case("undefined alias", _head("  - *nope\n")),
        Case("nul byte", _head(READ).replace(b"fuzz", b"fu\x00zz")),
        Case("control char", _head(READ).replace(b"a.csv", b"a\x07.csv")),
        Case("invalid utf-8", _head(READ).replace(b"a.csv", b"a\xff\xfe.csv")),
        Case("truncated utf-8", _head(READ) + b"\xe2\x82"),
        Case("utf-16 file", _head(READ).decode().encode("utf-16")),
        Case("surrogate escape", _head(READ).replace(b"a.csv", b'"a\\ud800.csv"')),
        Case("nul escape", _head(READ).replace(b"a.csv", b'"a\\0.csv"')),
        Case("empty file", b""),
        Case("only spaces", b"   \n\n"),
        Case("a list", b"- 1\n- 2\n"),
        Case("a scalar", b"hello\n"),
        Case("null document", b"~\n"),
        Case("two documents", _head(READ) + b"---\n" + _head(READ)),
        Case("tabs", _head(READ).replace(b"  - ", b"\t- ")),
        Case("python tag", _head("  - !!python/object:os.system {id: x}\n")),
        Case("unknown tag", _head("  - !foo {id: x}\n")),
        Case(
            "bad int tag", _head("  - {id: s, component: duckdb.processor, config: {query: x, threads: !!int abc}}\n")
        ),
        Case("bad date", _head("  - {id: s, component: duckdb.processor, config: {query: 2020-13-45}}\n")),
        Case(
            "5000 digits",
            _head("  - {id: s, component: duckdb.processor, config: {query: x, threads: " + "9" * 5000 + "}}\n"),
        ),
        Case(
            "huge int",
            _head(
                READ
                + "  - {id: w, component: supabase.writer, needs: [src], config: {connection: '@supabase.default', table: t, batch_size: 99999999999999999999999}}\n"
            ),
        ),
        Case(
            "nan timeout",
            _head(
                READ
                + "  - {id: w, component: supabase.writer, needs: [src], config: {connection: '@supabase.default', table: t, timeout: .nan}}\n"
            ),
        ),
        Case("date param", _head(READ, "params: {since: 2020-01-01}\n")),
        Case(
            "date in params list",
            _head(
                "  - {id: m, component: mysql.extractor, config: {connection: '@mysql.default', query: q, params: [2020-01-01]}}\n"
            ),
        ),
        Case("binary value", _head(READ.replace("a.csv", "!!binary aGVsbG8="))),
        Case(
            "int mapping key",
            _head(
                "  - {id: m, component: mysql.extractor, config: {connection: '@mysql.default', query: q, params: {1: a}}}\n"
            ),
        ),
        Case(
            "set value",
            _head(
                "  - {id: m, component: mysql.extractor, config: {connection: '@mysql.default', query: q, params: !!set {a, b}}}\n"
            ),
        ),
        Case(
            "merge keys",
            _head("  - &b {id: a, component: filesystem.csv_extractor, config: {path: a.csv}}\n  - {<<: *b, id: b}\n"),
            valid=BOTH,
        ),
        Case("bad merge", _head("  - {<<: [1, 2], id: b}\n")),
        Case("complex key", _head("  - {? [a, b]: 1, id: x}\n")),
        Case("duplicate key", _head(READ.replace("config:", "id: again, config:"))),
        Case("unterminated param", _head(READ + WRITE.replace("o.csv", "'${params.since'"), "params: {since: x}\n")),
        Case("unterminated env", _head(READ + WRITE.replace("o.csv", "'${" + CANARY_ENV + "'"))),
        Case("env canary reference", _head(READ + WRITE.replace("o.csv", "'${" + CANARY_ENV + "}.csv'")), valid=BOTH),
        Case(
            "canary connection",
            _head("  - {id: m, component: mysql.extractor, config: {connection: '@mysql.default', table: t}}\n"),
            valid=BOTH,
        ),
        Case(
            "unknown alias",
            _head("  - {id: m, component: mysql.extractor, config: {connection: '@mysql.nope', table: t}}\n"),
        ),
        Case(
            "literal password",
            _head(
                "  - {id: m, component: mysql.extractor, config: {connection: '@mysql.default', table: t, password: hunter2}}\n"
            ),
        ),
        Case(
            "url password",
            _head(
                "  - {id: m, component: mysql.extractor, config: {connection: '@mysql.default', query: 'pg://u:pw@h'}}\n"
            ),
        ),
        Case(
            "300 KB query",
            _head(
                f"  - {{id: m, component: mysql.extractor, config: {{connection: '@mysql.default', query: {big}}}}}\n"
            ),
            valid=BOTH,
        ),
        Case("long unknown key", _head(f"  - {{id: m, {big}: 1}}\n")),
        Case(
            "long param",
            _head(READ + WRITE.replace("o.csv", "'${params.p}'"), "params: {p: x}\n"),
            ("-p", "p=" + "b" * 100_000),
            valid=BOTH,
        ),
        Case("surrogate param", _head(READ, "params: {p: x}\n"), ("-p", "p=caf\udce9")),
        Case("param without =", _head(READ, "params: {p: x}\n"), ("-p", "p")),
        Case("unknown param", _head(READ), ("-p", "zzz=1")),
        Case(
            "bad env param",
            _head(READ, "params: {p: {type: integer, default: 1}}\n"),
            env={"OSIRIS_PARAM_P": "x\udcff"},
        ),
        Case(
            "dup primary key",
            _head(
                READ
                + "  - {id: w, component: supabase.writer, needs: [src], config: {connection: '@supabase.default', table: t, write_mode: upsert, primary_key: [id, id]}}\n"
            ),
        ),
        Case("two inputs", _head(READ + READ.replace("src", "s2") + WRITE.replace("[src]", "[src, s2]"))),
        Case(
            "dotted table",
            _head(
                READ
                + "  - {id: w, component: supabase.writer, needs: [src], config: {connection: '@supabase.default', table: a.b.c}}\n"
            ),
        ),
        Case(
            "cycle",
            _head(
                "  - {id: a, component: duckdb.processor, needs: [b], config: {query: x}}\n  - {id: b, component: duckdb.processor, needs: [a], config: {query: x}}\n"
            ),
        ),
        Case(
            "all errors at once",
            _head(
                "  - {id: src, component: filesystem.csv_extractor, retries: 1, config: {path: 5}}\n  - 17\n  - {id: w, component: nope}\n"
            ),
        ),
        Case("laughs connections", _head(READ), connections=laughs().encode()),
        Case("deep connections", _head(READ), connections=b"connections: " + b"[" * 5000),
        Case("nul connections", _head(READ), connections=CONNECTIONS.encode().replace(b"shop", b"sh\x00op")),
        Case(
            "broken connections",
            _head("  - {id: m, component: mysql.extractor, config: {connection: '@mysql.default', table: t}}\n"),
            connections=b"connections: [1, 2]\n",
        ),
        Case("non-utf8 path", _head(READ), ("--out", "build-\udce9"), valid=("compile",)),
    ]
    for example in EXAMPLES:
        cases.append(Case(f"example {example.name}", example.read_bytes(), valid=BOTH))
    return cases


# -- hypothesis strategies: mutations of the example pipelines ---------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([2**63, -(2**63) - 1, 2**31, 0, -1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "${params.since",
            "${params.since}",
            "${" + CANARY_ENV + "}",
            "${X",
            "@mysql.default",
            "@nope.x",
            "a.b.c",
            "postgresql://u:pw@h/db",
            "2020-01-01",
            "",
            " ",
            "\t",
            "${params.}",
            "*",
            "&",
            "!!",
        ]
    ),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
KEYS = st.sampled_from(
    [
        "id",
        "component",
        "mode",
        "config",
        "needs",
        "description",
        "params",
        "steps",
        "name",
        "oml_version",
        "query",
        "table",
        "path",
        "connection",
        "primary_key",
        "batch_size",
        "write_mode",
        "columns",
        "confg",
        "x",
    ]
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        node = node[p]
    return node


@st.composite
def mutated_pipelines(draw: st.DrawFn) -> Case:
    """An example pipeline with a few of its values replaced, keys dropped or added, or its text cut."""
    example = draw(st.sampled_from(EXAMPLES))
    data = yaml.safe_load(example.read_text())
    ops = []
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "drop", "add", "duplicate"]))
        ops.append(op)
        if not path:
            data = draw(VALUES) if op == "replace" else data
            continue
        parent = _get(data, path[:-1])
        last = path[-1]
        if op == "replace":
            parent[last] = draw(VALUES)
        elif op == "drop":
            del parent[last]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(KEYS)] = draw(VALUES)
        elif op == "add" and isinstance(parent, list):
            parent.insert(draw(st.integers(0, len(parent))), draw(VALUES))
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(parent[last])
    try:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=draw(st.booleans())).encode("utf-8", "surrogatepass")
    except (yaml.YAMLError, ValueError, RecursionError):
        text = example.read_bytes()
    if draw(st.integers(0, 4)) == 0:  # byte-level damage on top
        at = draw(st.integers(0, max(0, len(text) - 1)))
        junk = draw(st.binary(max_size=6))
        text = text[:at] + junk + text[at + draw(st.integers(0, 6)) :]
    args: tuple[str, ...] = ()
    if draw(st.integers(0, 5)) == 0:
        args = ("-p", draw(st.sampled_from(["since", "min_quantity", "x", ""])) + "=" + draw(st.text(max_size=10)))
    return Case(f"{example.stem}: {', '.join(ops)}", text, args)


# -- running and checking --------------------------------------------------------------------------


def _written(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def prepare(case: Case, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.yaml").write_bytes(case.pipeline)
    if case.connections is not None:
        (folder / "osiris_connections.yaml").write_bytes(case.connections)
    return folder / "pipeline.yaml"


def run_in_process(case: Case, folder: Path, command: str) -> Outcome:
    """`osiris COMMAND pipeline.yaml ARGS` through the CLI's `main`, in `folder`."""
    prepare(case, folder)
    done = osiris_in_process(command, "pipeline.yaml", *case.args, cwd=folder, env={CANARY_ENV: CANARY, **case.env})
    return Outcome(done.code, done.out, done.err, done.seconds, _written(folder))


def run_subprocess(case: Case, folder: Path, command: str, timeout: float = 60.0) -> Outcome:
    """`python -m osiris.core.cli COMMAND pipeline.yaml ARGS` as a user runs it."""
    prepare(case, folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSIRIS_")}
    env.update({CANARY_ENV: CANARY, **case.env})
    argv = [*OSIRIS, command, "pipeline.yaml", *case.args]  # bytes below: a case may not be UTF-8
    started = time.perf_counter()
    proc = subprocess.run(
        [os.fsencode(a) for a in argv],
        cwd=folder,
        env={os.fsencode(k): os.fsencode(v) for k, v in env.items()},
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    seconds = time.perf_counter() - started
    return Outcome(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
        seconds,
        _written(folder),
    )


def problems(case: Case, outcome: Outcome, *, time_limit: float = TIME_LIMIT) -> list[str]:
    """Every way `outcome` breaks the rules; empty when it is fine."""
    found = []
    if outcome.code not in (0, 2):
        found.append(f"exit {outcome.code}")
    text = outcome.out + outcome.err
    for bad in ("Traceback", "internal error"):
        if bad in text:
            found.append(f"`{bad}` in the output")
    if outcome.code == 2 and not outcome.err.startswith(("error: ", "Error: ", "Usage: ")):
        found.append("exit 2 without an error message")
    if CANARY in text:
        found.append("the canary secret in the output")
    for name, body in outcome.files.items():
        if CANARY.encode() in body and name != "osiris_connections.yaml":
            found.append(f"the canary secret in {name}")
    if outcome.seconds > time_limit:
        found.append(f"took {outcome.seconds:.1f} s")
    return found


def describe(case: Case, outcome: Outcome, found: list[str]) -> str:
    args = " ".join(a if len(a) < 60 else a[:57] + "..." for a in case.args)
    return f"{case.name} [{args}]: {'; '.join(found)}\n  exit {outcome.code}\n  stderr: {outcome.err[:1500]}"
