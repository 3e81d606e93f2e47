"""Running the real `osiris` command in a subprocess, as a user does."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

OSIRIS = (sys.executable, "-m", "osiris.core.cli")


def run_osiris(
    *args: str | Path,
    cwd: str | Path,
    env: Mapping[str, str] | None = None,
    unset: Iterable[str] = (),
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """`osiris ARGS` in `cwd`: this process's environment without `OSIRIS_DEBUG` and `unset`, plus `env`."""
    dropped = {"OSIRIS_DEBUG", *unset}
    full_env = {k: v for k, v in os.environ.items() if k not in dropped}
    full_env.update(env or {})
    return subprocess.run(
        [*OSIRIS, *map(str, args)], cwd=cwd, capture_output=True, text=True, env=full_env, timeout=timeout, check=False
    )


def compile_build(pipeline: str | Path, out: str | Path, *, cwd: str | Path) -> Path:
    """`osiris compile PIPELINE -o OUT` in `cwd` (it must succeed); the path of the manifest it wrote."""
    done = run_osiris("compile", pipeline, "-o", out, cwd=cwd)
    assert done.returncode == 0, f"`osiris compile {pipeline}` failed:\n{done.stderr}"
    return next(Path(cwd, out).rglob("manifest.yaml"))


def start_osiris(
    *args: str | Path, cwd: str | Path, env: Mapping[str, str] | None = None, unset: Iterable[str] = ()
) -> subprocess.Popen[str]:
    """`osiris ARGS` in `cwd`, started and left running (to signal or kill it); as `run_osiris` otherwise."""
    dropped = {"OSIRIS_DEBUG", *unset}
    full_env = {k: v for k, v in os.environ.items() if k not in dropped}
    full_env.update(env or {})
    return subprocess.Popen(
        [*OSIRIS, *map(str, args)],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass
class InProcess:
    """What one in-process `osiris` call did: its exit code and what it printed."""

    code: int
    out: str
    err: str
    seconds: float


def osiris_in_process(*args: str | Path, cwd: str | Path, env: Mapping[str, str] | None = None) -> InProcess:
    """`osiris ARGS` through the CLI's `main` in this process (fast; no new interpreter), in `cwd`.

    `env` is set for the call and restored after; `OSIRIS_DEBUG` is unset so no traceback is asked for.
    """
    from osiris.core.cli import main

    changes = {"OSIRIS_DEBUG": None, **(env or {})}
    saved = {k: os.environ.get(k) for k in changes}
    old_cwd = os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    for k, v in changes.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    os.chdir(cwd)
    try:
        started = time.perf_counter()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args])
        seconds = time.perf_counter() - started
    finally:
        os.chdir(old_cwd)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return InProcess(code, out.getvalue(), err.getvalue(), seconds)


def run_osiris_in_terminal(
    *args: str | Path,
    cwd: str | Path,
    env: Mapping[str, str] | None = None,
    term: str = "xterm-256color",
    columns: int = 160,
    timeout: float = 600,
) -> tuple[int, str]:
    """`osiris ARGS` with stdin, stdout and stderr on a pseudo-terminal of `columns` columns, as in a
    terminal window; (exit code, everything the terminal received, escape codes included)."""
    import fcntl
    import pty
    import select
    import struct
    import termios
    import time

    full_env = {k: v for k, v in os.environ.items() if k != "OSIRIS_DEBUG"}
    full_env.update({"TERM": term, "COLUMNS": str(columns), **(env or {})})
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen([*OSIRIS, *map(str, args)], cwd=cwd, env=full_env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    received = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the last holder of the terminal closed it
                break
            if not data:
                break
            received += data
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return proc.wait(timeout=30), received.decode("utf-8", "replace")


ANSI_ESCAPE = "\x1b"


def terminal_lines(received: str) -> list[str]:
    """What a terminal showed, as text lines without escape codes (every redraw is a line of its own)."""
    import re

    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", received)
    return [line.rstrip() for line in re.split(r"[\r\n]+", text) if line.strip()]
