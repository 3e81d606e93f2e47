"""The sandbox plugins `osiris run --sandbox local` and `osiris run --e2b` load (group `osiris.sandboxes`).

Both call the same host adapter; they differ only in the sandbox they make.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from osiris.remote.host import run_sandboxed


def local_plugin(
    manifest_path: Path,
    options: Any,
    *,
    connections_file: Path | None,
    runs_dir: Path,
    verbose: bool,
    json_output: bool,
) -> int:
    """Run in a fresh folder and virtual environment on this machine.

    The third-party dependencies come from the cached dependency layer; with
    `install_deps` (`--e2b-install-deps`) every run pip-installs them into its venv instead.
    """
    from osiris.remote.sandbox import LocalSandbox

    return run_sandboxed(
        manifest_path,
        options,
        lambda: LocalSandbox(env=dict(options.env or {}), use_layers=not options.install_deps),
        connections_file=connections_file,
        runs_dir=runs_dir,
        verbose=verbose,
        json_output=json_output,
    )


def e2b_plugin(
    manifest_path: Path,
    options: Any,
    *,
    connections_file: Path | None,
    runs_dir: Path,
    verbose: bool,
    json_output: bool,
) -> int:
    """Run in an E2B sandbox (`E2B_API_KEY` from the environment)."""
    from osiris.remote.sandbox import E2BSandbox

    return run_sandboxed(
        manifest_path,
        options,
        lambda: E2BSandbox(
            template=options.template,
            timeout_s=options.timeout_s,
            cpu=options.cpu,
            memory_mb=options.memory_mb,
            env=dict(options.env or {}),
        ),
        connections_file=connections_file,
        runs_dir=runs_dir,
        verbose=verbose,
        json_output=json_output,
    )
