"""The wire protocol: round trips, tolerance of new fields, errors as data, the handshake, the schema."""

import json
from importlib import resources

import msgspec
import pytest

from osiris.core import wire
from osiris.core.errors import TerminalError, TransientError, UserInputError


def _roundtrip(msg):
    line = wire.LineEncoder().encode(msg)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    return wire.LineDecoder().decode(line)


def test_every_message_roundtrips_with_its_tag():
    msgs = [
        wire.Prepare(
            protocol_version=wire.PROTOCOL_VERSION,
            run_id="r1",
            pipeline="p",
            manifest_yaml="steps: []\n",
            cfgs={"a": {"x": 1}},
            connections={"a": {"password": "pw"}},
        ),
        wire.ExecStep(step_id="a"),
        wire.Cleanup(),
        wire.Ping(nonce=7),
        wire.Ready(
            protocol_version=wire.PROTOCOL_VERSION,
            worker_version="0.1.0",
            python="3.11.7",
            registration_fingerprint="sha256:ab",
            distributions=[wire.Distribution(name="osiris-core", version="0.1.0", sha256="00")],
        ),
        wire.Event(record={"event": "step_start", "step_id": "a"}),
        wire.Metric(record={"metric": "rows_read", "value": 3}),
        wire.StepDone(step_id="a", result={"rows_out": 3}),
        wire.Failed(error=wire.ErrorInfo(type="TerminalError", message="boom", step="a")),
        wire.Pong(nonce=7),
        wire.Cleaned(run_dir="run", artifacts=[wire.Artifact(path="events.jsonl", size=10)]),
    ]
    for msg in msgs:
        assert _roundtrip(msg) == msg
        assert json.loads(wire.LineEncoder().encode(msg))["type"] == type(msg).__name__


def test_unknown_fields_are_skipped_so_old_readers_accept_new_writers():
    line = b'{"type":"Pong","nonce":3,"added_in_a_later_version":{"x":1}}\n'
    assert wire.LineDecoder().decode(line) == wire.Pong(nonce=3)


def test_messages_are_frozen():
    with pytest.raises(AttributeError):
        wire.Ping(nonce=1).nonce = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"not json at all\n", "Invalid message on the wire"),
        (b'{"type":"Teleport","where":"mars"}\n', "Teleport"),
        (b'{"type":"ExecStep"}\n', "step_id"),
    ],
)
def test_broken_unknown_or_incomplete_lines_raise_protocol_errors(line, expected):
    with pytest.raises(wire.ProtocolError, match=expected):
        wire.LineDecoder().decode(line)


@pytest.mark.parametrize("message", [wire.StepDone(step_id="x"), wire.Cleaned(run_dir="run")])
def test_a_worker_decoder_refuses_worker_messages_as_commands(message):
    line = wire.LineEncoder().encode(message)
    with pytest.raises(wire.ProtocolError):
        wire.LineDecoder(wire.HostCommand).decode(line)


@pytest.mark.parametrize("message", [wire.Interrupt(signal="SIGINT"), wire.ExecStep(step_id="x")])
def test_a_host_decoder_refuses_commands_as_worker_messages(message):
    line = wire.LineEncoder().encode(message)
    with pytest.raises(wire.ProtocolError):
        wire.LineDecoder(wire.WorkerMessage).decode(line)


@pytest.mark.parametrize("kind", [wire.HostCommand, wire.WorkerMessage])
def test_liveness_checks_go_both_ways(kind):
    decoder, encoder = wire.LineDecoder(kind), wire.LineEncoder()
    assert decoder.decode(encoder.encode(wire.Ping(nonce=7))) == wire.Ping(nonce=7)
    assert decoder.decode(encoder.encode(wire.Pong(nonce=7))) == wire.Pong(nonce=7)


def test_protocol_mismatch_names_both_versions():
    wire.check_protocol_version(wire.PROTOCOL_VERSION, peer="worker")
    with pytest.raises(wire.ProtocolError) as info:
        wire.check_protocol_version(wire.PROTOCOL_VERSION + 41, peer="worker")
    text = str(info.value)
    assert f"wire protocol {wire.PROTOCOL_VERSION + 41}" in text
    assert f"speaks {wire.PROTOCOL_VERSION}" in text


