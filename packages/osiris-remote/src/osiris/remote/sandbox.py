"""Sandboxes: where a worker runs. `LocalSandbox` (a fresh folder and venv here) and `E2BSandbox`.

A sandbox offers a few primitives (run a shell command in its work folder,
upload a file, read a file, start the worker with pipes) and is always torn
down. Paths are relative to the sandbox's work folder. Environment variables
given to the worker are only what the user asked for (``--e2b-env``,
``--e2b-pass-env``) plus what the platform needs: never the host's secrets.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from osiris.core.errors import TerminalError, TransientError
from osiris.remote.layers import CodeLayer, DependencyLayer, cache_env

STDERR_TAIL_LINES = 40
# Variables a local sandbox inherits so that Python and pip work as on the host.
LOCAL_INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "HOME", "PYENV_ROOT", "PYENV_VERSION")
LOCAL_INHERITED_PREFIXES = ("PIP_",)
EOF = object()


class WorkerProcess(ABC):
    """A running worker: write lines to its stdin, read its stdout lines from `lines`."""

    def __init__(self) -> None:
        self.lines: queue.Queue[Any] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._partial = {"out": "", "err": ""}

    def _feed(self, stream: str, text: str) -> None:
        """Split streamed text into lines: stdout lines go to `lines`, stderr lines to the tail."""
        buf = self._partial[stream] + text
        *complete, self._partial[stream] = buf.split("\n")
        for line in complete:
            if stream == "out":
                self.lines.put(line)
            else:
                self._stderr.append(line)

    def _eof(self) -> None:
        for stream in ("out", "err"):
            rest, self._partial[stream] = self._partial[stream], ""
            if rest:
                self._feed(stream, rest + "\n")
        self.lines.put(EOF)

    def stderr_tail(self) -> str:
        """The last lines the worker wrote to stderr."""
        return "\n".join(self._stderr)

    @abstractmethod
    def send(self, data: bytes) -> None:
        """Write to the worker's stdin."""

    @abstractmethod
    def returncode(self, wait: float = 0) -> int | None:
        """The worker's exit code, waiting up to `wait` seconds; None while it runs."""

    @abstractmethod
    def kill(self) -> None:
        """Kill the worker."""


class Sandbox(ABC):
    """Where the worker runs."""

    name = "sandbox"
    python = "python3"
    # Whether the sandbox's own Python already holds the third-party dependencies (an E2B template):
    # the run's venv then sees its site-packages instead of installing them.
    preinstalled_dependencies = False
    _workers: list[WorkerProcess]  # every worker started, set by each sandbox's constructor

    @abstractmethod
    def run(self, command: str, *, timeout: float | None = None) -> tuple[int, str, str]:
        """Run a shell command in the work folder; (exit code, stdout, stderr)."""

    @abstractmethod
    def upload(self, local: Path, remote: str) -> None:
        """Copy a local file to `remote` (relative to the work folder)."""

    @abstractmethod
    def read(self, remote: str) -> bytes:
        """The content of the sandbox file `remote`."""

    @abstractmethod
    def start_worker(self, command: str, env: dict[str, str]) -> WorkerProcess:
        """Start `command` (a shell command line) with pipes, in the work folder."""

    @abstractmethod
    def close(self) -> None:
        """Tear the sandbox down; safe to call twice."""

    def dependency_layer(
        self, requirements: list[str], *, on_output: Callable[[str], None] | None = None
    ) -> DependencyLayer | None:
        """A layer holding the third-party `requirements` for the run's venv, or None.

        None means this sandbox has no layers: the dependencies come from its
        template or are installed from its index. While a layer is built, `on_output`
        gets what the installer is doing, line by line.
        """
        return None

    def code_layer(self, wheels: list[Path], layer: DependencyLayer | None) -> CodeLayer | None:
        """The osiris `wheels` already installed in a cache the run's venv can see, or None.

        None means the wheels are uploaded and installed into every run's venv.
        """
        return None

    def make_venv(self, flags: str, pth: str | None) -> None:
        """Make the folders and the run's venv (`python -m venv FLAGS venv`); with `pth`, the `.pth` file that
        makes it see the layers (`_osiris_layer.pth` in its site-packages)."""
        self.check(
            f"mkdir -p wheels run/artifacts/_system && {self.python} -m venv {flags} venv",
            what="environment (venv)",
            timeout=300,
        )
        if pth is not None:
            self.check(
                "venv/bin/python -c 'import sysconfig,sys; "
                'open(sysconfig.get_paths()["purelib"] + "/_osiris_layer.pth", "w").write(sys.argv[1])\' '
                + shlex.quote(pth),
                what="environment (dependency layer)",
            )

    def kill_workers(self, *, wait: float = 0) -> None:
        """Kill every worker this sandbox started that is still running (waiting up to `wait` s for each to end)."""
        for worker in self._workers:
            if worker.returncode() is None:
                worker.kill()
                if wait:
                    worker.returncode(wait=wait)

    def check(self, command: str, *, what: str, timeout: float | None = None) -> str:
        """Run `command`; raise with its output when it fails."""
        code, out, err = self.run(command, timeout=timeout)
        if code != 0:
            tail = "\n".join((out + err).strip().splitlines()[-20:])
            raise TerminalError(f"Sandbox {what} failed (exit code {code}):\n{tail}")
        return out


