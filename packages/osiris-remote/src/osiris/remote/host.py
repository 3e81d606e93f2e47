"""The host adapter: runs a compiled manifest in a sandbox through the worker, the same for every sandbox.

1. Resolve the run's configs and secrets on the host (as `osiris run` does).
2. Bootstrap: make the sandbox and get its dependency layer (the `local` sandbox's
   cached third-party requirements; none for E2B, whose template holds them), upload
   the wheels (osiris-core, -runtime, -remote and exactly the manifest's driver
   distributions), create a fresh venv and install those wheels in one pip call
   (pip log: `artifacts/_system/pip_install.log`).
3. Start the worker, send `Prepare` (the only carrier of secrets); the worker
   registers the drivers. Compare its registration
   fingerprint and the code hash of every osiris distribution with the host's
   (`driver_file_verified` events with `sha256_match`); stop on a mismatch.
4. `ExecStep` per step in manifest order, writing the streamed events and
   metrics to the host's run directory as they arrive; `Cleanup`; download
   the diagnostics (always) and data files (on request or under the size limit).
5. Tear the sandbox down, whatever happened.

A worker that dies, hangs past the timeout, or sends a line that is not a
valid message ends the run with an error naming the running step, the
worker's exit code and the tail of its stderr.
"""

from __future__ import annotations

import json
import os
import queue
import shlex
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from osiris.core import wire
from osiris.core.errors import ErrorInfo, OsirisError, TerminalError, UserInputError
from osiris.remote.layers import pth_line
from osiris.remote.sandbox import EOF, Sandbox, WorkerProcess

WORKER_COMMAND = "venv/bin/python -m osiris.remote.worker"
DEFAULT_TIMEOUT_S = 3600.0
PIP_LOG = "artifacts/_system/pip_install.log"
SYSTEM_FILES = ("run_card.json", "manifest.yaml")


class SandboxRunError(TerminalError):
    """The sandbox or its worker failed (died, timed out, broke the protocol)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _RunLog:
    """The host's run directory: events and metrics written as they stream in, redacted."""

    def __init__(self, run_dir: Path, run_id: str, redactor: Any, echo: Callable[[str], None] | None) -> None:
        self.run_dir = run_dir
        self.run_id = run_id
        self.redactor = redactor
        (run_dir / "artifacts" / "_system").mkdir(parents=True, exist_ok=True)
        self._events = (run_dir / "events.jsonl").open("a", encoding="utf-8")
        self._metrics = (run_dir / "metrics.jsonl").open("a", encoding="utf-8")
        self.echo = echo
        self.events: list[dict[str, Any]] = []

    def event(self, record: dict[str, Any]) -> None:
        record = self.redactor.redact(record)
        self.events.append(record)
        self._events.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._events.flush()
        if self.echo is not None:
            name, step = record.get("event"), record.get("step_id")
            if name == "step_complete":
                self.echo(
                    f"  {step}: done, {record.get('rows_out', 0):,} rows in {record.get('duration_ms', 0) / 1000:.2f} s"
                )
            elif name == "step_failed":
                self.echo(f"  {step}: FAILED: {(record.get('error') or {}).get('message', '')}")

    def host_event(self, name: str, **data: Any) -> None:
        """An event of the host side (bootstrap, verification); `origin: host` tells it apart."""
        self.event({"ts": _now(), "run_id": self.run_id, "event": name, "origin": "host", **data})

    def metric(self, record: dict[str, Any]) -> None:
        self._metrics.write(json.dumps(self.redactor.redact(record), ensure_ascii=False) + "\n")
        self._metrics.flush()

    def close(self) -> None:
        self._events.close()
        self._metrics.close()


