"""The sandbox worker: wire commands on stdin, wire messages on stdout, logs on stderr.

The host installs everything before it starts the worker (osiris-core, -runtime, -remote and
the manifest's drivers, in one installer call), so the worker only runs: it makes a
`RunSession` from `Prepare` (the manifest, the resolved configs and the secrets, in memory
only), registers the drivers and runs steps with the runtime's own `Runner` — the code the
host runs — forwarding every event and metric as it happens.

File descriptor 1 carries the protocol only: anything else that prints to
stdout (a driver, pip) is sent to stderr, so it cannot corrupt the stream.

The worker never outlives its host's run. A reader thread takes every line from stdin, so the
host can reach the worker while a step runs: `Interrupt` (the host got SIGINT / SIGTERM), the
end of stdin (the host process died: the pipe closed) or, with `Prepare.heartbeat_s`, a host
silent for too long (an E2B host that was killed) stop the running step as SIGTERM would
(`osiris.runtime.interrupts`): its database work is rolled back, an `interrupted` run card is
written, `Cleaned` is sent when the host can still read it, and the worker exits with 130 / 143.
Before a writer commits, the worker asks the host (`Ping`, answered by `Pong` only while the host's
run goes on) and does not commit without an answer.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import platform
import queue
import signal
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from osiris.core import wire
from osiris.core.errors import OsirisError
from osiris.core.manifest import parse_manifest
from osiris.runtime import interrupts
from osiris.runtime.runlog import RunListener

log = logging.getLogger("osiris.remote.worker")

EXIT_OK = 0
EXIT_PROTOCOL = 3
# How long a worker waits for the host's answer before a commit (seconds).
COMMIT_CHECK_TIMEOUT_S = 15.0


class _Output:
    """Writes wire messages to the saved protocol descriptor, one line each, thread-safe."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._encoder = wire.LineEncoder()
        self._lock = threading.Lock()

    def send(self, message: Any) -> None:
        with self._lock:  # steps run in parallel: one encoder, one line at a time
            data = self._encoder.encode(message)
            self._stream.write(data)
            self._stream.flush()

    def raw(self, data: bytes) -> None:
        with self._lock:
            try:
                self._stream.write(data)
                self._stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass  # the host is gone: nobody reads any more


def _take_stdout() -> BinaryIO:
    """Keep fd 1 for the protocol; point fd 1 and `sys.stdout` at stderr for everything else."""
    proto = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return proto


class _Forwarder(RunListener):
    """A runner listener that streams every event and metric to the host (`step_progress` events
    carry the steps' progress; the ticks between them stay here)."""

    def __init__(self, out: _Output) -> None:
        self.out = out

    def on_event(self, record: dict[str, Any]) -> None:
        if record.get("event") in ("step_start", "step_complete", "step_failed", "step_skipped"):
            # On stderr, so that the tail the host shows after a crash says where the worker was.
            log.info(
                "step `%s`: %s",
                record.get("step_id"),
                record["event"].removeprefix("step_").replace("start", "started"),
            )
        self.out.send(wire.Event(record=record))

    def on_metric(self, record: dict[str, Any]) -> None:
        self.out.send(wire.Metric(record=record))


def distributions() -> list[wire.Distribution]:
    """Every installed osiris distribution with its version and code hash."""
    from osiris.remote.dists import distribution_sha256, installed

    return [
        wire.Distribution(name=name, version=v, sha256=distribution_sha256(name)) for name, v in installed().items()
    ]


_END = object()


