"""The run session: everything one run of one manifest owns, the same for every place a run happens.

::

    build = osiris.core.build.load_build(manifest_path)        # every file checked
    session = RunSession.for_build(build, runs_dir=Path("runs"), connections_file=None,
                                   listeners=[my_listener])    # configs resolved here
    run = Runner(session).run()                                 # on this machine, or
    run = HostAdapter(...).run()                                # in a sandbox (osiris-remote)

What a session owns:

- `manifest`, `manifest_text`, `components` (the specs of the components it uses) and
  `configs`: every step's config ready for its driver (`${VAR}` substituted,
  `resolved_connection` filled in). A configuration error found while resolving them is
  kept in `setup_error`: the run then fails at its start, but still leaves a run card.
- `run_id` and `run_dir` (`runs/<pipeline>/<run_id>/`): `manifest.yaml`, `events.jsonl`,
  `metrics.jsonl`, `run_card.json`, `artifacts/<step>/...`, `artifacts/_system/`.
- `redactor`: every secret value of the run (from the resolved configs, plus `secrets=`);
  it masks every event, metric, log line, error, run card and text artifact.
- `log` (`osiris.runtime.runlog.RunLog`): the event and metric files and the `listeners`.
- `registry`: the `DriverRegistry` the run's drivers are registered in.
- the run card, written by `write_run_card` (a temporary file renamed into place).

Lifecycle: `open()` (run dir, `manifest.yaml`, the log, log-line redaction) -> events and
metrics -> `write_run_card(card)` -> `close()` (files closed, text files scrubbed of
secrets). `Runner` drives a session whose steps run here (the host CLI, a sandbox worker);
`osiris.remote.host.HostAdapter` one whose steps run in a sandbox, writing what the worker
streams back through the same log and card.
"""

from __future__ import annotations

import contextlib
import copy
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from osiris.core.build import Build
from osiris.core.discovery import Component, ComponentRegistry
from osiris.core.errors import OsirisError, UserInputError
from osiris.core.manifest import Manifest, dump_manifest
from osiris.core.redaction import Redactor
from osiris.core.spec import ComponentSpec
from osiris.runtime.registry import DriverRegistry
from osiris.runtime.resolve import load_connections_for_run, resolve_configs, run_secrets, spec_of
from osiris.runtime.runcard import write_run_card
from osiris.runtime.runlog import DiagnosticProblems, LogRedaction, RunListener, RunLog, jsonable, now

TEXT_SCRUB_LIMIT = 64 * 1024 * 1024
SYSTEM_DIR = "artifacts/_system"

ComponentsLike = Mapping[str, Component | ComponentSpec]


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def manifest_components(
    manifest: Manifest, components: ComponentsLike | ComponentRegistry | None = None
) -> dict[str, Component | ComponentSpec]:
    """The specs of the components a manifest uses, from `components` or the installed ones."""
    if components is None:
        components = ComponentRegistry.discover()
    out: dict[str, Component | ComponentSpec] = {}
    for step in manifest.steps:
        name = step.component
        if name in out:
            continue
        if isinstance(components, ComponentRegistry):
            out[name] = components.get(name)
        elif name in components:
            out[name] = components[name]
        else:
            raise UserInputError(
                f"Component `{name}` (step `{step.id}`) is not installed; install the distribution that provides it"
            )
    return out


