"""The wire protocol between the host and a sandbox worker: msgspec structs as JSON lines.

The host writes commands to the worker's stdin, one JSON object per line; the
worker writes messages to its stdout the same way and its logs to stderr. Every
message is a tagged, frozen, keyword-only struct whose tag (`"type"`) names it.

Protocol 2 added `ExecSteps` (steps run by the worker's scheduler), `Interrupt`, `Ping` from the worker
and `Pong` from the host (the commit check),
and `Prepare.heartbeat_s`.

Compatibility rules: a new field always gets a default, and no wire type forbids
unknown fields, so an older reader skips what it does not know. A change that an
older peer cannot read bumps `PROTOCOL_VERSION` (which is not the package
version); both sides check it in the handshake (`Prepare` → `Ready`) and refuse a
mismatch with an error that names both versions.

A field is removed only when no peer of the same `PROTOCOL_VERSION` can miss it: it had a
default and no reader acted on it. Then a new reader skips it when an older writer still
sends it, and an older reader takes its default when a newer writer leaves it out. Removed
that way, so never to be reused with another meaning: `Prepare.install` (the worker's own
install of drivers: since the host installs everything before the worker starts, it was
always empty), `Prepare.redact_logs` (redaction cannot be turned off) and `Prepare.verbose`
(never read).

Errors cross the wire as data: `osiris.core.errors.ErrorInfo` (type, message, step,
retryable, hint, exit code), the same shape as a run card's `error`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from osiris.core.errors import ErrorInfo as ErrorInfo  # a wire type (inside `Failed`), re-exported here
from osiris.core.errors import TerminalError

PROTOCOL_VERSION = 2


class ProtocolError(TerminalError):
    """The peer spoke a different protocol version, or sent a line that is not a valid message."""


# ---------------------------------------------------------------- host -> worker


class Prepare(msgspec.Struct, tag=True, frozen=True, kw_only=True):
    """Start of a session: what to run, with what, and how to set up.

    `cfgs` are the steps' configs with `${VAR}` substituted but without their
    `resolved_connection`; `connections` maps a step id to that resolved
    connection, and `secrets` lists every secret value to redact. This message is
    the only way secrets reach a sandbox: the worker keeps them in memory and
    never writes them.
    """

    protocol_version: int
    run_id: str
    pipeline: str
    manifest_yaml: str
    cfgs: dict[str, dict[str, Any]]
    connections: dict[str, dict[str, Any]] = {}
    secrets: list[str] = []
    run_dir: str = "run"
    heartbeat_s: float = 0.0


class ExecStep(msgspec.Struct, tag=True, frozen=True, kw_only=True):
    """Run one step of the prepared manifest."""

    step_id: str


class ExecSteps(msgspec.Struct, tag=True, frozen=True, kw_only=True):
    """Run these steps through the worker's scheduler, at most `max_parallel` at once (None: the
    sandbox's cores); the worker answers one `StepDone` per step, those that did not run included."""

    step_ids: list[str]
    max_parallel: int | None = None
    # False: no step starts before its upstream finished (no overlapped hand-off; `OSIRIS_OVERLAP=0`).
    overlap: bool = True


class Cleanup(msgspec.Struct, tag=True, frozen=True, kw_only=True):
    """Finish the run: write the run card and list the artifacts; the worker then exits."""

    status: str = "success"


class Interrupt(msgspec.Struct, tag=True, frozen=True, kw_only=True):
    """Stop now: the host was interrupted by `signal` (`SIGINT`, `SIGTERM`). The worker stops the running
    step (its open database work rolled back), writes an `interrupted` run card, answers `Cleaned` and exits."""

    signal: str = "SIGTERM"


class Ping(msgspec.Struct, tag=True, frozen=True, kw_only=True):
    """Liveness check, either way; answered by `Pong` with the same nonce.

    The host's are its heartbeat. The worker's come right before a COMMIT: the host answers
    only while its run goes on, and a worker without an answer does not commit.
    """

    nonce: int = 0


# ---------------------------------------------------------------- worker -> host


class Distribution(msgspec.Struct, frozen=True, kw_only=True):
    """An installed osiris distribution: name, version and a sha256 over its package files."""

    name: str
    version: str
    sha256: str


