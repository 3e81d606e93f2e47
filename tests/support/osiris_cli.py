"""Running the real `osiris` command in a subprocess, as a user does."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
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