def test_errors_cross_as_data_and_keep_retryability():
    info = wire.ErrorInfo.from_exception(TransientError("lost connection", step="extract"))
    assert info == wire.ErrorInfo(type="TransientError", message="lost connection", step="extract", retryable=True)
    back = _roundtrip(wire.Failed(error=info)).error.to_exception()
    assert isinstance(back, TransientError) and back.step == "extract"
    assert wire.ErrorInfo.from_exception(UserInputError("bad"), step="s").step == "s"
    plain = wire.ErrorInfo.from_exception(ZeroDivisionError("division by zero"), step="t")
    assert (plain.type, plain.retryable, plain.step) == ("ZeroDivisionError", False, "t")
    assert msgspec.json.decode(msgspec.json.encode(plain), type=wire.ErrorInfo) == plain


def test_committed_json_schema_is_current():
    committed = resources.files("osiris.core").joinpath(wire.SCHEMA_FILE).read_text(encoding="utf-8")
    assert committed == wire.wire_schema_text(), "wire.schema.json is stale: run scripts/gen_wire_schema"
    schema = json.loads(committed)
    assert set(schema["$defs"]) >= {"Prepare", "ExecStep", "Cleanup", "Ping", "Ready", "StepDone", "Failed"}


def test_hints_and_user_input_errors_survive_the_wire():
    # A sandbox reports a prepare failure as data; the host must show the same hint and exit
    # with the same code (2 for bad input) as a run on the host would.
    sent = UserInputError("connection `@mysql.main` is not in osiris_connections.yaml", hint="add it", step="x")
    back = _roundtrip(wire.Failed(error=wire.ErrorInfo.from_exception(sent))).error.to_exception()
    assert isinstance(back, UserInputError) and back.exit_code == 2
    assert (back.message, back.hint, back.step) == (sent.message, "add it", "x")
    assert str(back) == str(sent)
    terminal = _roundtrip(wire.Failed(error=wire.ErrorInfo.from_exception(ValueError("boom")))).error.to_exception()
    assert type(terminal) is TerminalError and terminal.exit_code == 1


def test_fields_removed_within_protocol_1_are_skipped_and_not_needed():
    # An older host still sends `install`, `redact_logs` and `verbose` in `Prepare`: a newer worker skips them.
    old = (
        b'{"type":"Prepare","protocol_version":1,"run_id":"r","pipeline":"p","manifest_yaml":"x","cfgs":{},'
        b'"install":{"find_links":"wheels","requirements":[],"from_index":[],"install_deps":false},'
        b'"redact_logs":true,"verbose":false}\n'
    )
    got = wire.LineDecoder(wire.HostCommand).decode(old)
    assert got == wire.Prepare(protocol_version=1, run_id="r", pipeline="p", manifest_yaml="x", cfgs={})
    # A newer host leaves them out, and an older worker takes their defaults: none is required.
    schema = wire.wire_schema()["$defs"]["Prepare"]
    assert not {"install", "redact_logs", "verbose"} & set(schema["properties"])
    assert set(schema["required"]) == {"type", "protocol_version", "run_id", "pipeline", "manifest_yaml", "cfgs"}


def test_errors_carry_their_exit_code_across_the_wire():
    from osiris.core.errors import ErrorInfo

    class Refused(UserInputError):
        """A subclass the other side does not know by name."""

    info = ErrorInfo.from_exception(Refused("no", hint="fix it"), step="s")
    assert (info.type, info.exit_code, str(info)) == ("Refused", 2, "no\n  hint: fix it")
    back = _roundtrip(wire.Failed(error=info)).error.to_exception()
    assert isinstance(back, UserInputError) and back.exit_code == 2 and back.remote_type == "Refused"
    assert ErrorInfo.from_data({**info.to_data(), "added_later": 1}) == info
