"""Stopping a run cleanly: SIGINT and SIGTERM become `RunInterrupted` in the main thread.

::

    with interrupts.handle_signals():         # the CLI, a sandbox worker (main thread only)
        result = Runner(session).run()        # an interrupted run: status `interrupted`, exit 130 / 143

The first SIGINT or SIGTERM raises `RunInterrupted` where the main thread is (between two
Python bytecodes: a blocking database call returns first). The step's code unwinds as for any
exception: a driver's `finally` closes its connections (uncommitted work is rolled back) and
`osiris.runtime.io.write_parquet_atomic` removes its temporary file. The runner marks the step
`interrupted`, emits `run_interrupted`, and writes a run card with status `interrupted` while
further signals are only recorded (`deferred`). A second signal while the run is stopping forces
the exit at once (`os._exit(128 + signum)`), after the `on_force_exit` callbacks (a sandbox host
kills its worker there). A thread sees every signal as it arrives (`signal.set_wakeup_fd`), so this
works while the main thread is blocked in C code; it also calls the `cancel_on_interrupt` callbacks
(a writer cancels its running statement), so that a blocked step stops now.

A writer calls `check_before_commit(step_id)` right before the COMMIT that makes a load visible:
it raises `RunInterrupted` when a stop was requested (even one a library swallowed) or when a
registered commit check says so (a sandbox worker asks its host whether it is still there, and
never commits for a host that is gone).

Steps that run in threads (the scheduler's, `step_thread()`) are stopped the same way: when the main
thread is interrupted, `RunInterrupted` is raised asynchronously in each of them where it runs (after
any import it is inside), so a step's loop stops between two batches and unwinds as above.

`RunInterrupted` derives from `KeyboardInterrupt`, so code that treats Ctrl-C specially (click,
psycopg2's `wait_select`) treats SIGTERM the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
REASONS = {
    "signal": "received {signal}",
    "host_interrupted": "its host was interrupted ({signal})",
    "host_gone": "its host is gone",
}


class RunInterrupted(KeyboardInterrupt):
    """The run was asked to stop (a signal, or a sandbox worker's host that stopped or died)."""

    def __init__(self, signum: int = signal.SIGINT, reason: str = "signal", step: str | None = None) -> None:
        self.signum = int(signum)
        self.reason = reason
        self.step = step
        super().__init__(self.message)

    @property
    def signal_name(self) -> str:
        """`SIGINT`, `SIGTERM`..."""
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    @property
    def exit_code(self) -> int:
        """What the process exits with: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum

    @property
    def message(self) -> str:
        """What happened, for the run card and the terminal."""
        why = REASONS.get(self.reason, self.reason).format(signal=self.signal_name)
        where = f" in step `{self.step}`" if self.step else ""
        return f"The run was interrupted{where}: {why}; open database work was rolled back"

    def to_data(self) -> dict[str, Any]:
        """The run card's `error` for an interrupted run (an `ErrorInfo`'s shape)."""
        return {
            "type": "RunInterrupted",
            "message": self.message,
            "step": self.step,
            "retryable": False,
            "hint": None,
            "exit_code": self.exit_code,
        }

    def record(self) -> dict[str, Any]:
        """The run card's `interrupted` section and the `run_interrupted` event's data."""
        return {"signal": self.signal_name, "exit_code": self.exit_code, "reason": self.reason, "step": self.step}


def as_interrupt(exc: BaseException) -> RunInterrupted:
    """`exc` (a `RunInterrupted` or a plain `KeyboardInterrupt`) as a `RunInterrupted`."""
    if isinstance(exc, RunInterrupted):
        return exc
    pending = requested()
    return pending if pending is not None else RunInterrupted(signal.SIGINT)


class _State:
    def __init__(self) -> None:
        self.signum: int | None = None
        self.reason = "signal"
        self.deferred = 0
        self.installed = 0
        self.force_on_second = True
        self.announce = False
        self.from_thread: str | None = None
        self.force_callbacks: list[Callable[[], None]] = []
        self.commit_checks: list[Callable[[str | None], None]] = []
        self.cancels: list[Callable[[], None]] = []
        self.watcher: threading.Thread | None = None
        self.thread_signals = 0  # signals this process sent itself (`interrupt_main`), not yet seen
        self.pending_raise = False  # a stop seen during an import, raised once the import is done
        self.lock = threading.Lock()
        self.step_threads: dict[int, bool] = {}  # thread id -> already sent its interrupt
        self.threads_lock = threading.RLock()  # also taken in the signal handler (main thread)
        self.recancel: list[Callable[[], None]] = []  # `add_cancel` callbacks, called again while a stop is pending
        self.recanceller: threading.Thread | None = None


_state = _State()


class _StepThreadStopped(RunInterrupted):
    """`RunInterrupted` raised in a step thread (made by the interpreter with no arguments: it reads the stop)."""

    def __init__(self, *_: Any) -> None:
        pending = _state.signum
        super().__init__(pending if pending is not None else signal.SIGINT, _state.reason)


@contextlib.contextmanager
def step_thread() -> Iterator[None]:
    """While inside (a step running in a thread other than the main one), a stop of the run raises
    `RunInterrupted` in this thread too; in the main thread this is a no-op (signals raise there)."""
    if threading.current_thread() is threading.main_thread():
        yield
        return
    tid = threading.get_ident()
    with _state.threads_lock:
        _state.step_threads[tid] = False
    try:
        raise_if_requested()
        yield
    finally:
        _leave_step_thread(tid)


def _leave_step_thread(tid: int) -> None:
    with _state.threads_lock:
        _state.step_threads.pop(tid, None)


def _stop_step_threads() -> None:
    """Raise the stop in every step thread, each once, waiting for those inside an import."""
    import ctypes

    while _state.signum is not None:
        waiting = starting = False
        with _state.threads_lock:
            # The look at the threads' frames and the sends run without another thread in between (no GIL
            # switch): a thread seen outside `Thread.start` cannot be inside it when the interrupt is sent.
            interval = sys.getswitchinterval()
            sys.setswitchinterval(1000.0)
            try:
                frames = sys._current_frames()
                for tid, sent in list(_state.step_threads.items()):
                    if sent:
                        continue
                    frame = frames.get(tid)
                    if _importing(frame):
                        waiting = True
                        continue
                    if _starting_a_thread(frame):
                        starting = True
                        continue
                    _state.step_threads[tid] = True
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(
                        ctypes.c_ulong(tid), ctypes.py_object(_StepThreadStopped)
                    )
            finally:
                sys.setswitchinterval(interval)
        if not (waiting or starting):
            return
        time.sleep(0.05 if waiting else 0.001)


def _stop_step_threads_soon() -> None:
    if _state.step_threads:
        threading.Thread(target=_stop_step_threads, name="osiris-stop-steps", daemon=True).start()
    _recancel_soon()


def requested() -> RunInterrupted | None:
    """The stop that was requested in this process (a signal seen), or None."""
    if _state.signum is None:
        return None
    return RunInterrupted(_state.signum, _state.reason)


def raise_if_requested(step: str | None = None) -> None:
    """Raise `RunInterrupted` when a stop was requested."""
    pending = requested()
    if pending is not None:
        pending.step = step
        raise RunInterrupted(pending.signum, pending.reason, step)


def check_before_commit(step: str | None = None) -> None:
    """Call right before a COMMIT that changes a target: raises `RunInterrupted` instead of committing
    when the run was asked to stop, or a commit check (a sandbox worker's host liveness) refuses."""
    raise_if_requested(step)
    for check in list(_state.commit_checks):
        check(step)
    raise_if_requested(step)


def add_commit_check(check: Callable[[str | None], None]) -> Callable[[], None]:
    """Register `check(step)` (raises `RunInterrupted` to refuse a commit); returns its remover."""
    _state.commit_checks.append(check)
    return lambda: _state.commit_checks.remove(check) if check in _state.commit_checks else None


def on_force_exit(callback: Callable[[], None]) -> Callable[[], None]:
    """Run `callback` before a forced exit (second signal); returns its remover."""
    _state.force_callbacks.append(callback)
    return lambda: _state.force_callbacks.remove(callback) if callback in _state.force_callbacks else None


def interrupt_main(signum: int, reason: str) -> None:
    """From any thread: stop the main thread as the signal `signum` would, with `reason` (e.g. `host_gone`)."""
    with _state.lock:
        if _state.signum is not None:
            return
        _state.from_thread = reason
        if _state.installed:
            _state.thread_signals += 1
    if _state.installed:
        # A real signal to the main thread: it also ends a blocking system call there (a socket read).
        signal.pthread_kill(threading.main_thread().ident or 0, signum)
    else:
        _state.signum, _state.reason = signum, reason
        _stop_step_threads_soon()
        _run_cancels()


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """While inside, a signal is recorded (see `requested`) but raises nothing: a run card is being written."""
    _state.deferred += 1
    try:
        yield
    finally:
        _state.deferred -= 1


def cancel_on_interrupt(cancel: Callable[[], None]) -> contextlib.AbstractContextManager[None]:
    """While inside, a stop calls `cancel()` at once from another thread (e.g. psycopg2's `connection.cancel`),
    so a statement that blocks the main thread in C ends now instead of when it is done."""

    @contextlib.contextmanager
    def registered() -> Iterator[None]:
        _state.cancels.append(cancel)
        try:
            if _state.signum is not None:
                _run_cancels()
            yield
        finally:
            with contextlib.suppress(ValueError):
                _state.cancels.remove(cancel)

    return registered()


def add_cancel(cancel: Callable[[], None]) -> Callable[[], None]:
    """As `cancel_on_interrupt`, for work that outlives one block (a reader a generator consumes later):
    a stop calls `cancel()` from another thread, and again every `RECANCEL_S` while it stays registered
    (work that started just after a cancel, such as a DuckDB query whose interrupt flag is reset when it
    starts, is stopped too); returns its remover. `cancel` must be harmless to call more than once."""
    _state.cancels.append(cancel)
    _state.recancel.append(cancel)
    if _state.signum is not None:
        _run_cancels()
        _recancel_soon()

    def remove() -> None:
        with contextlib.suppress(ValueError):
            _state.cancels.remove(cancel)
        with contextlib.suppress(ValueError):
            _state.recancel.remove(cancel)

    return remove


RECANCEL_S = 0.2
RECANCEL_FOR_S = 120.0


def _recancel() -> None:
    """While a stop is pending: call the `add_cancel` callbacks again and again, until none is registered."""
    until = time.monotonic() + RECANCEL_FOR_S
    while _state.signum is not None and _state.recancel and time.monotonic() < until:
        time.sleep(RECANCEL_S)
        for cancel in list(_state.recancel):
            with contextlib.suppress(Exception):
                cancel()
    with _state.threads_lock:
        _state.recanceller = None


def _recancel_soon() -> None:
    with _state.threads_lock:
        if _state.recanceller is not None or not _state.recancel:
            return
        _state.recanceller = threading.Thread(target=_recancel, name="osiris-recancel", daemon=True)
        _state.recanceller.start()


def _run_cancels() -> None:
    for cancel in list(_state.cancels):
        with contextlib.suppress(Exception):
            cancel()


def _say(text: str) -> None:
    with contextlib.suppress(Exception):
        sys.stderr.write(f"\nosiris: {text}\n")
        sys.stderr.flush()


def _force_exit(signum: int) -> None:
    _say(f"{signal.Signals(signum).name} again: forcing the exit")
    for callback in list(_state.force_callbacks):
        with contextlib.suppress(BaseException):
            callback()
    os._exit(128 + signum)


def _watch(read_fd: int) -> None:
    """Sees every signal as it arrives (the wakeup fd), even while the main thread is blocked in C code:
    the first cancels blocking work, a second one from outside forces the exit."""
    seen = 0
    while True:
        try:
            data = os.read(read_fd, 64)
        except InterruptedError:
            continue
        except OSError:
            return
        if not data:
            return
        for signum in data:
            if signum not in SIGNALS:
                continue
            seen += 1
            from_thread = _state.thread_signals > 0
            if from_thread:
                _state.thread_signals = max(0, _state.thread_signals - 1)
            if seen == 1 or from_thread:
                if _state.announce and not from_thread:
                    _say(f"{signal.Signals(signum).name}: stopping the run cleanly (again to force the exit)")
                _run_cancels()
            elif _state.force_on_second:
                _force_exit(signum)


def _importing(frame: Any) -> bool:
    """Whether `frame` runs inside an import: an exception raised there can break a C extension's
    initialisation (DuckDB's aborts the process), so the interrupt waits until the import is done."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


_THREAD_START = threading.Thread.start.__code__


def _starting_a_thread(frame: Any) -> bool:
    """Whether `frame` runs inside `Thread.start` while a thread started has not run yet: CPython gives that
    thread its parent's id until it runs, and an interrupt sent by that id reaches the child instead of the
    parent (the first of the two in the interpreter's list). The child dies before it says it started, and
    the parent waits for that in `Thread.start` forever; so the interrupt waits (a millisecond at a time)
    until no thread is between `start` and running (`threading._limbo`)."""
    if not threading._limbo:  # type: ignore[attr-defined]
        return False
    while frame is not None:
        if frame.f_code is _THREAD_START:
            return True
        frame = frame.f_back
    return False


def _retry_later(signum: int) -> None:
    """Send the interrupt to the main thread again until it could be raised (an import was running)."""

    def retry() -> None:
        while _state.pending_raise and _state.installed:
            time.sleep(0.05)
            with _state.lock:
                if not _state.pending_raise:
                    return
                _state.from_thread = "retry"
                _state.thread_signals += 1
            signal.pthread_kill(threading.main_thread().ident or 0, signum)

    threading.Thread(target=retry, name="osiris-interrupt-retry", daemon=True).start()


def _handler(signum: int, frame: Any) -> None:
    reason, _state.from_thread = _state.from_thread, None
    if _state.signum is not None:
        if reason == "retry":
            if _state.pending_raise and not _state.deferred and not _importing(frame):
                _state.pending_raise = False
                raise RunInterrupted(_state.signum, _state.reason)
            return
        if reason is None and _state.force_on_second and _state.watcher is None:
            _force_exit(signum)
        return
    _state.signum, _state.reason = signum, reason or "signal"
    _stop_step_threads_soon()
    if _state.announce and reason is None and _state.watcher is None:
        _say(f"{signal.Signals(signum).name}: stopping the run cleanly (again to force the exit)")
    if _state.deferred:
        return
    if _importing(frame):
        _state.pending_raise = True
        _retry_later(signum)
        return
    raise RunInterrupted(signum, _state.reason)


def _start_watcher() -> tuple[int, int, int] | None:
    """A wakeup fd and the thread that reads it; (read fd, write fd, previous wakeup fd), or None."""
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except (ValueError, OSError):
        os.close(read_fd)
        os.close(write_fd)
        return None
    _state.watcher = threading.Thread(target=_watch, args=(read_fd,), name="osiris-signals", daemon=True)
    _state.watcher.start()
    return read_fd, write_fd, previous


def _stop_watcher(fds: tuple[int, int, int] | None) -> None:
    if fds is None:
        return
    read_fd, write_fd, previous = fds
    signal.set_wakeup_fd(previous)
    os.close(write_fd)  # the watcher reads the end of the pipe and stops
    if _state.watcher is not None:
        _state.watcher.join(timeout=5)
    _state.watcher = None
    os.close(read_fd)


@contextlib.contextmanager
def handle_signals(*, force_on_second: bool = True, announce: bool = False) -> Iterator[None]:
    """Turn SIGINT and SIGTERM into `RunInterrupted` while inside (main thread only; elsewhere a no-op).

    `force_on_second`: a second signal forces the exit. `announce`: say on stderr that the run is stopping.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    outer = (_state.force_on_second, _state.announce)
    _state.force_on_second, _state.announce = force_on_second, announce
    fds = _start_watcher() if not _state.installed else None
    for s in SIGNALS:
        signal.signal(s, _handler)
    _state.installed += 1
    try:
        yield
    finally:
        _state.installed -= 1
        for s, handler in previous.items():
            signal.signal(s, handler)
        _stop_watcher(fds)
        _state.force_on_second, _state.announce = outer
        if not _state.installed:
            reset()


def reset() -> None:
    """Forget a requested stop (a new run in the same process starts clean)."""
    _state.signum, _state.reason, _state.from_thread = None, "signal", None
    _state.pending_raise = False
    with _state.threads_lock:
        _state.step_threads.clear()


__all__ = [
    "RunInterrupted",
    "add_cancel",
    "add_commit_check",
    "as_interrupt",
    "cancel_on_interrupt",
    "check_before_commit",
    "deferred",
    "handle_signals",
    "interrupt_main",
    "on_force_exit",
    "raise_if_requested",
    "requested",
    "reset",
    "step_thread",
]