class _HostLink:
    """Reads the host's commands on a thread of its own: the ones to run go to `commands`; `Interrupt`,
    the end of stdin and a silent host stop the main thread at once; `Pong` answers a commit check."""

    def __init__(self, source: Iterable[bytes], out: _Output) -> None:
        self.source = source
        self.out = out
        self.commands: queue.Queue[Any] = queue.Queue()
        self.decoder = wire.LineDecoder(wire.HostCommand)
        self.last_seen = time.monotonic()
        self.heartbeat_s = 0.0
        self.gone = threading.Event()
        self.done = threading.Event()  # the session ended normally: no more stops
        self._pongs: dict[int, threading.Event] = {}
        self._nonces = itertools.count(1)

    def start(self) -> None:
        threading.Thread(target=self._read, name="osiris-host-link", daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self.source:
                self.last_seen = time.monotonic()
                if not line.strip():
                    continue
                try:
                    cmd = self.decoder.decode(line)
                except wire.ProtocolError as exc:
                    self.commands.put(exc)
                    return
                if isinstance(cmd, wire.Pong):
                    event = self._pongs.pop(cmd.nonce, None)
                    if event is not None:
                        event.set()
                elif isinstance(cmd, wire.Ping):
                    self.out.send(wire.Pong(nonce=cmd.nonce))
                elif isinstance(cmd, wire.Interrupt):
                    log.info("the host was interrupted (%s): stopping", cmd.signal)
                    signum = signal.SIGINT if cmd.signal == "SIGINT" else signal.SIGTERM
                    interrupts.interrupt_main(signum, "host_interrupted")
                else:
                    self.commands.put(cmd)
        except (OSError, ValueError) as exc:
            log.warning("reading the host's commands failed: %s", exc)
        self._host_gone("the host closed the worker's input")

    def _host_gone(self, why: str) -> None:
        if self.done.is_set() or self.gone.is_set():
            self.commands.put(_END)
            return
        self.gone.set()
        log.warning("%s: stopping (nothing is committed from now on)", why)
        interrupts.interrupt_main(signal.SIGTERM, "host_gone")
        self.commands.put(_END)

    def watch(self, heartbeat_s: float) -> None:
        """Take the host for gone when it is silent for `HOST_SILENCE_FACTOR` heartbeats."""
        if heartbeat_s <= 0 or self.heartbeat_s > 0:
            return
        self.heartbeat_s = heartbeat_s
        limit = heartbeat_s * wire.HOST_SILENCE_FACTOR

        def watchdog() -> None:
            while not self.done.wait(min(heartbeat_s, 1.0)):
                if time.monotonic() - self.last_seen > limit:
                    self._host_gone(f"no word from the host for {limit:g} s")
                    return

        threading.Thread(target=watchdog, name="osiris-host-watchdog", daemon=True).start()

    def confirm_commit(self, step: str | None) -> None:
        """The commit check: the host must answer a `Ping` now; otherwise `RunInterrupted` (nothing commits)."""
        if self.gone.is_set():
            raise interrupts.RunInterrupted(signal.SIGTERM, "host_gone", step)
        nonce = next(self._nonces)
        answered = self._pongs[nonce] = threading.Event()
        self.out.send(wire.Ping(nonce=nonce))
        deadline = time.monotonic() + COMMIT_CHECK_TIMEOUT_S
        while not answered.wait(0.05):
            if self.gone.is_set() or time.monotonic() > deadline:
                self._pongs.pop(nonce, None)
                log.warning("the host did not confirm the commit of step `%s`: rolling back", step)
                raise interrupts.RunInterrupted(signal.SIGTERM, "host_gone", step)


class Worker:
    """The state of one session: the runner once prepared, and the output stream."""

    def __init__(self, out: _Output, link: _HostLink | None = None) -> None:
        self.out = out
        self.link = link
        self.runner: Any = None

    def handle(self, cmd: Any) -> bool:
        """Handle one command; False when the session is over."""
        if isinstance(cmd, wire.Ping):
            self.out.send(wire.Pong(nonce=cmd.nonce))
        elif isinstance(cmd, wire.Prepare):
            return self.prepare(cmd)
        elif isinstance(cmd, wire.ExecStep):
            self.exec_step(cmd)
        elif isinstance(cmd, wire.ExecSteps):
            self.exec_steps(cmd)
        elif isinstance(cmd, wire.Cleanup):
            self.cleanup(cmd)
            return False
        return True

    def prepare(self, cmd: wire.Prepare) -> bool:
        """Check the protocol, install drivers, register them, answer `Ready`."""
        try:
            wire.check_protocol_version(cmd.protocol_version, peer="host")
        except wire.ProtocolError as exc:
            self.out.send(wire.Failed(error=wire.ErrorInfo.from_exception(exc), fatal=True))
            return False
        from osiris.runtime.runner import Runner
        from osiris.runtime.session import RunSession

        timings: dict[str, float] = {}
        try:
            manifest = parse_manifest(cmd.manifest_yaml, file="manifest.yaml (sent by the host)")
            configs = {}
            for step in manifest.steps:
                cfg = dict(cmd.cfgs.get(step.id, {}))
                if step.id in cmd.connections:
                    cfg["resolved_connection"] = cmd.connections[step.id]
                configs[step.id] = cfg
            t1 = time.perf_counter()
            session = RunSession(
                manifest,
                configs,
                Path(cmd.run_dir),
                listeners=[_Forwarder(self.out)],
                run_id=cmd.run_id,
                base_dir=Path.cwd(),
                manifest_text=cmd.manifest_yaml,
                secrets=cmd.secrets,
            )
            self.runner = Runner(session)
            if self.link is not None:
                self.link.watch(cmd.heartbeat_s)
                interrupts.add_commit_check(self.link.confirm_commit)
            summary = self.runner.prepare()
            timings["registration"] = round(time.perf_counter() - t1, 3)
        except Exception as exc:
            log.error("prepare failed: %s", exc)
            self.out.send(wire.Failed(error=wire.ErrorInfo.from_exception(exc)))
            self._prepare_error = exc
            return True
        from osiris.remote.__about__ import __version__

        self.out.send(
            wire.Ready(
                protocol_version=wire.PROTOCOL_VERSION,
                worker_version=__version__,
                python=platform.python_version(),
                registration_fingerprint=summary.fingerprint,
                registration=summary.to_data(),
                distributions=distributions(),
                timings=timings,
            )
        )
        return True

    def exec_step(self, cmd: wire.ExecStep) -> None:
        """Run one step and report its run-card entry."""
        if self.runner is None:
            self.out.send(
                wire.Failed(error=wire.ErrorInfo(type="TerminalError", message="not prepared", step=cmd.step_id))
            )
            return
        # On stderr, so that the tail the host shows after a crash says where the worker was.
        log.info("step `%s`: started", cmd.step_id)
        try:
            result = self.runner.run_step(cmd.step_id)
        except OsirisError as exc:
            log.info("step `%s`: failed", cmd.step_id)
            self.out.send(wire.Failed(error=wire.ErrorInfo.from_exception(exc, step=cmd.step_id)))
            return
        log.info("step `%s`: %s", cmd.step_id, result.status)
        self.out.send(wire.StepDone(step_id=cmd.step_id, result=result.to_data()))

    def exec_steps(self, cmd: wire.ExecSteps) -> None:
        """Run steps through the same scheduler as the host; a `StepDone` for each as it is final."""
        if self.runner is None:
            self.out.send(wire.Failed(error=wire.ErrorInfo(type="TerminalError", message="not prepared")))
            return
        log.info("steps %s: started (max_parallel %s)", ", ".join(cmd.step_ids), cmd.max_parallel)

        def done(result: Any) -> None:
            self.out.send(wire.StepDone(step_id=result.step_id, result=result.to_data()))

        self.runner.run_steps(cmd.step_ids, max_parallel=cmd.max_parallel, on_done=done, overlap=cmd.overlap)

    def cleanup(self, cmd: wire.Cleanup | None, interrupted: interrupts.RunInterrupted | None = None) -> None:
        """Finish the run (run card; `interrupted` when it was stopped) and list the run directory's files."""
        if self.link is not None and interrupted is None:
            self.link.done.set()
        if self.runner is None:
            self.out.send(wire.Cleaned(run_dir=""))
            return
        run = self.runner.finish(error=getattr(self, "_prepare_error", None), interrupted=interrupted)
        artifacts = []
        root = self.runner.session.run_dir
        for p in sorted(root.rglob("*")):
            if p.is_file():
                rel = p.relative_to(root).as_posix()
                data = (
                    rel.startswith("artifacts/") and not rel.startswith("artifacts/_system/") and p.suffix == ".parquet"
                )
                artifacts.append(wire.Artifact(path=rel, size=p.stat().st_size, data=data))
        self.out.send(wire.Cleaned(run_dir=str(root), artifacts=artifacts, run_card=run.run_card))


def serve(stdin: BinaryIO | None = None) -> int:
    """Serve commands until `Cleanup`, end of input, an interrupt or a fatal error; returns the exit code."""
    out = _Output(_take_stdout())
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    link = _HostLink(stdin if stdin is not None else sys.stdin.buffer, out)
    worker = Worker(out, link)
    # The host forwards its own signals as `Interrupt`; a signal sent to the worker stops it the same way,
    # and a second one never cuts a rollback short.
    with interrupts.handle_signals(force_on_second=False):
        try:
            link.start()
            return _serve(worker, link)
        except KeyboardInterrupt as exc:
            interrupted = interrupts.as_interrupt(exc)
            log.warning("%s", interrupted.message)
            with interrupts.deferred():
                worker.cleanup(None, interrupted=interrupted)
                link.done.set()
            return interrupted.exit_code


def _serve(worker: Worker, link: _HostLink) -> int:
    out = worker.out
    while True:
        cmd = link.commands.get()
        if cmd is _END:
            return EXIT_OK
        if isinstance(cmd, wire.ProtocolError):
            log.error("%s", cmd)
            out.send(wire.Failed(error=wire.ErrorInfo.from_exception(cmd), fatal=True))
            return EXIT_PROTOCOL
        try:
            if not worker.handle(cmd):
                return EXIT_OK if not isinstance(cmd, wire.Prepare) else EXIT_PROTOCOL
        except Exception as exc:  # a worker bug: report it as data, keep the session for Cleanup
            log.exception("command %s failed", type(cmd).__name__)
            out.send(wire.Failed(error=wire.ErrorInfo.from_exception(exc)))


def exit_now(code: int) -> None:
    """End the worker process with `code` once the session is over, skipping the interpreter's shutdown.

    The reader thread is still blocked reading stdin; a normal shutdown then waits for that stream's
    lock, gives up after about a second and aborts (SIGABRT, "could not acquire lock for <stdin>").
    Everything the session wrote is closed and the host has its `Cleaned`, so the streams are
    flushed and the process leaves at once.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def main() -> int:
    """`python -m osiris.remote.worker` (also `osiris-remote worker`): serve, then exit at once."""
    exit_now(serve())
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
