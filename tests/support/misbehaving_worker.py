"""A worker that breaks the wire protocol on purpose, for the host adapter's fault tests.

It runs the real worker (``python -m osiris.remote.worker``, from the same Python)
as a child and relays the session both ways, except for one deliberate fault:

- ``garbage``: answers the first ``ExecStep``/``ExecSteps`` with a line that is not JSON;
- ``unknown``: answers the first ``ExecStep``/``ExecSteps`` with a message of an unknown type;
- ``protocol-worker``: the worker's ``Ready`` claims the next protocol version;
- ``protocol-host``: the host's ``Prepare`` reaches the worker with the next protocol
  version, so the real worker refuses the session.

Tests start it through the host adapter's `worker_command`:
``venv/bin/python /path/to/misbehaving_worker.py garbage``. Test support, not shipped.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

MODES = ("garbage", "unknown", "protocol-worker", "protocol-host")


def _say(text: str) -> None:
    print(f"misbehaving worker: {text}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    """Relay the session between the host (our stdin/stdout) and the real worker, with one fault."""
    if len(argv) != 1 or argv[0] not in MODES:
        print(f"usage: misbehaving_worker.py {{{'|'.join(MODES)}}}", file=sys.stderr)
        return 2
    mode = argv[0]
    child = subprocess.Popen(
        [sys.executable, "-m", "osiris.remote.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert child.stdin is not None and child.stdout is not None
    out = sys.stdout.buffer
    lock = threading.Lock()

    def emit(line: bytes) -> None:
        with lock:
            out.write(line)
            out.flush()

    def from_worker() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            message = json.loads(line)
            if mode == "protocol-worker" and message.get("type") == "Ready":
                message["protocol_version"] += 1
                _say(f"claiming protocol version {message['protocol_version']}")
                line = (json.dumps(message) + "\n").encode()
            emit(line)

    relay = threading.Thread(target=from_worker, daemon=True)
    relay.start()
    for line in sys.stdin.buffer:
        message = json.loads(line) if line.strip() else {}
        kind = message.get("type")
        if kind == "ExecSteps":  # the first step is the one the fault stands in for
            kind, message = "ExecStep", {**message, "step_id": message["step_ids"][0]}
        if kind == "ExecStep" and mode == "garbage":
            _say(f"sending garbage instead of running step {message['step_id']}")
            emit(b"this is not a wire message {\n")
            continue
        if kind == "ExecStep" and mode == "unknown":
            _say(f"sending an unknown message type instead of running step {message['step_id']}")
            emit(json.dumps({"type": "Teleport", "step_id": message["step_id"]}).encode() + b"\n")
            continue
        if kind == "Prepare" and mode == "protocol-host":
            message["protocol_version"] += 1
            _say(f"passing the host's Prepare on as protocol version {message['protocol_version']}")
            line = (json.dumps(message) + "\n").encode()
        child.stdin.write(line)
        child.stdin.flush()
    child.stdin.close()
    code = child.wait()
    relay.join(timeout=5)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