class HostAdapter:
    """Drives one run of a manifest in one sandbox.

    `sandbox_factory` makes the sandbox; `worker_env` is added to the worker's
    environment; `worker_command` is the shell command, run in the sandbox's work
    folder after the install, that starts the worker (default: the installed
    `osiris.remote.worker`). Any program that speaks the wire protocol on its
    stdin/stdout can stand in, e.g. a wrapper that profiles or records the session.
    """

    def __init__(
        self,
        manifest_path: Path,
        options: Any,
        *,
        sandbox_factory: Callable[[], Sandbox],
        connections_file: Path | None,
        runs_dir: Path,
        verbose: bool = False,
        json_output: bool = False,
        worker_env: dict[str, str] | None = None,
        worker_command: str = WORKER_COMMAND,
    ) -> None:
        self.manifest_path = Path(manifest_path)
        self.options = options
        self.sandbox_factory = sandbox_factory
        self.connections_file = connections_file
        self.runs_dir = Path(runs_dir)
        self.verbose = verbose
        self.json_output = json_output
        self.worker_env = dict(worker_env or {})
        self.worker_command = worker_command
        self.timings: dict[str, float] = {}
        self.current_step: str | None = None
        self.sandbox: Sandbox | None = None
        self.worker: WorkerProcess | None = None
        self.deadline = 0.0
        self._decoder = wire.LineDecoder(wire.WorkerMessage)
        self._encoder = wire.LineEncoder()

    # -- plumbing ------------------------------------------------------------------------------

    def _echo(self, text: str) -> None:
        if not self.json_output:
            click.echo(text, err=True)

    def _fail(self, what: str, *, code: int | None = None) -> SandboxRunError:
        worker = self.worker
        if code is None and worker is not None:
            code = worker.returncode(wait=2)
            if code is None:
                worker.kill()
                code = worker.returncode(wait=5)
        where = f" while running step `{self.current_step}`" if self.current_step else " during setup"
        tail = worker.stderr_tail() if worker is not None else ""
        message = f"The sandbox worker {what}{where} (worker exit code {code})"
        if tail:
            message += "; last lines of its stderr:\n" + "\n".join("  | " + line for line in tail.splitlines())
        return SandboxRunError(message, step=self.current_step)

    def send(self, message: Any) -> None:
        assert self.worker is not None
        self.worker.send(self._encoder.encode(message))

    def receive(self) -> Any:
        """The next message from the worker; a clear error when it dies, hangs or breaks the protocol."""
        assert self.worker is not None
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise self._fail(f"timed out (the sandbox timeout is {self._timeout_s():g} s)")
        try:
            line = self.worker.lines.get(timeout=remaining)
        except queue.Empty:
            raise self._fail(f"timed out (the sandbox timeout is {self._timeout_s():g} s)") from None
        if line is EOF:
            raise self._fail("exited unexpectedly")
        if not line.strip():
            return self.receive()
        try:
            return self._decoder.decode(line)
        except wire.ProtocolError as exc:
            raise self._fail(f"sent an invalid message ({exc.message})") from None

    def _timeout_s(self) -> float:
        return float(getattr(self.options, "timeout_s", None) or DEFAULT_TIMEOUT_S)

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> int:
        """Run the manifest in the sandbox; print the outcome; return the exit code."""
        from osiris.core.build import load_build
        from osiris.core.redaction import Redactor
        from osiris.runtime.registry import DriverRegistry
        from osiris.runtime.resolve import load_connections_for_run, step_secrets
        from osiris.runtime.runner import manifest_components, new_run_id, resolve_configs

        t_start = time.perf_counter()
        build = load_build(self.manifest_path)
        manifest, text, cfgs = build.manifest, build.manifest_text, build.cfgs
        components = manifest_components(manifest)
        conns = None
        if any(getattr(c, "spec", c).x_connection for c in components.values()):
            conns = load_connections_for_run(self.connections_file)
        configs = resolve_configs(manifest, cfgs, components, conns)
        secrets: set[str] = set()
        for step in manifest.steps:
            spec = components[step.component]
            secrets |= step_secrets(configs[step.id], getattr(spec, "spec", spec))
        redactor = Redactor(secrets)
        host_registry = DriverRegistry().populate_from_component_specs(components, allow=list(components))

        run_id = new_run_id()
        run_dir = self.runs_dir / manifest.pipeline.name / run_id
        log = _RunLog(run_dir, run_id, redactor, None if self.json_output else self._echo)
        (run_dir / "manifest.yaml").write_text(text, encoding="utf-8")
        self.deadline = time.monotonic() + self._timeout_s()
        card: dict[str, Any] = {}
        error: OsirisError | None = None
        try:
            card = self._session(manifest, configs, secrets, host_registry, run_id, run_dir, log)
        except OsirisError as exc:
            error = exc
        except Exception as exc:  # an unexpected failure still tears down and reports
            error = SandboxRunError(f"{type(exc).__name__}: {exc}", step=self.current_step)
        finally:
            t_down = time.perf_counter()
            if self.sandbox is not None:
                self.sandbox.close()
            self.timings["teardown"] = round(time.perf_counter() - t_down, 3)
            self.timings["total"] = round(time.perf_counter() - t_start, 3)
        if error is not None:
            log.host_event(
                "sandbox_failed",
                error=redactor.redact(ErrorInfo.from_exception(error).to_data()),
                step_id=self.current_step,
            )
        log.host_event("sandbox_closed", timings=self.timings)
        log.close()
        return self._report(run_dir, card, error, redactor)

    def _session(
        self,
        manifest: Any,
        configs: dict[str, dict[str, Any]],
        secrets: set[str],
        host_registry: Any,
        run_id: str,
        run_dir: Path,
        log: _RunLog,
    ) -> dict[str, Any]:
        from osiris.remote.dists import distribution_sha256
        from osiris.remote.wheels import plan_wheels

        t0 = time.perf_counter()
        plan = plan_wheels(manifest)
        self.timings["wheels"] = round(time.perf_counter() - t0, 3)

        t0 = time.perf_counter()
        self.sandbox = sandbox = self.sandbox_factory()
        layer = sandbox.dependency_layer(plan.requirements)
        self.timings["layer"] = round(time.perf_counter() - t0, 3)

        t0 = time.perf_counter()
        if layer is not None:
            # The layer carries pip and every third-party dependency: no ensurepip, no index.
            venv_flags = "--without-pip"
            install_deps = False
        elif getattr(self.options, "name", "") == "e2b" and not self.options.install_deps:
            venv_flags = "--system-site-packages"  # the template's Python holds the dependencies
            install_deps = False
        else:
            venv_flags = ""
            install_deps = True
        sandbox.check(
            f"mkdir -p wheels run/artifacts/_system && {sandbox.python} -m venv {venv_flags} venv",
            what="environment (venv)",
            timeout=300,
        )
        if layer is not None:
            sandbox.check(
                "venv/bin/python -c 'import sysconfig,sys; "
                'open(sysconfig.get_paths()["purelib"] + "/_osiris_layer.pth", "w").write(sys.argv[1])\' '
                + shlex.quote(pth_line(layer.site)),
                what="environment (dependency layer)",
            )
        for wheel in plan.wheels.values():
            sandbox.upload(wheel, f"wheels/{wheel.name}")
        inputs = _data_paths(manifest, configs, "read")
        for rel in inputs:
            sandbox.upload(Path(rel), rel)
        self.timings["environment"] = round(time.perf_counter() - t0, 3)
        log.host_event(
            "sandbox_created",
            sandbox=sandbox.name,
            wheels=sorted(w.name for w in plan.wheels.values()),
            uploaded_inputs=inputs,
            dependency_layer=layer.describe() if layer is not None else None,
        )

        t0 = time.perf_counter()
        for cmd in _install_commands(plan, install_deps, layer.uv if layer is not None else None):
            sandbox.check(
                f"echo '$ {cmd}' >> run/{PIP_LOG} && {cmd} >> run/{PIP_LOG} 2>&1",
                what="install of osiris (see artifacts/_system/pip_install.log)",
                timeout=max(60.0, self.deadline - time.monotonic()),
            )
        self.timings["install"] = round(time.perf_counter() - t0, 3)

        env = {"PYTHONUNBUFFERED": "1", **self.worker_env, **dict(getattr(self.options, "env", {}) or {})}
        for name in getattr(self.options, "pass_env", []) or []:
            if name not in os.environ:
                raise UserInputError(f"`--e2b-pass-env {name}`: `{name}` is not set on the host")
            env[name] = os.environ[name]
        self.worker = sandbox.start_worker(self.worker_command, env)

        t0 = time.perf_counter()
        connections = {sid: cfg["resolved_connection"] for sid, cfg in configs.items() if "resolved_connection" in cfg}
        plain = {sid: {k: v for k, v in cfg.items() if k != "resolved_connection"} for sid, cfg in configs.items()}
        self.send(
            wire.Prepare(
                protocol_version=wire.PROTOCOL_VERSION,
                run_id=run_id,
                pipeline=manifest.pipeline.name,
                manifest_yaml=(run_dir / "manifest.yaml").read_text(encoding="utf-8"),
                cfgs=plain,
                connections=connections,
                secrets=sorted(secrets),
                # Everything is installed before the worker starts; nothing is left for it to install.
                install=wire.InstallPolicy(find_links="wheels", requirements=[], from_index=[], install_deps=False),
                run_dir="run",
                redact_logs=os.environ.get("E2B_LOG_REDACT", "1") not in ("0", "false", "no"),
                verbose=self.verbose,
            )
        )
        prepared = False
        prepare_error: wire.ErrorInfo | None = None
        while not prepared:
            msg = self._receive_control(log)
            if isinstance(msg, wire.Ready):
                try:
                    wire.check_protocol_version(msg.protocol_version, peer="sandbox worker")
                except wire.ProtocolError as exc:
                    raise self._fail(f"speaks another protocol: {exc.message}") from None
                self.timings["registration"] = round(time.perf_counter() - t0, 3)
                self.timings.update({f"worker_{k}": v for k, v in msg.timings.items()})
                self._verify(msg, host_registry, plan, distribution_sha256, log)
                prepared = True
            elif isinstance(msg, wire.Failed):
                if msg.error.type == "ProtocolError" or msg.fatal:
                    raise self._fail(f"refused the session: {msg.error.message}")
                prepare_error = msg.error
                break
            else:
                raise self._fail(f"sent `{type(msg).__name__}` before `Ready`")

        if prepared:
            for step in manifest.steps:
                self.current_step = step.id
                self.send(wire.ExecStep(step_id=step.id))
                result = self._await_step(step.id, log)
                if result.get("status") != "succeeded":
                    break
            self.current_step = None
        self.send(wire.Cleanup(status="done"))
        cleaned = None
        while cleaned is None:
            msg = self._receive_control(log)
            if isinstance(msg, wire.Cleaned):
                cleaned = msg
            elif isinstance(msg, wire.Failed):
                raise self._fail(f"failed to finish the run: {msg.error.message}")
        self.worker.returncode(wait=10)
        t0 = time.perf_counter()
        downloaded = self._download(cleaned, run_dir, manifest, configs, log)
        self.timings["download"] = round(time.perf_counter() - t0, 3)
        card = dict(cleaned.run_card)
        card["sandbox"] = {
            "name": sandbox.name,
            "options": self._options_data(),
            "timings": dict(self.timings),
            "downloaded": downloaded,
        }
        if prepare_error is not None and not card.get("error"):
            card["error"] = prepare_error.to_data()
        return card

    def _options_data(self) -> dict[str, Any]:
        """The sandbox options for the run card; environment values are left out (they may be secrets)."""
        o = self.options
        return {
            "cpu": getattr(o, "cpu", None),
            "memory_mb": getattr(o, "memory_mb", None),
            "timeout_s": getattr(o, "timeout_s", None),
            "template": getattr(o, "template", None),
            "install_deps": getattr(o, "install_deps", False),
            "env_keys": sorted((getattr(o, "env", None) or {}).keys()),
            "pass_env": list(getattr(o, "pass_env", None) or []),
            "download_data": getattr(o, "download_data", False),
            "artifact_max_mb": getattr(o, "artifact_max_mb", None),
        }

    def _verify(
        self, ready: wire.Ready, host_registry: Any, plan: Any, sha: Callable[[str], str], log: _RunLog
    ) -> None:
        """Compare the sandbox's registration and code with the host's; stop on a mismatch."""
        mismatches = []
        same = ready.registration_fingerprint == host_registry.fingerprint
        log.host_event(
            "registration_verified",
            host_fingerprint=host_registry.fingerprint,
            sandbox_fingerprint=ready.registration_fingerprint,
            match=same,
        )
        if not same:
            mismatches.append(
                f"driver registration fingerprint {ready.registration_fingerprint} != host {host_registry.fingerprint}"
            )
        sandbox_dists = {d.name: d for d in ready.distributions}
        for pin in plan.all_pins:
            name, _, version = pin.partition("==")
            remote = sandbox_dists.get(name)
            host_sha = sha(name)
            match = remote is not None and remote.version == version and remote.sha256 == host_sha
            log.host_event(
                "driver_file_verified",
                distribution=name,
                version=version,
                sandbox_version=remote.version if remote else None,
                host_sha256=host_sha,
                sandbox_sha256=remote.sha256 if remote else None,
                sha256_match=match,
            )
            if not match:
                mismatches.append(
                    f"`{name}` differs (host {version} {host_sha[:12]}, sandbox "
                    f"{remote.version + ' ' + remote.sha256[:12] if remote else 'not installed'})"
                )
        if mismatches:
            raise SandboxRunError(
                "The sandbox does not run the host's code: " + "; ".join(mismatches) + "; nothing was run"
            )

    def _receive_control(self, log: _RunLog) -> Any:
        """The next message that is not an event or a metric; those stream in at any time and are logged."""
        while True:
            msg = self.receive()
            if isinstance(msg, wire.Event):
                log.event(msg.record)
            elif isinstance(msg, wire.Metric):
                log.metric(msg.record)
            else:
                return msg

    def _await_step(self, step_id: str, log: _RunLog) -> dict[str, Any]:
        while True:
            msg = self._receive_control(log)
            if isinstance(msg, wire.StepDone):
                if msg.step_id != step_id:
                    raise self._fail(f"reported step `{msg.step_id}` done instead of `{step_id}`")
                return msg.result
            elif isinstance(msg, wire.Failed):
                err = msg.error.to_exception()
                err.step = err.step or step_id
                raise err
            else:
                raise self._fail(f"sent an unexpected `{type(msg).__name__}`")

    def _download(
        self, cleaned: wire.Cleaned, run_dir: Path, manifest: Any, configs: dict[str, Any], log: _RunLog
    ) -> dict[str, Any]:
        """Diagnostics always; data files when asked or under the size limit; streamed logs are not re-fetched."""
        assert self.sandbox is not None
        download_data = bool(getattr(self.options, "download_data", False))
        limit = float(getattr(self.options, "artifact_max_mb", 5.0)) * 1024 * 1024
        fetched, skipped = [], []
        for art in cleaned.artifacts:
            if art.path in ("events.jsonl", "metrics.jsonl", "manifest.yaml"):
                continue
            if art.data and not download_data and art.size > limit:
                skipped.append(art.path)
                continue
            target = run_dir / art.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.sandbox.read(f"run/{art.path}"))
            fetched.append(art.path)
        outputs = []
        for rel in _data_paths(manifest, configs, "write"):
            try:
                data = self.sandbox.read(rel)
            except Exception:
                continue
            if not download_data and len(data) > limit:
                skipped.append(rel)
                continue
            Path(rel).parent.mkdir(parents=True, exist_ok=True)
            Path(rel).write_bytes(data)
            outputs.append(rel)
        sandbox_card = run_dir / "run_card.json"
        if sandbox_card.exists():
            (run_dir / "artifacts" / "_system" / "run_card.json").write_bytes(sandbox_card.read_bytes())
        log.host_event("artifacts_downloaded", files=len(fetched), outputs=outputs, skipped=skipped)
        return {"files": len(fetched), "outputs": outputs, "skipped": skipped}

    def _report(self, run_dir: Path, card: dict[str, Any], error: OsirisError | None, redactor: Any) -> int:
        if error is not None:
            card = dict(card or {})
            card.setdefault("status", "failed")
            card["status"] = "failed"
            card["error"] = ErrorInfo.from_exception(error).to_data()
        card.setdefault("sandbox", {})["timings"] = dict(self.timings)
        card = redactor.redact(card)
        (run_dir / "run_card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        status = card.get("status", "failed")
        code = 0 if status == "succeeded" and error is None else int((card.get("error") or {}).get("exit_code", 1))
        if self.json_output:
            click.echo(
                json.dumps(
                    {
                        "status": status,
                        "exit_code": code,
                        "run_id": card.get("run_id"),
                        "run_dir": str(run_dir),
                        "run_card": str(run_dir / "run_card.json"),
                        "error": card.get("error"),
                        "steps": card.get("steps", []),
                        "sandbox": card.get("sandbox"),
                    },
                    indent=2,
                )
            )
        else:
            t = self.timings
            click.echo(f"run {status} in sandbox `{getattr(self.options, 'name', '?')}`: {run_dir}")
            click.echo(
                "  bootstrap "
                + ", ".join(f"{k} {t[k]:.2f}s" for k in ("layer", "environment", "install", "registration") if k in t)
            )
            if error is not None or status != "succeeded":
                message = str(ErrorInfo.from_data(card["error"])) if card.get("error") else "unknown error"
                click.echo(f"error: {redactor.redact_text(message)}", err=True)
        return code


PIP = "venv/bin/python -m pip install --disable-pip-version-check --no-input"


def _install_commands(plan: Any, install_deps: bool, uv: Path | None = None) -> list[str]:
    """The installer calls for the osiris distributions: one, unless some have no wheel at hand.

    With a dependency layer that carries `uv`, the wheels are installed by `uv pip` (same
    flags, a fraction of pip's start-up time); otherwise by the venv's pip.
    """

    def specs(pins: list[str]) -> str:
        return " ".join(shlex.quote(plan.install_spec(p)) for p in pins)

    wheel_pins = [p for p in plan.all_pins if p not in plan.from_index]
    if install_deps:  # third-party dependencies from the index, osiris ones from the uploaded wheels
        return [f"{PIP} --find-links wheels {specs(plan.all_pins)}"]
    tool = f"{shlex.quote(str(uv))} pip install --python venv/bin/python" if uv is not None else PIP
    cmds = [f"{tool} --no-index --no-deps --find-links wheels {specs(wheel_pins)}"] if wheel_pins else []
    if plan.from_index:
        cmds.append(f"{tool} --no-deps {specs(plan.from_index)}")
    return cmds


def _data_paths(manifest: Any, configs: dict[str, dict[str, Any]], mode: str) -> list[str]:
    """Relative `path` values of the steps in `mode` (files to upload before, or fetch after, a run)."""
    found = []
    for step in manifest.steps:
        if step.mode != mode:
            continue
        value = configs.get(step.id, {}).get("path")
        relative = isinstance(value, str) and value and not Path(value).is_absolute() and ".." not in Path(value).parts
        if relative and (mode == "write" or Path(value).is_file()):
            found.append(value)
    return found


def run_sandboxed(
    manifest_path: Path,
    options: Any,
    sandbox_factory: Callable[[], Sandbox],
    *,
    connections_file: Path | None,
    runs_dir: Path,
    verbose: bool,
    json_output: bool,
) -> int:
    """Run through a `HostAdapter`; errors before the run starts are printed, not raised."""
    adapter = HostAdapter(
        manifest_path,
        options,
        sandbox_factory=sandbox_factory,
        connections_file=connections_file,
        runs_dir=runs_dir,
        verbose=verbose,
        json_output=json_output,
    )
    try:
        return adapter.run()
    except OsirisError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code


__all__ = ["HostAdapter", "SandboxRunError", "run_sandboxed"]
