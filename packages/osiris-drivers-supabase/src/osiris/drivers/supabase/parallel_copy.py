"""Several binary COPY sessions filling one staging table from one input, each in its own thread.

The sessions take the input's batches from one shared iterator (whichever is ready takes the
next one), so the input is read once and in order, while the Arrow-to-COPY conversion, the
libpq send and the server's work run in parallel. Every session commits only after all of them
have finished; the staging table is not the target, so none of this is visible until the
load's merge transaction commits. Rows land in the staging table in no particular order, so
this is only for loads that do not use the input's order (see `PostgresLoader._stage_streams`).

A failure of one session stops the others between two batches; a stop of the run (a signal, or
`RunInterrupted` raised in the step's thread) cancels every running COPY and waits for the
threads before it unwinds, so the staging table can be dropped (no session still holds it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from osiris.runtime.interrupts import add_cancel


class StreamStopped(Exception):
    """Raised in a session's batch iterator when another session failed or the load was stopped."""


class SharedBatches:
    """One iterator, read by several threads one batch at a time."""

    def __init__(self, source: Iterable[Any]) -> None:
        self._it = iter(source)
        self._lock = threading.Lock()
        self._stopped = False

    def stop(self) -> None:
        """Every reader ends at its next batch with `StreamStopped`."""
        self._stopped = True

    def reader(self) -> Iterator[Any]:
        """The batches this reader gets (an error of the source is raised in the reader that met it)."""
        while True:
            with self._lock:
                if self._stopped:
                    raise StreamStopped("another COPY stream of this load stopped")
                try:
                    batch = next(self._it)
                except StopIteration:
                    return
                except BaseException:
                    self._stopped = True
                    raise
            yield batch


def copy_in_parallel(
    sessions: list[Any],
    copy_one: Callable[[Any, Callable[[], Iterable[Any]]], int],
    batches: Iterable[Any],
) -> int:
    """Run `copy_one(session, batches)` on every session at once over one shared input; the total rows.

    Commits every session when all succeeded. Raises the first failure (not the `StreamStopped`
    it caused in the others), or the stop that interrupted the wait, after every thread ended.
    """
    shared = SharedBatches(batches)
    rows = [0] * len(sessions)
    errors: list[tuple[int, BaseException]] = []
    errors_lock = threading.Lock()

    def work(i: int) -> None:
        try:
            rows[i] = copy_one(sessions[i], shared.reader)
        except BaseException as exc:  # handed to the waiting thread
            with errors_lock:
                errors.append((i, exc))
            shared.stop()

    threads = [
        threading.Thread(target=work, args=(i,), name=f"osiris-copy-{i + 1}", daemon=True) for i in range(len(sessions))
    ]
    removes = [add_cancel(s.cancel) for s in sessions]  # a signal cancels every running COPY at once
    try:
        for t in threads:
            t.start()
        _wait(threads)
    except BaseException:  # a stop (`RunInterrupted`) while waiting: end the streams, then unwind
        shared.stop()
        for s in sessions:
            s.cancel()
        _wait_despite_a_stop(threads)
        raise
    finally:
        for remove in removes:
            remove()
    if errors:
        first = next((exc for _, exc in errors if not _is_stopped(exc)), errors[0][1])
        raise first
    for s in sessions:
        s.commit()
    return sum(rows)


def _is_stopped(exc: BaseException) -> bool:
    return isinstance(exc, StreamStopped) or "another COPY stream of this load stopped" in str(exc)


def _wait(threads: list[threading.Thread]) -> None:
    # A join with a timeout: an asynchronous stop raised in this thread lands between two waits.
    for t in threads:
        while t.is_alive():
            t.join(0.05)


def _wait_despite_a_stop(threads: list[threading.Thread]) -> None:
    while True:
        try:
            _wait(threads)
            return
        except BaseException:  # a second stop: the threads are ending already, keep waiting
            continue
