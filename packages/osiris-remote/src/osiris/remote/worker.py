"""The sandbox worker: wire commands on stdin, wire messages on stdout, logs on stderr.

The host installs everything before it starts the worker (osiris-core, -runtime, -remote and
the manifest's drivers, in one installer call), so the worker only runs: it makes a
`RunSession` from `Prepare` (the manifest, the resolved configs and the secrets, in memory
only), registers the drivers and runs steps with the runtime's own `Runner` — the code the
host runs — forwarding every event and metric as it happens.

File descriptor 1 carries the protocol only: anything else that prints to
stdout (a driver, pip) is sent to stderr, so it cannot corrupt the stream.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

from osiris.core import wire
from osiris.core.errors import OsirisError
from osiris.core.manifest import parse_manifest
from osiris.runtime.runlog import RunListener

log = logging.getLogger("osiris.remote.worker")

EXIT_OK = 0
EXIT_PROTOCOL = 3


class _Output:
    """Writes wire messages to the saved protocol descriptor, one line each, thread-safe."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._encoder = wire.LineEncoder()
        self._lock = threading.Lock()

    def send(self, message: Any) -> None:
        data = self._encoder.encode(message)
        self.raw(data)

    def raw(self, data: bytes) -> None:
        with self._lock:
            self._stream.write(data)
            self._stream.flush()


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
        self.out.send(wire.Event(record=record))

    def on_metric(self, record: dict[str, Any]) -> None:
        self.out.send(wire.Metric(record=record))


def distributions() -> list[wire.Distribution]:
    """Every installed osiris distribution with its version and code hash."""
    from osiris.remote.dists import distribution_sha256, installed

    return [
        wire.Distribution(name=name, version=v, sha256=distribution_sha256(name)) for name, v in installed().items()
    ]


class Worker:
    """The state of one session: the runner once prepared, and the output stream."""

    def __init__(self, out: _Output) -> None:
        self.out = out
        self.runner: Any = None

    def handle(self, cmd: Any) -> bool:
        """Handle one command; False when the session is over."""
        if isinstance(cmd, wire.Ping):
            self.out.send(wire.Pong(nonce=cmd.nonce))
        elif isinstance(cmd, wire.Prepare):
            return self.prepare(cmd)
        elif isinstance(cmd, wire.ExecStep):
            self.exec_step(cmd)
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

    def cleanup(self, cmd: wire.Cleanup) -> None:
        """Finish the run (run card) and list the run directory's files."""
        if self.runner is None:
            self.out.send(wire.Cleaned(run_dir=""))
            return
        run = self.runner.finish(error=getattr(self, "_prepare_error", None))
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
    """Serve commands until `Cleanup`, end of input or a fatal error; returns the exit code."""
    out = _Output(_take_stdout())
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    source = stdin if stdin is not None else sys.stdin.buffer
    decoder = wire.LineDecoder(wire.HostCommand)
    worker = Worker(out)
    for line in source:
        if not line.strip():
            continue
        try:
            cmd = decoder.decode(line)
        except wire.ProtocolError as exc:
            log.error("%s", exc)
            out.send(wire.Failed(error=wire.ErrorInfo.from_exception(exc), fatal=True))
            return EXIT_PROTOCOL
        try:
            if not worker.handle(cmd):
                return EXIT_OK if not isinstance(cmd, wire.Prepare) else EXIT_PROTOCOL
        except Exception as exc:  # a worker bug: report it as data, keep the session for Cleanup
            log.exception("command %s failed", type(cmd).__name__)
            out.send(wire.Failed(error=wire.ErrorInfo.from_exception(exc)))
    return EXIT_OK


def main() -> int:
    """`python -m osiris.remote.worker`."""
    return serve()


if __name__ == "__main__":
    sys.exit(main())