class Ready(msgspec.Struct, tag=True, frozen=True, kw_only=True):
    """The worker is set up: drivers installed and registered, ready for `ExecStep`.

    `timings` breaks the bootstrap inside the worker down in seconds (e.g.
    ``registration``).
    """

    protocol_version: int
    worker_version: str
    python: str
    registration_fingerprint: str
    registration: dict[str, Any] = {}
    distributions: list[Distribution] = []
    timings: dict[str, float] = {}


class Event(msgspec.Struct, tag=True, frozen=True, kw_only=True):
    """One event as written to `events.jsonl` in the sandbox, streamed as it happens."""

    record: dict[str, Any]


class Metric(msgspec.Struct, tag=True, frozen=True, kw_only=True):
    """One metric as written to `metrics.jsonl` in the sandbox, streamed as it happens."""

    record: dict[str, Any]


class StepDone(msgspec.Struct, tag=True, frozen=True, kw_only=True):
    """A step finished; `result` is its run-card entry (rows, duration, outputs, data hash)."""

    step_id: str
    result: dict[str, Any] = {}


class Failed(msgspec.Struct, tag=True, frozen=True, kw_only=True):
    """A command failed; the worker stays up for `Cleanup` unless the failure was fatal."""

    error: ErrorInfo
    fatal: bool = False


class Pong(msgspec.Struct, tag=True, frozen=True, kw_only=True):
    """Answer to `Ping`."""

    nonce: int = 0


class Artifact(msgspec.Struct, frozen=True, kw_only=True):
    """A file of the sandbox's run directory, relative to it, and whether it holds data."""

    path: str
    size: int
    data: bool = False


class Cleaned(msgspec.Struct, tag=True, frozen=True, kw_only=True):
    """The run card is written; here is every file of the run directory."""

    run_dir: str
    artifacts: list[Artifact] = []
    run_card: dict[str, Any] = {}


HostCommand = Prepare | ExecStep | ExecSteps | Cleanup | Interrupt | Ping | Pong
WorkerMessage = Ready | Event | Metric | StepDone | Failed | Ping | Pong | Cleaned
HOST_SILENCE_FACTOR = 6
Message = HostCommand | WorkerMessage


class LineEncoder:
    """Encodes messages as JSON lines; one per stream, reused."""

    def __init__(self) -> None:
        self._encoder = msgspec.json.Encoder()

    def encode(self, message: Message) -> bytes:
        """One message as a JSON line (ending in ``\\n``)."""
        return self._encoder.encode(message) + b"\n"


class LineDecoder:
    """Decodes JSON lines into one of the messages of `kind`; one per stream, reused."""

    def __init__(self, kind: Any = Message) -> None:
        self._decoder = msgspec.json.Decoder(kind)

    def decode(self, line: bytes | str) -> Any:
        """One message from a JSON line; a broken or unknown line raises `ProtocolError`."""
        try:
            return self._decoder.decode(line)
        except msgspec.DecodeError as exc:
            text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
            shown = text.strip()
            if len(shown) > 200:
                shown = shown[:200] + "…"
            raise ProtocolError(f"Invalid message on the wire: {exc}; got `{shown}`") from None


def check_protocol_version(peer_version: int, *, peer: str) -> None:
    """Refuse a peer whose `PROTOCOL_VERSION` differs, naming both versions."""
    if peer_version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"Protocol version mismatch: the {peer} speaks wire protocol {peer_version}, this side speaks "
            f"{PROTOCOL_VERSION}; install the same osiris-core version on both sides"
        )


SCHEMA_FILE = "wire.schema.json"


def wire_schema() -> dict[str, Any]:
    """The JSON Schema of every wire message (the committed `wire.schema.json`)."""
    from osiris.core.schemas import json_schema

    return json_schema(
        Message, comment=f"Osiris wire protocol {PROTOCOL_VERSION}; generated by scripts/gen_wire_schema"
    )


def wire_schema_text() -> str:
    """`wire_schema()` as the exact text of the committed file (see `osiris.core.schemas`)."""
    from osiris.core.schemas import schema_text

    return schema_text(wire_schema())
