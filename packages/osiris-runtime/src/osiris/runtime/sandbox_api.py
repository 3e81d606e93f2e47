"""The hook between `osiris run` and sandbox plugins (group `osiris.sandboxes`).

A plugin is an object registered under a name (e.g. `e2b`, `local`) that runs one build
in its sandbox and returns the run's result; it prints nothing (`osiris run` reports the
result, the same way as a run on the host)::

    class SandboxPlugin(Protocol):
        def __call__(self, manifest_path: Path, options: SandboxOptions, *, connections_file: Path | None,
                     runs_dir: Path, listeners: Sequence[RunListener] = ()) -> RunResult: ...

`options` holds everything `osiris run` was told about the sandbox; `listeners` see every
event and metric of the run as it happens. `osiris-remote` provides the plugins;
`osiris run --sandbox NAME` (or `--e2b`) loads one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from osiris.core.errors import UserInputError

if TYPE_CHECKING:
    from osiris.runtime.runcard import RunResult
    from osiris.runtime.runlog import RunListener

SANDBOXES_GROUP = "osiris.sandboxes"
DEFAULT_ARTIFACT_MAX_MB = 5.0


def default_artifact_max_mb() -> float:
    """`E2B_ARTIFACT_MAX_MB` from the environment, else 5."""
    raw = os.environ.get("E2B_ARTIFACT_MAX_MB")
    if not raw:
        return DEFAULT_ARTIFACT_MAX_MB
    try:
        return float(raw)
    except ValueError:
        raise UserInputError(f"`E2B_ARTIFACT_MAX_MB` must be a number of megabytes; got `{raw}`") from None


@dataclass(frozen=True)
class SandboxOptions:
    """Everything `osiris run` was told about the sandbox; the plugin decides what applies to it."""

    name: str
    cpu: int | None = None
    memory_mb: int | None = None
    timeout_s: float | None = None
    template: str | None = None
    install_deps: bool = False
    env: dict[str, str] = field(default_factory=dict)
    pass_env: list[str] = field(default_factory=list)
    download_data: bool = False
    artifact_max_mb: float = DEFAULT_ARTIFACT_MAX_MB
    # `osiris run --full-refresh`: incremental extractors ignore their watermark once.
    full_refresh: bool = False
    # Steps at once in the sandbox (`--max-parallel`); None: the sandbox's cores.
    max_parallel: int | None = None
    # The package index osiris wheels the host has no local copy of come from (default:
    # `$OSIRIS_INDEX_URL`, then pip's own `index-url`; see osiris.remote.wheels).
    index_url: str | None = None

    def to_record(self) -> dict[str, Any]:
        """The options for a run card: environment variables by name only (their values may be secrets)."""
        return {
            "cpu": self.cpu,
            "memory_mb": self.memory_mb,
            "timeout_s": self.timeout_s,
            "template": self.template,
            "install_deps": self.install_deps,
            "env_keys": sorted(self.env),
            "pass_env": list(self.pass_env),
            "download_data": self.download_data,
            "artifact_max_mb": self.artifact_max_mb,
            "full_refresh": self.full_refresh,
            "max_parallel": self.max_parallel,
            "index_url": _without_credentials(self.index_url),
        }


def _without_credentials(url: str | None) -> str | None:
    """A URL without its user-info part (which may hold a token)."""
    if not url:
        return url
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = f"{parts.hostname or ''}:{parts.port}" if parts.port else parts.hostname or ""
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class SandboxPlugin(Protocol):
    """A sandbox plugin: runs one build in its sandbox and returns the result, printing nothing."""

    def __call__(
        self,
        manifest_path: Path,
        options: SandboxOptions,
        *,
        connections_file: Path | None,
        runs_dir: Path,
        listeners: Sequence[RunListener] = (),
    ) -> RunResult:
        """Run the build of `manifest_path` in the sandbox described by `options`."""
        ...


def load_sandbox_plugin(name: str) -> SandboxPlugin:
    """The plugin registered as `name` in `osiris.sandboxes`; a clear error when none is installed."""
    eps = [ep for ep in metadata.entry_points(group=SANDBOXES_GROUP) if ep.name == name]
    if not eps:
        available = sorted({ep.name for ep in metadata.entry_points(group=SANDBOXES_GROUP)})
        raise UserInputError(
            f"No sandbox `{name}` is installed"
            + (f"; installed sandboxes: {', '.join(available)}" if available else ""),
            hint="install `osiris-remote` (pip install osiris-remote), which provides the `e2b` and `local` sandboxes",
        )
    if len(eps) > 1:
        providers = " and ".join(f"`{ep.dist.name if ep.dist else ep.value}`" for ep in eps)
        raise UserInputError(f"Sandbox `{name}` is provided twice: by {providers}; uninstall one of them")
    try:
        return eps[0].load()
    except Exception as exc:
        raise UserInputError(f"Sandbox plugin `{name}` ({eps[0].value}) failed to load: {exc}") from None


def parse_env_pairs(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`["K=V", ...]` as a dict; an error naming the bad item otherwise."""
    out: dict[str, str] = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserInputError(f"`--e2b-env` expects KEY=VALUE; got `{item.split('=')[0]}...`")
        out[key] = value
    return out
