"""The host adapter: runs a compiled build in a sandbox through the worker, the same for every sandbox.

The run is a `osiris.runtime.session.RunSession`, as on the host: the same resolved configs,
redactor, run directory, event log, listeners and run card. What differs is where the steps run:

1. The session resolves the configs and secrets on the host (`RunSession.for_build`); a
   configuration error ends the run there, before any sandbox, with the same run card as a
   host run.
2. Bootstrap (`osiris.remote.bootstrap`): make the sandbox and get its dependency layer (the
   `local` sandbox's cached third-party requirements; none for E2B, whose template holds them),
   make a fresh venv, upload the wheels (osiris-core, -runtime, -remote and exactly the
   manifest's driver distributions) and the read steps' inputs, install the wheels in one call.
3. Start the worker and send `Prepare` (the only carrier of secrets); the worker registers
   the drivers. Its registration fingerprint and the code hash of every osiris distribution
   are compared with the host's (`registration_verified`, `driver_file_verified` events with
   `sha256_match`); a mismatch stops the run.
4. `ExecSteps`: the worker's scheduler runs the steps (in parallel, bounded by `--max-parallel`,
   with each step's `on_error`) and answers a `StepDone` per step; the events and metrics it streams go
   through the session's log as they arrive (so listeners see them live); `Cleanup`; the
   diagnostics come back always, data files on request or under the size limit.
5. The sandbox is torn down, whatever happened, and the run card written: the worker's, with
   a `sandbox` section (name, options without environment values, timings, downloads); when
   the worker could not send one, the host's own, from the steps it reported.

A worker that dies, hangs past the timeout, or sends a line that is not a valid message ends
the run with an error naming the running step, the worker's exit code and the tail of its stderr.
Nothing is printed here: the result goes back to `osiris run`, which reports it.

Stops (`osiris.runtime.interrupts`): when the host gets SIGINT or SIGTERM it sends `Interrupt`,
waits up to `INTERRUPT_GRACE_S` for the worker's `interrupted` run card (the running step's
database work rolled back), takes the diagnostics, tears the sandbox down and writes an
`interrupted` run card here too (exit 130 / 143); a second signal kills the worker and exits at
once. While the run goes on, the host sends a heartbeat `Ping` every `heartbeat_s`
(`OSIRIS_SANDBOX_HEARTBEAT_S`, default 5) and answers the worker's commit checks; a host that dies
(SIGKILL) closes the worker's stdin (`local`) or falls silent (E2B), and the worker stops without
committing.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from osiris.core import wire
from osiris.core.build import load_build
from osiris.core.errors import OsirisError, TerminalError, UserInputError
from osiris.core.manifest import Manifest
from osiris.remote import bootstrap
from osiris.remote.sandbox import EOF, Sandbox, WorkerProcess
from osiris.runtime import interrupts
from osiris.runtime.handoff import overlap_enabled
from osiris.runtime.progress import SANDBOX_STAGE_EVENT, StepProgress
from osiris.runtime.registry import RegistrationSummary
from osiris.runtime.resolve import run_secrets
from osiris.runtime.runcard import RunResult, StepResult, build_run_card
from osiris.runtime.runlog import RunListener, now
from osiris.runtime.runner import Runner
from osiris.runtime.sandbox_api import SandboxOptions
from osiris.runtime.session import RunSession
from osiris.runtime.versions import differences, environment

WORKER_COMMAND = "venv/bin/python -m osiris.remote.worker"
DEFAULT_TIMEOUT_S = 3600.0
DEFAULT_HEARTBEAT_S = 5.0
# How long an interrupted host waits for the worker to stop its step and send its run card (seconds).
INTERRUPT_GRACE_S = 30.0


def heartbeat_from_env() -> float:
    """`OSIRIS_SANDBOX_HEARTBEAT_S` (seconds between the host's heartbeats), default 5."""
    raw = os.environ.get("OSIRIS_SANDBOX_HEARTBEAT_S", "")
    try:
        value = float(raw) if raw else DEFAULT_HEARTBEAT_S
    except ValueError:
        raise UserInputError(f"`OSIRIS_SANDBOX_HEARTBEAT_S`: expected a number of seconds, got `{raw}`") from None
    if value <= 0:
        raise UserInputError(f"`OSIRIS_SANDBOX_HEARTBEAT_S`: expected a positive number of seconds, got `{raw}`")
    return value


class SandboxRunError(TerminalError):
    """The sandbox or its worker failed (died, timed out, broke the protocol)."""


class HostAdapter:
    """Drives one run of a build in one sandbox.

    `sandbox_factory` makes the sandbox; `listeners` see every event and metric as it
    streams in; `worker_env` is added to the worker's environment; `worker_command` is the
    shell command, run in the sandbox's work folder after the install, that starts the worker
    (default: the installed `osiris.remote.worker`). Any program that speaks the wire protocol
    on its stdin/stdout can stand in, e.g. a wrapper that profiles or records the session.
    """

    def __init__(
        self,
        manifest_path: Path,
        options: SandboxOptions,
        *,
        sandbox_factory: Callable[[], Sandbox],
        connections_file: Path | None,
        runs_dir: Path,
        listeners: Iterable[RunListener] = (),
        worker_env: dict[str, str] | None = None,
        worker_command: str = WORKER_COMMAND,
    ) -> None:
        self.manifest_path = Path(manifest_path)
        self.options = options
        self.sandbox_factory = sandbox_factory
        self.connections_file = connections_file
        self.runs_dir = Path(runs_dir)
        self.listeners = list(listeners)
        self.worker_env = dict(worker_env or {})
        self.worker_command = worker_command
        self.timings: dict[str, float] = {}
        self.current_step: str | None = None
        self.sandbox: Sandbox | None = None
        self.worker: WorkerProcess | None = None
        self.deadline = 0.0
        self.steps: dict[str, dict[str, Any]] = {}  # the run-card entries the worker reported
        self.registration: RegistrationSummary | None = None
        self.downloaded: dict[str, Any] | None = None
        self._decoder = wire.LineDecoder(wire.WorkerMessage)
        self._encoder = wire.LineEncoder()
        self._send_lock = threading.Lock()
        self._stopped = threading.Event()  # the heartbeat ends
        self.heartbeat_s = heartbeat_from_env()

    # -- plumbing ------------------------------------------------------------------------------

    def _timeout_s(self) -> float:
        return float(self.options.timeout_s or DEFAULT_TIMEOUT_S)

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
        """Send one command to the worker."""
        assert self.worker is not None
        with self._send_lock:
            self.worker.send(self._encoder.encode(message))

    def _heartbeat(self) -> None:
        """Ping the worker every `heartbeat_s` until the session ends (so a silent host means a dead one)."""
        while not self._stopped.wait(self.heartbeat_s):
            if self.worker is None or interrupts.requested() is not None:
                continue
            self.send(wire.Ping(nonce=0))

    def receive(self) -> Any:
        """The next message from the worker; a clear error when it dies, hangs or breaks the protocol."""
        assert self.worker is not None
        while True:
            remaining = self.deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise queue.Empty
                line = self.worker.lines.get(timeout=remaining)
            except queue.Empty:
                raise self._fail(f"timed out (the sandbox timeout is {self._timeout_s():g} s)") from None
            if line is EOF:
                raise self._fail("exited unexpectedly")
            if line.strip():
                break
        try:
            return self._decoder.decode(line)
        except wire.ProtocolError as exc:
            raise self._fail(f"sent an invalid message ({exc.message})") from None

    def _receive_control(self, session: RunSession, on_event: Callable[[dict[str, Any]], None] | None = None) -> Any:
        """The next message that is not an event, a metric or a commit check; those stream in at any time and
        are logged (events are also given to `on_event`) or answered."""
        while True:
            msg = self.receive()
            if isinstance(msg, wire.Event):
                record = session.log.write_event(msg.record)
                progress = StepProgress.from_event(record)
                if progress is not None:  # the worker's progress, shown live as a host run's is
                    session.log.progress(progress)
                if on_event is not None:
                    on_event(msg.record)
            elif isinstance(msg, wire.Metric):
                session.log.write_metric(msg.record)
            elif isinstance(msg, wire.Ping):
                self._answer_commit_check(msg)
            elif not isinstance(msg, wire.Pong):
                return msg

    def _answer_commit_check(self, ping: wire.Ping) -> None:
        """A worker's `Ping` before a commit: `Pong` only while the run goes on (an interrupted host never answers)."""
        if interrupts.requested() is None:
            self.send(wire.Pong(nonce=ping.nonce))

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> RunResult:
        """Run the build in the sandbox; returns the result (a bad build raises before anything starts)."""
        session = RunSession.for_build(
            load_build(self.manifest_path),
            runs_dir=self.runs_dir,
            connections_file=self.connections_file,
            listeners=self.listeners,
            full_refresh=self.options.full_refresh,
        )
        if session.setup_error is not None:
            return Runner(session).run()  # fails at its start, exactly as a run on the host does
        session.open()
        t_start = time.perf_counter()
        self.deadline = time.monotonic() + self._timeout_s()
        card: dict[str, Any] | None = None
        error: OsirisError | None = None
        interrupted: interrupts.RunInterrupted | None = None
        forget = interrupts.on_force_exit(self._kill_now)
        try:
            try:
                card = self._drive(session)
            except OsirisError as exc:
                error = exc
            except KeyboardInterrupt as exc:  # SIGINT / SIGTERM on the host: stop the worker's step cleanly
                interrupted = interrupts.as_interrupt(exc)
                with interrupts.deferred():
                    card = self._stop_worker(session, interrupted)
            except Exception as exc:  # an unexpected failure still tears down and reports
                error = SandboxRunError(f"{type(exc).__name__}: {exc}", step=self.current_step)
            finally:
                self._stopped.set()
                with interrupts.deferred():
                    t_down = time.perf_counter()
                    if self.sandbox is not None:
                        self.sandbox.close()
                    self.timings["teardown"] = round(time.perf_counter() - t_down, 3)
                    self.timings["total"] = round(time.perf_counter() - t_start, 3)
            with interrupts.deferred():
                if error is not None:
                    session.emit(
                        "sandbox_failed", origin="host", error=session.error_data(error), step_id=self.current_step
                    )
                session.emit("sandbox_closed", origin="host", timings=self.timings)
                return self._finish(session, card, error, interrupted)
        finally:
            forget()

    def _kill_now(self) -> None:
        """A forced exit (second signal): kill the worker and the sandbox before the host goes."""
        if self.sandbox is not None:
            self.sandbox.kill_workers()
            self.sandbox.close()

    def _stop_worker(self, session: RunSession, interrupted: interrupts.RunInterrupted) -> dict[str, Any] | None:
        """Tell the worker to stop and wait (a grace period) for its `interrupted` run card and the diagnostics."""
        interrupted.step = self.current_step
        if self.worker is None or self.sandbox is None or self.worker.returncode() is not None:
            return None
        self.send(wire.Interrupt(signal=interrupted.signal_name))
        self.deadline = min(self.deadline, time.monotonic() + INTERRUPT_GRACE_S)
        try:
            while True:
                msg = self._receive_control(session)
                if isinstance(msg, wire.StepDone):
                    self.steps[msg.step_id] = msg.result
                elif isinstance(msg, wire.Cleaned):
                    break
        except OsirisError as exc:  # the worker did not stop in time or died: the teardown kills it
            session.emit("sandbox_stop_failed", origin="host", error=session.error_data(exc))
            return None
        self.worker.returncode(wait=10)
        try:
            outputs = bootstrap.data_paths(session.manifest, session.configs, "write")
            self.downloaded = bootstrap.download(
                self.sandbox, msg, session.run_dir, outputs, self.options, session.emit
            )
        except (OsirisError, OSError) as exc:
            session.problems.add("the sandbox's run directory (download)", exc)
        return dict(msg.run_card) or None

    def _drive(self, session: RunSession) -> dict[str, Any]:
        """Bootstrap, prepare, run every step and clean up; the worker's run card."""
        from osiris.remote.dists import distribution_sha256
        from osiris.remote.wheels import plan_wheels

        manifest = session.manifest
        t_build = t0 = time.perf_counter()
        stage = _Stage(session)
        stage.begin(f"{len(plan_names(manifest))} osiris distributions and their dependencies")
        stage.now("gathering the osiris wheels")
        pip_log = session.run_dir / bootstrap.PIP_LOG
        plan = plan_wheels(manifest, index=self.options.index_url, log=pip_log)
        self.timings["wheels"] = round(time.perf_counter() - t0, 3)
        self.registration = session.registry.populate_from_component_specs(
            session.components, allow=list(session.components)
        )

        t0 = time.perf_counter()
        stage.now(f"creating the `{self.options.name}` sandbox")
        self.sandbox = sandbox = self.sandbox_factory()
        stage.now(_packages("third-party dependencies", plan.requirements))
        layer = sandbox.dependency_layer(plan.requirements, on_output=stage.now)
        self.timings["layer"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        code = sandbox.code_layer(list(plan.wheels.values()), layer)
        if code is not None and code.built:
            stage.now(f"installed {len(plan.wheels)} osiris wheels into the code layer {code.key}")
        code_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        inputs = bootstrap.data_paths(manifest, session.configs, "read")
        uploads = (
            f"{len(inputs)} input files"
            if code is not None
            else f"{len(plan.wheels)} wheels and {len(inputs)} input files"
        )
        stage.now(f"making the venv, uploading {uploads}")
        install_deps = bootstrap.make_environment(sandbox, plan, layer, self.options, inputs, code)
        self.timings["environment"] = round(time.perf_counter() - t0, 3)
        session.emit(
            "sandbox_created",
            origin="host",
            sandbox=sandbox.name,
            wheels=sorted(w.name for w in plan.wheels.values()),
            from_index=plan.from_index,
            index=plan.index,
            uploaded_inputs=inputs,
            dependency_layer=layer.describe() if layer is not None else None,
            code_layer=code.describe() if code is not None else None,
        )
        t0 = time.perf_counter()
        stage.now("installing " + ", ".join(plan.install_spec(p) for p in plan.all_pins))
        bootstrap.install_osiris(
            sandbox, plan, layer, install_deps, deadline=self.deadline, host_log=pip_log, code=code
        )
        self.timings["install"] = round(time.perf_counter() - t0 + code_s, 3)

        env = {"PYTHONUNBUFFERED": "1", **self.worker_env, **self.options.env}
        for name in self.options.pass_env:
            if name not in os.environ:
                raise UserInputError(f"`--e2b-pass-env {name}`: `{name}` is not set on the host")
            env[name] = os.environ[name]
        stage.now("starting the worker and registering the drivers")
        self.worker = sandbox.start_worker(self.worker_command, env)
        threading.Thread(target=self._heartbeat, name="osiris-heartbeat", daemon=True).start()

        t0 = time.perf_counter()
        configs = session.configs
        self.send(
            wire.Prepare(
                protocol_version=wire.PROTOCOL_VERSION,
                run_id=session.run_id,
                pipeline=manifest.pipeline.name,
                manifest_yaml=session.manifest_text,
                cfgs={
                    sid: {k: v for k, v in cfg.items() if k != "resolved_connection"} for sid, cfg in configs.items()
                },
                connections={
                    sid: cfg["resolved_connection"] for sid, cfg in configs.items() if "resolved_connection" in cfg
                },
                secrets=sorted(run_secrets(manifest, configs, session.components)),
                run_dir="run",
                heartbeat_s=self.heartbeat_s,
            )
        )
        prepare_error = self._await_ready(session, plan, distribution_sha256, t0)
        layer_note = None if layer is None else f"dependency layer {'built' if layer.built else 'cached'}"
        stage.end(time.perf_counter() - t_build, layer_note)
        if prepare_error is None:
            # The worker's scheduler runs them (in parallel, with `on_error`), as a host run does.
            ids = [step.id for step in manifest.steps]
            self.send(wire.ExecSteps(step_ids=ids, max_parallel=self.options.max_parallel, overlap=overlap_enabled()))
            self._await_steps(ids, session)
            self.current_step = None
        self.send(wire.Cleanup(status="done"))
        cleaned = None
        while cleaned is None:
            msg = self._receive_control(session)
            if isinstance(msg, wire.Cleaned):
                cleaned = msg
            elif isinstance(msg, wire.Failed):
                raise self._fail(f"failed to finish the run: {msg.error.message}")
        self.worker.returncode(wait=10)
        t0 = time.perf_counter()
        outputs = bootstrap.data_paths(manifest, configs, "write")
        try:
            self.downloaded = bootstrap.download(sandbox, cleaned, session.run_dir, outputs, self.options, session.emit)
        except OSError as exc:  # the host's disk is full: the run's data is committed all the same
            session.problems.add("the sandbox's run directory (download)", exc)
        self.timings["download"] = round(time.perf_counter() - t0, 3)
        card = dict(cleaned.run_card)
        if prepare_error is not None and not card.get("error"):
            card["error"] = prepare_error.to_data()
        return card

    def _await_ready(
        self, session: RunSession, plan: Any, sha: Callable[[str], str], started: float
    ) -> wire.ErrorInfo | None:
        """Wait for `Ready` and verify the sandbox; the worker's prepare error, when it could not set up."""
        msg = self._receive_control(session)
        if isinstance(msg, wire.Ready):
            try:
                wire.check_protocol_version(msg.protocol_version, peer="sandbox worker")
            except wire.ProtocolError as exc:
                raise self._fail(f"speaks another protocol: {exc.message}") from None
            self.timings["registration"] = round(time.perf_counter() - started, 3)
            self.timings.update({f"worker_{k}": v for k, v in msg.timings.items()})
            self._verify(msg, plan, sha, session)
            return None
        if isinstance(msg, wire.Failed):
            if msg.error.type == "ProtocolError" or msg.fatal:
                raise self._fail(f"refused the session: {msg.error.message}")
            return msg.error
        raise self._fail(f"sent `{type(msg).__name__}` before `Ready`")

    def _verify(self, ready: wire.Ready, plan: Any, sha: Callable[[str], str], session: RunSession) -> None:
        """Compare the sandbox's registration and code with the host's; stop on a mismatch."""
        assert self.registration is not None
        host_fingerprint = self.registration.fingerprint
        mismatches = []
        same = ready.registration_fingerprint == host_fingerprint
        session.emit(
            "registration_verified",
            origin="host",
            host_fingerprint=host_fingerprint,
            sandbox_fingerprint=ready.registration_fingerprint,
            match=same,
        )
        if not same:
            mismatches.append(
                f"driver registration fingerprint {ready.registration_fingerprint} != host {host_fingerprint}"
            )
        sandbox_dists = {d.name: d for d in ready.distributions}
        for pin in plan.all_pins:
            name, _, version = pin.partition("==")
            remote = sandbox_dists.get(name)
            host_sha = sha(name)
            match = remote is not None and remote.version == version and remote.sha256 == host_sha
            session.emit(
                "driver_file_verified",
                origin="host",
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

    def _await_steps(self, step_ids: list[str], session: RunSession) -> None:
        """Collect a `StepDone` for every step; the steps reported running are the ones an error names."""
        waiting = set(step_ids)
        running: list[str] = []

        def current() -> str | None:
            # The newest step still running; before any has started, the first the worker will start.
            return running[-1] if running else next((s for s in step_ids if s in waiting), None)

        def watch(record: dict[str, Any]) -> None:
            if record.get("event") == "step_start":
                running.append(str(record.get("step_id")))
            self.current_step = current()

        self.current_step = current()

        while waiting:
            msg = self._receive_control(session, on_event=watch)
            if isinstance(msg, wire.StepDone):
                if msg.step_id not in waiting:
                    raise self._fail(f"reported step `{msg.step_id}` done, which it was not running")
                waiting.discard(msg.step_id)
                self.steps[msg.step_id] = msg.result
                if msg.step_id in running:
                    running.remove(msg.step_id)
                self.current_step = current()
            elif isinstance(msg, wire.Failed):
                err = msg.error.to_exception()
                err.step = err.step or self.current_step
                raise err
            else:
                raise self._fail(f"sent an unexpected `{type(msg).__name__}`")

    def _finish(
        self,
        session: RunSession,
        card: dict[str, Any] | None,
        error: OsirisError | None,
        interrupted: interrupts.RunInterrupted | None = None,
    ) -> RunResult:
        """Write the run card (the worker's, or the host's own when there is none) and close the session."""
        error_data = session.error_data(error, self.current_step) if error is not None else None
        if interrupted is not None and (card is None or card.get("status") != "succeeded"):
            # The host's signal decides the exit code, whatever the worker saw.
            interrupted.step = interrupted.step or (card or {}).get("interrupted", {}).get("step")
            error_data = session.redactor.redact(interrupted.to_data())
            if card is None:
                session.emit("run_interrupted", origin="host", **interrupted.record())
        else:
            interrupted = None
        if card is None:
            card = build_run_card(
                run_id=session.run_id,
                manifest=session.manifest,
                steps=self._step_results(session.manifest, error_data, interrupted is not None),
                error=error_data,
                started_at=session.started_at,
                finished_at=now(),
                duration_ms=session.duration_ms,
                drivers_fingerprint=self.registration.fingerprint if self.registration else None,
                interrupted=interrupted.record() if interrupted is not None else None,
            )
        elif interrupted is not None:
            card = {**card, "status": "interrupted", "error": error_data, "interrupted": interrupted.record()}
        elif error_data is not None:
            card = {**card, "status": "failed", "error": error_data}
        host_env = environment(session.manifest, session.components)
        differ = differences(host_env, card["environment"]) if card.get("environment") else []
        if differ:
            session.emit("sandbox_versions_differ", origin="host", differences=differ)
        card["sandbox"] = {
            "name": self.sandbox.name if self.sandbox is not None else self.options.name,
            "options": self.options.to_record(),
            "timings": dict(self.timings),
            "downloaded": self.downloaded,
            "host_environment": host_env,
            "version_differences": differ,
        }
        card = session.write_run_card(card)
        session.close()
        result = RunResult.from_card(card, session.run_dir)
        result.diagnostics_incomplete = session.problems.messages()
        return result

    def _step_results(
        self, manifest: Manifest, error: dict[str, Any] | None, interrupted: bool = False
    ) -> list[StepResult]:
        """Every step as the worker reported it; the one running when the run broke off failed (or was
        interrupted) with `error`."""
        results = []
        for step in manifest.steps:
            if step.id in self.steps:
                results.append(StepResult.from_data(self.steps[step.id]))
            else:
                failed = step.id == self.current_step
                results.append(
                    StepResult(
                        step_id=step.id,
                        component=step.component,
                        mode=step.mode,
                        status=("interrupted" if interrupted else "failed") if failed else "not_run",
                        error=error if failed else None,
                    )
                )
        return results


class _Stage:
    """The `sandbox` stage of the live display: `sandbox_stage` events at its start and end, and in
    between what it is doing now (not written to a file: installer lines would swamp the events)."""

    name = "sandbox"
    title = "building the sandbox environment"

    def __init__(self, session: RunSession) -> None:
        self.session = session

    def begin(self, detail: str) -> None:
        self.session.emit(SANDBOX_STAGE_EVENT, origin="host", stage=self.name, title=self.title, detail=detail)

    def now(self, detail: str) -> None:
        self.session.log.stage(self.name, detail)

    def end(self, seconds: float, detail: str | None) -> None:
        self.session.emit(
            SANDBOX_STAGE_EVENT,
            origin="host",
            stage=self.name,
            title="sandbox environment ready",
            detail=detail or "",
            seconds=round(seconds, 3),
        )


def plan_names(manifest: Manifest) -> list[str]:
    """The osiris distributions a sandbox installs for `manifest` (the base ones and its drivers)."""
    from osiris.remote.wheels import BASE_DISTRIBUTIONS

    return sorted({*BASE_DISTRIBUTIONS, *(d.package for d in manifest.drivers)})


def _packages(what: str, requirements: list[str], shown: int = 6) -> str:
    names = [r.split(";")[0].strip() for r in requirements]
    listed = ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
    return f"{what}: {listed}" if names else f"{what}: nothing to install"


__all__ = ["HostAdapter", "SandboxRunError"]
