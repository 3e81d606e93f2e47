"""A stand-in for E2B's sandbox daemon (envd), for tests: local subprocesses in a scratch folder.

The E2B cloud cannot be reached from here. With ``E2B_DEBUG=true`` the e2b SDK
skips the E2B API and talks straight to envd, at ``E2B_SANDBOX_URL`` when it is set
(else ``http://localhost:49983``), so this server lets the real SDK (and Osiris's E2B
sandbox plugin, unchanged) run against this machine, on a free port of its own. It implements, with the connect-rpc stubs that ship with
the e2b package:

- ``process.Process``: ``Start`` (a streamed start event, stdout/stderr data
  events and an end event), ``Connect``, ``List``, ``SendInput``, ``CloseStdin``
  and ``SendSignal``;
- the HTTP file routes: ``GET /files`` (download), ``POST /files`` (upload,
  octet-stream or multipart, optionally gzip) and ``GET /health``.

Relative paths resolve against the scratch folder, which is also every
command's home and default working directory; paths outside it are refused.
It is test support, not shipped in any package. Run it by hand with
``python tests/support/envd_standin.py --root /tmp/sbx``.

One module on purpose (longer than most): a test double of one daemon, whose process service
and file routes share one sandbox state, and which runs by itself from the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import signal
import socket
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

ENVD_PORT = 49983

# The variables a command inherits from this machine; a real sandbox has a clean
# environment too, and the host's secrets must not leak into the "sandbox" this way.
INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "PYENV_ROOT", "PYENV_VERSION", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")
INHERITED_PREFIXES = ("PIP_",)


@dataclass
class _Process:
    pid: int
    proc: asyncio.subprocess.Process
    cmd: str
    args: list[str]
    envs: dict[str, str]
    cwd: str
    subscribers: list[asyncio.Queue[Any]] = field(default_factory=list)
    history: list[tuple[str, bytes]] = field(default_factory=list)
    end: tuple[int, str] | None = None


class Sandbox:
    """The state of the stand-in: its scratch root and its running processes."""

    def __init__(self, root: Path, template_env: dict[str, str] | None = None) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.template_env = dict(template_env or {})
        self.processes: dict[int, _Process] = {}

    def resolve(self, path: str | None) -> Path:
        """A sandbox path (relative to the root, or absolute inside it) as a local path."""
        if not path:
            return self.root
        p = Path(path)
        p = (p if p.is_absolute() else self.root / p).resolve()
        if p != self.root and self.root not in p.parents:
            raise PermissionError(f"path `{path}` is outside the stand-in sandbox root {self.root}")
        return p

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        """The environment of a command: a few inherited variables, HOME, the template's, then the caller's."""
        env = {k: v for k, v in os.environ.items() if k in INHERITED_ENV or k.startswith(INHERITED_PREFIXES)}
        env.update({"HOME": str(self.root), "USER": "user", "E2B_SANDBOX": "true"})
        env.update(self.template_env)
        env.update(extra)
        return env

    def kill_all(self) -> None:
        """Kill every process group still running (teardown)."""
        for p in list(self.processes.values()):
            if p.end is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGKILL)


def _process_service(sandbox: Sandbox) -> Any:
    from connectrpc.code import Code
    from connectrpc.errors import ConnectError
    from e2b.envd.process import process_pb as pb
    from e2b.envd.process.process_connect import Process
    from protobuf import Oneof

    def event(kind: str, value: Any) -> pb.ProcessEvent:
        return pb.ProcessEvent(event=Oneof(kind, value))

    def data_event(stream: str, chunk: bytes) -> pb.ProcessEvent:
        return event("data", pb.ProcessEvent.DataEvent(output=Oneof(stream, chunk)))

    def end_event(code: int, status: str) -> pb.ProcessEvent:
        return event("end", pb.ProcessEvent.EndEvent(exit_code=code, exited=code >= 0, status=status))

    def lookup(selector: Any) -> _Process:
        if selector is None or selector.selector is None or selector.selector.field != "pid":
            raise ConnectError(Code.INVALID_ARGUMENT, "the stand-in envd selects processes by pid only")
        proc = sandbox.processes.get(int(selector.selector.value))
        if proc is None:
            raise ConnectError(Code.NOT_FOUND, f"process with pid {selector.selector.value} not found")
        return proc

    async def pump(p: _Process) -> None:
        async def read(stream: asyncio.StreamReader, name: str) -> None:
            while chunk := await stream.read(65536):
                p.history.append((name, chunk))
                for q in p.subscribers:
                    q.put_nowait(data_event(name, chunk))

        assert p.proc.stdout is not None and p.proc.stderr is not None
        await asyncio.gather(read(p.proc.stdout, "stdout"), read(p.proc.stderr, "stderr"))
        rc = await p.proc.wait()
        p.end = (rc, f"exit status {rc}") if rc >= 0 else (-1, f"signal: {signal.Signals(-rc).name.lower()[3:]}")
        for q in p.subscribers:
            q.put_nowait(end_event(*p.end))
            q.put_nowait(None)

    async def follow(p: _Process, wrap: Any, replay: bool) -> AsyncIterator[Any]:
        q: asyncio.Queue[Any] = asyncio.Queue()
        if replay:
            for name, chunk in p.history:
                q.put_nowait(data_event(name, chunk))
        if p.end is not None:
            q.put_nowait(end_event(*p.end))
            q.put_nowait(None)
        else:
            p.subscribers.append(q)
        yield wrap(event=event("start", pb.ProcessEvent.StartEvent(pid=p.pid)))
        try:
            while (item := await q.get()) is not None:
                yield wrap(event=item)
        finally:
            with contextlib.suppress(ValueError):
                p.subscribers.remove(q)

    class ProcessService(Process):  # `Update` and `StreamInput` stay unimplemented
        async def list(self, request: Any, ctx: Any) -> Any:
            return pb.ListResponse(
                processes=[
                    pb.ProcessInfo(pid=p.pid, config=pb.ProcessConfig(cmd=p.cmd, args=p.args, envs=p.envs, cwd=p.cwd))
                    for p in sandbox.processes.values()
                    if p.end is None
                ]
            )

        async def start(self, request: Any, ctx: Any) -> AsyncIterator[Any]:
            cfg = request.process
            try:
                cwd = sandbox.resolve(cfg.cwd if cfg.has_field("cwd") else None)
            except PermissionError as exc:
                raise ConnectError(Code.INVALID_ARGUMENT, str(exc)) from None
            if not cwd.is_dir():
                raise ConnectError(Code.INVALID_ARGUMENT, f"working directory `{cfg.cwd}` does not exist")
            stdin = request.stdin if request.has_field("stdin") else True
            proc = await asyncio.create_subprocess_exec(
                cfg.cmd,
                *cfg.args,
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=str(cwd),
                env=sandbox.env(dict(cfg.envs)),
                start_new_session=True,
            )
            p = _Process(pid=proc.pid, proc=proc, cmd=cfg.cmd, args=list(cfg.args), envs=dict(cfg.envs), cwd=str(cwd))
            sandbox.processes[p.pid] = p
            stream = follow(p, pb.StartResponse, replay=False)
            first = await anext(stream)
            asyncio.get_running_loop().create_task(pump(p))
            yield first
            async for item in stream:
                yield item

        async def connect(self, request: Any, ctx: Any) -> AsyncIterator[Any]:
            p = lookup(request.process)
            async for item in follow(p, pb.ConnectResponse, replay=True):
                yield item

        async def send_input(self, request: Any, ctx: Any) -> Any:
            p = lookup(request.process)
            if p.proc.stdin is None or p.proc.stdin.is_closing():
                raise ConnectError(Code.FAILED_PRECONDITION, f"stdin of process {p.pid} is not open")
            data = request.input.input.value if request.input and request.input.input else b""
            p.proc.stdin.write(data)
            try:
                await p.proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                raise ConnectError(Code.FAILED_PRECONDITION, f"process {p.pid} closed its stdin") from None
            return pb.SendInputResponse()

        async def close_stdin(self, request: Any, ctx: Any) -> Any:
            p = lookup(request.process)
            if p.proc.stdin is not None:
                p.proc.stdin.close()
            return pb.CloseStdinResponse()

        async def send_signal(self, request: Any, ctx: Any) -> Any:
            p = lookup(request.process)
            sig = signal.SIGKILL if request.signal == pb.Signal.SIGKILL else signal.SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, sig)
            return pb.SendSignalResponse()

    return ProcessService()


class StandinApp:
    """The ASGI application: the file routes, `/health`, and the Process service."""

    def __init__(self, sandbox: Sandbox) -> None:
        from e2b.envd.process.process_connect import ProcessASGIApplication

        self.sandbox = sandbox
        self.process_app = ProcessASGIApplication(_process_service(sandbox))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Dispatch one ASGI request."""
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    self.sandbox.kill_all()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path = scope["path"]
        if path.startswith("/process.Process/"):
            await self.process_app(scope, receive, send)
        elif path == "/health":
            await _respond(send, 204, b"")
        elif path == "/files":
            await self.files(scope, receive, send)
        else:
            await _respond_json(send, 404, {"code": 404, "message": f"the stand-in envd has no route {path}"})

    async def files(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """`GET /files?path=` downloads a file; `POST /files` uploads one or more."""
        query = dict(urllib.parse.parse_qsl(scope.get("query_string", b"").decode()))
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        try:
            if scope["method"] == "GET":
                target = self.sandbox.resolve(query.get("path"))
                if not target.is_file():
                    await _respond_json(send, 404, {"code": 404, "message": f"path '{query.get('path')}' not found"})
                    return
                await _respond(send, 200, target.read_bytes(), "application/octet-stream")
                return
            if scope["method"] != "POST":
                await _respond_json(send, 405, {"code": 405, "message": "method not allowed"})
                return
            body = bytearray()
            while True:
                msg = await receive()
                body.extend(msg.get("body", b""))
                if not msg.get("more_body"):
                    break
            if headers.get("content-encoding") == "gzip":
                body = bytearray(gzip.decompress(bytes(body)))
            ctype = headers.get("content-type", "")
            if ctype.startswith("multipart/form-data"):
                parts = _multipart(ctype, bytes(body))
                if len(parts) == 1 and query.get("path"):
                    parts = [(query["path"], parts[0][1])]
            else:
                parts = [(query.get("path", ""), bytes(body))]
            written = []
            for name, data in parts:
                target = self.sandbox.resolve(name)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                written.append({"name": target.name, "type": "file", "path": name})
            await _respond_json(send, 200, written)
        except PermissionError as exc:
            await _respond_json(send, 400, {"code": 400, "message": str(exc)})


def _multipart(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    out = []
    for part in msg.iter_parts():
        name = part.get_filename() or part.get_param("name", header="content-disposition") or ""
        out.append((str(name), part.get_payload(decode=True) or b""))
    return out


async def _respond(send: Any, status: int, body: bytes, ctype: str = "text/plain") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _respond_json(send: Any, status: int, data: Any) -> None:
    await _respond(send, status, json.dumps(data).encode(), "application/json")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens on `host:port`."""
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class StandinEnvd:
    """Runs the stand-in on loopback in a background thread; a context manager.

    `port` defaults to a free one. `url` is where the SDK should connect, and
    `sdk_env()` the environment that points the SDK there. `template_env`
    is given to every command, as the ``ENV`` of an E2B template would be (e.g.
    ``PYTHONPATH`` of a folder holding the packages baked into the template).
    """

    def __init__(
        self, root: str | Path | None = None, port: int | None = None, *, template_env: dict[str, str] | None = None
    ) -> None:
        self._tmp = None if root is not None else tempfile.TemporaryDirectory(prefix="envd-standin-")
        self.root = Path(root if root is not None else self._tmp.name)  # type: ignore[union-attr]
        self.port = port if port is not None else free_port()
        self.url = f"http://localhost:{self.port}"
        self.sandbox = Sandbox(self.root, template_env)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> StandinEnvd:
        """Start serving and wait until `/health` answers."""
        import uvicorn

        if not port_is_free(self.port):
            raise RuntimeError(f"port {self.port} is in use; is another envd stand-in running?")
        config = uvicorn.Config(
            StandinApp(self.sandbox), host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="envd-standin", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the envd stand-in did not come up")

    def stop(self) -> None:
        """Kill every process it started and stop serving."""
        self.sandbox.kill_all()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._tmp is not None:
            self._tmp.cleanup()

    def sdk_env(self) -> dict[str, str]:
        """The variables that send the e2b SDK here: debug mode (no E2B API) and this server's URL."""
        return {"E2B_DEBUG": "true", "E2B_SANDBOX_URL": self.url}

    def running_pids(self) -> list[int]:
        """Pids of the processes that have not ended."""
        return [p.pid for p in self.sandbox.processes.values() if p.end is None]

    def __enter__(self) -> StandinEnvd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def standin_envd(root: str | Path | None = None, port: int | None = None) -> Iterator[StandinEnvd]:
    """A running stand-in, stopped on exit."""
    with StandinEnvd(root, port) as envd:
        yield envd


def main(argv: list[str] | None = None) -> int:
    """Serve the stand-in in the foreground until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="scratch folder: the sandbox's home")
    parser.add_argument("--port", type=int, default=ENVD_PORT)
    parser.add_argument(
        "--template-env", action="append", default=[], metavar="K=V", help="a variable every command gets"
    )
    args = parser.parse_args(argv)
    import uvicorn

    template_env = dict(item.split("=", 1) for item in args.template_env)
    print(
        f"envd stand-in on http://localhost:{args.port}, root {args.root}; use E2B_DEBUG=true"
        + (f" E2B_SANDBOX_URL=http://localhost:{args.port}" if args.port != ENVD_PORT else ""),
        flush=True,
    )
    app = StandinApp(Sandbox(Path(args.root), template_env))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
