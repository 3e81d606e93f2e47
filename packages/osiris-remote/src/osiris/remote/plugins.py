"""The sandbox plugins `osiris run --sandbox local` and `osiris run --e2b` load (group `osiris.sandboxes`).

Both are the same host adapter; they differ only in the sandbox they make from the options.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from osiris.remote.host import HostAdapter
from osiris.remote.sandbox import Sandbox
from osiris.runtime.runcard import RunResult
from osiris.runtime.runlog import RunListener
from osiris.runtime.sandbox_api import SandboxOptions


class HostAdapterPlugin:
    """A `SandboxPlugin` that runs the build through a `HostAdapter` in the sandbox `make(options)` makes."""

    def __init__(self, make: Callable[[SandboxOptions], Sandbox]) -> None:
        self.make = make

    def __call__(
        self,
        manifest_path: Path,
        options: SandboxOptions,
        *,
        connections_file: Path | None,
        runs_dir: Path,
        listeners: Sequence[RunListener] = (),
    ) -> RunResult:
        """Run the build of `manifest_path` in a new sandbox; returns the result."""
        adapter = HostAdapter(
            manifest_path,
            options,
            sandbox_factory=lambda: self.make(options),
            connections_file=connections_file,
            runs_dir=runs_dir,
            listeners=listeners,
        )
        return adapter.run()


def local_sandbox(options: SandboxOptions) -> Sandbox:
    """A fresh folder and virtual environment on this machine.

    The third-party dependencies come from the cached dependency layer; with
    `install_deps` (`--e2b-install-deps`) every run pip-installs them into its venv instead.
    """
    from osiris.remote.sandbox import LocalSandbox

    return LocalSandbox(env=dict(options.env), use_layers=not options.install_deps)


def e2b_sandbox(options: SandboxOptions) -> Sandbox:
    """An E2B sandbox (`E2B_API_KEY` from the environment)."""
    from osiris.remote.sandbox import E2BSandbox

    return E2BSandbox(
        template=options.template,
        timeout_s=options.timeout_s,
        cpu=options.cpu,
        memory_mb=options.memory_mb,
        env=dict(options.env),
    )


local_plugin = HostAdapterPlugin(local_sandbox)
e2b_plugin = HostAdapterPlugin(e2b_sandbox)