class RunSession:
    """One run of one manifest: its run dir, configs, redactor, log, registry and run card (see the module)."""

    def __init__(
        self,
        manifest: Manifest,
        configs: Mapping[str, dict[str, Any]],
        run_dir: str | Path,
        *,
        components: ComponentsLike | None = None,
        listeners: Iterable[RunListener] = (),
        run_id: str | None = None,
        base_dir: str | Path | None = None,
        manifest_text: str | None = None,
        secrets: Iterable[str] = (),
        registry: DriverRegistry | None = None,
    ) -> None:
        self.manifest = manifest
        self.manifest_text = manifest_text if manifest_text is not None else dump_manifest(manifest)
        self.run_dir = Path(run_dir)
        self.run_id = run_id or self.run_dir.name
        # Relative paths in configs are resolved against this (default: where the run was started).
        self.base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
        self.components = dict(components) if components is not None else manifest_components(manifest)
        self.configs = {sid: copy.deepcopy(cfg) for sid, cfg in configs.items()}
        self.registry = registry or DriverRegistry()
        self.redactor = Redactor(secrets)
        for value in run_secrets(manifest, self.configs, self.components):
            self.redactor.add(value)
        # Diagnostics that could not be written (disk full): reported, never a run failure.
        self.problems = DiagnosticProblems()
        self.log = RunLog(self.run_dir, self.run_id, self.redactor, listeners, self.problems)
        self.setup_error: OsirisError | None = None
        self.started = time.perf_counter()
        self.started_at = now()
        self._log_redaction = LogRedaction(self.redactor)
        self._open = False

    @classmethod
    def for_build(
        cls,
        build: Build,
        *,
        runs_dir: str | Path,
        connections_file: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
        listeners: Iterable[RunListener] = (),
        run_id: str | None = None,
        base_dir: str | Path | None = None,
        full_refresh: bool = False,
    ) -> RunSession:
        """A new run of `build` under `runs_dir`, its configs resolved from the connections file and
        the environment; a resolution error is kept in `setup_error` (the run fails at its start).

        `full_refresh` makes every incremental extractor ignore its watermark once (its writers replace
        the table and store the new watermark); it travels in the configs, so a sandbox sees it too."""
        manifest = build.manifest
        components = manifest_components(manifest)
        run_id = run_id or new_run_id()
        error: OsirisError | None = None
        try:
            connections = None
            if any(spec_of(c).x_connection for c in components.values()):
                connections = load_connections_for_run(connections_file)
            configs = resolve_configs(manifest, build.cfgs, components, connections, environ)
        except OsirisError as exc:
            configs, error = {s.id: {} for s in manifest.steps}, exc
        if full_refresh:
            for cfg in configs.values():
                if isinstance(cfg.get("incremental"), dict):
                    cfg["incremental"] = {**cfg["incremental"], "full_refresh": True}
        session = cls(
            manifest,
            configs,
            Path(runs_dir) / manifest.pipeline.name / run_id,
            components=components,
            listeners=listeners,
            run_id=run_id,
            base_dir=base_dir,
            manifest_text=build.manifest_text,
        )
        session.setup_error = error
        return session

    @property
    def listeners(self) -> list[RunListener]:
        """The listeners every (redacted) event, metric and progress tick goes to."""
        return self.log.listeners

    @property
    def duration_ms(self) -> float:
        """Milliseconds since the session was made."""
        return round((time.perf_counter() - self.started) * 1000, 3)

    def open(self) -> None:
        """Create the run dir, write `manifest.yaml`, open the log and mask secrets in log lines (once)."""
        if self._open:
            return
        self._open = True
        (self.run_dir / SYSTEM_DIR).mkdir(parents=True, exist_ok=True)
        self.write_diagnostic(self.run_dir / "manifest.yaml", self.manifest_text)
        self.log.open()
        self._log_redaction.install()

    def emit(self, name: str, step_id: str | None = None, **data: Any) -> dict[str, Any]:
        """Record an event (redacted) in `events.jsonl` and send it to every listener."""
        return self.log.event(name, step_id, **data)

    def metric(self, name: str, value: float, step_id: str | None = None, **tags: Any) -> dict[str, Any]:
        """Record a metric (redacted) in `metrics.jsonl` and send it to every listener."""
        return self.log.metric(name, value, step_id, **tags)

    def error_data(self, exc: BaseException, step_id: str | None = None) -> dict[str, Any]:
        """`exc` as an `ErrorInfo`'s data, redacted."""
        from osiris.core.errors import ErrorInfo

        return self.redactor.redact(ErrorInfo.from_exception(exc, step=step_id).to_data())

    def write_diagnostic(self, path: Path, text: str) -> bool:
        """Write a diagnostics file of the run dir; a failure (disk full) is noted in `problems`, not raised."""
        try:
            path.write_text(text, encoding="utf-8")
            return True
        except OSError as exc:
            self.problems.add(path.relative_to(self.run_dir).as_posix(), exc)
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)  # no half-written file
            return False

    def write_run_card(self, card: dict[str, Any]) -> dict[str, Any]:
        """Write `run_card.json` (redacted); returns the card (kept in memory when it cannot be written)."""
        card = self.redactor.redact(jsonable(card))
        if self.problems:
            card["diagnostics_incomplete"] = self.problems.messages()
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            write_run_card(self.run_dir, card)
        except OSError as exc:
            self.problems.add("run_card.json", exc)
            with contextlib.suppress(OSError):
                (self.run_dir / ".run_card.json.tmp").unlink(missing_ok=True)
        return card

    def close(self) -> None:
        """Close the log, stop masking log lines, and scrub secrets from the text files left in the run dir."""
        self.log.close()
        self._log_redaction.remove()
        try:
            self.scrub_run_dir()
        except OSError as exc:
            self.problems.add("(secret scrub of the run dir)", exc)

    def scrub_run_dir(self) -> None:
        """Mask known secret values in every text file a driver left in the run dir (defence in depth)."""
        if not self.redactor.secrets or not self.run_dir.is_dir():
            return
        for path in self.run_dir.rglob("*"):
            if not path.is_file() or path.suffix == ".parquet" or path.stat().st_size > TEXT_SCRUB_LIMIT:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if self.redactor.contains_secret(text):
                path.write_text(self.redactor.redact_text(text), encoding="utf-8")