# ------------------------------------------------------------------------------------ local


class _LocalWorker(WorkerProcess):
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        super().__init__()
        self.proc = proc
        threading.Thread(target=self._pump, args=(proc.stdout, "out"), daemon=True).start()
        self._err_thread = threading.Thread(target=self._pump, args=(proc.stderr, "err"), daemon=True)
        self._err_thread.start()

    def _pump(self, stream: Any, name: str) -> None:
        for raw in iter(stream.readline, b""):
            self._feed(name, raw.decode("utf-8", "replace"))
        if name == "out":
            self._err_thread.join(timeout=5)
            self._eof()

    def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass  # the worker is gone; the reader sees EOF and reports it with the exit code

    def returncode(self, wait: float = 0) -> int | None:
        try:
            return self.proc.wait(timeout=wait) if wait else self.proc.poll()
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


class LocalSandbox(Sandbox):
    """A fresh temporary folder on this machine; the worker runs in a fresh venv made there.

    The third-party dependencies come from a cached dependency layer
    (`osiris.remote.layers`, built once per requirement set under
    ``$OSIRIS_CACHE_DIR/sandbox-layers``) unless `use_layers` is false, when every
    run installs them from the index. `layers_root` overrides the layer cache folder.
    """

    name = "local"

    def __init__(
        self,
        *,
        env: dict[str, str] | None = None,
        keep: bool = False,
        use_layers: bool = True,
        layers_root: Path | None = None,
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="osiris-sandbox-"))
        self.base_python = getattr(sys, "_base_executable", None) or sys.executable
        self.python = shlex.quote(self.base_python)
        self.keep = keep
        self.use_layers = use_layers
        self.layers_root = layers_root
        base = {
            k: v for k, v in os.environ.items() if k in LOCAL_INHERITED_ENV or k.startswith(LOCAL_INHERITED_PREFIXES)
        }
        # pip and uv keep their caches under $OSIRIS_CACHE_DIR when it is set (never in ~/.cache then).
        self.env = {**base, **cache_env(), **(env or {})}
        self._workers = []

    def dependency_layer(
        self, requirements: list[str], *, on_output: Callable[[str], None] | None = None
    ) -> DependencyLayer | None:
        """The cached layer of `requirements` (built now when missing); its build log goes to `_system/`."""
        if not self.use_layers:
            return None
        from osiris.remote.layers import ensure_layer

        layer = ensure_layer(
            requirements, python=self.base_python, root=self.layers_root, env=self.env, on_output=on_output
        )
        if layer.built:
            target = self.root / "run" / "artifacts" / "_system" / "layer_build.log"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(layer.build_log, target)
        return layer

    def make_venv(self, flags: str, pth: str | None) -> None:
        """As `Sandbox.make_venv`; a venv without pip (one that sees a layer) is made in this process,
        for the same Python (`venv.EnvBuilder`, as `python -m venv --without-pip` does, without starting one)."""
        if flags != "--without-pip" or self.base_python != (getattr(sys, "_base_executable", None) or sys.executable):
            super().make_venv(flags, pth)
            return
        import venv

        for folder in ("wheels", "run/artifacts/_system"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        try:
            venv.EnvBuilder(with_pip=False, symlinks=True).create(self.root / "venv")
            if pth is not None:
                (site,) = (self.root / "venv" / "lib").glob("python*/site-packages")
                (site / "_osiris_layer.pth").write_text(pth, encoding="utf-8")
        except (OSError, ValueError) as exc:
            raise TerminalError(f"Sandbox environment (venv) failed: {exc}") from exc

    def code_layer(self, wheels: list[Path], layer: DependencyLayer | None) -> CodeLayer | None:
        """The osiris wheels installed once (byte-compiled) by the layer's uv into a cache keyed by their sha256."""
        if layer is None:
            return None
        from osiris.remote.layers import ensure_code_layer

        return ensure_code_layer(wheels, uv=layer.uv, python=self.base_python, root=self.layers_root, env=self.env)

    def run(self, command: str, *, timeout: float | None = None) -> tuple[int, str, str]:
        """Run a shell command in the sandbox folder."""
        try:
            proc = subprocess.run(
                ["bash", "-c", command], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as exc:
            raise TransientError(f"Sandbox command timed out after {timeout} s: `{command[:80]}`") from exc
        return proc.returncode, proc.stdout, proc.stderr

    def upload(self, local: Path, remote: str) -> None:
        """Copy a file into the sandbox folder."""
        target = self.root / remote
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, target)

    def read(self, remote: str) -> bytes:
        """Read a file from the sandbox folder."""
        return (self.root / remote).read_bytes()

    def start_worker(self, command: str, env: dict[str, str]) -> WorkerProcess:
        """Start the worker as a subprocess in its own process group."""
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=self.root,
            env={**self.env, **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        worker = _LocalWorker(proc)
        self._workers.append(worker)
        return worker

    def close(self) -> None:
        """Kill any worker still running and delete the folder (unless `keep`)."""
        self.kill_workers(wait=5)
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)


# -------------------------------------------------------------------------------------- e2b


class _E2BWorker(WorkerProcess):
    def __init__(self, sbx: Any, handle: Any) -> None:
        super().__init__()
        self.sbx = sbx
        self.handle = handle
        self.pid = handle.pid
        self._code: int | None = None
        self._done = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        try:
            for out, err, _pty in self.handle:
                if out:
                    self._feed("out", out)
                if err:
                    self._feed("err", err)
            result = getattr(self.handle, "_result", None)
            self._code = result.exit_code if result is not None else -1
        except Exception as exc:  # the stream broke: the sandbox is gone or unreachable
            self._stderr.append(f"[osiris] lost the worker's output stream: {type(exc).__name__}: {exc}")
            self._code = -1
        finally:
            self._done.set()
            self._eof()

    def send(self, data: bytes) -> None:
        try:
            self.sbx.commands.send_stdin(self.pid, data)
        except Exception as exc:  # the worker or sandbox is gone; the reader reports it
            self._stderr.append(f"[osiris] could not write to the worker: {type(exc).__name__}: {exc}")

    def returncode(self, wait: float = 0) -> int | None:
        if wait:
            self._done.wait(wait)
        return self._code if self._done.is_set() else None

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.sbx.commands.kill(self.pid)


class E2BSandbox(Sandbox):
    """An E2B sandbox through the e2b SDK (`E2B_API_KEY` from the environment).

    Work happens in the folder `osiris/` of the sandbox user's home.
    """

    name = "e2b"
    workdir = "osiris"
    preinstalled_dependencies = True

    def __init__(
        self,
        *,
        template: str | None = None,
        timeout_s: float | None = None,
        cpu: int | None = None,
        memory_mb: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        from e2b import Sandbox as E2BClient

        if not os.environ.get("E2B_API_KEY") and os.environ.get("E2B_DEBUG", "").lower() != "true":
            from osiris.core.errors import UserInputError

            raise UserInputError("`--e2b` needs an E2B API key: set `E2B_API_KEY` in the environment")
        kwargs: dict[str, Any] = {"envs": dict(env or {})}
        if template:
            kwargs["template"] = template
        if timeout_s:
            # The sandbox lives a little longer than the run may, so teardown still reaches it.
            kwargs["timeout"] = int(timeout_s) + 60
        if cpu or memory_mb:
            # CPU and memory are properties of an E2B template; recorded for the run card.
            kwargs.setdefault("metadata", {}).update(
                {k: str(v) for k, v in (("cpu", cpu), ("memory_mb", memory_mb)) if v}
            )
        try:
            self.sbx = E2BClient.create(**kwargs)
        except Exception as exc:
            raise TransientError(f"Could not create the E2B sandbox: {type(exc).__name__}: {exc}") from exc
        self.env = dict(env or {})
        self._workers = []
        try:
            self.sbx.commands.run(f"mkdir -p {self.workdir}", timeout=60)
        except Exception as exc:
            self.close()
            raise TransientError(f"Could not set up the E2B sandbox: {type(exc).__name__}: {exc}") from exc

    def run(self, command: str, *, timeout: float | None = None) -> tuple[int, str, str]:
        """Run a shell command in the work folder."""
        from e2b.sandbox.commands.command_handle import CommandExitException

        try:
            r = self.sbx.commands.run(f"cd {self.workdir} && {command}", envs=self.env, timeout=timeout or 0)
            return r.exit_code, r.stdout or "", r.stderr or ""
        except CommandExitException as exc:
            return exc.exit_code, exc.stdout or "", exc.stderr or ""

    def upload(self, local: Path, remote: str) -> None:
        """Upload a file (streamed) into the work folder."""
        with local.open("rb") as f:
            self.sbx.files.write(f"{self.workdir}/{remote}", f)

    def read(self, remote: str) -> bytes:
        """Download a file from the work folder."""
        return bytes(self.sbx.files.read(f"{self.workdir}/{remote}", format="bytes"))

    def start_worker(self, command: str, env: dict[str, str]) -> WorkerProcess:
        """Start the worker in the background with stdin open."""
        handle = self.sbx.commands.run(
            f"cd {self.workdir} && exec {command}", background=True, stdin=True, envs={**self.env, **env}, timeout=0
        )
        worker = _E2BWorker(self.sbx, handle)
        self._workers.append(worker)
        return worker

    def close(self) -> None:
        """Kill the workers and the sandbox."""
        self.kill_workers()
        with contextlib.suppress(Exception):
            self.sbx.kill()
