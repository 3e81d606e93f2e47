"""The secret detectors and the parts of compiling that read every character run in linear time.

Each test times one long input against the same amount of text cut into short inputs. Linear code
takes about as long for both (a ratio near 1); code that backtracks from every position takes as
many times longer as the long input has short pieces (here 100). The bound sits far from both, so
the test does not depend on how fast or how busy the machine is.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from osiris.compiler.compiler import compile_pipeline
from osiris.compiler.secrets import find_inline_secrets
from osiris.core.discovery import ComponentRegistry
from osiris.core.errors import OsirisError
from osiris.core.redaction import Redactor

PIECES = 100
LONG = 1_000_000  # characters in the long input; each short one has LONG // PIECES
MAX_RATIO = 10.0


def best_of(runs: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def ratio(make: Callable[[int], str], check: Callable[[str], object]) -> float:
    """Time of `check` on one input of LONG characters / time on PIECES inputs of LONG // PIECES."""
    long, short = make(LONG), make(LONG // PIECES)
    one = best_of(3, lambda: check(long))
    many = best_of(3, lambda: [check(short) for _ in range(PIECES)])
    return one / max(many, 1e-6)


# Texts on which a pattern that starts at a URL scheme (`[A-Za-z][A-Za-z0-9+.-]*://`) backtracks.
TEXTS = {
    "one long word": lambda n: "a" * n,
    "dotted words": lambda n: "a." * (n // 2),
    "digits then a url": lambda n: "1" * (n - 20) + "://u:p@host",
    "many schemes": lambda n: "a://b:" * (n // 6),
    "a long user part": lambda n: "pg://" + "u" * (n - 10) + ":p",
    "a long password": lambda n: "pg://u:" + "p" * (n - 10),
}


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_inline_secret_detection_is_linear(name):
    make = TEXTS[name]
    assert ratio(make, lambda text: list(find_inline_secrets({"query": text, "x": [text]}, []))) < MAX_RATIO


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_redaction_is_linear(name):
    redactor = Redactor(["hunter2-long"])
    assert ratio(TEXTS[name], redactor.redact_text) < MAX_RATIO


def test_the_detectors_still_find_what_they_found():
    found = list(find_inline_secrets({"a": "x postgresql://app:pw@h/db", "b": "1://u:p@h", "c": "pg://u:${PW}@h"}, []))
    assert found == [(("a",), "a URL holds a literal password")]
    assert Redactor().redact_text("x postgresql://app:pw@h/db 1://u:p@h") == "x postgresql://app:***@h/db 1://u:p@h"


@pytest.mark.parametrize("where", ["query", "param", "connection", "table"])
def test_compiling_a_megabyte_value_is_linear(tmp_path: Path, where: str) -> None:
    """A 300 KB literal in `query`, or a long `--param`, made compile take tens of seconds."""
    registry = ComponentRegistry.discover()
    files: dict[int, Path] = {}

    def make(n: int) -> Path:
        text = "a" * n
        config = {
            "query": {"query": text},
            "param": {"query": "SELECT ${params.v}"},
            "connection": {"query": "SELECT 1", "connection": "@" + text},
            "table": {"table": text},
        }[where]
        body = ", ".join(f"{k}: '{v}'" for k, v in config.items())
        path = tmp_path / f"p{n}.yaml"
        path.write_text(
            f'oml_version: "0.1.0"\nname: p\nparams: {{v: x}}\nsteps:\n'
            f"  - {{id: s, component: mysql.extractor, config: {{{body}}}}}\n"
        )
        files[n] = path
        return path

    def compile_file(path: Path) -> None:
        n = next(k for k, v in files.items() if v == path)
        overrides = {"v": "b" * n} if where == "param" else {}
        with contextlib.suppress(OsirisError):  # a long value may be invalid; saying so must be as quick
            compile_pipeline(path, param_overrides=overrides, registry=registry, environ={})

    make(LONG)
    make(LONG // PIECES)
    one = best_of(2, lambda: compile_file(files[LONG]))
    many = best_of(2, lambda: [compile_file(files[LONG // PIECES]) for _ in range(PIECES)])
    assert one / many < MAX_RATIO, (one, many)
